//! Running a pipelined plan (`shardc plan --pipeline`, `docs/plan-format.md`'s `pipeline`
//! part) of a training step: the step's forward is cut out, split into the plan's
//! micro-batches, cut into its stages by the plan's layer counts (`codegen::cut_stages`), each
//! stage's programs partitioned over the plan's submesh with the plan's shardings of their
//! inputs (`codegen::partition_stages`), and the schedule the plan names run on one submesh per
//! pipeline rank (`runtime::run_pipeline_spmd`, or one MPI process per device). The loss and
//! the gradients are summed over micro-batches, and the step's update (its optimizer) runs
//! once on them, on the host, giving every output the unpipelined step gives.

mod graphs;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use shardc_codegen::{
    cut_stages, partition_stages, shard_array, unshard_array, SpmdProgram, SpmdStage, StageProgram,
};
use shardc_ir::{Annotation, Graph, Mesh, ValueId};
use shardc_pipeline::{Schedule, ScheduleKind};
use shardc_runtime::{execute, AllReduceAlgorithm, SpmdPipelineResult, SpmdPipelineStage, Tensor};
use shardc_sharding::auto::Plan;

use crate::error::{Error, Result, Step};
use crate::facade::{Backend, RunOptions};

/// The plan's `pipeline` part as a run reads it (the fields the planner writes beyond these,
/// its predictions, are not needed to run).
#[derive(Clone, Debug, Deserialize)]
struct PipelinePart {
    format_version: u32,
    schedule: String,
    ranks: u32,
    stages: u32,
    micro_batches: u32,
    layers_per_stage: Vec<u64>,
    submesh: String,
}

/// A pipelined plan compiled for its graph: the schedule, the submesh and every stage's
/// partitioned programs, with what turns the step's inputs into the stages' feeds and the
/// stages' results into the step's outputs.
#[derive(Clone, Debug)]
pub struct PipelinedProgram {
    /// The schedule the plan names, for its stages, ranks and micro-batches.
    pub schedule: Schedule,
    /// Each pipeline rank's mesh (`dp=D,tp=T`).
    pub submesh: Mesh,
    /// The stages' programs on the micro-batch forward.
    pub stages: Vec<StageProgram>,
    /// The stages' programs partitioned over the submesh.
    pub spmd: Vec<SpmdStage>,
    /// The micro-batch forward the stages are cut from.
    micro: Graph,
    /// The forward partitioned over one "device" per micro-batch: how to slice the data.
    slicer: SpmdProgram,
    /// The step's update from the loss and the gradients, and the step value behind each of
    /// its inputs.
    tail: Graph,
    tail_sources: Vec<ValueId>,
}

impl PipelinedProgram {
    /// Every stage's four local programs (forward, backward, backward-input,
    /// backward-weight), as each device of the stage's submesh runs them.
    pub fn device_programs(&self) -> impl Iterator<Item = &Graph> {
        self.spmd.iter().flat_map(|s| {
            [
                &s.forward.graph,
                &s.backward.graph,
                &s.backward_input.graph,
                &s.backward_weight.graph,
            ]
        })
    }
}

fn plan_error(g: &Graph, m: impl std::fmt::Display) -> Error {
    Error::new(
        Step::Plan,
        format!("graph `{}`", g.name),
        format!("pipelined plan: {m}"),
    )
}

/// Whether `plan` pipelines its step (it has a `pipeline` part).
pub fn is_pipelined(plan: &Plan) -> bool {
    plan.pipeline.is_some()
}

