//! The full planner for pipelined training: (data, tensor, pipeline) degrees, micro-batch count
//! and schedule chosen together, each candidate priced by the cost model's graph path on the
//! busiest stage and its schedule simulated.
//!
//! Within a stage the shardings are Megatron-style (Narayanan et al. SC21, REFERENCES.md):
//! each weight matrix is column-parallel (its output dim split over `tp`) or row-parallel (its
//! contracted dim split), alternating along the layer in the order the weights are first used,
//! so that each column/row pair needs one all-reduce; a weight matrix outside the numbered
//! layers that a matmul reads (the LM head, tied to the embedding or not) is split on its
//! output dim (vocabulary-parallel); data inputs are split on their batch dim over `dp`. The graph's own annotations take precedence. One
//! propagation gives every candidate's assignment: the mesh axes are always `pp, dp, tp`, only
//! their sizes change. This is the "Megatron-style candidates priced by the cost model" path:
//! the intra-stage ILP (`sharding::auto`) is too slow for 100-layer graphs.
//!
//! Per candidate: the graph path prices one micro-batch's forward, backward, recomputation and
//! tensor-parallel collectives on the busiest stage and the step's gradient reduction and
//! update; the schedule is simulated with those per-stage times ([`crate::simulate`]), the
//! backward split evenly into `I` and `W` (one input-gradient and one weight-gradient matmul
//! per forward matmul) with recomputation and collectives on `I`, and the step is the
//! simulated pipeline plus the cost model's terms outside it. Memory per stage is the graph
//! path's weights, gradients and optimizer state plus the schedule's peak in-flight
//! activations (the simulator's count times the graph path's activations per micro-batch).
//!
//! Stage cuts: for each (mesh, micro-batch count) the per-layer, embedding and LM-head costs
//! follow from the graph path's per-stage figures and one more pricing with a layer moved
//! (`crate::cuts`), and Alpa's DP ([`crate::slice_fixed`]) chooses the layers per stage; its
//! cuts replace the even split where predicted faster, for schedules with one stage per rank.
//!
//! Speed: a deep model's layers are priced by representatives (`crate::layers`: one
//! propagation on a four-layer class graph, each mesh priced on the first and last stages'
//! layers), equal to whole-graph pricing (tests); candidates are simulated in the order of a
//! lower bound on their step and those that cannot be among the six best are skipped.

use std::collections::BTreeMap;
use std::time::Instant;

use shardc_cost_model::{estimate, Cluster, GraphOptions, Overlap, StepWork, Zero};
use shardc_ir::{Annotation, Graph, Mesh, Op, Role, Sharding, ShardingAssignment};
use shardc_sharding::auto::{Plan, PlanCluster, PlanCollective, PlanMemory, PlanValue};

use crate::error::{Error, Result};
use crate::pricing::Pricing;
use crate::schedule::{Schedule, ScheduleKind};
use crate::simulate::{simulate, Simulation, StageTimes};

/// What the caller fixes; the planner chooses the rest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PipelineOptions {
    /// Data-parallel degree.
    pub dp: Option<u64>,
    /// Tensor-parallel degree (within a node).
    pub tp: Option<u64>,
    /// Pipeline ranks.
    pub pp: Option<u64>,
    /// The schedule.
    pub schedule: Option<ScheduleKind>,
    /// Micro-batches per step.
    pub micro_batches: Option<u64>,
    /// Memory per device the plan may use, bytes (default: the device's).
    pub memory_limit: Option<f64>,
    /// Assume no communication overlaps compute (as Megatron-LM 2021 ran).
    pub no_overlap: bool,
}

