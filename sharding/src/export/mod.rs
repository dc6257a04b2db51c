//! Plans handed back to the frameworks: a graph's [`ShardingAssignment`] written as what the
//! user's framework takes.
//!
//! - [`export_jax`]: a Python snippet with the `Mesh` and one `NamedSharding(mesh,
//!   PartitionSpec(...))` per input and parameter;
//! - [`export_torch`]: a `torch.distributed` snippet: the `DeviceMesh`, a `parallelize_module` plan
//!   with `ColwiseParallel` / `RowwiseParallel` / `SequenceParallel` for the modules whose
//!   weights are split that way, `fully_shard` where parameters are split over the data-parallel
//!   axis (ZeRO-3), and `distribute_tensor` placements for everything else;
//! - [`export_sdy`]: every value with its Shardy sharding attribute;
//! - [`export_hlo`]: an HLO module (from `ir::hlo::import`) printed back with XLA's sharding on
//!   every instruction; [`export_hlo_graph`]: any graph (ONNX, JSON) printed as an HLO module of
//!   its own with a sharding on every instruction.
//!
//! Values are named as the source model names them: a graph imported from ONNX names its
//! parameters by the initializers' names, which PyTorch's exporters take from the module paths
//! (`model.layers.0.self_attn.q_proj.weight`).

mod torch;

use std::fmt::Write;

use shardc_ir::hlo::HloImport;
use shardc_ir::sharding::HloSharding;
use shardc_ir::{Graph, Mesh, Role, Sharding, ShardingAssignment, ValueId};

use crate::error::{Result, ShardingError};

pub use torch::{export_torch, torch_styles, TorchStyle};

pub(crate) fn invalid(value: &str, message: impl std::fmt::Display) -> ShardingError {
    ShardingError::Invalid {
        value: value.to_string(),
        message: message.to_string(),
    }
}

fn check(g: &Graph, a: &ShardingAssignment) -> Result<()> {
    if a.shardings.len() != g.len() {
        return Err(invalid(
            &g.name,
            format!(
                "the assignment has {} shardings for a graph of {} nodes",
                a.shardings.len(),
                g.len()
            ),
        ));
    }
    Ok(())
}

/// The graph's inputs and parameters, in graph order.
fn interface(g: &Graph) -> Vec<ValueId> {
    g.inputs()
        .filter(|&v| {
            matches!(
                g.node(v).role,
                Role::Input | Role::Parameter | Role::OptimizerState
            )
        })
        .collect()
}

/// A Python string literal.
pub(crate) fn py_str(s: &str) -> String {
    format!("{s:?}")
}

/// `np.array([...]).reshape(...)` of the mesh's device ids, for frameworks that index devices.
fn device_grid(mesh: &Mesh) -> String {
    let shape: Vec<String> = mesh.axes.iter().map(|a| a.size.to_string()).collect();
    let ids: Vec<String> = mesh.devices.iter().map(u32::to_string).collect();
    format!(
        "np.array([{}]).reshape({})",
        ids.join(", "),
        shape.join(", ")
    )
}

/// A JAX snippet: the `Mesh` over the first `n` devices (in the plan's device order) and a
/// `NamedSharding` per input and parameter, keyed by name, with `place(arrays)` putting a dict
/// of host arrays onto the devices.
pub fn export_jax(g: &Graph, a: &ShardingAssignment) -> Result<String> {
    check(g, a)?;
    let mesh = &a.mesh;
    let mut s = String::new();
    let names: Vec<String> = mesh.axes.iter().map(|x| py_str(&x.name)).collect();
    let _ = writeln!(s, "# shardc plan for `{}` on mesh {mesh}", g.name);
    s.push_str("import jax\nimport numpy as np\nfrom jax.sharding import Mesh, NamedSharding, PartitionSpec as P\n\n");
    let _ = writeln!(
        s,
        "devices = np.array(jax.devices())[{}]",
        device_grid(mesh)
    );
    let axes = match names.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", names.join(", ")),
    };
    let _ = writeln!(s, "mesh = Mesh(devices, {axes})");
    s.push_str("shardings = {\n");
    for v in interface(g) {
        let sh = &a.shardings[v.index()];
        let spec = sh.to_jax().map_err(|e| invalid(&g.node(v).name, e))?;
        let _ = writeln!(
            s,
            "    {}: NamedSharding(mesh, {spec}),",
            py_str(&g.node(v).name)
        );
    }
    s.push_str("}\n\n\ndef place(arrays):\n    \"\"\"Puts host arrays (a dict by name) on the mesh as the plan shards them.\"\"\"\n");
    s.push_str("    return {k: jax.device_put(v, shardings[k]) for k, v in arrays.items()}\n");
    Ok(s)
}