/// Compiles a pipelined plan of the training step `g` (checked to be a plan of this graph).
pub fn compile_pipelined(g: &Graph, plan: &Plan) -> Result<PipelinedProgram> {
    let part: PipelinePart = plan
        .pipeline
        .clone()
        .ok_or_else(|| plan_error(g, "the plan has no `pipeline` part"))
        .and_then(|v| serde_json::from_value(v).map_err(|e| plan_error(g, e)))?;
    if part.format_version != shardc_pipeline::PIPELINE_FORMAT_VERSION {
        return Err(plan_error(
            g,
            format!(
                "`pipeline` format version {}, this shardc reads version {}",
                part.format_version,
                shardc_pipeline::PIPELINE_FORMAT_VERSION
            ),
        ));
    }
    let assignment = plan
        .assignment(g)
        .map_err(|e| Error::new(Step::Plan, format!("graph `{}`", g.name), e))?;
    let kind: ScheduleKind = part.schedule.parse().map_err(|e| plan_error(g, e))?;
    let schedule = Schedule::generate(kind, part.stages, part.ranks, part.micro_batches)
        .map_err(|e| plan_error(g, e))?;
    let submesh: Mesh = part
        .submesh
        .parse()
        .map_err(|e| plan_error(g, format!("submesh `{}`: {e}", part.submesh)))?;
    if part.layers_per_stage.len() != part.stages as usize {
        return Err(plan_error(
            g,
            format!(
                "{} layer counts for {} stages",
                part.layers_per_stage.len(),
                part.stages
            ),
        ));
    }
    let loss = g.training.loss.ok_or_else(|| {
        plan_error(
            g,
            "the graph is not a training step (no loss): build one with `shardc grad`",
        )
    })?;
    let fwd = graphs::forward_of(g, loss).map_err(|m| plan_error(g, m))?;
    let (micro, slicer) = graphs::micro_batch_of(&fwd, u64::from(part.micro_batches))
        .map_err(|m| plan_error(g, m))?;
    let by_name =
        graphs::stages_by_layer(&micro, &part.layers_per_stage).map_err(|m| plan_error(g, m))?;
    let micro_loss = micro.outputs[0];
    let stages = cut_stages(&micro, micro_loss, part.stages as usize, &|n| {
        by_name.get(&n.name).copied().unwrap_or(0)
    })
    .map_err(|e| plan_error(g, e))?;
    // The plan's shardings of the stages' inputs (parameters and data), on the submesh.
    let mut annotations = Vec::new();
    for v in micro.inputs() {
        let name = &micro.node(v).name;
        let Some(sv) = g.find(name) else { continue };
        let sharding = assignment.shardings[sv.index()].clone();
        if let Err(m) = sharding.validate(&submesh, micro.ty(v).rank()) {
            return Err(plan_error(
                g,
                format!(
                    "the sharding of `{name}` does not fit the submesh `{submesh}` on a \
                     micro-batch: {m}"
                ),
            ));
        }
        annotations.push(Annotation {
            value: name.clone(),
            sharding,
            priority: 0,
        });
    }
    let spmd = partition_stages(&stages, &submesh, &annotations)
        .map_err(|e| Error::new(Step::Partition, format!("graph `{}`", g.name), e))?;
    let mut given = vec![loss];
    given.extend(g.training.gradients.iter().map(|&(_, gv)| gv));
    let (tail, tail_sources) = graphs::tail_of(g, &given).map_err(|m| plan_error(g, m))?;
    Ok(PipelinedProgram {
        schedule,
        submesh,
        stages,
        spmd,
        micro,
        slicer,
        tail,
        tail_sources,
    })
}