/// One priced candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineCandidate {
    /// Data-parallel degree.
    pub dp: u64,
    /// Tensor-parallel degree.
    pub tp: u64,
    /// Pipeline ranks.
    pub pp: u64,
    /// Micro-batches.
    pub micro_batches: u64,
    /// The schedule.
    pub kind: ScheduleKind,
    /// Stages (`v · pp` for interleaved and V schedules).
    pub stages: u32,
    /// Predicted step time, seconds.
    pub step_time_s: f64,
    /// Peak memory of the fullest stage's device, bytes.
    pub memory_bytes: f64,
    /// Whether it fits the memory limit.
    pub fits: bool,
    /// Numbered layers on each stage: the even split, or the stage-slicing DP's cuts
    /// (`crate::cuts`) where they are predicted faster.
    pub layers_per_stage: Vec<u64>,
}

/// Where the planner spent its time, seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PipelineTimings {
    /// Propagating the Megatron-style annotations once.
    pub propagate_s: f64,
    /// The collectives each candidate mesh's sharding needs (`required_collectives` once, then
    /// derived per mesh), with the class graph and each pipeline size's reduced graph when
    /// layers are priced by representatives.
    pub collectives_s: f64,
    /// The graph path over every candidate mesh and micro-batch count (on the reduced graphs
    /// when layers are priced by representatives).
    pub price_s: f64,
    /// Generating and simulating schedules.
    pub schedule_s: f64,
    /// Everything.
    pub total_s: f64,
    /// Meshes priced.
    pub meshes: usize,
    /// Candidates (mesh, micro-batches, schedule) simulated.
    pub candidates: usize,
    /// Candidates not simulated: their lower bound was slower than the best few.
    pub pruned: usize,
    /// Whether meshes were priced on representative layers (`layers` module) rather than the
    /// whole graph.
    pub by_layer_classes: bool,
}

/// The chosen plan with its schedule and simulation (for `--timeline`).
#[derive(Clone, Debug)]
pub struct PipelinePlan {
    /// The plan; its `pipeline` part holds the chosen stages, schedule and micro-batches.
    pub plan: Plan,
    /// The chosen candidate.
    pub chosen: PipelineCandidate,
    /// Its schedule.
    pub schedule: Schedule,
    /// Its simulated step.
    pub simulation: Simulation,
    /// Every candidate priced, fastest first.
    pub candidates: Vec<PipelineCandidate>,
    /// Where the time went.
    pub timings: PipelineTimings,
    /// Each stage's predicted seconds per micro-batch under the chosen cuts when they are the
    /// stage-slicing DP's (uneven), from the per-layer costs (`crate::cuts`); `None` with the
    /// even split.
    pub stage_times_s: Option<Vec<f64>>,
}

impl PipelinePlan {
    /// The chosen schedule's Gantt chart ([`crate::render_svg_titled`]), titled with the mesh,
    /// the plan's whole step (the simulated pipeline plus the terms outside it) and the bubble.
    pub fn timeline_svg(&self) -> String {
        let c = &self.chosen;
        let sim = &self.simulation;
        let title = format!(
            "`{}` on {}:{}x{}: dp={} tp={} pp={}, {}, {} stages, {} micro-batches: step {} \
             (pipeline {}), bubble {:.1}% ({:.1}% over ideal)",
            self.plan.graph,
            self.plan.cluster.device,
            self.plan.cluster.nodes,
            self.plan.cluster.devices_per_node,
            c.dp,
            c.tp,
            c.pp,
            c.kind,
            c.stages,
            c.micro_batches,
            crate::render::format_seconds(c.step_time_s),
            crate::render::format_seconds(sim.step_time),
            100.0 * sim.bubble_fraction,
            100.0 * sim.bubble_over_ideal
        );
        crate::render::render_svg_titled(sim, &title)
    }

