//! The plan's gradient all-reduce: where the cluster has reducer nodes (`--cluster PRESET+R`),
//! the plan takes the Reduction Server when the cost model prices the plan's step faster with
//! it than with the ring, and records the predicted gain.

use shardc_cost_model::{estimate_graph, Algorithm, Cluster, GraphOptions, Zero};
use shardc_ir::{Graph, ShardingAssignment};
use shardc_sharding::auto::{Plan, PlanAllReduce};

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
