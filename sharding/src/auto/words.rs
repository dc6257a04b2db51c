//! The strategy of an assignment in words: what each mesh axis splits, and where it lies.

use shardc_cost_model::{Cluster, Zero};
use shardc_ir::{Graph, Op, Role, ShardingAssignment};

/// How one mesh axis is used.
#[derive(Default)]
struct AxisUse {
    batch: bool,
    weights: bool,
    experts: bool,
    spatial: bool,
    sequence: bool,
    anything: bool,
}

fn uses(g: &Graph, a: &ShardingAssignment, axis: &str) -> AxisUse {
    let mut u = AxisUse::default();
    let on = |v: usize, d: usize| {
        a.shardings[v]
            .dims
            .get(d)
            .is_some_and(|x| x.axes.iter().any(|y| y == axis))
    };
    for v in g.ids() {
        let i = v.index();
        let n = g.node(v);
        let s = &a.shardings[i];
        if s.used_axes().contains(&axis) {
            u.anything = true;
        }
        match n.role {
            Role::Input if n.ty.rank() > 0 && on(i, 0) => u.batch = true,
            Role::Parameter if s.dims.iter().any(|d| d.axes.iter().any(|y| y == axis)) => {
                if n.ty.rank() >= 3 && on(i, 0) {
                    u.experts = true;
                } else {
                    u.weights = true;
                }
            }
            Role::Activation => {
                // The batch (or token) dim of a layer's product with its weights: the step's
                // data is split along it, whether or not the input was.
                let reads_weights = n
                    .operands
                    .iter()
                    .any(|o| g.node(*o).role == Role::Parameter);
                if matches!(n.op, Op::DotGeneral { .. } | Op::Convolution(_))
                    && reads_weights
                    && n.ty.rank() > 0
                    && on(i, 0)
                    && n.phase == shardc_ir::Phase::Forward
                {
                    u.batch = true;
                }
                if let Op::Convolution(_) = n.op {
                    if let Some(&x) = n.operands.first() {
                        let r = g.ty(x).rank();
                        if (2..r).any(|d| on(x.index(), d)) {
                            u.spatial = true;
                        }
                    }
                }
                // [batch, sequence, hidden] activations split along the sequence.
                if n.ty.rank() == 3 && on(i, 1) && !on(i, 0) {
                    u.sequence = true;
                }
            }
            _ => {}
        }
    }
    u
}

/// `tensor parallel 8 within each node, data parallel 32 across nodes, ZeRO-1, sequence
/// parallel on`: innermost axis first.
pub(crate) fn describe(
    g: &Graph,
    a: &ShardingAssignment,
    cluster: &Cluster,
    zero: Zero,
    micro_batches: u64,
) -> String {
    let mut parts = Vec::new();
    let mut sequence = false;
    for axis in a.mesh.axes.iter().rev() {
        if axis.size == 1 {
            continue;
        }
        let u = uses(g, a, &axis.name);
        let place = match cluster.placement(&a.mesh, std::slice::from_ref(&axis.name)) {
            Ok(p) if p.crosses_nodes() && p.per_node > 1 => "across and within nodes",
            Ok(p) if p.crosses_nodes() => "across nodes",
            _ => "within each node",
        };
        let what = if u.experts {
            "expert parallel"
        } else if u.batch && u.weights {
            "fully sharded data parallel"
        } else if u.batch {
            "data parallel"
        } else if u.spatial {
            "spatial parallel"
        } else if u.weights {
            sequence |= u.sequence;
            "tensor parallel"
        } else if u.anything {
            "activation sharding"
        } else {
            "unused (replicated)"
        };
        parts.push(format!("{what} {} {place}", axis.size));
    }
    if parts.is_empty() {
        parts.push("one device".to_string());
    }
    if zero != Zero::None {
        parts.push(format!("ZeRO-{}", super::plan::zero_name(zero)));
    }
    if sequence {
        parts.push("sequence parallel on".to_string());
    }
    if micro_batches > 1 {
        parts.push(format!("{micro_batches} micro-batches"));
    }
    parts.join(", ")
}