    /// The plan's report, then the pipeline: schedule, stages, bubble, memory per rank and the
    /// runners-up.
    pub fn report(&self) -> String {
        use std::fmt::Write;
        let mut s = self.plan.report();
        let c = &self.chosen;
        let sim = &self.simulation;
        let _ = writeln!(
            s,
            "pipeline: {} on {} ranks, {} stages, {} micro-batches; layers per stage {:?}; \
             bubble {:.1}% of the pipeline ({:.1}% over ideal); peak in flight per stage {:?}",
            c.kind,
            c.pp,
            c.stages,
            c.micro_batches,
            c.layers_per_stage,
            100.0 * sim.bubble_fraction,
            100.0 * sim.bubble_over_ideal,
            sim.peak_in_flight
        );
        let _ = writeln!(
            s,
            "runners-up (of {} candidates simulated; {} more not, their lower bound slower):",
            self.candidates.len(),
            self.timings.pruned
        );
        for r in self.candidates.iter().skip(1).take(5) {
            let _ = writeln!(
                s,
                "  dp={} tp={} pp={} m={} {}: {:.3} s, {:.1} GB{}",
                r.dp,
                r.tp,
                r.pp,
                r.micro_batches,
                r.kind,
                r.step_time_s,
                r.memory_bytes / 1e9,
                if r.fits { "" } else { " (does not fit)" }
            );
        }
        s
    }
}

/// Version of the plan's `pipeline` object (`docs/plan-format.md`).
pub const PIPELINE_FORMAT_VERSION: u32 = 1;

