//! `shardc run FILE [--seed N]`: run a graph on the reference executor (one CPU device) with
//! random inputs and print a summary of each output.

use std::path::PathBuf;

use clap::Args;
use shardc::ir::{Graph, GraphStats};
use shardc::runtime::{execute, random_inputs, Tensor};

use super::{read_graph, spinner, CliError};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The graph file (shardc JSON).
    pub file: PathBuf,
    /// Seed of the random inputs (the same seed gives the same inputs and outputs).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Refuse graphs whose inputs and parameters need more than this many GiB of host memory.
    #[arg(long, default_value_t = 4.0, value_name = "GIB")]
    pub max_memory: f64,
}

pub fn run(a: RunArgs) -> Result<(), CliError> {
    let g = read_graph(&a.file)?;
    let stats = GraphStats::of(&g);
    // The reference executor holds every input at once; say so before allocating, rather than
    // letting a GPT-3-sized graph exhaust the machine.
    let needed = stats
        .input_bytes
        .saturating_add(stats.parameter_bytes)
        .saturating_add(stats.optimizer_state_bytes);
    let limit = a.max_memory * (1u64 << 30) as f64;
    if needed as f64 > limit {
        return Err(CliError::Input(format!(
            "{}: inputs and parameters need {:.2} GiB, more than --max-memory {} GiB; the \
             reference executor runs the whole graph on one CPU device",
            a.file.display(),
            needed as f64 / (1u64 << 30) as f64,
            a.max_memory
        )));
    }
    let spin = spinner(&format!("running {}", a.file.display()));
    let inputs = random_inputs(&g, a.seed);
    let outputs = execute(&g, &inputs);
    spin.finish_and_clear();
    let outputs = outputs.map_err(|e| CliError::Input(format!("{}: {e}", a.file.display())))?;
    let name = if g.name.is_empty() {
        "<unnamed>"
    } else {
        &g.name
    };
    println!(
        "graph {name}: {} nodes, {} inputs (seed {})",
        g.len(),
        inputs.len(),
        a.seed
    );
    for (v, t) in g.outputs.iter().zip(&outputs) {
        println!("{v} {}: {}", g.node(*v).name, t.summary());
    }
    if let Some(l) = g.training.loss {
        if let Some(i) = g.outputs.iter().position(|&o| o == l) {
            let loss = outputs[i]
                .scalar_f64()
                .map_err(|e| CliError::Input(e.to_string()))?;
            println!("loss {}: {loss:.6}", g.node(l).name);
        }
    }
    print_gradient_norms(&g, &outputs);
    if !g.training.updates.is_empty() {
        println!(
            "one training step: {} parameters and optimizer states updated",
            g.training.updates.len()
        );
    }
    Ok(())
}

/// For a training graph: the L2 norm of every parameter's gradient, and of all of them together.
fn print_gradient_norms(g: &Graph, outputs: &[Tensor]) {
    let mut total = 0.0f64;
    let mut lines = Vec::new();
    for &(p, gv) in &g.training.gradients {
        let Some(i) = g.outputs.iter().position(|&o| o == gv) else {
            continue;
        };
        let sq: f64 = outputs[i].to_f64_vec().iter().map(|x| x * x).sum();
        total += sq;
        lines.push(format!("  {}: {:.6e}", g.node(p).name, sq.sqrt()));
    }
    if lines.is_empty() {
        return;
    }
    println!("gradient norm (L2) {:.6e}, per parameter:", total.sqrt());
    for l in lines {
        println!("{l}");
    }
}
