//! What an op needs from a given assignment: the sharding its factor rule requires of each
//! operand given its result's sharding, and the sharding its result comes out in.

use std::collections::BTreeSet;

use shardc_ir::{
    FactorKind, Graph, Op, OpFactors, ReduceFn, Sharding, ShardingAssignment, ValueId,
};

use crate::reshard::same_layout;
use crate::rules::{self, Candidate, FactorShardings, Strategy};

/// Whether node `v` has a usable sharding rule (collectives and send/recv of an input graph
/// describe per-device data and have none; nor does a factor table that does not fit).
pub(crate) fn usable(graph: &Graph, v: ValueId, f: &OpFactors) -> bool {
    let node = graph.node(v);
    let ranks: Vec<usize> = node.operands.iter().map(|&o| graph.ty(o).rank()).collect();
    !node.op.is_collective() && rules::fits(f, &ranks, node.ty.rank())
}

/// The requirements of one op under an assignment.
pub(crate) struct OpNeeds {
    /// The sharding each operand must have.
    pub operands: Vec<Sharding>,
    /// The sharding the result comes out in (pending over the sharded reduction factors).
    pub natural: Sharding,
    pub factors: FactorShardings,
}

/// The factors of the result keep exactly the result's axes; the other factors (contracted,
/// reduced) follow the operands, by precedence in operand order. Where an axis is wanted both by
/// a result factor and by a contraction the operands are already split on, the other order
/// (contraction first: a pending sum, then reduced straight into the result's sharding) is taken
/// when it needs fewer collectives, counting the operands resharded and the result (GSPMD's dot
/// handler partitions by its operands and reshards the result after; the rule does not depend on
/// the batch, so micro-batching cannot flip it):
/// Megatron's sequence-parallel input gradient of a column-parallel matmul is a
/// reduce-scatter of its pending sum, not a gather of its weight (Korthikanti et al. 2022
/// §4.2.2).
pub(crate) fn op_needs(
    graph: &Graph,
    n: ValueId,
    f: &OpFactors,
    assignment: &ShardingAssignment,
) -> OpNeeds {
    let result_first = needs_in_order(graph, n, f, assignment, false);
    let reduction_first = needs_in_order(graph, n, f, assignment, true);
    if reduction_first.factors.axes == result_first.factors.axes {
        return result_first;
    }
    // Collectives of each order: operands resharded, and the result if it is computed in
    // another layout than assigned.
    let reshards = |need: &OpNeeds| {
        let result = !same_layout(&need.natural, &assignment.shardings[n.index()]);
        node_operands(graph, n)
            .zip(&need.operands)
            .filter(|(o, want)| !same_layout(&assignment.shardings[o.index()], want))
            .count()
            + usize::from(result)
    };
    if reshards(&reduction_first) < reshards(&result_first) {
        reduction_first
    } else {
        result_first
    }
}

fn node_operands(graph: &Graph, n: ValueId) -> impl Iterator<Item = ValueId> + '_ {
    graph.node(n).operands.iter().copied()
}

/// [`op_needs`] in one order: the result's factors first (`reduction_first` false), or the
/// operands' contracted factors first.
fn needs_in_order(
    graph: &Graph,
    n: ValueId,
    f: &OpFactors,
    assignment: &ShardingAssignment,
    reduction_first: bool,
) -> OpNeeds {
    let node = graph.node(n);
    let mesh = &assignment.mesh;
    let in_result: BTreeSet<usize> = f.result.iter().flatten().copied().collect();
    let mut cands: Vec<Vec<Candidate>> = vec![Vec::new(); f.factors.len()];
    let result = node.operands.len();
    let (result_priority, operand_priority) = if reduction_first { (1, 0) } else { (0, 1) };
    for (k, axes, _) in rules::project(
        &f.result,
        &f.factors,
        &assignment.shardings[n.index()],
        mesh,
    ) {
        cands[k].push(Candidate {
            axes,
            priority: result_priority,
            tensor: result,
            // An assignment closes every dim; here the result's factors simply take its axes.
            closed: false,
        });
    }
    for (t, &o) in node.operands.iter().enumerate() {
        for (k, axes, _) in rules::project(
            &f.operands[t],
            &f.factors,
            &assignment.shardings[o.index()],
            mesh,
        ) {
            if !in_result.contains(&k) {
                cands[k].push(Candidate {
                    axes,
                    priority: operand_priority,
                    tensor: t,
                    closed: false,
                });
            }
        }
    }
    let (fs, _) = rules::resolve(&f.factors, &cands, Strategy::Aggressive);
    let closed = |axes: Vec<Vec<String>>| Sharding {
        dims: axes
            .into_iter()
            .map(|a| shardc_ir::DimSharding {
                axes: a,
                open: false,
            })
            .collect(),
        ..Sharding::default()
    };
    let operands = f
        .operands
        .iter()
        .map(|dims| closed(rules::back_project(dims, &f.factors, &fs, mesh)))
        .collect();
    let mut natural = closed(rules::back_project(&f.result, &f.factors, &fs, mesh));
    natural.partial = rules::reduction_axes(f, &fs);
    natural.partial_fn = match (&node.op, natural.partial.is_empty()) {
        (Op::Reduce { func, .. }, false) => *func,
        _ => ReduceFn::Sum,
    };
    OpNeeds {
        operands,
        natural,
        factors: fs,
    }
}

/// The sharded window factors of an op and, for each, the `(operand, dim)` places carrying it.
pub(crate) fn windows(f: &OpFactors, fs: &FactorShardings) -> Vec<(usize, Vec<(usize, usize)>)> {
    rules::sharded_windows(f, fs)
        .into_iter()
        .map(|k| {
            let places = f
                .operands
                .iter()
                .enumerate()
                .flat_map(|(i, dims)| {
                    dims.iter()
                        .enumerate()
                        .filter(move |(_, fl)| fl.contains(&k))
                        .map(move |(d, _)| (i, d))
                })
                .collect();
            (k, places)
        })
        .filter(|(k, _)| f.factors[*k].kind == FactorKind::Window)
        .collect()
}
