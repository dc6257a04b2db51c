//! `shardc cost FILE --cluster SPEC --mesh dp=D,tp=T,pp=P`: propagate the shardings, collect the
//! collectives they need and estimate a step (time split, FLOP rates, memory, collectives).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use shardc::cost_model::{
    estimate_graph, Calibration, Catalog, Cluster, GraphOptions, Overlap, Profile, Schedule, Zero,
};
use shardc::ir::{Annotation, Mesh};

use super::compile::parse_shard;
use super::{read_graph, spinner, write_output, CliError};

#[derive(Args, Debug)]
pub struct CostArgs {
    /// The graph file (shardc JSON).
    pub file: PathBuf,
    /// The cluster: a catalog device and node layout (`a100-80gb:32x8`: 32 nodes of 8), a preset
    /// (`dgx-a100-80gb:32`), `+R` for R Reduction Server CPU nodes, or a cluster JSON file.
    #[arg(long)]
    pub cluster: String,
    /// The device mesh, last axis innermost (`dp=32,tp=8`); defaults to the graph's mesh.
    #[arg(long)]
    pub mesh: Option<String>,
    /// Micro-batches per step.
    #[arg(long, default_value_t = 1)]
    pub micro_batches: u64,
    /// Pin a value's sharding: `NAME=P('dp', None)` (JAX) or `NAME=[Shard(0), Replicate()]`
    /// (DTensor placements, one per mesh axis). Repeatable.
    #[arg(long = "shard", value_name = "NAME=SPEC")]
    pub shard: Vec<String>,
    /// Pipeline schedule (stages lie along the `pp` axis, split evenly).
    #[arg(long, value_enum, default_value_t = ScheduleArg::OneFOneB)]
    pub schedule: ScheduleArg,
    /// ZeRO stage over the `dp` axis: 0, 1, 2 or 3.
    #[arg(long, default_value = "0")]
    pub zero: String,
    /// Extra hardware file(s): devices or cluster presets in the catalog's JSON format.
    #[arg(long = "hardware", value_name = "FILE")]
    pub hardware: Vec<PathBuf>,
    /// A measured profile (`shardc profile` output) to calibrate the model with.
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Assume no communication overlaps with compute (by default the data-parallel gradient
    /// reduction is bucketed under the backward pass, ZeRO-3 gathers are prefetched and pipeline
    /// sends run beside compute; tensor-parallel collectives are always exposed).
    #[arg(long)]
    pub no_overlap: bool,
    /// Add the backward pass (autodiff from the graph's loss) before costing a forward graph.
    #[arg(long)]
    pub train: bool,
    /// How to print the estimate.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the estimate here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Cost a plan (`shardc plan -o plan.json`): its mesh, shardings, ZeRO stage and
    /// micro-batches replace `--mesh`, `--shard`, `--zero` and `--micro-batches`.
    #[arg(long, value_name = "PLAN.json")]
    pub plan: Option<PathBuf>,
}

/// Pipeline schedules.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    Gpipe,
    #[value(name = "1f1b")]
    OneFOneB,
}

/// Output formats of `cost`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable report with tables.
    Text,
    /// One JSON object (`step_time_s`, `model_tflops_per_device`, `hardware_tflops_per_device`,
    /// `memory_per_device_bytes`, `memory`, `collectives`, ...).
    Json,
}

pub fn run(a: CostArgs) -> Result<(), CliError> {
    let mut g = read_graph(&a.file)?;
    if a.train {
        let loss = g.training.loss.ok_or_else(|| {
            CliError::Input(format!(
                "{}: --train needs a graph with a loss",
                a.file.display()
            ))
        })?;
        g = shardc::ir::grad(&g, loss)?;
    }
    let mut catalog = Catalog::builtin();
    for f in &a.hardware {
        catalog.add_file(f).map_err(CliError::input)?;
    }
    let mut cluster = Cluster::parse(&a.cluster, &catalog).map_err(CliError::input)?;
    if let Some(path) = &a.calibration {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
            path: name.clone(),
            source,
        })?;
        let profile = Profile::from_json(&name, &text).map_err(CliError::input)?;
        cluster.calibration = Calibration::fit(&profile, &cluster).map_err(CliError::input)?;
    }
    let plan = match &a.plan {
        Some(p) => Some(super::input::read_plan(p, &g)?),
        None => None,
    };
    let mesh: Mesh = match (&a.mesh, &g.mesh) {
        _ if plan.is_some() => plan.as_ref().map(|p| p.mesh.clone()).expect("plan is some"),
        (Some(m), _) => m.parse()?,
        (None, Some(m)) => m.clone(),
        (None, None) => {
            return Err(CliError::Input(format!(
                "{}: the graph names no mesh; give one with --mesh, e.g. dp=32,tp=8",
                a.file.display()
            )))
        }
    };
    // The graph's own annotations apply where the mesh has their axes.
    let mut annotations: Vec<Annotation> = Vec::new();
    for ann in &g.annotations {
        let rank = g.find(&ann.value).map(|v| g.ty(v).rank());
        match rank.map(|r| ann.sharding.validate(&mesh, r)) {
            Some(Ok(())) => annotations.push(ann.clone()),
            _ => eprintln!(
                "warning: annotation on `{}` does not fit mesh `{mesh}`; ignored",
                ann.value
            ),
        }
    }
    // A --shard replaces the graph's own annotation of the same value.
    for s in &a.shard {
        let ann = parse_shard(s, &g, &mesh)?;
        annotations.retain(|x| x.value != ann.value);
        annotations.push(ann);
    }
    let zero: Zero = match &plan {
        Some(p) => p.zero,
        None => a.zero.parse().map_err(CliError::input)?,
    };
    let axis = |name: &str| mesh.axis_size(name).map(|_| name.to_string());
    let opts = GraphOptions {
        micro_batches: plan
            .as_ref()
            .map_or(a.micro_batches, |p| p.micro_batches)
            .max(1),
        schedule: match a.schedule {
            ScheduleArg::Gpipe => Schedule::Gpipe,
            ScheduleArg::OneFOneB => Schedule::OneFOneB,
        },
        pipeline_axis: axis("pp"),
        data_axis: axis("dp"),
        zero,
        overlap_gradient_reduction: false,
        overlap: if a.no_overlap {
            Overlap::NONE
        } else {
            Overlap::ALL
        },
    };
    let spin = spinner("propagating shardings");
    let assignment = match &plan {
        Some(p) => p.assignment(&g).map_err(CliError::input)?,
        None => {
            let sharded =
                shardc::sharding::propagate(&g, &mesh, &annotations).map_err(CliError::input)?;
            for w in &sharded.warnings {
                eprintln!("warning: {w}");
            }
            sharded.assignment
        }
    };
    spin.set_message("collecting collectives");
    let comms = shardc::sharding::required_collectives(&g, &assignment).map_err(CliError::input)?;
    spin.set_message("estimating");
    let e = estimate_graph(&g, &assignment, &comms, &cluster, &opts).map_err(CliError::input)?;
    spin.finish_and_clear();
    let text = match a.format {
        Format::Text => format!(
            "{} on {} ({} nodes x {} {}), mesh {mesh}, {} micro-batches\n{e}\n",
            g.name,
            a.cluster,
            cluster.nodes,
            cluster.devices_per_node,
            cluster.device.name,
            opts.micro_batches
        ),
        Format::Json => {
            let mut s =
                serde_json::to_string_pretty(&e).expect("invariant: the estimate serializes");
            s.push('\n');
            s
        }
    };
    write_output(a.output.as_deref(), &text)
}