/// Every stage's feeds, `[stage][position][micro-batch][input]`, from the step's inputs.
fn stage_feeds(
    p: &PipelinedProgram,
    g: &Graph,
    inputs: &[Tensor],
) -> std::result::Result<Vec<Vec<Vec<Vec<Tensor>>>>, String> {
    let by_name: BTreeMap<&str, &Tensor> = g
        .inputs()
        .map(|v| g.node(v).name.as_str())
        .zip(inputs)
        .collect();
    let globals = p
        .slicer
        .inputs
        .iter()
        .map(|i| {
            by_name
                .get(i.name.as_str())
                .map(|t| t.to_f64_vec())
                .ok_or_else(|| format!("no value for input `{}`", i.name))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // per_mb[mb][k]: micro-batch mb's slice of the slicer's input k.
    let per_mb = shardc_codegen::shard_inputs(&p.slicer, &globals).map_err(|e| e.to_string())?;
    let slot: BTreeMap<&str, usize> = p
        .slicer
        .inputs
        .iter()
        .enumerate()
        .map(|(k, i)| (i.name.as_str(), k))
        .collect();
    let n = p.submesh.devices.len();
    p.stages
        .iter()
        .zip(&p.spmd)
        .map(|(st, sp)| {
            let f = &sp.forward;
            (0..n)
                .map(|pos| {
                    per_mb
                        .iter()
                        .map(|mb| {
                            f.inputs[..st.inputs.len()]
                                .iter()
                                .map(|i| {
                                    let k = slot.get(i.name.as_str()).ok_or_else(|| {
                                        format!("stage input `{}` is no input of the step", i.name)
                                    })?;
                                    let local = shard_array(
                                        &mb[*k],
                                        i.global.dims(),
                                        &i.sharding,
                                        &p.submesh,
                                        pos,
                                    )
                                    .map_err(|e| format!("input `{}`: {e}", i.name))?;
                                    Tensor::from_f64(f.graph.ty(i.local).clone(), &local)
                                        .map_err(|e| e.to_string())
                                })
                                .collect()
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// The stages' programs and feeds as the runtime takes them.
fn runtime_stages(
    p: &PipelinedProgram,
    mut feeds: Vec<Vec<Vec<Vec<Tensor>>>>,
) -> Vec<SpmdPipelineStage<'_>> {
    p.stages
        .iter()
        .zip(&p.spmd)
        .zip(feeds.iter_mut())
        .map(|((st, sp), feed)| {
            let f = &sp.forward;
            SpmdPipelineStage {
                forward: &f.graph,
                backward: &sp.backward.graph,
                backward_input: &sp.backward_input.graph,
                backward_weight: &sp.backward_weight.graph,
                inputs: std::mem::take(feed),
                boundary_in: f.inputs[st.inputs.len()..]
                    .iter()
                    .map(|i| f.graph.ty(i.local).clone())
                    .collect(),
                boundary_out: f
                    .outputs
                    .iter()
                    .map(|o| f.graph.ty(o.local).clone())
                    .collect(),
            }
        })
        .collect()
}

/// Runs a compiled pipelined step on the global `inputs` of `g` (the step the plan was
/// compiled for): every output of the step, as the unpipelined step gives them. Under MPI
/// every process calls this; rank 0 gets the outputs and the others `None`.
pub fn run_pipelined(
    p: &PipelinedProgram,
    g: &Graph,
    inputs: &[Tensor],
    opts: &RunOptions,
) -> Result<Option<Vec<Tensor>>> {
    let what = format!("pipelined step `{}`", g.name);
    let fail = |m: String| Error::new(Step::Run, &what, m);
    if opts.allreduce != AllReduceAlgorithm::Ring {
        return Err(fail(
            "a pipelined run reduces its gradients with the ring all-reduce; the Reduction \
             Server runs unpipelined plans"
                .into(),
        ));
    }
    let feeds = stage_feeds(p, g, inputs).map_err(fail)?;
    let stages = runtime_stages(p, feeds);
    let timeout = Duration::from_secs(300);
    let result = match opts.backend {
        Backend::Threads => Some(
            shardc_runtime::run_pipeline_spmd(&p.schedule, &p.submesh, &stages, timeout)
                .map_err(|e| fail(e.to_string()))?,
        ),
        Backend::Mpi => run_mpi(p, &stages).map_err(fail)?,
        Backend::Cuda => {
            return Err(fail(
                "pipelined plans run on the threads and MPI backends, not on CUDA yet".into(),
            ))
        }
    };
    let Some(result) = result else {
        return Ok(None);
    };
    finish(p, g, inputs, &result).map(Some).map_err(fail)
}

#[cfg(feature = "mpi")]
fn run_mpi(
    p: &PipelinedProgram,
    stages: &[SpmdPipelineStage<'_>],
) -> std::result::Result<Option<SpmdPipelineResult>, String> {
    let mut world = shardc_runtime::MpiWorld::init().map_err(|e| e.to_string())?;
    Ok(shardc_runtime::run_pipeline_mpi(
        &mut world,
        &p.schedule,
        &p.submesh,
        stages,
    ))
}

#[cfg(not(feature = "mpi"))]
fn run_mpi(
    _: &PipelinedProgram,
    _: &[SpmdPipelineStage<'_>],
) -> std::result::Result<Option<SpmdPipelineResult>, String> {
    Err(
        "`--backend mpi` needs shardc built with the `mpi` feature (cargo build --features mpi)"
            .into(),
    )
}

/// The step's outputs from the stages' results: the loss and the gradients summed over
/// micro-batches (a parameter's over every stage that holds it), then the update.
fn finish(
    p: &PipelinedProgram,
    g: &Graph,
    inputs: &[Tensor],
    r: &SpmdPipelineResult,
) -> std::result::Result<Vec<Tensor>, String> {
    let loss_value: f64 = r
        .losses
        .iter()
        .map(|l| l.scalar_f64().map_err(|e| e.to_string()))
        .sum::<std::result::Result<f64, String>>()?;
    let mut grads: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (s, (st, sp)) in p.stages.iter().zip(&p.spmd).enumerate() {
        for (k, o) in sp.backward_weight.outputs.iter().enumerate() {
            let shards: Vec<Vec<f64>> = r.gradients[s]
                .iter()
                .map(|per| per.get(k).map(Tensor::to_f64_vec).unwrap_or_default())
                .collect();
            let full = unshard_array(&shards, o.global.dims(), &o.sharding, &p.submesh)
                .map_err(|e| format!("stage {s}, gradient of `{}`: {e}", o.name))?;
            let name = p.micro.node(st.parameters[k]).name.clone();
            let sum = grads.entry(name).or_insert_with(|| vec![0.0; full.len()]);
            for (a, b) in sum.iter_mut().zip(full) {
                *a += b;
            }
        }
    }
    let loss = g.training.loss.ok_or("the step has no loss")?;
    let mut given: BTreeMap<ValueId, Tensor> = BTreeMap::new();
    given.insert(
        loss,
        Tensor::from_f64(g.ty(loss).clone(), &[loss_value]).map_err(|e| e.to_string())?,
    );
    for &(param, gv) in &g.training.gradients {
        let name = &g.node(param).name;
        let ty = g.ty(gv).clone();
        let t = match grads.get(name) {
            Some(sum) => Tensor::from_f64(ty, sum),
            // A parameter the forward never reads has a zero gradient.
            None if p.micro.find(name).is_none() => Tensor::full(&ty, 0.0),
            None => return Err(format!("no stage gave the gradient of `{name}`")),
        }
        .map_err(|e| e.to_string())?;
        given.insert(gv, t);
    }
    let step_inputs: BTreeMap<ValueId, &Tensor> = g.inputs().zip(inputs).collect();
    let feeds = p
        .tail_sources
        .iter()
        .map(|v| {
            given
                .get(v)
                .or_else(|| step_inputs.get(v).copied())
                .cloned()
                .ok_or_else(|| format!("no value for `{}`", g.node(*v).name))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    execute(&p.tail, &feeds).map_err(|e| format!("the update: {e}"))
}
