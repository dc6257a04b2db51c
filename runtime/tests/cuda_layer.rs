//! Timing of one transformer layer's per-device program on the GPU (h=4096, s=2048,
//! micro-batch 1, bf16): its forward pass and its training step (backward and Adam included).
//! Ignored by default (it needs a GPU and a few seconds of it); `scripts/gpu-check.sh` runs it
//! with `--ignored`, passing the device's bf16 peak from the catalog (`SHARDC_BF16_PEAK`, FLOP/s)
//! and a file to append the results to (`SHARDC_GPU_CHECK_OUT`).

#![cfg(feature = "cuda")]

use std::io::Write;

use shardc_ir::zoo::{gpt, GptConfig, GptShardings};
use shardc_ir::{training_step, DType, Graph, GraphStats, TrainOptions};
use shardc_runtime::cuda::{probe, time_cuda, CudaOptions};
use shardc_runtime::random_inputs;

/// One layer at GPT-3 6.7B's width (Brown et al. 2020: h=4096, 32 heads, s=2048); a small
/// vocabulary, so that the layer, not the logits, is what is timed.
fn layer() -> GptConfig {
    GptConfig {
        layers: 1,
        hidden: 4096,
        heads: 32,
        seq: 2048,
        vocab: 1024,
        batch: 1,
        dtype: DType::BF16,
        shardings: GptShardings::None,
    }
}

fn time(name: &str, g: &Graph, peak: Option<f64>, out: &mut Vec<String>) {
    let flops = GraphStats::of(g).flops as f64;
    let inputs = random_inputs(g, 0);
    let t = time_cuda(g, &inputs, 3, &CudaOptions::default()).unwrap();
    let mut runs = t.seconds[1..].to_vec();
    runs.sort_by(f64::total_cmp);
    let best = runs[0];
    let tflops = flops / best / 1e12;
    let of_peak = peak.map_or(String::new(), |p| {
        format!(
            ", {:.1}% of the bf16 peak {:.0} TFLOP/s",
            100.0 * flops / best / p,
            p / 1e12
        )
    });
    let line = format!(
        "{name}: {} on {}: {:.2} ms (best of {}; first run with kernel compilation {:.2} s), {:.3e} FLOP, {tflops:.1} TFLOP/s{of_peak}; host fallbacks {:?}",
        g.name,
        t.report.device,
        best * 1e3,
        runs.len(),
        t.seconds[0],
        flops,
        t.report.host_fallbacks
    );
    println!("{line}");
    out.push(line);
    for o in &t.outputs {
        assert!(
            o.to_f64_vec().iter().all(|x| x.is_finite()),
            "{name}: an output is not finite"
        );
    }
}

#[test]
#[ignore = "needs a GPU; run by scripts/gpu-check.sh"]
fn one_transformer_layer_per_device_program_timing() {
    let peak = std::env::var("SHARDC_BF16_PEAK")
        .ok()
        .and_then(|p| p.parse::<f64>().ok());
    let forward = gpt(&layer()).unwrap();
    let step = training_step(&forward, &TrainOptions::default()).unwrap();
    if let Err(e) = probe() {
        eprintln!("skipped: {e}");
        return;
    }
    let mut lines = Vec::new();
    time("forward", &forward, peak, &mut lines);
    time("training step", &step, peak, &mut lines);
    if let Ok(path) = std::env::var("SHARDC_GPU_CHECK_OUT") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }
}
