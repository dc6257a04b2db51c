//! `shardc run FILE [--seed N]`: run a graph on the reference executor (one CPU device) with
//! random inputs and print a summary of each output.
//!
//! With `--mesh` (or `--shard`, `--check`, or an HLO file, whose shardings name the mesh), the graph
//! is propagated, partitioned and run on the threads backend, one thread per device; `--check`
//! compares every gathered output with the reference executor and fails above `--tolerance`.

use std::path::PathBuf;

use clap::Args;
use shardc::ir::Graph;
use shardc::runtime::check::widen_to_f64;
use shardc::runtime::memory::input_bytes;
use shardc::runtime::{
    check_outputs, device_peak_bytes, execute, peak_bytes, random_inputs, AllReduceAlgorithm,
    Tensor,
};
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
    /// Refuse runs whose estimated peak (inputs and every value live at once, from the graph's
    /// liveness in the executor's order) is over this many GiB of host memory.
    #[arg(long, default_value_t = 4.0, value_name = "GIB")]
    pub max_memory: f64,
    /// Run partitioned on this device mesh (threads backend), e.g. `dp=2,tp=4`.
    #[arg(long)]
    pub mesh: Option<String>,
    /// A sharding for a value, `NAME=P('dp', None)` or DTensor placements; repeatable.
    #[arg(long = "shard", value_name = "NAME=SPEC")]
    pub shard: Vec<String>,
    /// Judge every output of the partitioned run against the same graph evaluated in f64 (the
    /// oracle): exit 1 where it is above the tolerance and above a small multiple of the f32
    /// reference executor's own error (outputs passing so are reported as ill-conditioned).
    #[arg(long)]
    pub check: bool,
    /// Largest relative error `--check` accepts (max |a-b| / max |oracle|).
    #[arg(long, default_value_t = 1e-5)]
    pub tolerance: f64,
    /// Run under a plan (`shardc plan -o plan.json`): its mesh and every value's sharding.
    #[arg(long, value_name = "PLAN.json")]
    pub plan: Option<PathBuf>,
    /// Where the devices run: `threads` (CPU, one thread per device), `mpi` (one process per
    /// device: `mpirun -n N shardc run ... --backend mpi`; needs the `mpi` feature) or `cuda`
    /// (GPUs; needs the `cuda` feature).
    #[arg(long, value_enum, default_value_t = BackendArg::Threads)]
    pub backend: BackendArg,
    /// Named input and parameter values (NumPy `.npz`, keyed by name) instead of random ones;
    /// repeatable. Every input must then have a value (an ONNX model's initializers count).
    #[arg(long = "inputs", value_name = "FILE.npz")]
    pub inputs: Vec<PathBuf>,
    /// Write the outputs, keyed by name, to this `.npz`.
    #[arg(long, value_name = "FILE.npz")]
    pub outputs: Option<PathBuf>,
    /// ONNX: the size of a dynamic dim, `NAME=SIZE`; repeatable.
    #[arg(long = "dim", value_name = "NAME=SIZE")]
    pub dims: Vec<String>,
    /// The all-reduce algorithm: `ring`, or `reduction-server[:R]` with R reducers that hold no
    /// device (threads beside the devices', or R extra MPI processes). Default: the plan's
    /// (`--plan`), else `ring`.
    #[arg(long)]
    pub allreduce: Option<AllReduceAlgorithm>,
}

/// The runtime backend of `shardc run`, as the command line spells it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// One CPU thread per device (the default).
    Threads,
    /// One MPI process per device (under `mpirun`).
    Mpi,
    /// The CUDA backend: every rank on a GPU (rank r on GPU r mod the GPU count).
    Cuda,
}

impl From<BackendArg> for shardc::Backend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Threads => shardc::Backend::Threads,
            BackendArg::Cuda => shardc::Backend::Cuda,
            BackendArg::Mpi => shardc::Backend::Mpi,
        }
    }
}

