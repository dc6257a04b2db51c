//! The plan's gradient all-reduce: where the cluster has reducer nodes (`--cluster PRESET+R`),
//! the plan takes the Reduction Server when the cost model prices the plan's step faster with
//! it than with the ring, and records the predicted gain.
//!
//! The Reduction Server only serves all-reduces: a worker pushes its whole gradient and pulls
//! the whole sum, S each way at once, where the ring moves 2(n−1)/n·S each way. A
//! reduce-scatter gains nothing from it (the ring already moves only (n−1)/n·S each way, the
//! server would still take all S in), so the planner's alternative to it is to reduce-scatter
//! the gradients, update each shard and leave the updated parameters sharded. Within one step
//! that saves the all-gather, but the next step reads the parameters in their own sharding, so
//! the gather is only deferred. The planner prices that deferred gather in its step (the same
//! sum as [`carry_seconds`]); [`plan_with_reducers`] plans the step again with each updated
//! value pinned to its parameter's sharding (the planner then weighs the Reduction
//! Server-priced all-reduce against the reduce-scatter and gather in its own objective), and
//! keeps the faster of the two.

use shardc_cost_model::{
    estimate_graph, price, Algorithm, Cluster, CollectiveKind, GraphOptions, Zero,
};
use shardc_ir::{Annotation, Graph, Op, ShardingAssignment};
use shardc_sharding::auto::{Plan, PlanAllReduce, PlanOptions, PlanProgress, PlanTimings};

use crate::error::{Error, Result, Step};

/// The all-reduce `plan` of `g` should run on `cluster`: the Reduction Server with the
/// cluster's reducer nodes when the cost model puts some gradient reduction on it and the step
/// is faster so than on the ring (the gain is the throughput ratio less one), else the ring.
pub fn allreduce_choice(g: &Graph, plan: &Plan, cluster: &Cluster) -> Result<PlanAllReduce> {
    if cluster.reducers.is_none() {
        return Ok(PlanAllReduce::Ring);
    }
    let a = plan
        .assignment(g)
        .map_err(|e| Error::new(Step::Plan, format!("graph `{}`", g.name), e))?;
    allreduce_for(g, &a, plan.micro_batches, plan.zero, cluster)
}

/// [`allreduce_choice`] for an assignment of `g` with `micro_batches` and `zero`.
pub fn allreduce_for(
    g: &Graph,
    a: &ShardingAssignment,
    micro_batches: u64,
    zero: Zero,
    cluster: &Cluster,
) -> Result<PlanAllReduce> {
    let Some(reducers) = &cluster.reducers else {
        return Ok(PlanAllReduce::Ring);
    };
    let what = format!("graph `{}`", g.name);
    let fail = |e: Box<dyn std::error::Error + Send + Sync>| Error::new(Step::Plan, &what, e);
    let comms = shardc_sharding::required_collectives(g, a).map_err(|e| fail(e.into()))?;
    let axis = |name: &str| a.mesh.axis_size(name).map(|_| name.to_string());
    let opts = GraphOptions {
        micro_batches: micro_batches.max(1),
        pipeline_axis: axis("pp"),
        data_axis: axis("dp"),
        zero,
        ..GraphOptions::default()
    };
    let with = estimate_graph(g, a, &comms, cluster, &opts).map_err(|e| fail(e.into()))?;
    if !with
        .collectives
        .iter()
        .any(|c| c.algorithm == Algorithm::ReductionServer)
    {
        return Ok(PlanAllReduce::Ring);
    }
    let mut ring = cluster.clone();
    ring.reducers = None;
    let without = estimate_graph(g, a, &comms, &ring, &opts).map_err(|e| fail(e.into()))?;
    let gain = without.step_time_s / with.step_time_s - 1.0;
    Ok(if gain > 0.0 {
        PlanAllReduce::ReductionServer {
            reducers: reducers.nodes,
            predicted_gain: gain,
        }
    } else {
        PlanAllReduce::Ring
    })
}