/// Chooses degrees, micro-batches and schedule for the training step `g` on `cluster`.
pub fn plan_pipeline(g: &Graph, cluster: &Cluster, opts: &PipelineOptions) -> Result<PipelinePlan> {
    let start = Instant::now();
    let mut timings = PipelineTimings::default();
    let shape = GraphShape::of(g)?;
    let (mut pricing, setup) = Pricing::of(g, false)?;
    timings.propagate_s = setup.propagate_s;
    timings.collectives_s = setup.collectives_s;
    timings.by_layer_classes = pricing.by_classes();
    let capacity = cluster.device.memory.capacity_bytes as f64;
    let limit = opts.memory_limit.unwrap_or(capacity).min(capacity);
    // Every (mesh, micro-batch count) priced by the graph path, with the DP's uneven cuts and
    // their step where they are predicted faster than the even split.
    let mut works: Vec<(u64, u64, u64, StepWork)> = Vec::new();
    let mut uneven: Vec<Option<(Vec<u64>, StepWork, Vec<f64>)>> = Vec::new();
    for (dp, tp, pp) in candidate_meshes(cluster, &shape, opts)? {
        let mesh = Mesh::new(&[("pp", pp), ("dp", dp), ("tp", tp)])
            .map_err(|e| Error::Input(e.to_string()))?;
        // A lower bound on model state per device: every parameter and optimizer-state input,
        // and one gradient per parameter, split over the stage's tp · pp share.
        if shape.state_bytes / (tp * pp) as f64 > limit {
            continue;
        }
        let clock = Instant::now();
        let on = pricing.on(g, &mesh)?;
        timings.collectives_s += clock.elapsed().as_secs_f64();
        timings.meshes += 1;
        let per_replica = shape.batch / dp;
        for m in micro_batch_counts(per_replica, pp, opts.micro_batches) {
            let clock = Instant::now();
            let go = GraphOptions {
                micro_batches: m,
                pipeline_axis: Some("pp".into()),
                data_axis: Some("dp".into()),
                zero: Zero::None,
                overlap: if opts.no_overlap {
                    Overlap::NONE
                } else {
                    Overlap::ALL
                },
                ..GraphOptions::default()
            };
            let w = on.step(cluster, &go)?;
            uneven.push(crate::cuts::uneven_cuts(
                &on,
                cluster,
                &go,
                &w,
                shape.layers,
                limit,
            )?);
            works.push((dp, tp, pp, w));
            timings.price_s += clock.elapsed().as_secs_f64();
        }
    }
    // Schedules, simulated in the order of a lower bound on their step (every rank computes
    // its stages' share of every micro-batch, and waits at least the schedule's closed-form
    // bubble), until the bound passes the slowest of the best few that fit: those left
    // cannot be chosen nor be among the report's runners-up.
    let clock = Instant::now();
    let mut queue = Vec::new();
    for (k, (_, _, pp, w)) in works.iter().enumerate() {
        for (kind, v) in schedule_kinds(opts.schedule) {
            let stages = v * *pp as u32;
            if u64::from(stages) > shape.layers.max(1) {
                continue;
            }
            // The DP's cuts are per pipeline rank: single-stage-per-rank schedules only.
            let w = match &uneven[k] {
                Some((_, u, _)) if v == 1 => u,
                _ => w,
            };
            queue.push((lower_bound(w, kind, v), k, kind, v));
        }
    }
    queue.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut priced: Vec<PipelineCandidate> = Vec::new();
    let mut best: Option<(PipelineCandidate, Schedule, Simulation, usize)> = None;
    let mut fitting: Vec<f64> = Vec::new();
    for (bound, k, kind, v) in queue {
        if fitting.len() >= KEPT && bound > fitting[KEPT - 1] {
            timings.pruned += 1;
            continue;
        }
        let (dp, tp, pp, w) = &works[k];
        let stages = v * *pp as u32;
        let (w, layers_per_stage) = match &uneven[k] {
            Some((cuts, u, _)) if v == 1 => (u, cuts.clone()),
            _ => (w, crate::cuts::even_cuts(shape.layers, u64::from(stages))),
        };
        let Ok(schedule) = Schedule::generate(kind, stages, *pp as u32, w.microbatches as u32)
        else {
            continue;
        };
        let (sim, step, memory) = price_schedule(&schedule, w, v)?;
        debug_assert!(
            step >= bound * (1.0 - 1e-9),
            "{kind} on pp={pp}, m={}: step {step} below its lower bound {bound}",
            w.microbatches
        );
        timings.candidates += 1;
        let c = PipelineCandidate {
            dp: *dp,
            tp: *tp,
            pp: *pp,
            micro_batches: w.microbatches,
            kind,
            stages,
            step_time_s: step,
            memory_bytes: memory,
            fits: memory <= limit,
            layers_per_stage,
        };
        if c.fits {
            let at = fitting.partition_point(|&x| x <= step);
            fitting.insert(at, step);
        }
        let better = best.as_ref().map_or(true, |(b, ..)| {
            (c.fits, -c.step_time_s) > (b.fits, -b.step_time_s)
        });
        if better {
            best = Some((c.clone(), schedule, sim, k));
        }
        priced.push(c);
    }
    timings.schedule_s = clock.elapsed().as_secs_f64();
    let Some((chosen, schedule, simulation, k)) = best else {
        return Err(Error::Input(format!(
            "no pipelined plan of `{}` on {} devices: every (dp, tp, pp) was refused by the \
             options or needs more than {:.1} GB of model state per device",
            g.name,
            cluster.num_devices(),
            limit / 1e9
        )));
    };
    if !chosen.fits {
        return Err(Error::Input(format!(
            "no pipelined plan of `{}` fits {:.1} GB per device; the least memory is {:.1} GB \
             (dp={}, tp={}, pp={}, {} micro-batches, {})",
            g.name,
            limit / 1e9,
            priced
                .iter()
                .map(|c| c.memory_bytes)
                .fold(f64::INFINITY, f64::min)
                / 1e9,
            chosen.dp,
            chosen.tp,
            chosen.pp,
            chosen.micro_batches,
            chosen.kind
        )));
    }
    priced.sort_by(|x, y| {
        (!x.fits)
            .cmp(&!y.fits)
            .then(x.step_time_s.total_cmp(&y.step_time_s))
    });
    let mesh = Mesh::new(&[("pp", chosen.pp), ("dp", chosen.dp), ("tp", chosen.tp)])
        .map_err(|e| Error::Input(e.to_string()))?;
    let a = pricing.full_assignment(&mesh);
    let (w, stage_times_s) = match &uneven[k] {
        Some((_, u, t)) if chosen.stages as u64 == chosen.pp => (u, Some(t.clone())),
        _ => (&works[k].3, None),
    };
    let plan = into_plan(g, cluster, &chosen, &simulation, w, &a);
    timings.total_s = start.elapsed().as_secs_f64();
    Ok(PipelinePlan {
        plan,
        chosen,
        schedule,
        simulation,
        candidates: priced,
        timings,
        stage_times_s,
    })
}

