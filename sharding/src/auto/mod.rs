//! Automatic planning within a stage: the cost model chooses every value's sharding.
//!
//! [`auto_shard`] solves one mesh: per value a one-hot choice among the factor shardings its op
//! allows (Alpa's formulation, REFERENCES.md), the op's compute and own collectives priced per
//! choice, the resharding between a producer and each consumer priced per pair through
//! [`crate::reshard`], the memory of the values the step keeps as a constraint, and user
//! annotations as fixed choices. [`plan`] searches the mesh shapes (factorizations of the device
//! count, innermost axes inside a node), the ZeRO stage and the micro-batch count around it and
//! returns a [`Plan`].

mod allreduce;
mod bucket;
mod cost;
mod dominance;
mod dual;
mod elimination;
mod exhaustive;
mod follow;
mod ilp;
pub(crate) mod layers;
mod meshes;
mod model;
mod plan;
mod reduce;
mod search;
mod sweep;
#[cfg(test)]
mod testutil;
mod words;

use std::collections::BTreeMap;

use shardc_cost_model::{Cluster, Zero};
use shardc_ir::{Annotation, Graph, Mesh, ShardingAssignment};

use crate::error::{Result, ShardingError};

pub use allreduce::PlanAllReduce;
pub use ilp::IlpSize;
pub use plan::{Plan, PlanCluster, PlanCollective, PlanMemory, PlanValue, PLAN_FORMAT_VERSION};
pub use search::{plan, plan_with, PlanOptions, PlanProgress, PlanTimings};
pub use sweep::{best_fitting, megatron_sweep, MegatronConfig, SweepOptions, SweepPoint};

/// Which exact method solves the model.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Solver {
    /// Exact structural elimination (chains and leaves, then bucket elimination with a greedy
    /// order), the ILP for a small core where the memory limit binds, Lagrangian relaxation
    /// (with its gap reported) for a large one; where the elimination's tables would be too
    /// large, TRW-S's pick and dual bound (the gap reported), and the ILP only where TRW-S
    /// finds no pick. The default.
    ///
    /// (Its one disagreement with the ILP, on the MoE known answer of `tests/plan.rs`, was a
    /// tie: data and expert parallelism priced the same in the model and each solver returned
    /// a different one; ties now go to the pick of less memory, `reduce::TIE_SECONDS_PER_BYTE`.)
    #[default]
    Elimination,
    /// The ILP (good_lp + microlp) after the chain and leaf eliminations.
    Ilp,
    /// [`Solver::Elimination`] with Lagrangian relaxation wherever the memory limit binds,
    /// however small the core (to test and compare the relaxation).
    Lagrangian,
    /// Enumeration of every pick with a bound (the reference the ILP is tested against; small
    /// graphs only).
    Exhaustive,
}

/// How [`auto_shard`] prices the step.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AutoOptions {
    pub solver: Solver,
    /// ZeRO stage over `data_axis`: model state's memory divided, ZeRO-3's weight gathers priced.
    pub zero: Zero,
    pub data_axis: Option<String>,
    /// Micro-batches (saved activations held for one at a time); 0 or 1: one.
    pub micro_batches: u64,
    /// Bytes per device the kept values may hold.
    pub memory_limit: Option<f64>,
}

/// The planner's answer on one mesh.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoSolution {
    /// Every value's sharding.
    pub assignment: ShardingAssignment,
    /// The model's step time for it (seconds): ops, their collectives and the reshardings.
    pub seconds: f64,
    /// The model's bytes per device of the kept values.
    pub memory: f64,
    /// The size of the ILP (zeros for the exhaustive solver).
    pub size: IlpSize,
    /// Relative gap between `seconds` and a lower bound on the optimum: 0 when the solver is
    /// exact, above 0 only for a Lagrangian pick under a binding memory limit or a TRW-S pick
    /// whose bound did not close.
    pub gap: f64,
}

/// The cheapest sharding of every value of `graph` on `mesh` (annotations kept as given), or
/// `None` when no choice fits the memory limit.
pub fn auto_shard(
    graph: &Graph,
    mesh: &Mesh,
    cluster: &Cluster,
    annotations: &[Annotation],
    opts: &AutoOptions,
) -> Result<Option<AutoSolution>> {
    let pricing = cost::Pricing::new(cluster, mesh)?;
    let fixed = fixed_choices(graph, mesh, annotations)?;
    let step = model::StepOptions {
        zero: opts.zero,
        data_axis: opts.data_axis.clone(),
        micro_batches: opts.micro_batches.max(1),
        memory_limit: opts.memory_limit,
    };
    let m = model::build(graph, &pricing, &fixed, &step, layers::classes(graph))?;
    let (picked, size, gap) = elimination::run(opts.solver, &m)?;
    Ok(picked.map(|p| AutoSolution {
        assignment: m.assignment(&p.pick, mesh),
        seconds: p.seconds,
        memory: p.memory,
        size,
        gap,
    }))
}

/// The annotations as fixed shardings by value index; later annotations of a value replace
/// earlier ones.
fn fixed_choices(
    graph: &Graph,
    mesh: &Mesh,
    annotations: &[Annotation],
) -> Result<BTreeMap<usize, shardc_ir::Sharding>> {
    let mut fixed = BTreeMap::new();
    for a in annotations {
        let v = graph
            .find(&a.value)
            .ok_or_else(|| ShardingError::UnknownValue(a.value.clone()))?;
        a.sharding
            .validate(mesh, graph.ty(v).rank())
            .map_err(|message| ShardingError::Invalid {
                value: a.value.clone(),
                message,
            })?;
        fixed.insert(v.index(), model::closed_copy(&a.sharding));
    }
    Ok(fixed)
}
