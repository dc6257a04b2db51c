//! The graph path: a sharded graph (graph + sharding assignment + the collectives the sharding
//! needs) priced as fused kernels on one device of the busiest pipeline stage.
//!
//! The graph describes one step on the whole batch; micro-batching divides every op's work by
//! `m`. Ops are grouped into fusion regions ([`crate::fusion`] rules), a matmul runs at the
//! fraction of peak its local shape allows, collectives are priced on the links their mesh axes
//! map to, and memory comes from the graph's liveness ([`crate::liveness`]).
//!
//! Pipeline stages, until the pipeline crate slices graphs: the graph's numbered layers
//! (`Node::layer`, `layers.7`; backward and recomputed nodes carry their forward node's name)
//! are split into `p` contiguous runs of `l/p` layers; what comes before the first layer (the
//! embedding) goes to the first stage and what comes after the last (the output layer and loss)
//! to the last. Values that cross a stage boundary are sent as Megatron-LM sends them: each rank
//! of a replicated group sends its slice and the receivers all-gather it (Narayanan et al. SC21
//! §4.1), forward and backward.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shardc_ir::{Graph, Phase, Role, ShardingAssignment, ValueId};

use crate::cluster::{Cluster, GroupPlacement};
use crate::collective::{buffer_bytes, price, CollectiveKind};
use crate::comm::CommUse;
use crate::compute::{
    gradient_accumulation, local_bytes, local_op, op_time_shaped, LocalOp, OpClass, OpWork,
};
use crate::error::{CostError, Result};
use crate::estimate::{estimate, CollectiveLine, Estimate, OpLine, Overlap, StageWork, StepWork};
use crate::fusion::{Fusion, FusionPlan, NONE};
use crate::hardware::Precision;
use crate::liveness::{saved_readers, stage_memory, LivenessInput};
use crate::memory::{held_microbatches, MemoryBreakdown, Schedule, Zero};
pub use crate::stages::pipeline_stages;

/// How the sharded graph is run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphOptions {
    pub micro_batches: u64,
    pub schedule: Schedule,
    /// The mesh axis pipeline stages are laid over (layers are split evenly over it).
    pub pipeline_axis: Option<String>,
    /// The data-parallel mesh axis ZeRO shards model state over.
    pub data_axis: Option<String>,
    pub zero: Zero,
    /// Same as `overlap.gradient_reduction` (kept for callers that set it).
    pub overlap_gradient_reduction: bool,
    /// What communication overlaps with compute.
    #[serde(default)]
    pub overlap: Overlap,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            micro_batches: 1,
            schedule: Schedule::OneFOneB,
            pipeline_axis: None,
            data_axis: None,
            zero: Zero::None,
            overlap_gradient_reduction: false,
            overlap: Overlap::ALL,
        }
    }
}

fn axis_size(a: &ShardingAssignment, axis: &Option<String>, what: &str) -> Result<u64> {
    match axis {
        None => Ok(1),
        Some(name) => a.mesh.axis_size(name).ok_or_else(|| {
            CostError::Mismatch(format!(
                "{what} axis `{name}` is not an axis of mesh `{}`",
                a.mesh
            ))
        }),
    }
}

/// One priced item (a kernel or a fusion region) of the graph.
struct Item {
    stage: u32,
    phase: Phase,
    recompute: bool,
    /// Seconds per step (all micro-batches).
    seconds: f64,
    what: String,
    class: &'static str,
}