/// Candidates that fit kept exactly: the chosen one and the report's five runners-up.
const KEPT: usize = 6;

/// A lower bound on the step `price_schedule` gives: the busiest rank's compute for every
/// micro-batch, the closed-form bubble of the schedule with equal stage times (REFERENCES.md;
/// none for the zero-bubble ones) less a margin, and the cost model's terms outside the
/// pipeline.
fn lower_bound(w: &StepWork, kind: ScheduleKind, v: u32) -> f64 {
    let m = w.microbatches.max(1) as f64;
    let p = w.stages.max(1) as f64;
    let per_mb = w.forward_s + w.backward_s + w.recompute_s + w.stage_comm_s;
    let bubble = match kind {
        ScheduleKind::GPipe | ScheduleKind::OneFOneB => (p - 1.0) * per_mb,
        ScheduleKind::Interleaved1F1B | ScheduleKind::LoopedBfs => {
            (p - 1.0) * per_mb / f64::from(v.max(1))
        }
        _ => 0.0,
    };
    m * per_mb + 0.9 * bubble + outside_pipeline(w)
}

/// What the search needs to know about the graph.
struct GraphShape {
    /// The data inputs' batch (their first dim).
    batch: u64,
    /// Numbered layers (`layers.N`).
    layers: u64,
    /// Bytes of parameters and optimizer state, plus one gradient per parameter.
    state_bytes: f64,
}

impl GraphShape {
    fn of(g: &Graph) -> Result<GraphShape> {
        let trains = g.nodes.iter().any(|n| n.role == Role::Gradient);
        if !trains {
            return Err(Error::Input(format!(
                "`{}` is not a training step (no gradients): build one with `shardc grad` or \
                 `--train` first",
                g.name
            )));
        }
        let batch = g
            .inputs()
            .filter(|&v| g.node(v).role == Role::Input)
            .filter_map(|v| g.ty(v).dims().first().copied())
            .max()
            .ok_or_else(|| Error::Input(format!("`{}` has no data input", g.name)))?;
        let layers = g
            .nodes
            .iter()
            .filter_map(|n| n.layer())
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64;
        let mut state_bytes = 0.0;
        for v in g.inputs() {
            let n = g.node(v);
            let bytes = n.ty.size_bytes() as f64;
            match n.role {
                Role::Parameter => state_bytes += 2.0 * bytes,
                Role::OptimizerState => state_bytes += bytes,
                _ => {}
            }
        }
        Ok(GraphShape {
            batch,
            layers,
            state_bytes,
        })
    }
}

