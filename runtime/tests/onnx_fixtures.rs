//! Every ONNX fixture of `tests/data/onnx/` (exported by PyTorch with
//! `scripts/make-onnx-fixtures.py`) imports, and the reference executor, fed the saved inputs and
//! the model's own initializers, gives PyTorch's saved outputs.

use std::path::PathBuf;

use shardc_ir::onnx::{import, OnnxOptions};
use shardc_runtime::{bind_inputs, execute, max_relative_error, param_tensor, read_npz};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/onnx")
}

/// Imports `NAME.EXPORTER.onnx`, runs it on its saved inputs and returns the largest relative
/// error against PyTorch's outputs.
fn check(stem: &str, dims: &[&str]) -> f64 {
    let d = dir();
    let model = import(
        &d.join(format!("{stem}.onnx")),
        &OnnxOptions::with_dims(dims).unwrap(),
    )
    .unwrap_or_else(|e| panic!("{stem}: {e}"));
    let inputs = read_npz(&d.join(format!("{stem}.inputs.npz"))).unwrap();
    let expected = read_npz(&d.join(format!("{stem}.outputs.npz"))).unwrap();
    let params: Vec<_> = model
        .params
        .iter()
        .map(|p| (p.name.clone(), param_tensor(p).unwrap()))
        .collect();
    let feed = bind_inputs(&model.graph, &inputs, |n| {
        params.iter().find(|(k, _)| k == n).map(|(_, t)| t.clone())
    })
    .unwrap_or_else(|e| panic!("{stem}: {e}"));
    let got = execute(&model.graph, &feed).unwrap_or_else(|e| panic!("{stem}: {e}"));
    assert_eq!(got.len(), expected.len(), "{stem}: output count");
    let mut worst = 0.0f64;
    for (v, t) in model.graph.outputs.iter().zip(&got) {
        let name = &model.graph.node(*v).name;
        let (_, want) = expected
            .iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("{stem}: no saved output `{name}`"));
        let err = max_relative_error(t, want).unwrap();
        worst = worst.max(err);
    }
    worst
}

macro_rules! fixture_tests {
    ($($test:ident: $stem:literal $(, $dim:literal)*;)*) => {$(
        #[test]
        fn $test() {
            let err = check($stem, &[$($dim),*]);
            eprintln!("{}: largest relative error {err:.3e} against PyTorch", $stem);
            assert!(err <= 1e-4, "{}: relative error {err:.3e} against PyTorch", $stem);
        }
    )*};
}

fixture_tests! {
    gpt2_dynamo_matches_pytorch: "gpt2.dynamo";
    gpt2_torchscript_with_dynamic_dims_matches_pytorch: "gpt2.ts", "batch=2", "seq=8";
    llama_dynamo_matches_pytorch: "llama.dynamo";
    llama_torchscript_matches_pytorch: "llama.ts";
    qwen2_dynamo_matches_pytorch: "qwen2.dynamo";
    qwen2_torchscript_matches_pytorch: "qwen2.ts";
    phi_dynamo_matches_pytorch: "phi.dynamo";
    phi_torchscript_matches_pytorch: "phi.ts";
    gpt_neox_dynamo_matches_pytorch: "gpt_neox.dynamo";
    gpt_neox_torchscript_matches_pytorch: "gpt_neox.ts";
    bert_dynamo_matches_pytorch: "bert.dynamo";
    bert_torchscript_matches_pytorch: "bert.ts";
    resnet18_dynamo_matches_pytorch: "resnet18.dynamo";
    resnet18_torchscript_matches_pytorch: "resnet18.ts";
    mlp_dynamo_matches_pytorch: "mlp.dynamo";
    mlp_torchscript_matches_pytorch: "mlp.ts";
}

/// A fixture printed as an HLO module (`ir::hlo::print_graph`) and read back runs to the same
/// outputs as the graph it came from: the HLO export of non-HLO graphs computes the model.
fn hlo_round_trip_runs_the_same(stem: &str) {
    let d = dir();
    let model = import(&d.join(format!("{stem}.onnx")), &OnnxOptions::default()).unwrap();
    let g = &model.graph;
    let (text, _) = shardc_ir::hlo::print_graph(g, &vec![None; g.len()]).unwrap();
    let back = shardc_ir::hlo::import(&text).unwrap_or_else(|e| panic!("{stem}: {e}"));
    let inputs = read_npz(&d.join(format!("{stem}.inputs.npz"))).unwrap();
    let params: Vec<_> = model
        .params
        .iter()
        .map(|p| (p.name.clone(), param_tensor(p).unwrap()))
        .collect();
    let feed = bind_inputs(g, &inputs, |n| {
        params.iter().find(|(k, _)| k == n).map(|(_, t)| t.clone())
    })
    .unwrap();
    let want = execute(g, &feed).unwrap();
    let got = execute(&back.graph, &feed).unwrap_or_else(|e| panic!("{stem}: {e}"));
    assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(&want) {
        let err = max_relative_error(a, b).unwrap();
        assert!(
            err <= 1e-6,
            "{stem}: the HLO export computes another function ({err:.3e})"
        );
    }
}

#[test]
fn hlo_export_of_gpt2_runs_the_same() {
    hlo_round_trip_runs_the_same("gpt2.dynamo");
}

#[test]
fn hlo_export_of_llama_runs_the_same() {
    hlo_round_trip_runs_the_same("llama.ts");
}

#[test]
fn hlo_export_of_resnet18_runs_the_same() {
    hlo_round_trip_runs_the_same("resnet18.dynamo");
}
