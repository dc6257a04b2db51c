//! The published configurations of REFERENCES.md, predicted with the A100 constants fixed once
//! (the `achievable` block of `catalog/devices/a100-80gb.json`), and the memory facts of GPT-3.

use shardc_cost_model::{
    estimate_gpt, saved_tensors, Catalog, Cluster, GptShape, GptTraining, Recompute, Schedule, Zero,
};

fn megatron(shape: GptShape, gpus: u64, t: u64, p: u64, batch: u64) -> GptTraining {
    GptTraining {
        shape,
        global_batch: batch,
        micro_batch: 1,
        dp: gpus / (t * p),
        tp: t,
        pp: p,
        sequence_parallel: false,
        recompute: Recompute::Full,
        schedule: Schedule::OneFOneB,
        zero: Zero::None,
        overlap_gradient_reduction: false,
    }
}

fn dgx(gpus: u64) -> Cluster {
    Cluster::parse(
        &format!("dgx-a100-80gb:{}", gpus.div_ceil(8)),
        &Catalog::builtin(),
    )
    .unwrap()
}

const GPT_18B: GptShape = GptShape {
    layers: 40,
    hidden: 6144,
    heads: 48,
    seq: 2048,
    vocab: 51200,
};
const GPT_145B: GptShape = GptShape {
    layers: 80,
    hidden: 12288,
    heads: 96,
    seq: 2048,
    vocab: 51200,
};

#[test]
fn published_megatron_throughput_is_predicted_within_15_percent() {
    // Narayanan et al. SC21, Table 1 (REFERENCES.md): hardware TFLOP/s per GPU, full
    // recomputation, micro-batch 1.
    for (shape, gpus, t, p, batch, published) in [
        (GPT_18B, 256, 8, 1, 1024, 135.0),
        (GPT_145B, 1536, 8, 8, 2304, 148.0),
    ] {
        let run = megatron(shape, gpus, t, p, batch);
        let e = estimate_gpt(&run, &dgx(gpus)).unwrap();
        let err = e.hardware_tflops_per_device / published - 1.0;
        println!(
            "{:.1}B: predicted {:.1} TFLOP/s, published {published}, error {:+.1}%, step {:.2} s",
            shape.parameters() / 1e9,
            e.hardware_tflops_per_device,
            100.0 * err,
            e.step_time_s
        );
        assert!(err.abs() < 0.15, "{e}");
        // MFU counts 72·… instead of 96·…: three quarters, bar the output layer.
        let ratio = e.model_tflops_per_device / e.hardware_tflops_per_device;
        assert!((ratio - 0.75).abs() < 0.01, "{ratio}");
        assert!(e.fits);
    }
}

#[test]
fn parameter_counts_match_the_published_model_sizes() {
    assert!((GPT_18B.parameters() / 1e9 - 18.4).abs() < 0.05);
    assert!((GPT_145B.parameters() / 1e9 - 145.6).abs() < 0.05);
    assert!((GptShape::GPT3_175B.parameters() / 1e9 - 175.0).abs() < 0.5);
}

/// Korthikanti et al. 2022, Table 2, bytes per layer: `s·b·h·(10 + 24/t + 5·a·s/(h·t))`
/// (`34 + 5as/h` at t=1), `s·b·h·(34/t + 5as/(ht))` with sequence parallelism; selective
/// recomputation drops the `5as/h` term; full recomputation keeps `2·s·b·h`.
fn korthikanti(g: &GptShape, b: u64, t: u64, sp: bool, rc: Recompute) -> f64 {
    let (s, h, a, b, t) = (
        g.seq as f64,
        g.hidden as f64,
        g.heads as f64,
        b as f64,
        t as f64,
    );
    let sbh = s * b * h;
    let attn = 5.0 * a * s / (h * t);
    match (rc, sp) {
        (Recompute::Full, false) => 2.0 * sbh,
        (Recompute::Full, true) => 2.0 * sbh / t,
        (Recompute::Selective, false) => sbh * (10.0 + 24.0 / t),
        (Recompute::Selective, true) => sbh * 34.0 / t,
        (Recompute::None, false) => sbh * (10.0 + 24.0 / t + attn),
        (Recompute::None, true) => sbh * (34.0 / t + attn),
    }
}

#[test]
fn gpt_layer_activation_memory_matches_korthikanti_for_t1_and_t8() {
    let g = GptShape::GPT3_175B;
    for t in [1, 8] {
        for sp in [false, true] {
            for rc in [Recompute::None, Recompute::Selective, Recompute::Full] {
                let ours: f64 = saved_tensors(&g, 1, t, sp, rc)
                    .iter()
                    .map(|x| x.bytes)
                    .sum();
                let paper = korthikanti(&g, 1, t, sp, rc);
                assert!(
                    (ours / paper - 1.0).abs() < 0.05,
                    "t={t} sp={sp} {rc:?}: {ours} vs {paper}"
                );
            }
        }
    }
    // t=1 without recomputation: 34·s·b·h + 5·a·s²·b = 2048·12288·(34 + 5·96·2048/12288).
    let t1: f64 = saved_tensors(&g, 1, 1, false, Recompute::None)
        .iter()
        .map(|x| x.bytes)
        .sum();
    assert_eq!(t1, 2048.0 * 12288.0 * (34.0 + 80.0));
}

#[test]
fn gpt3_does_not_fit_on_one_a100_but_fits_under_t8_p16_with_1f1b() {
    let one = megatron(GptShape::GPT3_175B, 1, 1, 1, 1);
    let e = estimate_gpt(&one, &dgx(1)).unwrap();
    assert!(!e.fits);
    let short = -e.memory.headroom();
    // 16 bytes per parameter alone are 2.8 TB against 80 GB.
    let state = 16.0 * GptShape::GPT3_175B.parameters();
    assert!(short > state - 80e9, "short by {short}");
    assert!(e.memory.to_string().contains("DOES NOT FIT"));
    println!("GPT-3 175B on one A100-80GB:\n{}", e.memory);

    // Megatron's layout: t=8 inside a node, p=16 stages, 1F1B, full recomputation.
    let big = megatron(GptShape::GPT3_175B, 1536, 8, 16, 1536);
    let e = estimate_gpt(&big, &dgx(1536)).unwrap();
    println!("GPT-3 175B, t=8, p=16, 1F1B:\n{}", e.memory);
    assert!(e.fits, "{}", e.memory);
    // The same with GPipe holds all 128 micro-batches instead of 16.
    let gpipe = GptTraining {
        schedule: Schedule::Gpipe,
        recompute: Recompute::None,
        ..big.clone()
    };
    let g = estimate_gpt(&gpipe, &dgx(1536)).unwrap();
    assert!(!g.fits, "{}", g.memory);
    let held_ratio = g.memory.activations
        / estimate_gpt(
            &GptTraining {
                recompute: Recompute::None,
                ..big
            },
            &dgx(1536),
        )
        .unwrap()
        .memory
        .activations;
    assert_eq!(held_ratio, 128.0 / 16.0);
}

#[test]
fn the_report_of_the_145b_configuration_reads_as_a_table() {
    let run = megatron(GPT_145B, 1536, 8, 8, 2304);
    let e = estimate_gpt(&run, &dgx(1536)).unwrap();
    insta::assert_snapshot!("megatron_145b_report", e.to_string());
    let json = serde_json::to_value(&e).unwrap();
    for key in [
        "step_time_s",
        "model_tflops_per_device",
        "hardware_tflops_per_device",
        "memory_per_device_bytes",
    ] {
        assert!(json[key].as_f64().is_some_and(|v| v > 0.0), "{key}");
    }
}