/// Prices kernels and fusion regions.
fn price_items(
    g: &Graph,
    ops: &[LocalOp],
    fusion: &FusionPlan,
    stage_of: &[u32],
    a: &ShardingAssignment,
    cluster: &Cluster,
    m: f64,
) -> Vec<Item> {
    let mesh = &a.mesh;
    let per_mb = |w: &OpWork, dims: Option<&crate::compute::MatmulDims>, phase: Phase| {
        if phase == Phase::Update {
            return op_time_shaped(w, dims, cluster);
        }
        let mb = OpWork {
            flops: w.flops / m,
            bytes: w.bytes / m,
            ..*w
        };
        // Micro-batching splits the batch: of a batched matmul if it has batch to split
        // (attention's batch and heads), otherwise its largest dim (the tokens: rows of a
        // forward or input-gradient matmul, the contraction of a weight gradient).
        let dims = dims.map(|d| {
            let mut d = *d;
            if d.batch >= m {
                d.batch /= m;
            } else if d.m >= d.n && d.m >= d.k {
                d.m /= m;
            } else if d.k >= d.n {
                d.k /= m;
            } else {
                d.n /= m;
            }
            d
        });
        op_time_shaped(&mb, dims.as_ref(), cluster) * m
    };
    let mut items = Vec::new();
    for (i, node) in g.nodes.iter().enumerate() {
        if fusion.kind[i] != Fusion::Kernel || ops[i].work.class == OpClass::Free {
            continue;
        }
        items.push(Item {
            stage: stage_of[i],
            phase: node.phase,
            recompute: node.recompute,
            seconds: per_mb(&ops[i].work, ops[i].dims.as_ref(), node.phase),
            what: node.name.clone(),
            class: ops[i].work.class.name(),
        });
    }
    for (r, nodes) in fusion.regions.iter().enumerate() {
        let first = nodes[0].index();
        let node = &g.nodes[first];
        let flops: f64 = nodes.iter().map(|v| ops[v.index()].work.flops).sum();
        let mut bytes: f64 = fusion
            .region_inputs(g, r)
            .iter()
            .map(|&x| local_bytes(g.ty(ValueId(x)), &a.shardings[x as usize], mesh))
            .sum();
        for v in nodes {
            if fusion.materialized[v.index()] {
                bytes += local_bytes(g.ty(*v), &a.shardings[v.index()], mesh);
            }
        }
        // Elementwise arithmetic runs on the vector units (fp32 rate), not tensor cores.
        let work = OpWork {
            class: OpClass::Elementwise,
            precision: Precision::Fp32,
            flops,
            bytes,
        };
        let what = if nodes.len() == 1 {
            node.name.clone()
        } else {
            format!("{} (+{} fused)", node.name, nodes.len() - 1)
        };
        items.push(Item {
            stage: stage_of[first],
            phase: node.phase,
            recompute: node.recompute,
            seconds: per_mb(&work, None, node.phase),
            what,
            class: "fused",
        });
    }
    // Each micro-batch's parameter gradients are added into the accumulation buffer.
    for (i, node) in g.nodes.iter().enumerate() {
        if node.role != Role::Gradient {
            continue;
        }
        let grad = local_bytes(g.ty(ValueId(i as u32)), &a.shardings[i], mesh);
        let once = gradient_accumulation(grad, m as u64);
        if once.class == OpClass::Free {
            continue;
        }
        let all = OpWork {
            flops: once.flops * m,
            bytes: once.bytes * m,
            ..once
        };
        items.push(Item {
            stage: stage_of[i],
            phase: node.phase,
            recompute: false,
            seconds: per_mb(&all, None, node.phase),
            what: format!("{} (accumulate)", node.name),
            class: "accumulate",
        });
    }
    items
}

/// Per stage: compute, collectives and memory.
#[derive(Clone, Default)]
struct StageTotals {
    fwd: f64,
    bwd: f64,
    rec: f64,
    update: f64,
    /// Per step, all micro-batches.
    tp_comm: f64,
    zero3_comm: f64,
    gradient_comm: f64,
    /// Per micro-batch: pipeline sends (and the gathers of sent slices).
    p2p: f64,
}

/// The step of a sharded graph on one device of the busiest stage.
pub fn graph_step(
    g: &Graph,
    assignment: &ShardingAssignment,
    comms: &[CommUse],
    cluster: &Cluster,
    opts: &GraphOptions,
) -> Result<StepWork> {
    let p = axis_size(assignment, &opts.pipeline_axis, "pipeline")?;
    graph_step_staged(g, assignment, comms, cluster, opts, &pipeline_stages(g, p))
}

