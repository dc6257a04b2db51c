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
    /// Bytes of the parameters (and of the optimizer state) split along the axis, and in all.
    weight_bytes: (f64, f64),
    state_bytes: (f64, f64),
}

impl AxisUse {
    /// Whether most of the weights are split along the axis (not only, say, one table).
    fn most_weights(&self) -> bool {
        self.weight_bytes.0 >= 0.5 * self.weight_bytes.1 && self.weight_bytes.1 > 0.0
    }

    /// Whether most of the optimizer state is split along the axis.
    fn most_state(&self) -> bool {
        self.state_bytes.0 >= 0.5 * self.state_bytes.1 && self.state_bytes.1 > 0.0
    }
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
        let split = s.dims.iter().any(|d| d.axes.iter().any(|y| y == axis));
        let bytes = n.ty.size_bytes() as f64;
        match n.role {
            Role::Parameter => {
                u.weight_bytes.1 += bytes;
                if split {
                    u.weight_bytes.0 += bytes;
                }
            }
            Role::OptimizerState => {
                u.state_bytes.1 += bytes;
                if split {
                    u.state_bytes.0 += bytes;
                }
            }
            _ => {}
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
    let mut sharded_state: Vec<String> = Vec::new();
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
        } else if u.batch && u.weights && u.most_weights() {
            "fully sharded data parallel"
        } else if u.batch {
            // Megatron's distributed optimizer: the update sharded, the weights whole.
            if zero == Zero::None && u.most_state() {
                sharded_state.push(axis.name.clone());
            }
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
    if !sharded_state.is_empty() {
        parts.push(format!(
            "optimizer step sharded over {}",
            sharded_state.join(",")
        ));
    }
    if sequence {
        parts.push("sequence parallel on".to_string());
    }
    if micro_batches > 1 {
        parts.push(format!("{micro_batches} micro-batches"));
    }
    parts.join(", ")
}
