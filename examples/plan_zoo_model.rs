//! Plan a model from the zoo for a cluster, print the plan's report, compile it to the SPMD
//! program and run that on one CPU thread per device, checked against the reference executor.
//!
//! `cargo run --example plan_zoo_model`

use shardc::cost_model::{Catalog, Cluster};
use shardc::ir::zoo::{mlp, MlpConfig};
use shardc::runtime::{execute, max_relative_error, random_inputs};
use shardc::PlanOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let g = mlp(&MlpConfig {
        batch: 64,
        sizes: vec![256, 1024, 1024, 256],
        ..MlpConfig::default()
    })?;
    let cluster = Cluster::parse("dgx-a100-80gb:1", &Catalog::builtin())?;
    let plan = shardc::plan(&g, &cluster, &PlanOptions::default())?;
    print!("{}", plan.report());

    let program = shardc::compile(&g, &plan)?;
    let inputs = random_inputs(&g, 0);
    let got = shardc::run(&program, &inputs)?;
    let want = execute(&g, &inputs)?;
    for ((out, want), v) in got.iter().zip(&want).zip(&g.outputs) {
        let err = max_relative_error(out, want)?;
        println!(
            "{}: relative error {err:.2e} against the reference executor",
            g.node(*v).name
        );
        if err > 1e-5 {
            return Err(format!("{} differs", g.node(*v).name).into());
        }
    }
    Ok(())
}

#[cfg(test)]
#[test]
fn example_runs() {
    main().unwrap();
}