/// The graph, and the parameter values an ONNX model carries (empty for other formats).
fn read_with_values(a: &RunArgs) -> Result<(Imported, Vec<(String, Tensor)>), CliError> {
    if shardc::input_format(&a.file, "") != shardc::InputFormat::Onnx {
        return Ok((read_input(&a.file)?, Vec::new()));
    }
    let model = super::import::read_onnx(&a.file, &a.dims)?;
    let values = model
        .params
        .iter()
        .map(|p| {
            let t = shardc::runtime::param_tensor(p)
                .map_err(|e| CliError::Input(format!("{}: {e}", a.file.display())))?;
            Ok((p.name.clone(), t))
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    Ok((Imported::of(model.graph), values))
}

/// The run's inputs: the `--inputs` arrays and the model's own values when any are given (every
/// input must have one), random ones otherwise.
fn feed(g: &Graph, a: &RunArgs, own: Vec<(String, Tensor)>) -> Result<Vec<Tensor>, CliError> {
    if a.inputs.is_empty() && own.is_empty() {
        return Ok(random_inputs(g, a.seed));
    }
    let mut named = Vec::new();
    for f in &a.inputs {
        named.extend(shardc::runtime::read_npz(f).map_err(|e| CliError::Input(e.to_string()))?);
    }
    named.extend(own);
    let random = if a.inputs.is_empty() {
        random_inputs(g, a.seed)
    } else {
        Vec::new()
    };
    let inputs: Vec<shardc::ir::ValueId> = g.inputs().collect();
    shardc::runtime::bind_inputs(g, &named, |n| {
        // Without --inputs, an ONNX model's data inputs are random and its weights its own.
        let i = inputs.iter().position(|&v| g.node(v).name == n)?;
        random.get(i).cloned()
    })
    .map_err(|e| CliError::Input(format!("{}: {e}", a.file.display())))
}

/// `--outputs`: the outputs by name.
fn write_outputs(g: &Graph, a: &RunArgs, outputs: &[Tensor]) -> Result<(), CliError> {
    let Some(path) = &a.outputs else {
        return Ok(());
    };
    let arrays: Vec<(String, Tensor)> = g
        .outputs
        .iter()
        .zip(outputs)
        .map(|(v, t)| (g.node(*v).name.clone(), t.clone()))
        .collect();
    shardc::runtime::write_npz(path, &arrays).map_err(|e| CliError::Input(e.to_string()))
}

pub fn run(a: RunArgs) -> Result<(), CliError> {
    let (imp, own) = read_with_values(&a)?;
    let g = &imp.graph;
    let is_hlo = matches!(
        shardc::input_format(&a.file, ""),
        shardc::InputFormat::Hlo | shardc::InputFormat::StableHlo
    );
    let distributed = a.mesh.is_some()
        || !a.shard.is_empty()
        || a.check
        || is_hlo
        || a.plan.is_some()
        || a.backend != BackendArg::Threads;
    // The reference executor holds every input and each value until its last use; say so
    // before allocating, rather than letting a GPT-3-sized graph exhaust the machine.
    memory_guard(
        &a,
        "the reference executor",
        input_bytes(g).saturating_add(peak_bytes(g)),
    )?;
    let inputs = feed(g, &a, own)?;
    if distributed {
        return run_partitioned(&imp, &a, &inputs);
    }
    let spin = spinner(&format!("running {}", a.file.display()));
    let outputs = execute(g, &inputs);
    spin.finish_and_clear();
    let outputs = outputs.map_err(|e| CliError::Input(format!("{}: {e}", a.file.display())))?;
    write_outputs(g, &a, &outputs)?;
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
/// every output with the reference executor on the same random inputs. A pipelined plan runs
/// its stages under its schedule ([`run_pipelined`]).
fn run_partitioned(imp: &Imported, a: &RunArgs, inputs: &[Tensor]) -> Result<(), CliError> {
    let g = &imp.graph;
    let plan = match &a.plan {
        Some(path) => Some(super::input::read_plan(path, g)?),
        None => None,
    };
    if let Some(plan) = plan.as_ref().filter(|p| shardc::is_pipelined(p)) {
        return run_pipelined(g, a, plan, inputs);
    }
    let allreduce = a
        .allreduce
        .or(plan.as_ref().map(shardc::plan_allreduce))
        .unwrap_or_default();
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
    // Every device's thread holds its own values; with --check the reference and the f64
    // oracle run after, holding the gathered outputs.
    let devices = mesh.num_devices() as u64;
    memory_guard(
        a,
        &format!("the {devices} device programs"),
        input_bytes(g).saturating_add(devices.saturating_mul(device_peak_bytes(&program.graph))),
    )?;
    check_guard(g, a)?;
    let spin = spinner(&format!(
        "running {} on {} devices",
        a.file.display(),
        mesh.num_devices()
    ));
    let backend = shardc::Backend::from(a.backend);
    let opts = shardc::RunOptions { backend, allreduce };
    let got = shardc::run_with(program, inputs, &opts)
        .map_err(|e| CliError::Input(format!("{}: {e}", a.file.display())));
    spin.finish_and_clear();
    // Under MPI, only rank 0 holds the gathered outputs; the other ranks are done.
    let Some(got) = got? else { return Ok(()) };
    write_outputs(g, a, &got)?;
    println!(
        "graph {}: {} nodes on mesh {mesh} ({} devices, {} backend{}), seed {}",
        g.name,
        g.len(),
        mesh.num_devices(),
        backend.name(),
        match allreduce {
            AllReduceAlgorithm::Ring => String::new(),
            AllReduceAlgorithm::ReductionServer { reducers } =>
                format!(", reduction server with {reducers} reducers"),
        },
        a.seed
    );
    report(g, a, inputs, &got)
}

/// `--check`'s memory: the reference executor, then the f64 oracle, beside the outputs.
fn check_guard(g: &Graph, a: &RunArgs) -> Result<(), CliError> {
    if !a.check {
        return Ok(());
    }
    let oracle = widen_to_f64(g)
        .map(|w| peak_bytes(&w))
        .map_err(|e| CliError::Input(format!("{}: {e}", a.file.display())))?;
    let outputs: u64 = g.outputs.iter().map(|&v| g.ty(v).size_bytes()).sum();
    memory_guard(
        a,
        "the check (the reference executor, then the f64 oracle)",
        input_bytes(g)
            .saturating_add(outputs.saturating_mul(2))
            .saturating_add(peak_bytes(g).max(oracle)),
    )
}

/// A pipelined plan's run: its stages on one submesh per pipeline rank under its schedule,
/// the loss and gradients summed over its micro-batches and the update applied once.
fn run_pipelined(
    g: &Graph,
    a: &RunArgs,
    plan: &shardc::Plan,
    inputs: &[Tensor],
) -> Result<(), CliError> {
    if a.mesh.is_some() || !a.shard.is_empty() {
        return Err(CliError::Input(
            "--plan: the plan fixes the mesh and every sharding; drop --mesh and --shard".into(),
        ));
    }
    let p = shardc::compile_pipelined(g, plan)?;
    let per_rank = p.submesh.num_devices();
    let devices = per_rank * u64::from(p.schedule.ranks);
    // Each device runs one stage program at a time; its peak bounds the device's values.
    let peak = p
        .device_programs()
        .map(device_peak_bytes)
        .max()
        .unwrap_or(0);
    memory_guard(
        a,
        &format!("the {devices} devices' stage programs"),
        input_bytes(g).saturating_add(devices.saturating_mul(peak)),
    )?;
    check_guard(g, a)?;
    let backend = shardc::Backend::from(a.backend);
    let opts = shardc::RunOptions {
        backend,
        allreduce: a.allreduce.unwrap_or_default(),
    };
    let spin = spinner(&format!(
        "running {} pipelined on {devices} devices",
        a.file.display()
    ));
    let got = shardc::run_pipelined(&p, g, inputs, &opts)
        .map_err(|e| CliError::Input(format!("{}: {e}", a.file.display())));
    spin.finish_and_clear();
    let Some(got) = got? else { return Ok(()) };
    write_outputs(g, a, &got)?;
    let s = &p.schedule;
    println!(
        "graph {}: {} nodes pipelined, {} on {} ranks of submesh {} ({} stages, {} \
         micro-batches; {devices} devices, {} backend), seed {}",
        g.name,
        g.len(),
        s.kind.map_or("a schedule".to_string(), |k| k.to_string()),
        s.ranks,
        p.submesh,
        s.stages,
        s.microbatches,
        backend.name(),
        a.seed
    );
    report(g, a, inputs, &got)
}

/// Prints the outputs, or with `--check` judges them against the f64 oracle.
fn report(g: &Graph, a: &RunArgs, inputs: &[Tensor], got: &[Tensor]) -> Result<(), CliError> {
    if !a.check {
        for (v, t) in g.outputs.iter().zip(got) {
            println!("{v} {}: {}", g.node(*v).name, t.summary());
        }
        return Ok(());
    }
    let report = check_outputs(g, inputs, got, a.tolerance)
        .map_err(|e| CliError::Input(format!("{}: {e}", a.file.display())))?;
    for (o, t) in report.outputs.iter().zip(got) {
        println!("{} {}: {} ({})", o.value, o.name, o.line(), t.summary());
    }
    match report.conclusion() {
        Ok(line) => {
            println!("{line}");
            Ok(())
        }
        Err(line) => Err(CliError::CheckFailed(format!(
            "{}: {line}",
            a.file.display()
        ))),
    }
}

/// Refuses a run whose estimated peak `bytes` (for `what`) is over `--max-memory`.
fn memory_guard(a: &RunArgs, what: &str, bytes: u64) -> Result<(), CliError> {
    let gib = (1u64 << 30) as f64;
    if bytes as f64 > a.max_memory * gib {
        return Err(CliError::Input(format!(
            "{}: {what} needs an estimated {:.2} GiB ({bytes} bytes) at its peak (inputs and \
             the values live at once), more than --max-memory {} GiB",
            a.file.display(),
            bytes as f64 / gib,
            a.max_memory
        )));
    }
    Ok(())
}