/// (dp, tp, pp) with dp·tp·pp the device count: tp a power of two within a node, pp at most
/// the layer count, dp dividing the batch; fixed degrees kept.
fn candidate_meshes(
    cluster: &Cluster,
    shape: &GraphShape,
    opts: &PipelineOptions,
) -> Result<Vec<(u64, u64, u64)>> {
    let n = cluster.num_devices();
    let per_node = u64::from(cluster.devices_per_node).max(1);
    let mut out = Vec::new();
    let mut tp = 1;
    while tp <= per_node && tp <= n {
        for pp in 1..=(n / tp).min(shape.layers.max(1)) {
            if (n / tp) % pp != 0 || n % tp != 0 {
                continue;
            }
            let dp = n / tp / pp;
            let keep = |fixed: Option<u64>, x: u64| fixed.map_or(true, |f| f == x);
            if shape.batch % dp == 0 && keep(opts.dp, dp) && keep(opts.tp, tp) && keep(opts.pp, pp)
            {
                out.push((dp, tp, pp));
            }
        }
        tp *= 2;
    }
    if out.is_empty() {
        return Err(Error::Input(format!(
            "no (dp, tp, pp) with dp·tp·pp = {n} devices fits: tp a power of two up to {per_node} \
             (a node), pp up to {} layers, dp dividing the batch {}{}",
            shape.layers,
            shape.batch,
            match (opts.dp, opts.tp, opts.pp) {
                (None, None, None) => String::new(),
                (d, t, p) => format!(", and the fixed degrees dp={d:?}, tp={t:?}, pp={p:?}"),
            }
        )));
    }
    Ok(out)
}

/// Micro-batch counts to try: the fixed one, else pp, 2pp, 4pp and the largest (micro-batch
/// size 1), those that divide the replica's batch.
fn micro_batch_counts(per_replica: u64, pp: u64, fixed: Option<u64>) -> Vec<u64> {
    let mut ms: Vec<u64> = match fixed {
        Some(m) => vec![m],
        None if pp == 1 => vec![1, per_replica],
        None => vec![pp, 2 * pp, 4 * pp, per_replica],
    };
    ms.retain(|&m| m >= 1 && m <= per_replica && per_replica % m == 0);
    ms.sort_unstable();
    ms.dedup();
    ms
}

/// The schedules tried, with their stages per rank.
fn schedule_kinds(fixed: Option<ScheduleKind>) -> Vec<(ScheduleKind, u32)> {
    let all = [
        (ScheduleKind::GPipe, 1),
        (ScheduleKind::OneFOneB, 1),
        (ScheduleKind::Interleaved1F1B, 2),
        (ScheduleKind::InterleavedZeroBubble, 1),
        (ScheduleKind::ZbVZeroBubble, 2),
    ];
    match fixed {
        None => all.to_vec(),
        Some(k) => {
            let v = match k {
                ScheduleKind::Interleaved1F1B
                | ScheduleKind::LoopedBfs
                | ScheduleKind::ZbVZeroBubble
                | ScheduleKind::DualPipeV => 2,
                _ => 1,
            };
            vec![(k, v)]
        }
    }
}

/// Simulates `schedule` with the graph path's per-micro-batch times and returns the simulation,
/// the step time and the fullest device's memory.
fn price_schedule(schedule: &Schedule, w: &StepWork, v: u32) -> Result<(Simulation, f64, f64)> {
    let vf = f64::from(v);
    // Tensor-parallel collectives: half with the forward, half with the backward (Megatron:
    // two all-reduces each way per layer).
    let f = (w.forward_s + w.stage_comm_s / 2.0) / vf;
    let b = w.backward_s / vf;
    let i = (w.recompute_s + w.stage_comm_s / 2.0) / vf + b / 2.0;
    let mut times = StageTimes::uniform(schedule.stages, f, i, b / 2.0, w.p2p_s);
    // Activations per micro-batch of one stage (the graph path holds min(m, p) under 1F1B).
    let held = w.microbatches.min(w.stages).max(1) as f64;
    let per_mb = w.memory.activations / held / vf;
    times.activation_bytes = vec![per_mb; schedule.stages as usize];
    let sim = simulate(schedule, &times)?;
    // The cost model's terms outside the pipeline (exposed gradient reduction, the update):
    // its step less its own pipeline time, (m + p − 1) micro-batch times under 1F1B.
    let outside = outside_pipeline(w);
    let activations = sim
        .peak_activation_bytes
        .iter()
        .copied()
        .fold(0.0, f64::max);
    let mem = &w.memory;
    let memory = mem.weights + mem.gradients + mem.optimizer_state + activations + mem.transient;
    Ok((sim.clone(), sim.step_time + outside, memory))
}