/// Every value with its Shardy sharding (`#sdy.sharding<@mesh, [{"tp"}, {}]>`), after the
/// `sdy.mesh` the attributes refer to: one line per value, `%name: type sharding`.
pub fn export_sdy(g: &Graph, a: &ShardingAssignment) -> Result<String> {
    check(g, a)?;
    let axes: Vec<String> = a
        .mesh
        .axes
        .iter()
        .map(|x| format!("\"{}\"={}", x.name, x.size))
        .collect();
    let mut s = format!("sdy.mesh @mesh = <[{}]>\n", axes.join(", "));
    for v in g.ids() {
        let n = g.node(v);
        let sh = a.shardings[v.index()]
            .to_shardy("mesh")
            .map_err(|e| invalid(&n.name, e))?;
        let _ = writeln!(s, "%{}: {} {}", n.name, n.ty, sh);
    }
    Ok(s)
}

/// Reads back what [`export_sdy`] wrote: the sharding of each named value.
pub fn parse_sdy(text: &str) -> Result<Vec<(String, Sharding)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let bad = |m: String| invalid(&format!("line {}", i + 1), m);
        let rest = line
            .strip_prefix('%')
            .ok_or_else(|| bad("expected `%name: type #sdy.sharding<..>`".into()))?;
        let (name, rest) = rest
            .split_once(": ")
            .ok_or_else(|| bad("expected `: ` after the name".into()))?;
        let at = rest
            .find("#sdy.sharding")
            .ok_or_else(|| bad("no #sdy.sharding".into()))?;
        let parsed =
            shardc_ir::sharding::ShardyText::parse(&rest[at..]).map_err(|e| bad(e.to_string()))?;
        out.push((name.to_string(), parsed.sharding));
    }
    Ok(out)
}

/// The HLO module `import` came from, printed with the assignment's sharding on every ENTRY
/// instruction (XLA's text form, as its after-propagation dump prints it). The assignment must
/// be over the graph `import.graph`.
pub fn export_hlo(import: &HloImport, a: &ShardingAssignment) -> Result<String> {
    check(&import.graph, a)?;
    let mut shardings = Vec::with_capacity(a.shardings.len());
    for (v, s) in a.shardings.iter().enumerate() {
        let h = HloSharding::from_sharding(s, &a.mesh)
            .map_err(|e| invalid(&import.graph.nodes[v].name, e))?;
        shardings.push(Some(h));
    }
    shardc_ir::hlo::print_with_shardings(import, &shardings)
        .map_err(|e| invalid(&import.graph.name, e))
}

/// Any graph as an HLO module (`ir::hlo::print_graph`, one instruction per node) with the
/// assignment's sharding on every instruction, and each node's instruction name. XLA's
/// shardings have no pending sums: a value that is a partial sum prints as the sum it becomes
/// (its partial axes replicated), as XLA's partitioner reduces it where it arises.
pub fn export_hlo_graph(g: &Graph, a: &ShardingAssignment) -> Result<(String, Vec<String>)> {
    check(g, a)?;
    let mut shardings = Vec::with_capacity(a.shardings.len());
    for (v, s) in a.shardings.iter().enumerate() {
        let reduced = Sharding {
            partial: Vec::new(),
            ..s.clone()
        };
        let h = HloSharding::from_sharding(&reduced, &a.mesh)
            .map_err(|e| invalid(&g.nodes[v].name, e))?;
        shardings.push(Some(h));
    }
    shardc_ir::hlo::print_graph(g, &shardings).map_err(|e| invalid(&g.name, e))
}
