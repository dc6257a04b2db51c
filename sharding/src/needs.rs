//! What an op needs from a given assignment: the sharding its factor rule requires of each
//! operand given its result's sharding, and the sharding its result comes out in.

use std::collections::BTreeSet;

use shardc_ir::{
    FactorKind, Graph, Op, OpFactors, ReduceFn, Sharding, ShardingAssignment, ValueId,
};

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
/// reduced) follow the operands, by precedence in operand order.
pub(crate) fn op_needs(
    graph: &Graph,
    n: ValueId,
    f: &OpFactors,
    assignment: &ShardingAssignment,
) -> OpNeeds {
    let node = graph.node(n);
    let mesh = &assignment.mesh;
    let in_result: BTreeSet<usize> = f.result.iter().flatten().copied().collect();
    let mut cands: Vec<Vec<Candidate>> = vec![Vec::new(); f.factors.len()];
    let result = node.operands.len();
    for (k, axes, _) in rules::project(
        &f.result,
        &f.factors,
        &assignment.shardings[n.index()],
        mesh,
    ) {
        cands[k].push(Candidate {
            axes,
            priority: 0,
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
                    priority: 1,
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
