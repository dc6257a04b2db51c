//! The reference executor on the GPT-2 ONNX fixture (`tests/data/onnx/gpt2.dynamo.onnx`: 2 layers,
//! width 32, batch 2, sequence 8, exported by PyTorch), one warm run per iteration, fed the
//! saved inputs and the model's own weights: the figure set beside onnxruntime's warm session
//! run (`tools/bench_onnx_gpt2.py`) in BENCHMARKS.md. Import and binding happen once, outside
//! the timing, as onnxruntime's session creation does.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use shardc_ir::onnx::{import, OnnxOptions};
use shardc_runtime::{bind_inputs, execute, max_relative_error, param_tensor, read_npz};

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
    c.bench_function("onnx_gpt2_dynamo_warm_run", |b| {
        b.iter(|| black_box(execute(&model.graph, black_box(&feed)).expect("the model runs")))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(3));
    targets = onnx_gpt2
}
criterion_main!(benches);
