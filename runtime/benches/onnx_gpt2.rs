//! The reference executor on the GPT-2 ONNX fixture (`tests/data/onnx/gpt2.dynamo.onnx`: 2 layers,
//! width 32, batch 2, sequence 8, exported by PyTorch), one warm run per iteration, fed the
//! saved inputs and the model's own weights: the figure set beside onnxruntime's warm session
//! run (`tools/bench_onnx_gpt2.py`) in BENCHMARKS.md. Import, binding, verification and the
//! schedule (`Prepared`) happen once, outside the timing, as onnxruntime's session creation
//! does; `onnx_gpt2_dynamo_execute` times `execute`, which verifies and schedules per call.
//! Run with `RAYON_NUM_THREADS=1 MATMUL_NUM_THREADS=1` for one thread (both pools).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use shardc_ir::onnx::{import, OnnxOptions};
use shardc_runtime::{bind_inputs, execute, max_relative_error, param_tensor, read_npz, Prepared};

fn onnx_gpt2(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/onnx");
    let model = import(&dir.join("gpt2.dynamo.onnx"), &OnnxOptions::default())
        .expect("the fixture imports");
    let inputs = read_npz(&dir.join("gpt2.dynamo.inputs.npz")).expect("saved inputs");
    let expected = read_npz(&dir.join("gpt2.dynamo.outputs.npz")).expect("saved outputs");
    let params: Vec<_> = model
        .params
        .iter()
        .map(|p| (p.name.clone(), param_tensor(p).expect("a weight")))
        .collect();
    let feed = bind_inputs(&model.graph, &inputs, |n| {
        params.iter().find(|(k, _)| k == n).map(|(_, t)| t.clone())
    })
    .expect("every input bound");
    let out = execute(&model.graph, &feed).expect("the model runs");
    let err = max_relative_error(&out[0], &expected[0].1).expect("same shape");
    assert!(err <= 1e-4, "relative error {err:.3e} against PyTorch");
    let prepared = Prepared::new(&model.graph).expect("the graph verifies");
    let out = prepared.run(&feed).expect("the model runs");
    let err = max_relative_error(&out[0], &expected[0].1).expect("same shape");
    assert!(
        err <= 1e-4,
        "prepared run: relative error {err:.3e} against PyTorch"
    );
    // The figure set beside onnxruntime's warm session run, measured the same way as
    // `tools/bench_onnx_gpt2.py --warm` does there: each run timed alone, the median of 2000
    // after 100 warm-up runs (a median of single runs is robust to the shared machine's
    // preemptions, which inflate criterion's per-sample means).
    for _ in 0..100 {
        black_box(prepared.run(&feed).expect("the model runs"));
    }
    let mut times: Vec<Duration> = (0..2000)
        .map(|_| {
            let t0 = Instant::now();
            black_box(prepared.run(black_box(&feed)).expect("the model runs"));
            t0.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "onnx_gpt2 prepared run, single runs: median {:.4} ms, min {:.4} ms (2000 runs)",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );
    // Verified and scheduled once.
    c.bench_function("onnx_gpt2_dynamo_warm_run", |b| {
        b.iter(|| black_box(prepared.run(black_box(&feed)).expect("the model runs")))
    });
    // `execute` verifies and schedules on every call.
    c.bench_function("onnx_gpt2_dynamo_execute", |b| {
        b.iter(|| black_box(execute(&model.graph, black_box(&feed)).expect("the model runs")))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(3));
    targets = onnx_gpt2
}
criterion_main!(benches);
