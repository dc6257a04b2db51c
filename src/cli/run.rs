//! `shardc run FILE [--seed N]`: run a graph on the reference executor (one CPU device) with
//! random inputs and print a summary of each output.
//!
//! With `--mesh` (or `--shard`, `--check`, or an HLO file, whose shardings name the mesh), the graph
//! is propagated, partitioned and run on the threads backend, one thread per device; `--check`
//! compares every gathered output with the reference executor and fails above `--tolerance`.

use std::path::{Path, PathBuf};

use clap::Args;
use shardc::codegen::{gather_outputs, local_type, shard_inputs, SpmdProgram};
use shardc::ir::{Graph, GraphStats};
use shardc::runtime::{
    execute, max_relative_error, random_inputs, run_spmd_with, AllReduceAlgorithm, Tensor,
};

use super::compile::{compile, mesh_and_annotations, read_any};
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
    /// Where a partitioned run runs: `threads` (one thread per device) or `mpi` (one process
    /// per device: `mpirun -n N shardc run ... --backend mpi`; needs the `mpi` build feature).
    #[arg(long, value_enum, default_value_t = Backend::Threads)]
    pub backend: Backend,
    /// The all-reduce algorithm: `ring`, or `reduction-server[:R]` with R reducers that hold no
    /// device (threads beside the devices', or R extra MPI processes).
    #[arg(long, default_value = "ring")]
    pub allreduce: AllReduceAlgorithm,
}

/// Where a partitioned program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// One thread per device in this process.
    Threads,
    /// One MPI process per device (under `mpirun`).
    Mpi,
}

pub fn run(a: RunArgs) -> Result<(), CliError> {
    let g = read_any(&a.file)?;
    let is_hlo = matches!(
        a.file.extension().and_then(|e| e.to_str()),
        Some("hlo") | Some("txt")
    );
    let distributed =
        a.mesh.is_some() || !a.shard.is_empty() || a.check || is_hlo || a.backend == Backend::Mpi;
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
    if distributed {
        return run_partitioned(&g, &a);
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

/// Propagates, partitions and runs the graph on the threads backend; with `--check`, compares
/// every output with the reference executor on the same random inputs.
fn run_partitioned(g: &Graph, a: &RunArgs) -> Result<(), CliError> {
    let (mesh, annotations) = mesh_and_annotations(g, &a.file, a.mesh.as_deref(), &a.shard)?;
    let programs = compile(g, &mesh, &annotations, true)?;
    let [program] = programs.as_slice() else {
        return Err(CliError::Input(format!(
            "{}: {} pipeline stages; running several stages is not supported yet",
            a.file.display(),
            programs.len()
        )));
    };
    let spin = spinner(&format!(
        "running {} on {} devices",
        a.file.display(),
        mesh.num_devices()
    ));
    let inputs = random_inputs(g, a.seed);
    let got = run_program(program, &inputs, a);
    spin.finish_and_clear();
    // Under MPI, only rank 0 holds the gathered outputs; the other ranks are done.
    let Some(got) = got? else { return Ok(()) };
    let backend = match a.backend {
        Backend::Threads => "threads backend",
        Backend::Mpi => "mpi backend",
    };
    println!(
        "graph {}: {} nodes on mesh {mesh} ({} devices, {backend}{}), seed {}",
        g.name,
        g.len(),
        mesh.num_devices(),
        match a.allreduce {
            AllReduceAlgorithm::Ring => String::new(),
            AllReduceAlgorithm::ReductionServer { reducers } =>
                format!(", reduction server with {reducers} reducers"),
        },
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

/// Shards the global inputs, runs the program on every device and gathers the outputs (`None`
/// on MPI ranks other than 0).
fn run_program(
    program: &SpmdProgram,
    inputs: &[Tensor],
    a: &RunArgs,
) -> Result<Option<Vec<Tensor>>, CliError> {
    let file: &Path = &a.file;
    let fail = |e: &dyn std::fmt::Display| CliError::Input(format!("{}: {e}", file.display()));
    let mesh = program
        .graph
        .mesh
        .clone()
        .ok_or_else(|| fail(&"the partitioned program names no mesh"))?;
    let globals: Vec<Vec<f64>> = inputs.iter().map(Tensor::to_f64_vec).collect();
    let per_device = shard_inputs(program, &globals).map_err(|e| fail(&e))?;
    let mut feeds = Vec::with_capacity(per_device.len());
    for dev in per_device {
        let mut feed = Vec::with_capacity(dev.len());
        for (data, i) in dev.iter().zip(&program.inputs) {
            let ty = local_type(&i.global, &i.sharding, &mesh);
            feed.push(Tensor::from_f64(ty, data).map_err(|e| fail(&e))?);
        }
        feeds.push(feed);
    }
    let outs = match a.backend {
        Backend::Threads => {
            run_spmd_with(&program.graph, &mesh, feeds, a.allreduce).map_err(|e| fail(&e))?
        }
        Backend::Mpi => match run_mpi(program, &mesh, feeds, a.allreduce).map_err(|e| fail(&e))? {
            Some(outs) => outs,
            None => return Ok(None),
        },
    };
    let outs: Vec<Vec<Vec<f64>>> = outs
        .iter()
        .map(|dev| dev.iter().map(Tensor::to_f64_vec).collect())
        .collect();
    gather_outputs(program, &outs)
        .map_err(|e| fail(&e))?
        .into_iter()
        .zip(&program.outputs)
        .map(|(data, o)| Tensor::from_f64(o.global.clone(), &data).map_err(|e| fail(&e)))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// This process's device (its MPI rank) runs the program; rank 0 gets every device's outputs.
#[cfg(feature = "mpi")]
fn run_mpi(
    program: &SpmdProgram,
    mesh: &shardc::ir::Mesh,
    feeds: Vec<Vec<Tensor>>,
    allreduce: AllReduceAlgorithm,
) -> Result<Option<Vec<Vec<Tensor>>>, String> {
    let world = shardc::runtime::MpiWorld::init().map_err(|e| e.to_string())?;
    // Reducer ranks (past the devices) take no inputs.
    let mine = feeds.into_iter().nth(world.rank()).unwrap_or_default();
    Ok(shardc::runtime::run_spmd_mpi(
        &world,
        &program.graph,
        mesh,
        mine,
        allreduce,
    ))
}

#[cfg(not(feature = "mpi"))]
fn run_mpi(
    _: &SpmdProgram,
    _: &shardc::ir::Mesh,
    _: Vec<Vec<Tensor>>,
    _: AllReduceAlgorithm,
) -> Result<Option<Vec<Vec<Tensor>>>, String> {
    Err(
        "`--backend mpi` needs shardc built with the `mpi` feature (cargo build --features mpi)"
            .into(),
    )
}
