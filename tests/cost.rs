//! `shardc cost`: a sharded graph's step estimate on a cluster.

use serde_json::Value;

use crate::common::{shardc, shardc_ok, zoo};

/// A small Megatron-annotated GPT in a scratch file of its own per test (tests run in parallel).
fn megatron_gpt(file: &str) -> String {
    zoo(
        file,
        &[
            "gpt",
            "--layers",
            "2",
            "--hidden",
            "256",
            "--heads",
            "4",
            "--seq",
            "128",
            "--vocab",
            "512",
            "--batch",
            "16",
            "--dtype",
            "bf16",
            "--shardings",
            "megatron",
            "--mesh",
            "dp=2,tp=4",
        ],
    )
}

#[test]
fn cost_prints_the_step_estimate_as_json() {
    let path = megatron_gpt("cost_json.json");
    let out = shardc_ok(&[
        "cost",
        &path,
        "--cluster",
        "a100-80gb:1x8",
        "--micro-batches",
        "2",
        "--train",
        "--format",
        "json",
    ]);
    let e: Value = serde_json::from_str(&out).expect("cost --format json prints JSON");
    for key in [
        "step_time_s",
        "model_tflops_per_device",
        "hardware_tflops_per_device",
        "memory_per_device_bytes",
    ] {
        assert!(e[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {out}");
    }
    // Megatron's layout needs tensor-parallel all-reduces and data-parallel gradient reductions.
    let axes: Vec<&str> = e["collectives"]
        .as_array()
        .expect("collectives")
        .iter()
        .filter_map(|c| c["axes"].as_str())
        .collect();
    assert!(axes.contains(&"tp") && axes.contains(&"dp"), "{axes:?}");
    assert!(e["fits"].as_bool().expect("fits"));
}

#[test]
fn cost_reports_the_time_split_and_memory_as_tables() {
    let path = megatron_gpt("cost_text.json");
    let out = shardc_ok(&[
        "cost",
        &path,
        "--cluster",
        "dgx-a100-80gb:1",
        "--shard",
        "tokens=P('dp', None)",
    ]);
    for needle in [
        "step time",
        "exposed communication",
        "pipeline bubble",
        "memory per device",
        "collectives per step",
        "precision priced                 bf16",
        "largest ops per step",
        "largest collectives per step",
        "overlap: tensor-parallel collectives exposed",
    ] {
        assert!(out.contains(needle), "{needle} missing:\n{out}");
    }
    assert!(!out.contains("warning:"), "{out}");
}

#[test]
fn cost_says_an_f32_graph_is_priced_at_the_fp32_rate() {
    let path = zoo(
        "cost_f32.json",
        &[
            "gpt", "--layers", "1", "--hidden", "256", "--heads", "4", "--seq", "128",
        ],
    );
    let out = shardc_ok(&[
        "cost",
        &path,
        "--cluster",
        "a100-80gb:1x1",
        "--mesh",
        "dp=1",
    ]);
    assert!(
        out.contains("precision priced                 fp32"),
        "{out}"
    );
    assert!(
        out.contains("warning: the graph's matmuls are f32"),
        "{out}"
    );
}

#[test]
fn cost_rejects_a_cluster_smaller_than_the_mesh_and_unknown_devices() {
    let path = megatron_gpt("cost_bad.json");
    let out = shardc(&["cost", &path, "--cluster", "a100-80gb:1x4"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs 8 devices"), "{err}");
    let out = shardc(&["cost", &path, "--cluster", "b300:1x8"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a device nor a cluster preset"));
}

#[test]
fn profile_measures_this_machine_and_cost_calibrates_with_it() {
    let prof = crate::common::scratch("profile.json");
    let prof = prof.to_str().expect("UTF-8 path");
    shardc_ok(&["profile", "--repeat", "1", "-o", prof]);
    let p: Value =
        serde_json::from_str(&std::fs::read_to_string(prof).expect("written")).expect("JSON");
    assert_eq!(p["device"], "cpu-xeon-8380");
    let ops = p["ops"].as_array().expect("ops");
    assert!(ops
        .iter()
        .all(|o| o["seconds"].as_f64().is_some_and(|s| s > 0.0)));
    assert_eq!(p["collectives"].as_array().expect("collectives").len(), 6);
    let path = megatron_gpt("cost_calibrated.json");
    let out = shardc_ok(&[
        "cost",
        &path,
        "--cluster",
        "cpu-xeon-8380:8x1",
        "--calibration",
        prof,
        "--format",
        "json",
    ]);
    let e: Value = serde_json::from_str(&out).expect("JSON");
    assert!(e["step_time_s"].as_f64().is_some_and(|t| t > 0.0));
    // A profile from another device does not calibrate this one.
    let out = shardc(&[
        "cost",
        &path,
        "--cluster",
        "a100-80gb:1x8",
        "--calibration",
        prof,
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("measured on `cpu-xeon-8380`"));
}

/// `shardc zoo gpt` as Megatron trained it (mixed precision, full recomputation, Megatron
/// annotations on `mesh`), then `shardc cost --format json`; returns the estimate.
fn zoo_gpt_cost(file: &str, shape: [u64; 5], batch: u64, mesh: &str, cost: &[&str]) -> Value {
    let [l, h, a, s, v] = shape.map(|x| x.to_string());
    let batch = batch.to_string();
    // The zoo's Megatron annotations name the dp and tp axes only.
    let zoo_mesh: Vec<&str> = mesh.split(',').filter(|x| !x.starts_with("pp=")).collect();
    let zoo_mesh = zoo_mesh.join(",");
    let mut args = vec![
        "gpt",
        "--layers",
        &l,
        "--hidden",
        &h,
        "--heads",
        &a,
        "--seq",
        &s,
        "--vocab",
        &v,
        "--batch",
        &batch,
        "--train",
        "--mixed-precision",
        "--shardings",
        "megatron",
        "--mesh",
        &zoo_mesh,
    ];
    let recompute = cost
        .iter()
        .position(|x| *x == "--recompute")
        .map(|i| cost[i + 1]);
    if let Some(r) = recompute.filter(|r| *r != "none") {
        args.extend_from_slice(&["--recompute", r]);
    }
    let path = zoo(file, &args);
    // Megatron's vocabulary-parallel embedding (the zoo's annotations leave the embedding to
    // propagation, which would replicate the output layer over tp).
    let mut all = vec!["cost", &path, "--mesh", mesh, "--format", "json"];
    if mesh.contains("tp=") {
        all.extend_from_slice(&["--shard", "embed.tokens=P('tp', None)"]);
    }
    let mut rest = cost.iter();
    while let Some(x) = rest.next() {
        if *x == "--recompute" {
            rest.next();
        } else {
            all.push(x);
        }
    }
    let out = shardc_ok(&all);
    serde_json::from_str(&out).expect("cost --format json prints JSON")
}

#[test]
fn published_megatron_throughput_is_predicted_through_the_graph_path_within_10_percent() {
    // Narayanan et al. SC21, Table 1 (REFERENCES.md): hardware TFLOP/s per GPU with full
    // recomputation, micro-batch 1, on DGX A100-80GB nodes. Megatron-LM 2021 reduced gradients
    // after the pipeline flush and sent between stages blocking: `--no-overlap` is how it ran.
    for (name, shape, batch, mesh, cluster, mb, published) in [
        (
            "18.4B",
            [40, 6144, 48, 2048, 51200],
            1024,
            "dp=32,tp=8",
            "a100-80gb:32x8",
            "32",
            135.0,
        ),
        (
            "145.6B",
            [80, 12288, 96, 2048, 51200],
            2304,
            "pp=8,dp=24,tp=8",
            "a100-80gb:192x8",
            "96",
            148.0,
        ),
    ] {
        let e = zoo_gpt_cost(
            &format!("published_{name}.json"),
            shape,
            batch,
            mesh,
            &[
                "--cluster",
                cluster,
                "--micro-batches",
                mb,
                "--recompute",
                "full",
                "--no-overlap",
            ],
        );
        let tflops = e["hardware_tflops_per_device"].as_f64().expect("tflops");
        let err = tflops / published - 1.0;
        println!(
            "{name}: graph path {tflops:.1} TFLOP/s, published {published}, {:+.1}%",
            100.0 * err
        );
        assert!(err.abs() < 0.10, "{name}: {tflops} vs {published}: {e}");
        assert_eq!(e["precision"], "bf16");
        assert!(e["fits"].as_bool().expect("fits"), "{e}");
    }
}

#[test]
fn the_graph_path_and_the_gpt_shape_path_agree_within_3_percent() {
    use shardc::cost_model::{
        estimate_gpt, Catalog, Cluster, GptShape, GptTraining, Recompute, Schedule, Zero,
    };
    let mut worst = 0.0f64;
    // (l, h, a, s, t, p, dp, micro-batches, recomputation)
    for (i, (l, h, a, s, t, p, dp, m, rc)) in [
        (
            4u64, 4096u64, 32u64, 2048u64, 1u64, 1u64, 1u64, 8u64, "none",
        ),
        (4, 4096, 32, 2048, 2, 1, 2, 8, "full"),
        (4, 6144, 48, 2048, 8, 1, 1, 8, "selective"),
        (8, 6144, 48, 2048, 4, 2, 1, 16, "full"),
        (8, 4096, 32, 2048, 2, 2, 2, 8, "none"),
        (4, 12288, 96, 2048, 8, 1, 2, 4, "full"),
    ]
    .into_iter()
    .enumerate()
    {
        let v = 51200;
        let mesh = if p > 1 {
            format!("pp={p},dp={dp},tp={t}")
        } else {
            format!("dp={dp},tp={t}")
        };
        let nodes = (p * dp * t).div_ceil(8);
        let per_node = (p * dp * t).min(8);
        let cluster = format!("a100-80gb:{nodes}x{per_node}");
        let m_s = m.to_string();
        let mut cost = vec![
            "--cluster",
            &cluster,
            "--micro-batches",
            &m_s,
            "--no-overlap",
        ];
        cost.extend_from_slice(&["--recompute", rc]);
        let e = zoo_gpt_cost(
            &format!("agree_{i}.json"),
            [l, h, a, s, v],
            m * dp,
            &mesh,
            &cost,
        );
        let graph = e["step_time_s"].as_f64().expect("step time");
        let run = GptTraining {
            shape: GptShape {
                layers: l,
                hidden: h,
                heads: a,
                seq: s,
                vocab: v,
            },
            global_batch: m * dp,
            micro_batch: 1,
            dp,
            tp: t,
            pp: p,
            sequence_parallel: false,
            recompute: rc.parse::<Recompute>().expect("recompute"),
            schedule: Schedule::OneFOneB,
            zero: Zero::None,
            overlap_gradient_reduction: false,
        };
        let c = Cluster::parse(&cluster, &Catalog::builtin()).expect("cluster");
        let ae = estimate_gpt(&run, &c).expect("estimate");
        let analytic = ae.step_time_s;
        println!(
            "graph compute {} comm {} opt {} bubble {}; shape compute {} comm {} opt {} bubble {}",
            e["compute_s"],
            e["exposed_comm_s"],
            e["optimizer_s"],
            e["bubble_s"],
            ae.compute_s,
            ae.exposed_comm_s,
            ae.optimizer_s,
            ae.bubble_s
        );
        let diff = graph / analytic - 1.0;
        println!("l={l} h={h} t={t} p={p} m={m} {rc}: graph {graph:.4} s, shape {analytic:.4} s, {:+.2}%", 100.0 * diff);
        worst = worst.max(diff.abs());
        let _ = i;
    }
    assert!(worst < 0.03, "worst {worst}");
}

#[test]
fn graph_liveness_activation_memory_per_layer_matches_korthikanti() {
    // Korthikanti et al. 2022 (REFERENCES.md), bytes per layer at micro-batch b = 1 and 16-bit
    // activations, without its dropout terms (the zoo's GPT has no dropout: no 1-byte masks
    // `2·sbh` outside the attention and `as²b` inside, no dropout output): full recomputation
    // keeps `2·sbh`; selective `sbh·(8 + 24/t)`.
    let (s, h, a) = (2048.0, 12288.0, 96.0);
    let sbh = s * h;
    for t in [1u64, 8] {
        let mesh = format!("dp=1,tp={t}");
        let cluster = format!("a100-80gb:1x{t}");
        let per_layer = |rc: &str| {
            let act = |l: u64| {
                let e = zoo_gpt_cost(
                    &format!("korthikanti_{t}_{rc}_{l}.json"),
                    [l, 12288, 96, 2048, 51200],
                    1,
                    &mesh,
                    &["--cluster", &cluster, "--recompute", rc],
                );
                e["memory"]["activations"].as_f64().expect("activations")
            };
            (act(4) - act(2)) / 2.0
        };
        let tf = t as f64;
        for (rc, paper) in [("full", 2.0 * sbh), ("selective", sbh * (8.0 + 24.0 / tf))] {
            let ours = per_layer(rc);
            println!("t={t} {rc}: graph {ours:.4e} B per layer, Korthikanti {paper:.4e}");
            assert!(
                (ours / paper - 1.0).abs() < 0.05,
                "t={t} {rc}: {ours} vs {paper}"
            );
        }
        // Without recomputation the graph keeps the attention scores as well as the softmax
        // output (its softmax backward reads what its forward computed): `4·as²b/t`, where
        // Megatron's fused softmax keeps its output only.
        let none = per_layer("none");
        let paper = sbh * (8.0 + 24.0 / tf) + 4.0 * a * s * s / tf;
        println!("t={t} none: graph {none:.4e} B per layer, formula with 4as²b/t {paper:.4e}");
        assert!(
            (none / paper - 1.0).abs() < 0.05,
            "t={t} none: {none} vs {paper}"
        );
    }
}
