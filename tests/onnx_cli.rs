//! `shardc` on ONNX models exported by PyTorch: `run --inputs --outputs` gives PyTorch's outputs,
//! `import` writes a graph and its weights that run the same, dynamic dims need `--dim`, and
//! missing inputs are listed.

use shardc::runtime::{max_relative_error, read_npz};

use crate::common::{scratch, shardc, shardc_ok};

fn fixture(name: &str) -> String {
    format!("{}/tests/data/onnx/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn assert_matches_pytorch(outputs: &std::path::Path, expected: &str) {
    let got = read_npz(outputs).unwrap();
    let want = read_npz(std::path::Path::new(&fixture(expected))).unwrap();
    assert_eq!(got.len(), want.len());
    for ((gn, g), (wn, w)) in got.iter().zip(&want) {
        assert_eq!(gn, wn);
        let err = max_relative_error(g, w).unwrap();
        assert!(err <= 1e-4, "{gn}: relative error {err:.3e}");
    }
}

#[test]
fn run_with_inputs_writes_pytorchs_outputs() {
    let out = scratch("gpt2.ts.outputs.npz");
    shardc_ok(&[
        "run",
        &fixture("gpt2.ts.onnx"),
        "--dim",
        "batch=2",
        "--dim",
        "seq=8",
        "--inputs",
        &fixture("gpt2.ts.inputs.npz"),
        "--outputs",
        out.to_str().unwrap(),
    ]);
    assert_matches_pytorch(&out, "gpt2.ts.outputs.npz");
}

#[test]
fn imported_graph_runs_with_its_exported_weights() {
    let json = scratch("llama.json");
    let weights = scratch("llama.weights.npz");
    let out = scratch("llama.outputs.npz");
    shardc_ok(&[
        "import",
        &fixture("llama.dynamo.onnx"),
        "-o",
        json.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
    ]);
    let missing = shardc(&[
        "run",
        json.to_str().unwrap(),
        "--inputs",
        &fixture("llama.dynamo.inputs.npz"),
    ]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success()
            && err.contains("no value for 20 of its inputs")
            && err.contains("model.embed_tokens.weight"),
        "{err}"
    );
    shardc_ok(&[
        "run",
        json.to_str().unwrap(),
        "--inputs",
        &fixture("llama.dynamo.inputs.npz"),
        "--inputs",
        weights.to_str().unwrap(),
        "--outputs",
        out.to_str().unwrap(),
    ]);
    assert_matches_pytorch(&out, "llama.dynamo.outputs.npz");
}

#[test]
fn dynamic_dims_without_dim_name_the_dim() {
    let out = shardc(&["check", &fixture("gpt2.ts.onnx")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("dynamic dim `batch`")
            && err.contains("--dim batch=SIZE"),
        "{err}"
    );
}