/// The cost model's terms outside the pipeline (exposed gradient reduction, the update): its
/// step less its own pipeline time, (m + p − 1) micro-batch times under 1F1B.
fn outside_pipeline(w: &StepWork) -> f64 {
    let e = estimate(w);
    let m = w.microbatches.max(1) as f64;
    let p = w.stages.max(1) as f64;
    let mb = w.forward_s + w.backward_s + w.recompute_s + w.stage_comm_s + w.p2p_s;
    (e.step_time_s - (m + p - 1.0) * mb).max(0.0)
}

/// Megatron-style shardings for every value (see the module docs), from one propagation on a
/// `pp=2,dp=2,tp=2` mesh; callers swap in their mesh's sizes.
pub fn megatron_assignment(g: &Graph) -> Result<ShardingAssignment> {
    let mesh =
        Mesh::new(&[("pp", 2), ("dp", 2), ("tp", 2)]).map_err(|e| Error::Input(e.to_string()))?;
    let mut annotations: BTreeMap<String, Sharding> = megatron_annotations(g)
        .into_iter()
        .map(|a| (a.value, a.sharding))
        .collect();
    for a in &g.annotations {
        let fits = g
            .find(&a.value)
            .is_some_and(|v| a.sharding.validate(&mesh, g.ty(v).rank()).is_ok());
        if fits {
            annotations.insert(a.value.clone(), a.sharding.clone());
        }
    }
    let annotations: Vec<Annotation> = annotations
        .into_iter()
        .map(|(value, sharding)| Annotation {
            value,
            sharding,
            priority: 0,
        })
        .collect();
    let sharded = shardc_sharding::propagate(g, &mesh, &annotations)
        .map_err(|e| Error::Input(format!("propagating Megatron-style shardings: {e}")))?;
    Ok(sharded.assignment)
}

/// The annotations of the module docs' Megatron-style rule, on axes `dp` and `tp`.
pub fn megatron_annotations(g: &Graph) -> Vec<Annotation> {
    let mut out = Vec::new();
    let mut parity: BTreeMap<&str, usize> = BTreeMap::new();
    let mut seen = vec![false; g.len()];
    for n in &g.nodes {
        let Op::DotGeneral { rhs_contract, .. } = &n.op else {
            continue;
        };
        if n.phase != shardc_ir::Phase::Forward || n.recompute || n.operands.len() != 2 {
            continue;
        }
        let w = n.operands[1];
        let wn = g.node(w);
        if wn.role != Role::Parameter || wn.ty.rank() != 2 || seen[w.index()] {
            continue;
        }
        seen[w.index()] = true;
        let contracted = rhs_contract[0].min(1);
        // Outside the layers: the LM head (tied to the embedding or not) is column-parallel,
        // i.e. vocabulary-parallel, as Megatron splits it.
        let column = match wn.layer() {
            None => true,
            Some(layer) => {
                let k = parity.entry(layer).or_insert(0);
                *k += 1;
                *k % 2 == 1
            }
        };
        let split = if column { 1 - contracted } else { contracted };
        let mut s = Sharding::replicated(2);
        s.dims[split] = shardc_ir::DimSharding::on(&["tp"]);
        out.push(Annotation {
            value: wn.name.clone(),
            sharding: s,
            priority: 0,
        });
        if column && wn.layer().is_some() {
            // The bias added to a column-parallel output is split with it.
            if let Some(bias) = bias_of(g, &wn.name) {
                out.push(Annotation {
                    value: bias,
                    sharding: Sharding::from_dims(&[&["tp"]]),
                    priority: 0,
                });
            }
        }
    }
    for v in g.inputs() {
        let n = g.node(v);
        let dims = n.ty.dims();
        if n.role == Role::Input && !dims.is_empty() {
            let mut s = Sharding::replicated(dims.len());
            s.dims[0] = shardc_ir::DimSharding::on(&["dp"]);
            out.push(Annotation {
                value: n.name.clone(),
                sharding: s,
                priority: 0,
            });
        }
    }
    out
}

