//! The graph path: a sharded graph (graph + sharding assignment + the collectives the sharding
//! needs) priced node by node with the same building blocks as the analytic path.
//!
//! The graph describes one step on the whole batch. Micro-batching divides every op's work by
//! `m`; pipeline stages are analytic here (an even split of the graph over the pipeline axis,
//! as of layers); the pipeline crate replaces that with real slicing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shardc_ir::{Graph, Phase, Role, ShardingAssignment};

use crate::cluster::{Cluster, GroupPlacement};
use crate::collective::{buffer_bytes, price, CollectiveKind};
use crate::comm::CommUse;
use crate::compute::{local_and_global, local_bytes, op_time, OpClass, OpWork};
use crate::error::{CostError, Result};
use crate::estimate::{estimate, CollectiveLine, Estimate, StepWork};
use crate::memory::{held_microbatches, MemoryBreakdown, Schedule, Zero};

/// How the sharded graph is run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphOptions {
    pub micro_batches: u64,
    pub schedule: Schedule,
    /// The mesh axis pipeline stages are laid over (the graph is split evenly over it).
    pub pipeline_axis: Option<String>,
    /// The data-parallel mesh axis ZeRO shards model state over.
    pub data_axis: Option<String>,
    pub zero: Zero,
    pub overlap_gradient_reduction: bool,
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

/// The step of a sharded graph on one device of the busiest stage.
pub fn graph_step(
    g: &Graph,
    assignment: &ShardingAssignment,
    comms: &[CommUse],
    cluster: &Cluster,
    opts: &GraphOptions,
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
    // Values a backward node reads: what the forward pass must keep.
    let mut read_by_backward = vec![false; g.len()];
    let mut trains = false;
    for n in &g.nodes {
        if matches!(n.phase, Phase::BackwardInput | Phase::BackwardWeight) {
            trains = true;
            for &o in &n.operands {
                read_by_backward[o.index()] = true;
            }
        }
    }

    let (mut fwd, mut bwd, mut rec, mut update) = (0.0, 0.0, 0.0, 0.0);
    let (mut model_flops, mut hw_flops) = (0.0, 0.0);
    let (mut weights, mut grads, mut opt_state, mut saved, mut transient) =
        (0.0, 0.0, 0.0, 0.0, 0.0f64);
    for v in g.ids() {
        let n = g.node(v);
        let s = &assignment.shardings[v.index()];
        let (w, global_flops) = local_and_global(g, v, assignment)?;
        let own = local_bytes(&n.ty, s, mesh);
        // ZeRO shards model state over the data axis unless the assignment already does.
        let zero_split = |stage: Zero| {
            let already = opts
                .data_axis
                .as_deref()
                .is_some_and(|d| s.used_axes().contains(&d));
            if opts.zero >= stage && !already {
                dp as f64
            } else {
                1.0
            }
        };
        match n.role {
            Role::Parameter => weights += own / zero_split(Zero::Stage3),
            Role::Gradient => grads += own / zero_split(Zero::Stage2),
            Role::OptimizerState => opt_state += own / zero_split(Zero::Stage1),
            _ => {}
        }
        if w.class == OpClass::Free {
            continue;
        }
        model_flops += global_flops;
        if n.phase == Phase::Update {
            update += op_time(&w, cluster);
            hw_flops += w.flops;
            continue;
        }
        // One micro-batch's share of the op.
        let mb = OpWork {
            flops: w.flops / mf,
            bytes: w.bytes / mf,
            ..w
        };
        let t = op_time(&mb, cluster) * mf;
        hw_flops += w.flops;
        match n.phase {
            Phase::Forward => fwd += t,
            _ => bwd += t,
        }
        if n.recompute {
            rec += t;
            hw_flops += w.flops;
        }
        transient = transient.max(w.bytes / mf);
        let kept = n.role == Role::Activation
            && n.phase == Phase::Forward
            && !n.recompute
            && (!trains || read_by_backward[v.index()]);
        if kept {
            saved += own;
        }
    }

    // Collectives: those of gradients, parameters and the update run once per step; the rest once
    // per micro-batch on its share of the data.
    let mut placements: BTreeMap<Vec<String>, GroupPlacement> = BTreeMap::new();
    let mut lines: BTreeMap<(bool, CollectiveKind, String, u64), CollectiveLine> = BTreeMap::new();
    let (mut stage_comm, mut gradient_comm) = (0.0, 0.0);
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
        // Weight gradients accumulate over micro-batches and are reduced across replicas once.
        let weight_grad_reduction = node.phase == Phase::BackwardWeight
            && opts.data_axis.as_ref().is_some_and(|d| axes.contains(d));
        let per_step = node.phase == Phase::Update
            || weight_grad_reduction
            || matches!(
                node.role,
                Role::Gradient | Role::Parameter | Role::OptimizerState
            );
        let s = buffer_bytes(c, place.ranks);
        let (bytes, calls) = if per_step { (s, 1) } else { (s / mf, m) };
        let cost = price(kind, bytes, place, mesh.num_devices(), cluster);
        if per_step {
            gradient_comm += cost.seconds / pf;
        } else {
            stage_comm += cost.seconds / pf;
        }
        let key = (per_step, kind, axes.join(","), bytes.to_bits());
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

    let held = held_microbatches(opts.schedule, m, p) as f64;
    let memory = MemoryBreakdown {
        weights: weights / pf,
        gradients: grads / pf,
        optimizer_state: opt_state / pf,
        activations: saved / (pf * mf) * held,
        transient,
        capacity: cluster.device.memory.capacity_bytes as f64,
    };
    Ok(StepWork {
        microbatches: m,
        stages: p,
        schedule: opts.schedule,
        forward_s: fwd / (pf * mf),
        backward_s: bwd / (pf * mf),
        recompute_s: rec / (pf * mf),
        stage_comm_s: stage_comm,
        p2p_s: 0.0,
        gradient_comm_s: gradient_comm,
        overlap_gradient_reduction: opts.overlap_gradient_reduction,
        optimizer_s: update / pf,
        model_flops: model_flops / devices,
        hardware_flops: hw_flops / pf,
        memory,
        collectives: lines.into_values().collect(),
    })
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
