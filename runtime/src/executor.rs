//! The reference executor: runs a graph on one CPU device, node by node, freeing each value
//! after its last use (memory stays proportional to the live values, not the graph).
//!
//! The same loop runs each device of a mesh run; the device supplies what is not a local
//! kernel (collectives, `axis_index`, send/recv) through [`DeviceOps`].

use std::borrow::Cow;

use shardc_ir::{Graph, Node, Op, ValueId};

use crate::error::RuntimeError;
pub use crate::executor_plan::Prepared;
use crate::executor_plan::Schedule;
use crate::tensor::Tensor;

/// What a device provides beyond the local kernels.
pub(crate) trait DeviceOps {
    /// Computes a node that needs other devices or the device's identity. Operands are given
    /// by value: moved out when this node is their last use, cloned otherwise.
    fn mesh_op(&mut self, node: &Node, operands: Vec<Tensor>) -> Result<Tensor, RuntimeError>;
    /// Called before each node runs (failure injection, cancellation checks).
    fn before_node(&mut self, _v: ValueId, _node: &Node) -> Result<(), RuntimeError> {
        Ok(())
    }
    /// Whether ops with effects on other devices (collectives, send/recv) must run even when
    /// their value is not needed, so that every device takes part in every collective.
    fn runs_all_effects(&self) -> bool {
        false
    }
}

/// The single device: ops that need a mesh are errors.
pub(crate) struct SingleDevice;

impl DeviceOps for SingleDevice {
    fn mesh_op(&mut self, node: &Node, _operands: Vec<Tensor>) -> Result<Tensor, RuntimeError> {
        Err(RuntimeError::node(
            &node.name,
            node.op.name(),
            format!(
                "{} needs the mesh executor (run_spmd), not the single-device reference executor",
                node.op.name()
            ),
        ))
    }
}

/// Runs `g` on one device: `inputs` in the order of `g.inputs()`, returns the values of
/// `g.outputs` in order.
pub fn execute(g: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
    execute_values(g, inputs, &g.outputs)
}

/// Runs `g` on one device and returns the values `wanted` (any values, also intermediate
/// ones), in order. Only the nodes these depend on are computed.
pub fn execute_values(
    g: &Graph,
    inputs: &[Tensor],
    wanted: &[ValueId],
) -> Result<Vec<Tensor>, RuntimeError> {
    // A manual region (shard_map) is per-device code: written out once per device, with its
    // collectives as the sums and concatenations they compute, it runs on one device.
    if shardc_ir::manual::has_manual(g) {
        let (expanded, map) = shardc_ir::manual::expand(g)?;
        let wanted: Vec<ValueId> = wanted
            .iter()
            .map(|w| map.get(w.index()).copied().unwrap_or(*w))
            .collect();
        return Prepared::for_values(&expanded, &wanted)?.run(inputs);
    }
    // Borrowed, not copied: the caller keeps its inputs (a GPT-2's parameters are 500 MB).
    Prepared::for_values(g, wanted)?.run(inputs)
}

/// Whether a node is computed by the device rather than by a local kernel.
pub(crate) fn is_mesh_op(op: &Op) -> bool {
    op.is_collective() || matches!(op, Op::AxisIndex { .. })
}

/// A device's own tensors as `run_graph` inputs.
pub(crate) fn owned(inputs: Vec<Tensor>) -> Vec<Cow<'static, Tensor>> {
    inputs.into_iter().map(Cow::Owned).collect()
}

/// The node loop shared by the reference and mesh executors. `g` must be verified. Inputs may
/// be borrowed (the reference executor) or owned (a device's shards, freed after last use).
/// The schedule is made for this one run; [`Prepared`] keeps it for repeated runs.
pub(crate) fn run_graph(
    g: &Graph,
    inputs: Vec<Cow<'_, Tensor>>,
    wanted: &[ValueId],
    dev: &mut dyn DeviceOps,
) -> Result<Vec<Tensor>, RuntimeError> {
    Schedule::new(g, wanted, dev.runs_all_effects())?.run(g, inputs, wanted, dev)
}

/// Which nodes a run computes and when each value is last read: what the executor frees by, and
/// what `memory::peak_bytes_for` replays.
pub(crate) struct Lifetimes {
    /// The node is computed: it is wanted, or something computed reads it (or, with
    /// `effects`, it is a collective).
    pub needed: Vec<bool>,
    /// The node is one of the wanted outputs (kept to the end).
    pub is_wanted: Vec<bool>,
    /// The last computed node that reads the value, if any.
    pub last_use: Vec<Option<usize>>,
}

/// The lifetimes of a run computing `wanted` (ids past the graph are ignored); `effects`:
/// collectives run even when nothing needs them (the mesh executor).
pub(crate) fn lifetimes(g: &Graph, wanted: &[ValueId], effects: bool) -> Lifetimes {
    let n = g.nodes.len();
    let mut needed = vec![false; n];
    let mut is_wanted = vec![false; n];
    for w in wanted.iter().filter(|w| w.index() < n) {
        needed[w.index()] = true;
        is_wanted[w.index()] = true;
    }
    for i in (0..n).rev() {
        if effects && g.nodes[i].op.is_collective() {
            needed[i] = true;
        }
        if needed[i] {
            for o in &g.nodes[i].operands {
                needed[o.index()] = true;
            }
        }
    }
    let mut last_use = vec![None; n];
    for (i, node) in g.nodes.iter().enumerate().filter(|(i, _)| needed[*i]) {
        for o in &node.operands {
            last_use[o.index()] = Some(i);
        }
    }
    Lifetimes {
        needed,
        is_wanted,
        last_use,
    }
}