/// `x.bias` beside a weight `x.weight`, if the graph has it as a rank-1 parameter.
fn bias_of(g: &Graph, weight: &str) -> Option<String> {
    let name = format!("{}.bias", weight.strip_suffix(".weight")?);
    let v = g.find(&name)?;
    (g.node(v).role == Role::Parameter && g.ty(v).rank() == 1).then_some(name)
}

fn into_plan(
    g: &Graph,
    cluster: &Cluster,
    c: &PipelineCandidate,
    sim: &Simulation,
    w: &StepWork,
    a: &ShardingAssignment,
) -> Plan {
    let e = estimate(w);
    // TFLOP/s scale with the simulated step against the cost model's own.
    let scale = if c.step_time_s > 0.0 {
        e.step_time_s / c.step_time_s
    } else {
        1.0
    };
    let activations = c.memory_bytes
        - (w.memory.weights + w.memory.gradients + w.memory.optimizer_state + w.memory.transient);
    let strategy = format!(
        "pipeline {} ranks x {} stages each ({}, {} micro-batches), tensor parallel {} within \
         each node, data parallel {}",
        c.pp,
        c.stages as u64 / c.pp.max(1),
        c.kind,
        c.micro_batches,
        c.tp,
        c.dp
    );
    let layers_per_stage = &c.layers_per_stage;
    let pipeline = serde_json::json!({
        "format_version": PIPELINE_FORMAT_VERSION,
        "schedule": c.kind.to_string(),
        "ranks": c.pp,
        "stages": c.stages,
        "micro_batches": c.micro_batches,
        "layers_per_stage": layers_per_stage,
        "submesh": format!("dp={},tp={}", c.dp, c.tp),
        "step_time_s": c.step_time_s,
        "bubble_fraction": sim.bubble_fraction,
        "peak_in_flight": sim.peak_in_flight,
        "memory_per_rank_bytes": sim.peak_activation_bytes.iter().map(|x| x + c.memory_bytes - activations).collect::<Vec<f64>>(),
    });
    Plan {
        format_version: shardc_sharding::auto::PLAN_FORMAT_VERSION,
        graph: g.name.clone(),
        graph_nodes: g.len(),
        cluster: PlanCluster {
            device: cluster.device.name.clone(),
            nodes: cluster.nodes,
            devices_per_node: cluster.devices_per_node,
        },
        mesh: a.mesh.clone(),
        strategy,
        zero: Zero::None,
        micro_batches: c.micro_batches,
        step_time_s: c.step_time_s,
        model_tflops_per_device: e.model_tflops_per_device * scale,
        hardware_tflops_per_device: e.hardware_tflops_per_device * scale,
        memory: PlanMemory {
            weights: w.memory.weights,
            gradients: w.memory.gradients,
            optimizer_state: w.memory.optimizer_state,
            activations,
            transient: w.memory.transient,
            capacity: w.memory.capacity,
        },
        shardings: g
            .ids()
            .map(|v| PlanValue {
                value: g.node(v).name.clone(),
                sharding: a.shardings[v.index()].clone(),
                parameter: g.node(v).role == Role::Parameter,
            })
            .collect(),
        collectives: e
            .collectives
            .iter()
            .map(|l| PlanCollective {
                // The line names the value whose op needs it first, in backquotes.
                op: l.what.split('`').nth(1).unwrap_or(&l.what).to_string(),
                kind: l.kind.name().to_string(),
                axes: l.axes.split(',').map(str::to_string).collect(),
                bytes: l.bytes,
                seconds: l.seconds,
                reason: format!("{} ({} calls per step)", l.what, l.count),
            })
            .collect(),
        pipeline: Some(pipeline),
        allreduce: Default::default(),
    }
}
