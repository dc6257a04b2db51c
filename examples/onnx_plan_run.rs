//! Import a model PyTorch exported to ONNX, plan it for an 8-GPU node, print the plan as a
//! `torch.distributed` snippet, then run the plan on 8 CPU threads with the model's own weights
//! and check the outputs against the ones PyTorch saved.
//!
//! `cargo run --example onnx_plan_run [MODEL.onnx]` (default: the MLP fixture in
//! `tests/data/onnx`; the saved inputs and outputs are read from beside the model).

use std::path::{Path, PathBuf};

use shardc::cost_model::{Catalog, Cluster};
use shardc::runtime::{bind_inputs, execute, max_relative_error, param_tensor, read_npz};
use shardc::{ExportFormat, PlanOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model_path = std::env::args().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx/mlp.dynamo.onnx"),
        PathBuf::from,
    );
    let model = shardc::ir::onnx::import(&model_path, &Default::default())?;
    let g = &model.graph;
    println!(
        "{}: {} nodes, {} parameters ({})",
        model_path.display(),
        g.len(),
        model.params.len(),
        model.producer
    );

    let cluster = Cluster::parse("dgx-a100-80gb:1", &Catalog::builtin())?;
    let plan = shardc::plan(g, &cluster, &PlanOptions::default())?;
    print!("{}", plan.report());
    println!("--- as PyTorch takes it ---");
    print!("{}", shardc::export(g, &plan, ExportFormat::Torch)?);

    // The saved inputs, and the model's weights for its parameters.
    let stem = model_path
        .to_string_lossy()
        .trim_end_matches(".onnx")
        .to_string();
    let inputs = read_npz(Path::new(&format!("{stem}.inputs.npz")))?;
    let weights: Vec<_> = model
        .params
        .iter()
        .map(|p| Ok((p.name.clone(), param_tensor(p)?)))
        .collect::<Result<_, shardc::runtime::RuntimeError>>()?;
    let feed = bind_inputs(g, &inputs, |n| {
        weights.iter().find(|(k, _)| k == n).map(|(_, t)| t.clone())
    })?;

    let program = shardc::compile(g, &plan)?;
    let got = shardc::run(&program, &feed)?;
    let reference = execute(g, &feed)?;
    let pytorch = read_npz(Path::new(&format!("{stem}.outputs.npz")))?;
    for ((out, want), (name, torch)) in got.iter().zip(&reference).zip(&pytorch) {
        let vs_reference = max_relative_error(out, want)?;
        let vs_pytorch = max_relative_error(out, torch)?;
        println!(
            "output {name}: relative error {vs_reference:.2e} against the reference executor, \
             {vs_pytorch:.2e} against PyTorch"
        );
        if vs_reference > 1e-5 || vs_pytorch > 1e-4 {
            return Err(format!("output {name} differs").into());
        }
    }
    Ok(())
}

#[cfg(test)]
#[test]
fn example_runs() {
    main().unwrap();
}