/// [`graph_step`] with each node's pipeline stage given (`stage_of[v] < p`, the pipeline axis's
/// size) instead of [`pipeline_stages`]' even split: the pipelined planner prices a graph of a
/// few representative layers placed on the stages the whole graph's layers would sit on.
pub fn graph_step_staged(
    g: &Graph,
    assignment: &ShardingAssignment,
    comms: &[CommUse],
    cluster: &Cluster,
    opts: &GraphOptions,
    stage_of: &[u32],
) -> Result<StepWork> {
    if assignment.shardings.len() != g.len() {
        return Err(CostError::Mismatch(format!(
            "the sharding assignment has {} entries, graph `{}` has {} nodes",
            assignment.shardings.len(),
            g.name,
            g.len()
        )));
    }
    let mesh = &assignment.mesh;
    cluster.check_mesh(mesh)?;
    let m = opts.micro_batches.max(1);
    let mf = m as f64;
    let p = axis_size(assignment, &opts.pipeline_axis, "pipeline")?;
    let pf = p as f64;
    let dp = axis_size(assignment, &opts.data_axis, "data-parallel")?;
    let devices = mesh.num_devices() as f64;
    let overlap = Overlap {
        gradient_reduction: opts.overlap.gradient_reduction || opts.overlap_gradient_reduction,
        ..opts.overlap
    };

    let ops: Vec<LocalOp> = g
        .ids()
        .map(|v| local_op(g, v, assignment))
        .collect::<Result<_>>()?;
    if stage_of.len() != g.len() || stage_of.iter().any(|&s| u64::from(s) >= p) {
        return Err(CostError::Mismatch(format!(
            "graph `{}`: {} stage entries for {} nodes, each below the {p} stages expected",
            g.name,
            stage_of.len(),
            g.len()
        )));
    }
    let key: Vec<u64> = g
        .nodes
        .iter()
        .zip(stage_of)
        .map(|(n, &s)| ((s as u64) << 8) | ((n.phase as u64) << 1) | n.recompute as u64)
        .collect();
    let fusion = FusionPlan::new(g, &key);
    let items = price_items(g, &ops, &fusion, stage_of, assignment, cluster, mf);

    let mut st = vec![StageTotals::default(); p as usize];
    for it in &items {
        let s = &mut st[it.stage as usize];
        match (it.phase, it.recompute) {
            (Phase::Update, _) => s.update += it.seconds,
            (_, true) => s.rec += it.seconds,
            (Phase::Forward, false) => s.fwd += it.seconds,
            _ => s.bwd += it.seconds,
        }
    }
    let (mut model_flops, mut hw_flops) = (0.0, 0.0);
    let mut by_precision: BTreeMap<Precision, f64> = BTreeMap::new();
    for (node, op) in g.nodes.iter().zip(&ops) {
        hw_flops += op.work.flops;
        if !node.recompute {
            model_flops += op.global_flops;
        }
        if op.work.class == OpClass::Matmul || op.work.class == OpClass::Conv {
            *by_precision.entry(op.work.precision).or_default() += op.work.flops;
        }
    }

    let mut lines = price_collectives(g, comms, assignment, cluster, opts, stage_of, &mut st)?;
    pipeline_sends(
        g, assignment, cluster, stage_of, &fusion, mf, &mut st, &mut lines,
    )?;

    // Memory per stage; ZeRO shards model state over the data axis unless the assignment does.
    let state_split: Vec<f64> = g
        .nodes
        .iter()
        .zip(&assignment.shardings)
        .map(|(n, s)| {
            let stage = match n.role {
                Role::Parameter => Zero::Stage3,
                Role::Gradient => Zero::Stage2,
                Role::OptimizerState => Zero::Stage1,
                _ => return 1.0,
            };
            let already = opts
                .data_axis
                .as_deref()
                .is_some_and(|d| s.used_axes().contains(&d));
            if opts.zero >= stage && !already {
                dp as f64
            } else {
                1.0
            }
        })
        .collect();
    let mem = stage_memory(
        g,
        &LivenessInput {
            assignment,
            fusion: &fusion,
            stage_of: stage_of,
            stages: p as usize,
            microbatches: mf,
            state_split: &state_split,
        },
    );
    let capacity = cluster.device.memory.capacity_bytes as f64;
    let memory = mem
        .iter()
        .enumerate()
        .map(|(k, s)| {
            // Stage k of a 1F1B pipeline holds p − k micro-batches at its peak.
            let held = held_microbatches(opts.schedule, m, p - k as u64) as f64;
            MemoryBreakdown {
                weights: s.weights,
                gradients: s.gradients,
                optimizer_state: s.optimizer_state,
                activations: held * s.saved_per_microbatch,
                transient: s.transient_per_microbatch,
                capacity,
            }
        })
        .max_by(|a, b| a.total().total_cmp(&b.total()))
        .unwrap_or(MemoryBreakdown {
            weights: 0.0,
            gradients: 0.0,
            optimizer_state: 0.0,
            activations: 0.0,
            transient: 0.0,
            capacity,
        });

    // The busiest stage sets the pace of the pipeline.
    let exposed_mb = |s: &StageTotals| {
        let compute = s.fwd + s.bwd + s.rec;
        let zero3 = if overlap.zero3_gather {
            (s.zero3_comm - compute).max(0.0)
        } else {
            s.zero3_comm
        };
        let p2p = if overlap.pipeline_send {
            0.0
        } else {
            s.p2p * mf
        };
        (compute, (s.tp_comm + zero3) / mf, p2p / mf)
    };
    let (busiest_stage, busiest) = st
        .iter()
        .enumerate()
        .max_by(|(_, a), (_, b)| {
            let (ca, ea, pa) = exposed_mb(a);
            let (cb, eb, pb) = exposed_mb(b);
            (ca / mf + ea + pa).total_cmp(&(cb / mf + eb + pb))
        })
        .map(|(k, s)| (k as u32, s.clone()))
        .unwrap_or_default();
    // The report lists the busiest stage's collectives.
    let lines: Vec<CollectiveLine> = lines
        .into_iter()
        .filter(|(k, _)| *k == busiest_stage)
        .map(|(_, l)| l)
        .collect();
    let (_, stage_comm, p2p) = exposed_mb(&busiest);
    let hidden = (busiest.tp_comm + busiest.zero3_comm) / mf + busiest.p2p - stage_comm - p2p;

    let precision = by_precision
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(p, _)| *p);
    let mut warnings = Vec::new();
    if let Some(Precision::Fp32) = precision {
        let pk = &cluster.device.peak_flops;
        let ratio = pk.get(Precision::Bf16) / pk.get(Precision::Fp32);
        if ratio >= 10.0 {
            warnings.push(format!(
                "the graph's matmuls are f32, priced at the {} fp32 rate ({:.1} TFLOP/s), {ratio:.0}x \
                 below its bf16 peak; train in mixed precision (`zoo --mixed-precision`, \
                 `--dtype bf16`) to price bf16",
                cluster.device.name,
                pk.get(Precision::Fp32) / 1e12
            ));
        }
    }
    let mut top: Vec<&Item> = items.iter().collect();
    top.sort_by(|a, b| b.seconds.total_cmp(&a.seconds).then(a.what.cmp(&b.what)));
    let top_ops = top
        .iter()
        .take(5)
        .map(|it| OpLine {
            what: it.what.clone(),
            class: it.class.to_string(),
            seconds: it.seconds,
        })
        .collect();

    let per_stage = st
        .iter()
        .zip(&mem)
        .map(|(s, m)| {
            let (_, comm, p2p) = exposed_mb(s);
            StageWork {
                forward_s: s.fwd / mf,
                backward_s: s.bwd / mf,
                recompute_s: s.rec / mf,
                stage_comm_s: comm,
                p2p_s: p2p,
                weights: m.weights,
                gradients: m.gradients,
                optimizer_state: m.optimizer_state,
                activations_per_microbatch: m.saved_per_microbatch,
                transient: m.transient_per_microbatch,
            }
        })
        .collect();
    let gradient_comm = st.iter().map(|s| s.gradient_comm).fold(0.0, f64::max);
    let optimizer = st.iter().map(|s| s.update).fold(0.0, f64::max);
    Ok(StepWork {
        microbatches: m,
        stages: p,
        schedule: opts.schedule,
        forward_s: busiest.fwd / mf,
        backward_s: busiest.bwd / mf,
        recompute_s: busiest.rec / mf,
        stage_comm_s: stage_comm,
        p2p_s: p2p,
        gradient_comm_s: gradient_comm,
        overlap_gradient_reduction: overlap.gradient_reduction,
        optimizer_s: optimizer,
        model_flops: model_flops / devices,
        hardware_flops: hw_flops / pf,
        memory,
        collectives: lines,
        overlap,
        hidden_comm_s: hidden.max(0.0),
        precision,
        top_ops,
        warnings,
        per_stage,
    })
}

