//! `shardc plan FILE --cluster PRESET|FILE [--shard NAME=SPEC ...] [--memory-limit GB]
//! [--mesh dp=D,tp=T] [-o plan.json] [--timings] [--export torch|jax|sdy|hlo] [--dim N=S]`:
//! choose the mesh shape and every value's sharding, print the plan's report, and write the
//! plan as JSON, or with `--export` as the user's framework takes it.

use std::path::PathBuf;

use clap::Args;
use shardc::cost_model::{Catalog, Cluster};
use shardc::ir::Mesh;
use shardc::PlanOptions;

use super::input::{parse_shards, read_input_dims};
use super::{progress_bar, write_output, CliError};

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The graph file: shardc JSON, XLA HLO text (`.hlo`, `.txt`) or an ONNX model (`.onnx`).
    pub file: PathBuf,
    /// The cluster: a catalog device and node layout (`a100-80gb:32x8`), a preset
    /// (`dgx-a100-80gb:32`) or a cluster JSON file.
    #[arg(long)]
    pub cluster: String,
    /// Keep a value's sharding: `NAME=P('dp', None)` (JAX) or DTensor placements. Repeatable;
    /// replaces the file's own annotation of the value.
    #[arg(long = "shard", value_name = "NAME=SPEC")]
    pub shard: Vec<String>,
    /// Memory per device the plan may use, in GB (default: the device's memory).
    #[arg(long, value_name = "GB")]
    pub memory_limit: Option<f64>,
    /// Fix the mesh shape, e.g. `dp=32,tp=8` (last axis innermost); the planner chooses the
    /// rest.
    #[arg(long)]
    pub mesh: Option<String>,
    /// Also try 3-D meshes (`dp,sp,tp`).
    #[arg(long)]
    pub mesh_3d: bool,
    /// Fix the number of micro-batches.
    #[arg(long)]
    pub micro_batches: Option<u64>,
    /// Write the plan (JSON, `docs/plan-format.md`) here; the report goes to standard output.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Print the time per phase (strategy enumeration, ILP, estimates, mesh search) to stderr.
    #[arg(long)]
    pub timings: bool,
    /// Write the plan as the user's framework takes it instead of as JSON: `torch`
    /// (torch.distributed snippet), `jax` (Mesh and NamedShardings), `sdy` (Shardy shardings)
    /// or `hlo` (the graph as an HLO module, a sharding on every instruction). To `-o`, or to
    /// standard output with the report on standard error.
    #[arg(long, value_name = "FORMAT")]
    pub export: Option<shardc::ExportFormat>,
    /// ONNX: the size of a dynamic dim, `NAME=SIZE`; repeatable.
    #[arg(long = "dim", value_name = "NAME=SIZE")]
    pub dims: Vec<String>,
    /// Pipeline the training step: choose (dp, tp, pp), micro-batches and schedule together
    /// (implied by a `pp` axis in `--mesh`, `--schedule` or `--timeline`).
    #[arg(long)]
    pub pipeline: bool,
    /// Fix the pipeline schedule (torch's names: GPipe, 1F1B, Interleaved1F1B, ZB-H1, ZBV, ...).
    #[arg(long, value_name = "NAME")]
    pub schedule: Option<String>,
    /// Draw the chosen pipeline schedule as an SVG Gantt chart here.
    #[arg(long, value_name = "out.svg")]
    pub timeline: Option<PathBuf>,
}

pub fn run(a: PlanArgs) -> Result<(), CliError> {
    if a.pipeline
        || a.schedule.is_some()
        || a.timeline.is_some()
        || a.mesh.as_deref().is_some_and(|m| m.contains("pp="))
    {
        return super::plan_pipeline::run(a);
    }
    let imp = read_input_dims(&a.file, &a.dims)?;
    let g = &imp.graph;
    let cluster = Cluster::parse(&a.cluster, &Catalog::builtin()).map_err(CliError::input)?;
    let mesh: Option<Mesh> = a.mesh.as_deref().map(str::parse).transpose()?;
    // `--shard` is read on the fixed mesh, or on a mesh with the axes it names.
    let shard_mesh = match (&mesh, &g.mesh) {
        (Some(m), _) => m.clone(),
        (None, Some(m)) => m.clone(),
        (None, None) => Mesh::new(&[("dp", cluster.num_devices().max(1))])?,
    };
    let annotations = parse_shards(&a.shard, g, &shard_mesh, mesh.is_some())?;
    if let Some(limit) = a.memory_limit {
        if !(limit > 0.0 && limit.is_finite()) {
            return Err(CliError::Input(format!(
                "--memory-limit {limit}: expected a positive number of GB"
            )));
        }
    }
    let opts = PlanOptions {
        annotations,
        memory_limit_bytes: a.memory_limit.map(|gb| gb * 1e9),
        mesh: mesh.map(|m| m.axes.iter().map(|x| (x.name.clone(), x.size)).collect()),
        max_mesh_axes: if a.mesh_3d { 3 } else { 2 },
        micro_batches: a.micro_batches,
        ..PlanOptions::default()
    };
    let bar = progress_bar(1, &format!("planning {} on {}", g.name, a.cluster));
    let result = shardc::plan_with(g, &cluster, &opts, &mut |p| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        if !p.mesh.is_empty() {
            bar.set_message(format!("planning {}: mesh {}", g.name, p.mesh));
        }
    });
    bar.finish_and_clear();
    let (plan, t) = result?;
    if a.timings {
        eprintln!(
            "timings: strategy enumeration {:.3} s, ILP build + solve {:.3} s ({} solves, \
             largest {} values / {} choice + {} edge variables after {} eliminated), estimates {:.3} s, mesh search \
             {:.3} s over {} meshes",
            t.enumerate_s,
            t.solve_s,
            t.solves,
            t.largest.free_values,
            t.largest.choice_variables,
            t.largest.edge_variables,
            t.largest.eliminated,
            t.estimate_s,
            t.total_s,
            t.meshes
        );
        if t.largest.merged > 0 {
            eprintln!(
                "note: the ILP failed on the largest model; {} trivial ops were merged into their                  operands and the rest solved by elimination: the plan is not a proven optimum",
                t.largest.merged
            );
        }
    }
    if let Some(format) = a.export {
        let text = shardc::export(g, &plan, format).map_err(|e| CliError::Input(e.to_string()))?;
        write_output(a.out.as_deref(), &text)?;
        match a.out {
            Some(_) => print!("{}", plan.report()),
            None => eprint!("{}", plan.report()),
        }
        return Ok(());
    }
    if let Some(out) = &a.out {
        write_output(Some(out), &plan.to_json())?;
    }
    print!("{}", plan.report());
    Ok(())
}
