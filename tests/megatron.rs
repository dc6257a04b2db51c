//! Megatron-LM's published throughput, predicted through the graph path (`shardc zoo gpt` then
//! `shardc cost`) with the A100 constants of the catalog, fixed once for every row.

use serde_json::Value;

use crate::common::{shardc_ok, zoo};

/// One row of Narayanan et al. SC21 (arXiv 2104.04473), Table 1: GPT models on DGX A100-80GB
/// nodes (8 GPUs, NVLink inside, 8×200 Gb/s InfiniBand between), V = 51200, s = 2048, full
/// activation recomputation, micro-batch 1; the published figure is hardware TFLOP/s per GPU
/// (recomputation counted, the 96·B·s·l·h²·(…) formula of REFERENCES.md).
struct Row {
    name: &'static str,
    heads: u64,
    hidden: u64,
    layers: u64,
    tp: u64,
    pp: u64,
    gpus: u64,
    batch: u64,
    published: f64,
}

const fn row(
    name: &'static str,
    [heads, hidden, layers, tp, pp, gpus, batch]: [u64; 7],
    published: f64,
) -> Row {
    Row {
        name,
        heads,
        hidden,
        layers,
        tp,
        pp,
        gpus,
        batch,
        published,
    }
}

/// Every row of Table 1 (the 18.4B and 145.6B rows are also in REFERENCES.md).
const TABLE_1: [Row; 10] = [
    row("1.7B", [24, 2304, 24, 1, 1, 32, 512], 137.0),
    row("3.6B", [32, 3072, 30, 2, 1, 64, 512], 138.0),
    row("7.5B", [32, 4096, 36, 4, 1, 128, 512], 142.0),
    row("18.4B", [48, 6144, 40, 8, 1, 256, 1024], 135.0),
    row("39.1B", [64, 8192, 48, 8, 2, 512, 1536], 138.0),
    row("76.1B", [80, 10240, 60, 8, 4, 1024, 1792], 140.0),
    row("145.6B", [96, 12288, 80, 8, 8, 1536, 2304], 148.0),
    row("310.1B", [128, 16384, 96, 8, 16, 1920, 2160], 155.0),
    row("529.6B", [128, 20480, 105, 8, 35, 2520, 2520], 163.0),
    row("1008.0B", [160, 25600, 128, 8, 64, 3072, 3072], 163.0),
];

/// The two configurations of REFERENCES.md (and issue 10).
const ISSUE_ROWS: [&str; 2] = ["18.4B", "145.6B"];

impl Row {
    fn dp(&self) -> u64 {
        self.gpus / (self.tp * self.pp)
    }

    /// `shardc zoo gpt ...` exactly as issue 10 writes it for this row, then `extra`.
    fn zoo(&self, file: &str, extra: &[&str]) -> String {
        let [l, h, a, b] =
            [self.layers, self.hidden, self.heads, self.batch].map(|x| x.to_string());
        let mesh = format!("dp={},tp={}", self.dp(), self.tp);
        zoo(
            file,
            &[
                "gpt",
                "--layers",
                &l,
                "--hidden",
                &h,
                "--heads",
                &a,
                "--seq",
                "2048",
                "--vocab",
                "51200",
                "--batch",
                &b,
                "--train",
                "--recompute",
                "full",
                "--mixed-precision",
                "--shardings",
                "megatron",
                "--mesh",
                &mesh,
            ]
            .iter()
            .chain(extra)
            .copied()
            .collect::<Vec<_>>(),
        )
    }

    /// `shardc cost` on the row's cluster and mesh (pipeline stages on `pp`), one micro-batch
    /// of one sequence per data-parallel rank at a time; `extra` appended.
    fn cost(&self, path: &str, extra: &[&str]) -> Value {
        let cluster = format!("a100-80gb:{}x8", self.gpus / 8);
        let mut mesh = format!("dp={},tp={}", self.dp(), self.tp);
        if self.pp > 1 {
            mesh = format!("pp={},{mesh}", self.pp);
        }
        let m = (self.batch / self.dp()).to_string();
        let mut args = vec![
            "cost",
            path,
            "--cluster",
            &cluster,
            "--mesh",
            &mesh,
            "--micro-batches",
            &m,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--format", "json"]);
        serde_json::from_str(&shardc_ok(&args)).expect("cost --format json prints JSON")
    }

    /// The predicted hardware TFLOP/s and its error against the published figure.
    fn check(&self, e: &Value, setting: &str) -> f64 {
        let tflops = e["hardware_tflops_per_device"].as_f64().expect("tflops");
        let err = tflops / self.published - 1.0;
        println!(
            "{:>8} t={} p={} {setting}: graph path {tflops:.1} TFLOP/s, published {}, {:+.1}%",
            self.name,
            self.tp,
            self.pp,
            self.published,
            100.0 * err
        );
        assert_eq!(e["precision"], "bf16", "{}", self.name);
        err
    }
}

#[test]
fn the_issues_commands_predict_both_published_configurations_within_10_percent() {
    // Issue 10's commands as written: zoo flags `--train --recompute full --mixed-precision
    // --shardings megatron`, cost with the default overlap assumptions.
    for r in TABLE_1.iter().filter(|r| ISSUE_ROWS.contains(&r.name)) {
        let path = r.zoo(&format!("issue10_{}.json", r.name), &[]);
        let e = r.cost(&path, &[]);
        let err = r.check(&e, "as written");
        assert!(e["fits"].as_bool().expect("fits"), "{}: {e}", r.name);
        assert!(err.abs() < 0.10, "{}: {e}", r.name);
        // MFU counts 72·… instead of 96·…: three quarters, bar the output layer.
        let mfu = e["model_tflops_per_device"].as_f64().expect("mfu");
        let ratio = mfu / e["hardware_tflops_per_device"].as_f64().expect("tflops");
        assert!((ratio - 0.75).abs() < 0.01, "{}: {ratio}", r.name);
    }
}

/// Every row is held to 10% of its published figure.
const TABLE_BOUND: f64 = 0.10;

#[test]
fn the_other_rows_of_megatrons_table_1_are_predicted_within_10_percent() {
    // As Megatron-LM 2021 ran: hidden and attention dropout 0.1 (its defaults; the attention
    // dropout is PyTorch's own kernel after the fused softmax, as the cost model's fusion rules
    // say), gradients all-reduced after the last backward pass (its DDP did not overlap them)
    // and blocking sends between stages (`--no-overlap`), the non-interleaved 1F1B schedule,
    // micro-batch 1. Dropout masks are regenerated, not kept, under full recomputation (as
    // Megatron draws them again from the saved RNG state), so every row fits.
    // The two rows of REFERENCES.md are held to 10% as issue 10 writes them (the test above);
    // their graphs are the slowest to propagate, so they are not built twice (CI time).
    let mut worst = 0.0f64;
    for r in TABLE_1.iter().filter(|r| !ISSUE_ROWS.contains(&r.name)) {
        let path = r.zoo(&format!("table1_{}.json", r.name), &["--dropout", "0.1"]);
        let e = r.cost(&path, &["--no-overlap"]);
        let err = r.check(&e, "--dropout 0.1, --no-overlap");
        let _ = std::fs::remove_file(&path);
        assert!(err.abs() < TABLE_BOUND, "{}: {err}", r.name);
        assert!(e["fits"].as_bool().expect("fits"), "{}: {e}", r.name);
        worst = worst.max(err.abs());
    }
    println!("worst error of the other rows {:.1}%", 100.0 * worst);
}