/// Prices the sharding's collectives into the stages' totals and the report's lines.
/// Collectives of gradients, parameters and the update run once per step; the rest once per
/// micro-batch on its share of the data.
fn price_collectives(
    g: &Graph,
    comms: &[CommUse],
    assignment: &ShardingAssignment,
    cluster: &Cluster,
    opts: &GraphOptions,
    stage_of: &[u32],
    st: &mut [StageTotals],
) -> Result<Vec<(u32, CollectiveLine)>> {
    let mesh = &assignment.mesh;
    let mf = opts.micro_batches.max(1) as f64;
    let m = opts.micro_batches.max(1);
    let mut placements: BTreeMap<Vec<String>, GroupPlacement> = BTreeMap::new();
    let mut lines: BTreeMap<(u32, bool, CollectiveKind, String, u64), CollectiveLine> =
        BTreeMap::new();
    for c in comms {
        let kind = CollectiveKind::of(&c.op).ok_or_else(|| {
            CostError::Mismatch(format!(
                "CommUse for {}: `{}` is not a collective",
                c.node,
                c.op.name()
            ))
        })?;
        let node = g.nodes.get(c.node.index()).ok_or_else(|| {
            CostError::Mismatch(format!(
                "CommUse names {}, graph `{}` has {} nodes",
                c.node,
                g.name,
                g.len()
            ))
        })?;
        let axes = c.op.collective_axes();
        let place = match placements.get(&axes) {
            Some(p) => *p,
            None => {
                let p = cluster.placement(mesh, &axes)?;
                placements.insert(axes.clone(), p);
                p
            }
        };
        let on_data = opts.data_axis.as_ref().is_some_and(|d| axes.contains(d));
        // Weight gradients accumulate over micro-batches and are reduced across replicas once.
        let weight_grad_reduction = node.phase == Phase::BackwardWeight && on_data;
        let per_step = node.phase == Phase::Update
            || weight_grad_reduction
            || matches!(node.role, Role::Gradient | Role::OptimizerState)
            || (node.role == Role::Parameter && !on_data);
        // A parameter gathered over the data axis is a ZeRO-3 gather, before every use.
        let zero3 = node.role == Role::Parameter && on_data && kind == CollectiveKind::AllGather;
        let s = buffer_bytes(c, place.ranks);
        let (bytes, calls) = if per_step || zero3 {
            (s, if zero3 { m } else { 1 })
        } else {
            (s / mf, m)
        };
        let cost = price(kind, bytes, place, mesh.num_devices(), cluster);
        let stage = &mut st[stage_of[c.node.index()] as usize];
        let total = cost.seconds * calls as f64;
        if zero3 {
            stage.zero3_comm += total;
        } else if per_step {
            stage.gradient_comm += total;
        } else {
            stage.tp_comm += total;
        }
        let key = (
            stage_of[c.node.index()],
            per_step,
            kind,
            axes.join(","),
            bytes.to_bits(),
        );
        lines
            .entry(key)
            .and_modify(|l| l.count += calls)
            .or_insert_with(|| CollectiveLine {
                what: c.reason.clone(),
                kind,
                algorithm: cost.algorithm,
                axes: axes.join(","),
                bytes,
                seconds: cost.seconds,
                count: calls,
            });
    }
    Ok(lines.into_iter().map(|(k, l)| (k.0, l)).collect())
}

