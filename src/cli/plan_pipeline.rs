//! `shardc plan FILE --cluster ... [--mesh dp=D,tp=T,pp=P] [--schedule NAME] [--micro-batches M]
//! [--timeline out.svg] [--pipeline]`: the pipelined planner. Degrees, micro-batches and
//! schedule the flags leave open are chosen together; the report and the plan (with its
//! `pipeline` part, `docs/plan-format.md`) are printed and written as `plan` does.

use shardc::cost_model::{Catalog, Cluster};
use shardc::ir::Mesh;
use shardc::pipeline::{PipelineOptions, ScheduleKind};

use super::input::read_input_dims;
use super::plan::PlanArgs;
use super::{write_output, CliError};

pub fn run(a: PlanArgs) -> Result<(), CliError> {
    if let Some(format) = &a.export {
        return Err(CliError::Input(format!(
            "--export {format:?}: pipelined plans cannot be exported yet; drop --export, or plan \
             without pipelining (no `pp` axis, --schedule, --timeline or --pipeline)"
        )));
    }
    let imp = read_input_dims(&a.file, &a.dims)?;
    let g = &imp.graph;
    let cluster = Cluster::parse(&a.cluster, &Catalog::builtin()).map_err(CliError::input)?;
    let mut opts = PipelineOptions {
        micro_batches: a.micro_batches,
        memory_limit: a.memory_limit.map(|gb| gb * 1e9),
        schedule: a
            .schedule
            .as_deref()
            .map(str::parse::<ScheduleKind>)
            .transpose()
            .map_err(CliError::input)?,
        ..PipelineOptions::default()
    };
    if let Some(m) = &a.mesh {
        let mesh: Mesh = m.parse()?;
        for axis in &mesh.axes {
            let slot = match axis.name.as_str() {
                "dp" => &mut opts.dp,
                "tp" => &mut opts.tp,
                "pp" => &mut opts.pp,
                other => {
                    return Err(CliError::Input(format!(
                        "--mesh {m}: a pipelined plan's axes are dp, tp and pp, not `{other}`"
                    )))
                }
            };
            *slot = Some(axis.size);
        }
    }
    if !a.shard.is_empty() || a.mesh_3d {
        return Err(CliError::Input(
            "--shard and --mesh-3d are not supported with pipelining: stages use Megatron-style \
             shardings (annotate the graph file to override them)"
                .into(),
        ));
    }
    let p = shardc::plan_pipeline(g, &cluster, &opts)?;
    if a.timings {
        let t = &p.timings;
        eprintln!(
            "timings: propagation {:.3} s, collectives {:.3} s and graph path {:.3} s over {} \
             meshes{}, schedules {:.3} s over {} candidates ({} more skipped by their lower \
             bound), total {:.3} s",
            t.propagate_s,
            t.collectives_s,
            t.price_s,
            t.meshes,
            if t.by_layer_classes {
                " (layers priced by representatives)"
            } else {
                ""
            },
            t.schedule_s,
            t.candidates,
            t.pruned,
            t.total_s
        );
    }
    if let Some(path) = &a.timeline {
        write_output(Some(path), &p.timeline_svg())?;
    }
    if let Some(out) = &a.out {
        write_output(Some(out), &p.plan.to_json())?;
    }
    print!("{}", p.report());
    Ok(())
}
