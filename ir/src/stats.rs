//! Whole-graph figures: parameter count, FLOPs (from op factors), bytes by role.

use serde::Serialize;

use crate::graph::{Graph, Phase, Role};
use crate::op::Op;

/// What `shardc check` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GraphStats {
    pub nodes: usize,
    /// Elements of every parameter.
    pub parameters: u64,
    pub parameter_bytes: u64,
    /// FLOPs of one execution of the graph, summed from op factors.
    pub flops: u128,
    /// The part of `flops` in dot_general and convolution.
    pub matmul_flops: u128,
    /// FLOPs of nodes marked for recomputation (run a second time in the backward pass).
    pub recompute_flops: u128,
    /// Bytes of every value computed in the forward phase.
    pub activation_bytes: u64,
    pub input_bytes: u64,
    pub optimizer_state_bytes: u64,
    /// Node counts per phase: forward, backward_input, backward_weight, update.
    pub phases: [usize; 4],
    pub collectives: usize,
}

impl GraphStats {
    pub fn of(g: &Graph) -> Self {
        let mut s = GraphStats {
            nodes: g.len(),
            parameters: 0,
            parameter_bytes: 0,
            flops: 0,
            matmul_flops: 0,
            recompute_flops: 0,
            activation_bytes: 0,
            input_bytes: 0,
            optimizer_state_bytes: 0,
            phases: [0; 4],
            collectives: 0,
        };
        for v in g.ids() {
            let n = g.node(v);
            let bytes = n.ty.size_bytes();
            match n.role {
                Role::Parameter => {
                    s.parameters = s.parameters.saturating_add(n.ty.shape.elements());
                    s.parameter_bytes = s.parameter_bytes.saturating_add(bytes);
                }
                Role::Input => s.input_bytes = s.input_bytes.saturating_add(bytes),
                Role::OptimizerState => {
                    s.optimizer_state_bytes = s.optimizer_state_bytes.saturating_add(bytes)
                }
                Role::Activation if n.phase == Phase::Forward && !n.recompute => {
                    s.activation_bytes = s.activation_bytes.saturating_add(bytes)
                }
                _ => {}
            }
            s.phases[n.phase as usize] += 1;
            if n.op.is_collective() {
                s.collectives += 1;
            }
            if matches!(n.op, Op::Input { .. } | Op::Constant { .. }) {
                continue;
            }
            let f = g.factors(v).flops();
            s.flops = s.flops.saturating_add(f);
            if n.recompute {
                s.recompute_flops = s.recompute_flops.saturating_add(f);
            }
            if matches!(n.op, Op::DotGeneral { .. } | Op::Convolution(_)) {
                s.matmul_flops = s.matmul_flops.saturating_add(f);
            }
        }
        s
    }
}