/// Adds the sends of activations that cross stage boundaries (and of their gradients back).
#[allow(clippy::too_many_arguments)]
fn pipeline_sends(
    g: &Graph,
    assignment: &ShardingAssignment,
    cluster: &Cluster,
    stage_of: &[u32],
    fusion: &FusionPlan,
    mf: f64,
    st: &mut [StageTotals],
    lines: &mut Vec<(u32, CollectiveLine)>,
) -> Result<()> {
    if st.len() <= 1 {
        return Ok(());
    }
    let mesh = &assignment.mesh;
    // Values computed from no input (a causal mask) are computed on every stage, not sent.
    let mut from_inputs = vec![false; g.len()];
    for (i, node) in g.nodes.iter().enumerate() {
        from_inputs[i] = matches!(node.op, shardc_ir::Op::Input { .. })
            || node.operands.iter().any(|o| from_inputs[o.index()]);
    }
    let mut crossing: Vec<(u32, u32)> = Vec::new();
    for (c, node) in g.nodes.iter().enumerate() {
        if node.phase != Phase::Forward || node.recompute {
            continue;
        }
        for o in &node.operands {
            let r = fusion.root[o.index()];
            if r == NONE {
                continue;
            }
            let prod = &g.nodes[r as usize];
            if prod.role == Role::Activation
                && from_inputs[r as usize]
                && stage_of[r as usize] < stage_of[c]
            {
                crossing.push((r, stage_of[c]));
            }
        }
    }
    crossing.sort_unstable();
    crossing.dedup();
    let mut sends: BTreeMap<(u32, u64), (CollectiveLine, Option<CollectiveLine>)> = BTreeMap::new();
    for (r, _) in crossing {
        let v = r as usize;
        let s = &assignment.shardings[v];
        let ty = g.ty(ValueId(v as u32));
        let local = local_bytes(ty, s, mesh) / mf;
        let used = s.used_axes();
        let replicated: Vec<String> = mesh
            .axes
            .iter()
            .filter(|a| a.size > 1 && !used.contains(&a.name.as_str()))
            .map(|a| a.name.clone())
            .collect();
        // Stages lie along the mesh axes the value is replicated over only if that axis is
        // the pipeline one; the slice is split over the remaining replicated axes.
        let pipeline = cluster_pipeline_axis(mesh, &replicated, st.len() as u64);
        let spread: Vec<String> = replicated
            .iter()
            .filter(|a| Some(a.as_str()) != pipeline.as_deref())
            .cloned()
            .collect();
        let t: u64 = spread
            .iter()
            .filter_map(|a| mesh.axis_size(a))
            .product::<u64>()
            .max(1);
        let slice = local / t as f64;
        let Some(pp) = pipeline else { continue };
        let permute = price(
            CollectiveKind::Permute,
            slice,
            cluster.placement(mesh, std::slice::from_ref(&pp))?,
            mesh.num_devices(),
            cluster,
        );
        let mut mb = permute.seconds;
        let gather = if t > 1 {
            let place = cluster.placement(mesh, &spread)?;
            let cost = price(
                CollectiveKind::AllGather,
                slice * t as f64,
                place,
                mesh.num_devices(),
                cluster,
            );
            mb += cost.seconds;
            Some(CollectiveLine {
                what: "pipeline all-gather of the sent slice".into(),
                kind: CollectiveKind::AllGather,
                algorithm: cost.algorithm,
                axes: spread.join(","),
                bytes: cost.bytes,
                seconds: cost.seconds,
                count: 0,
            })
        } else {
            None
        };
        // Forward activation and backward gradient, every micro-batch.
        st[stage_of[v] as usize].p2p += 2.0 * mb;
        let count = 2 * mf as u64;
        let e = sends
            .entry((stage_of[v], slice.to_bits()))
            .or_insert_with(|| {
                (
                    CollectiveLine {
                        what: format!(
                            "pipeline send (`{}` and its gradient)",
                            g.node(ValueId(v as u32)).name
                        ),
                        kind: CollectiveKind::Permute,
                        algorithm: permute.algorithm,
                        axes: pp.clone(),
                        bytes: slice,
                        seconds: permute.seconds,
                        count: 0,
                    },
                    gather,
                )
            });
        e.0.count += count;
        if let Some(gl) = &mut e.1 {
            gl.count += count;
        }
    }
    for ((stage, _), (send, gather)) in sends {
        lines.push((stage, send));
        lines.extend(gather.map(|g| (stage, g)));
    }
    Ok(())
}