/// Seconds per step of bringing every updated parameter and optimizer state of a training
/// step back to the sharding its input has under `a` (what the next step reads): nothing
/// where they agree, the resharding's collectives (priced as the planner prices them) where
/// the update left a value sharded differently.
pub fn carry_seconds(g: &Graph, a: &ShardingAssignment, cluster: &Cluster) -> Result<f64> {
    let what = format!("graph `{}`", g.name);
    let fail = |e: Box<dyn std::error::Error + Send + Sync>| Error::new(Step::Plan, &what, e);
    let mut total = 0.0;
    for &(state, new) in &g.training.updates {
        let (from, to) = (&a.shardings[new.index()], &a.shardings[state.index()]);
        if shardc_sharding::same_layout(from, to) {
            continue;
        }
        let steps =
            shardc_sharding::reshard(from, to, g.ty(new), &a.mesh).map_err(|e| fail(e.into()))?;
        for step in steps {
            let Some(op) = step.collective() else {
                continue;
            };
            let Some(kind) = CollectiveKind::of(&op) else {
                continue;
            };
            let place = cluster
                .placement(&a.mesh, &op.collective_axes())
                .map_err(|e| fail(e.into()))?;
            let local = step.local_operand.size_bytes() as f64;
            let bytes = match op {
                Op::AllGather { .. } => local * place.ranks as f64,
                _ => local,
            };
            total += price(kind, bytes, place, a.mesh.num_devices(), cluster).seconds;
        }
    }
    Ok(total)
}

/// Annotations pinning each updated value that `first` leaves sharded unlike its input to the
/// input's sharding, skipping values the user annotated.
fn update_pins(g: &Graph, first: &Plan, opts: &PlanOptions) -> Result<Vec<Annotation>> {
    let a = first
        .assignment(g)
        .map_err(|e| Error::new(Step::Plan, format!("graph `{}`", g.name), e))?;
    let user = |name: &str| {
        g.annotations
            .iter()
            .chain(&opts.annotations)
            .any(|x| x.value == name)
    };
    Ok(g.training
        .updates
        .iter()
        .filter(|&&(state, new)| {
            !shardc_sharding::same_layout(&a.shardings[new.index()], &a.shardings[state.index()])
        })
        .filter(|&&(_, new)| !user(&g.node(new).name))
        .map(|&(state, new)| Annotation {
            value: g.node(new).name.clone(),
            sharding: a.shardings[state.index()].clone(),
            priority: 0,
        })
        .collect())
}

/// The planner's search on a cluster with reducer nodes, given its first answer: where that
/// plan leaves updated state sharded unlike its input (gradients reduce-scattered, which the
/// Reduction Server cannot serve), the step is planned again on the same mesh with those
/// values pinned to their input's sharding, and the plan whose step plus deferred gathers is
/// faster is kept. Its gradient all-reduce algorithm is then chosen ([`allreduce_choice`]).
pub(crate) fn plan_with_reducers(
    g: &Graph,
    cluster: &Cluster,
    opts: &PlanOptions,
    progress: &mut dyn FnMut(PlanProgress),
    first: (Plan, PlanTimings),
) -> Result<(Plan, PlanTimings)> {
    let (mut plan, mut timings) = first;
    let pins = if cluster.reducers.is_some() {
        update_pins(g, &plan, opts)?
    } else {
        Vec::new()
    };
    if !pins.is_empty() {
        let mut pinned = opts.clone();
        pinned.annotations.extend(pins);
        pinned.mesh = Some(
            plan.mesh
                .axes
                .iter()
                .map(|x| (x.name.clone(), x.size))
                .collect(),
        );
        let (second, more) = shardc_sharding::auto::plan_with(g, cluster, &pinned, progress)
            .map_err(|e| Error::new(Step::Plan, format!("graph `{}`", g.name), e))?;
        add_timings(&mut timings, &more);
        // Both steps include the gathers back to each state's sharding (the planner prices
        // them), so they compare as they are.
        if second.step_time_s < plan.step_time_s {
            plan = second;
        }
    }
    plan.allreduce = allreduce_choice(g, &plan, cluster)?;
    Ok((plan, timings))
}

/// Adds a second search's time and counts to the first's.
fn add_timings(t: &mut PlanTimings, more: &PlanTimings) {
    t.enumerate_s += more.enumerate_s;
    t.solve_s += more.solve_s;
    t.estimate_s += more.estimate_s;
    t.total_s += more.total_s;
    t.meshes += more.meshes;
    t.solves += more.solves;
    let size = |s: &shardc_sharding::auto::IlpSize| {
        s.edge_variables + s.choice_variables + s.largest_table
    };
    if size(&more.largest) > size(&t.largest) {
        t.largest = more.largest;
    }
    t.gap = t.gap.max(more.gap);
}
