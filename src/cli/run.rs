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
use shardc::runtime::{execute, max_relative_error, random_inputs, run_spmd, Tensor};

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
}

/// The graph, and the parameter values an ONNX model carries (empty for other formats).
fn read_with_values(a: &RunArgs) -> Result<(Graph, Vec<(String, Tensor)>), CliError> {
    if a.file.extension().and_then(|e| e.to_str()) != Some("onnx") {
        return Ok((read_any(&a.file)?, Vec::new()));
    }
    let model = super::import::read_onnx(&a.file, &a.dims)?;
    let values = model
        .params
        .iter()
        .map(|p| {
            let t = shardc::runtime::param_tensor(p).map_err(|e| CliError::Input(format!("{}: {e}", a.file.display())))?;
            Ok((p.name.clone(), t))
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    Ok((model.graph, values))
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
    let random = if a.inputs.is_empty() { random_inputs(g, a.seed) } else { Vec::new() };
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
    let Some(path) = &a.outputs else { return Ok(()) };
    let arrays: Vec<(String, Tensor)> = g.outputs.iter().zip(outputs).map(|(v, t)| (g.node(*v).name.clone(), t.clone())).collect();
    shardc::runtime::write_npz(path, &arrays).map_err(|e| CliError::Input(e.to_string()))
}

pub fn run(a: RunArgs) -> Result<(), CliError> {
    let (g, own) = read_with_values(&a)?;
    let is_hlo = matches!(
        a.file.extension().and_then(|e| e.to_str()),
        Some("hlo") | Some("txt")
    );
    let distributed = a.mesh.is_some() || !a.shard.is_empty() || a.check || is_hlo;
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
    let inputs = feed(&g, &a, own)?;
    if distributed {
        return run_partitioned(&g, &a, &inputs);
    }
    let spin = spinner(&format!("running {}", a.file.display()));
    let outputs = execute(&g, &inputs);
    spin.finish_and_clear();
    let outputs = outputs.map_err(|e| CliError::Input(format!("{}: {e}", a.file.display())))?;
    write_outputs(&g, &a, &outputs)?;
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
fn run_partitioned(g: &Graph, a: &RunArgs, inputs: &[Tensor]) -> Result<(), CliError> {
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
    let got = run_program(program, inputs, &a.file);
    spin.finish_and_clear();
    let got = got?;
    write_outputs(g, a, &got)?;
    println!(
        "graph {}: {} nodes on mesh {mesh} ({} devices, threads backend), seed {}",
        g.name,
        g.len(),
        mesh.num_devices(),
        a.seed
    );
    let reference = if a.check {
        Some(
            execute(g, inputs)
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

/// Shards the global inputs, runs the program on every device and gathers the outputs.
fn run_program(
    program: &SpmdProgram,
    inputs: &[Tensor],
    file: &Path,
) -> Result<Vec<Tensor>, CliError> {
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
    let outs = run_spmd(&program.graph, &mesh, feeds).map_err(|e| fail(&e))?;
    let outs: Vec<Vec<Vec<f64>>> = outs
        .iter()
        .map(|dev| dev.iter().map(Tensor::to_f64_vec).collect())
        .collect();
    gather_outputs(program, &outs)
        .map_err(|e| fail(&e))?
        .into_iter()
        .zip(&program.outputs)
        .map(|(data, o)| Tensor::from_f64(o.global.clone(), &data).map_err(|e| fail(&e)))
        .collect()
}