/// The pipeline axis among a value's replicated axes: the one whose size is the stage count
/// (stages are laid over it).
fn cluster_pipeline_axis(mesh: &shardc_ir::Mesh, replicated: &[String], p: u64) -> Option<String> {
    replicated
        .iter()
        .find(|a| mesh.axis_size(a) == Some(p))
        .cloned()
}

/// Estimates the step of a sharded graph: [`graph_step`] then [`estimate`].
pub fn estimate_graph(
    g: &Graph,
    assignment: &ShardingAssignment,
    comms: &[CommUse],
    cluster: &Cluster,
    opts: &GraphOptions,
) -> Result<Estimate> {
    Ok(estimate(&graph_step(g, assignment, comms, cluster, opts)?))
}

/// Memory per device of a sharded graph from its liveness, on the busiest stage (what
/// `shardc check` reports as the activation peak). `capacity` is left at 0 (no cluster).
pub fn graph_memory(
    g: &Graph,
    assignment: &ShardingAssignment,
    opts: &GraphOptions,
) -> Result<MemoryBreakdown> {
    if assignment.shardings.len() != g.len() {
        return Err(CostError::Mismatch(format!(
            "the sharding assignment has {} entries, graph `{}` has {} nodes",
            assignment.shardings.len(),
            g.name,
            g.len()
        )));
    }
    let m = opts.micro_batches.max(1);
    let p = axis_size(assignment, &opts.pipeline_axis, "pipeline")?;
    let stage_of = pipeline_stages(g, p);
    let key: Vec<u64> = g
        .nodes
        .iter()
        .zip(&stage_of)
        .map(|(n, &s)| ((s as u64) << 8) | ((n.phase as u64) << 1) | n.recompute as u64)
        .collect();
    let fusion = FusionPlan::new(g, &key);
    let ones = vec![1.0; g.len()];
    let mem = stage_memory(
        g,
        &LivenessInput {
            assignment,
            fusion: &fusion,
            stage_of: &stage_of,
            stages: p as usize,
            microbatches: m as f64,
            state_split: &ones,
        },
    );
    Ok(mem
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let held = held_microbatches(opts.schedule, m, p - k as u64) as f64;
            MemoryBreakdown {
                weights: s.weights,
                gradients: s.gradients,
                optimizer_state: s.optimizer_state,
                activations: held * s.saved_per_microbatch,
                transient: s.transient_per_microbatch,
                capacity: 0.0,
            }
        })
        .max_by(|a, b| a.total().total_cmp(&b.total()))
        .expect("invariant: at least one stage"))
}

/// Which values a (one-stage) step keeps from its forward pass for the backward pass, as the
/// liveness pass behind [`graph_step`]'s memory counts them (fusion-aware: a fused
/// intermediate's written sources are kept instead of it). It depends on the graph only, so
/// a planner can count, per value, the bytes the estimate will report.
pub fn saved_activations(g: &Graph) -> Vec<bool> {
    let key: Vec<u64> = g
        .nodes
        .iter()
        .map(|n| ((n.phase as u64) << 1) | n.recompute as u64)
        .collect();
    let fusion = FusionPlan::new(g, &key);
    saved_readers(g, &fusion)
        .iter()
        .map(|r| !r.is_empty())
        .collect()
}
