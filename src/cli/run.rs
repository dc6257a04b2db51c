//! `shardc run FILE [--seed N]`: run a graph on the reference executor (one CPU device) with
//! random inputs and print a summary of each output.
//!
//! With `--mesh` (or `--shard`, `--check`, or an HLO file, whose shardings name the mesh), the graph
//! is propagated, partitioned and run on the threads backend, one thread per device; `--check`
//! compares every gathered output with the reference executor and fails above `--tolerance`.

use std::path::PathBuf;

use clap::Args;
use shardc::ir::{Graph, GraphStats};
use shardc::runtime::{execute, max_relative_error, random_inputs, Tensor};
use shardc::Imported;

use super::compile::program;
use super::input::read_input;
use super::{spinner, CliError};

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
    /// Run partitioned on this device mesh (threads backend), e.g. `dp=2,tp=4`.
    #[arg(long)]
    pub mesh: Option<String>,
    /// A sharding for a value, `NAME=P('dp', None)` or DTensor placements; repeatable.
    #[arg(long = "shard", value_name = "NAME=SPEC")]
    pub shard: Vec<String>,
    /// Compare every output of the partitioned run with the reference executor; exit 1 above
    /// the tolerance.
    #[arg(long)]
    pub check: bool,
    /// Largest relative error `--check` accepts (max |a-b| / max |reference|).
    #[arg(long, default_value_t = 1e-5)]
    pub tolerance: f64,
    /// Run under a plan (`shardc plan -o plan.json`): its mesh and every value's sharding.
    #[arg(long, value_name = "PLAN.json")]
    pub plan: Option<PathBuf>,
    /// Where the devices run: `threads` (CPU, one thread per device) or `cuda` (GPUs; needs a
    /// shardc built with `--features cuda`).
    #[arg(long, value_enum, default_value_t = BackendArg::Threads)]
    pub backend: BackendArg,
}

/// The runtime backend of `shardc run`, as the command line spells it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// One CPU thread per device (the default).
    Threads,
    /// The CUDA backend: every rank on a GPU (rank r on GPU r mod the GPU count).
    Cuda,
}

impl From<BackendArg> for shardc::Backend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Threads => shardc::Backend::Threads,
            BackendArg::Cuda => shardc::Backend::Cuda,
        }
    }
}

pub fn run(a: RunArgs) -> Result<(), CliError> {
    let imp = read_input(&a.file)?;
    let g = &imp.graph;
    let is_hlo = shardc::input_format(&a.file, "") == shardc::InputFormat::Hlo;
    let distributed =
        a.mesh.is_some() || !a.shard.is_empty() || a.check || is_hlo || a.plan.is_some()
        || a.backend == BackendArg::Cuda;
    let stats = GraphStats::of(g);
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
    if distributed {
        return run_partitioned(&imp, &a);
    }
    let spin = spinner(&format!("running {}", a.file.display()));
    let inputs = random_inputs(g, a.seed);
    let outputs = execute(g, &inputs);
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
    print_gradient_norms(g, &outputs);
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

/// Propagates, partitions and runs the graph on the threads backend; with `--check`, compares
/// every output with the reference executor on the same random inputs.
fn run_partitioned(imp: &Imported, a: &RunArgs) -> Result<(), CliError> {
    let g = &imp.graph;
    let program = &program(
        imp,
        &a.file,
        a.plan.as_deref(),
        a.mesh.as_deref(),
        &a.shard,
        true,
    )?;
    let mesh = program
        .graph
        .mesh
        .clone()
        .ok_or_else(|| CliError::Input("the partitioned program names no mesh".into()))?;
    let spin = spinner(&format!(
        "running {} on {} devices",
        a.file.display(),
        mesh.num_devices()
    ));
    let inputs = random_inputs(g, a.seed);
    let backend = shardc::Backend::from(a.backend);
    let got = shardc::run_on(program, &inputs, backend)
        .map_err(|e| CliError::Input(format!("{}: {e}", a.file.display())));
    spin.finish_and_clear();
    let got = got?;
    println!(
        "graph {}: {} nodes on mesh {mesh} ({} devices, {} backend), seed {}",
        g.name,
        g.len(),
        mesh.num_devices(),
        backend.name(),
        a.seed
    );
    let reference = if a.check {
        Some(
            execute(g, &inputs)
                .map_err(|e| CliError::Input(format!("{}: {e}", a.file.display())))?,
        )
    } else {
        None
    };
    let mut worst: Option<(String, f64)> = None;
    for (k, (v, t)) in g.outputs.iter().zip(&got).enumerate() {
        let name = &g.node(*v).name;
        match &reference {
            Some(r) => {
                let err =
                    max_relative_error(t, &r[k]).map_err(|e| CliError::Input(e.to_string()))?;
                let verdict = if err <= a.tolerance { "ok" } else { "FAIL" };
                println!(
                    "{v} {name}: max relative error {err:.3e} {verdict} ({})",
                    t.summary()
                );
                if worst.as_ref().map_or(true, |(_, w)| err > *w) {
                    worst = Some((name.clone(), err));
                }
            }
            None => println!("{v} {name}: {}", t.summary()),
        }
    }
    match worst {
        Some((name, err)) if err > a.tolerance => Err(CliError::CheckFailed(format!(
            "{}: output `{name}` differs from the reference executor by {err:.3e} (relative), \
             above the tolerance {:.1e}",
            a.file.display(),
            a.tolerance
        ))),
        Some((_, err)) => {
            println!(
                "check passed: every output within {:.1e} (largest {err:.3e})",
                a.tolerance
            );
            Ok(())
        }
        None => Ok(()),
    }
}
