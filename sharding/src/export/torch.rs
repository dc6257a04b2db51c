//! The plan as a `torch.distributed` snippet.
//!
//! A weight's style is read off how the graph uses it, not off its layout: a weight whose only
//! split dim is a free dim of its matrix product is column-parallel, one whose split dim is the
//! contracted dim is row-parallel (this holds for `nn.Linear`'s `[out, in]` and for
//! transformers' `Conv1D` `[in, out]` alike); an embedding table split along the vocabulary is
//! row-parallel, along the hidden dim column-parallel (PyTorch's `RowwiseParallel` and
//! `ColwiseParallel` on `nn.Embedding`). Norm gains whose product is split along the sequence
//! are `SequenceParallel`. Parameters split along dim 0 over the axis that splits the batch are
//! ZeRO-3 (`fully_shard`). Every other split parameter gets its DTensor placements.

use std::collections::BTreeMap;
use std::fmt::Write;

use shardc_ir::{Graph, Op, Role, ShardingAssignment, ValueId};

use super::{check, invalid, py_str};
use crate::error::Result;

/// A `torch.distributed.tensor.parallel` style for one module.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TorchStyle {
    /// `ColwiseParallel()`: the output features are split.
    Colwise,
    /// `RowwiseParallel()`: the input features (the contracted dim) are split.
    Rowwise,
    /// `SequenceParallel()`: a norm run on a sequence-split activation.
    Sequence,
}

impl TorchStyle {
    fn python(self) -> &'static str {
        match self {
            TorchStyle::Colwise => "ColwiseParallel()",
            TorchStyle::Rowwise => "RowwiseParallel()",
            TorchStyle::Sequence => "SequenceParallel()",
        }
    }
}

/// How a parameter is used: by a matrix product (which of its dims are contracted) or as a
/// gathered table (which dim is indexed), through converts, copies and transposes.
enum Use {
    Dot { contracted: Vec<usize> },
    Table { axis: usize },
    Scale { result: ValueId },
    Other,
}

fn use_of(g: &Graph, users: &[Vec<ValueId>], p: ValueId) -> Use {
    // `dims[i]`: which parameter dim dim `i` of the current value is.
    let mut v = p;
    let mut dims: Vec<usize> = (0..g.ty(p).rank()).collect();
    for _ in 0..8 {
        let [u] = users[v.index()].as_slice() else {
            return Use::Other;
        };
        let node = g.node(*u);
        let k = node.operands.iter().position(|&o| o == v).unwrap_or(0);
        match &node.op {
            Op::Convert | Op::Copy => {}
            Op::Transpose { perm } => dims = perm.iter().map(|&q| dims[q]).collect(),
            Op::Broadcast { dims: bd } if g.ty(v).rank() == 1 => {
                let _ = bd;
                return single_scale(g, users, *u);
            }
            Op::DotGeneral {
                lhs_contract,
                rhs_contract,
                ..
            } => {
                let c = if k == 0 { lhs_contract } else { rhs_contract };
                return Use::Dot {
                    contracted: c.iter().map(|&d| dims[d]).collect(),
                };
            }
            Op::Gather { axis } if k == 0 => return Use::Table { axis: dims[*axis] },
            Op::Binary {
                func: shardc_ir::BinaryFn::Mul,
            } => return Use::Scale { result: *u },
            _ => return Use::Other,
        }
        v = *u;
    }
    Use::Other
}

fn single_scale(g: &Graph, users: &[Vec<ValueId>], b: ValueId) -> Use {
    match users[b.index()].as_slice() {
        [u] if matches!(
            g.node(*u).op,
            Op::Binary {
                func: shardc_ir::BinaryFn::Mul
            }
        ) =>
        {
            Use::Scale { result: *u }
        }
        _ => Use::Other,
    }
}

/// The data-parallel axes: those splitting dim 0 of a graph input (the batch).
fn batch_axes(g: &Graph, a: &ShardingAssignment) -> Vec<String> {
    let mut axes = Vec::new();
    for v in g.inputs().filter(|&v| g.node(v).role == Role::Input) {
        if let Some(d) = a.shardings[v.index()].dims.first() {
            for ax in &d.axes {
                if !axes.contains(ax) {
                    axes.push(ax.clone());
                }
            }
        }
    }
    axes
}

/// What the snippet says about the parameters.
#[derive(Default)]
struct TorchPlan {
    /// `(mesh axis, module path) → style`, one `parallelize_module` call per axis.
    styles: BTreeMap<(String, String), TorchStyle>,
    /// Parameter name → DTensor placements.
    placements: Vec<(String, String)>,
    /// The axis of `fully_shard`, if parameters are ZeRO-3 split.
    fsdp: Option<String>,
}

/// The module style each parameter's sharding takes, grouped by mesh axis.
pub fn torch_styles(
    g: &Graph,
    a: &ShardingAssignment,
) -> Result<Vec<(String, String, TorchStyle)>> {
    check(g, a)?;
    Ok(plan(g, a)?
        .styles
        .into_iter()
        .map(|((ax, m), s)| (ax, m, s))
        .collect())
}

fn plan(g: &Graph, a: &ShardingAssignment) -> Result<TorchPlan> {
    let users = g.users();
    let dp = batch_axes(g, a);
    let mut out = TorchPlan::default();
    let params: Vec<ValueId> = g
        .inputs()
        .filter(|&v| g.node(v).role == Role::Parameter)
        .collect();
    for &p in &params {
        let name = &g.node(p).name;
        let sh = &a.shardings[p.index()];
        let split: Vec<(usize, &Vec<String>)> = sh
            .dims
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.axes.is_empty())
            .map(|(i, d)| (i, &d.axes))
            .collect();
        let (module, leaf) = name.rsplit_once('.').unwrap_or(("", name.as_str()));
        let style = match (split.as_slice(), leaf, use_of(g, &users, p)) {
            ([(d, axes)], "weight", u) if axes.len() == 1 && !dp.contains(&axes[0]) => match u {
                Use::Dot { contracted } => Some((
                    axes[0].clone(),
                    if contracted.contains(d) {
                        TorchStyle::Rowwise
                    } else {
                        TorchStyle::Colwise
                    },
                )),
                Use::Table { axis } => Some((
                    axes[0].clone(),
                    if *d == axis {
                        TorchStyle::Rowwise
                    } else {
                        TorchStyle::Colwise
                    },
                )),
                _ => None,
            },
            ([], "weight", Use::Scale { result }) if g.ty(p).rank() == 1 => {
                // A norm's gain on an activation split along a dim other than the hidden one.
                let r = &a.shardings[result.index()];
                let n = r.dims.len();
                r.dims[..n.saturating_sub(1)]
                    .iter()
                    .flat_map(|d| d.axes.iter())
                    .find(|ax| !dp.contains(ax))
                    .map(|ax| (ax.clone(), TorchStyle::Sequence))
            }
            _ => None,
        };
        if let (Some((ax, st)), false) = (style, module.is_empty()) {
            out.styles.insert((ax, module.to_string()), st);
            continue;
        }
        if split.is_empty() {
            continue;
        }
        if let [(0, axes)] = split.as_slice() {
            if axes.len() == 1 && dp.contains(&axes[0]) {
                out.fsdp.get_or_insert_with(|| axes[0].clone());
                continue;
            }
        }
        out.placements.push((
            name.clone(),
            sh.to_dtensor(&a.mesh).map_err(|e| invalid(name, e))?,
        ));
    }
    // A bias goes with its module's style: ColwiseParallel splits it, RowwiseParallel keeps it
    // whole. Biases placed otherwise keep their explicit placements.
    let styled: Vec<(String, TorchStyle)> = out
        .styles
        .iter()
        .map(|((_, m), s)| (m.clone(), *s))
        .collect();
    out.placements.retain(|(name, pl)| {
        let Some((m, "bias")) = name.rsplit_once('.') else {
            return true;
        };
        !styled
            .iter()
            .any(|(sm, s)| sm == m && (*s == TorchStyle::Colwise) == pl.contains("Shard(0)"))
    });
    Ok(out)
}

/// A `torch.distributed` snippet applying the plan to the PyTorch model the graph came from:
/// `mesh`, and `apply_plan(model)` with `parallelize_module`, `distribute_tensor` and
/// `fully_shard` as the shardings are of those forms (see the module docs).
pub fn export_torch(g: &Graph, a: &ShardingAssignment) -> Result<String> {
    check(g, a)?;
    let p = plan(g, a)?;
    let mesh = &a.mesh;
    let mut s = String::new();
    let _ = writeln!(s, "# shardc plan for `{}` on mesh {mesh}", g.name);
    s.push_str(
        "import torch\nfrom torch.distributed.device_mesh import DeviceMesh, init_device_mesh\n",
    );
    s.push_str(
        "from torch.distributed.tensor import Partial, Replicate, Shard, distribute_tensor\n",
    );
    s.push_str("from torch.distributed.tensor.parallel import (\n    ColwiseParallel,\n    RowwiseParallel,\n    SequenceParallel,\n    parallelize_module,\n)\n");
    s.push_str("from torch.distributed.fsdp import fully_shard\n\n");
    let sizes: Vec<String> = mesh.axes.iter().map(|x| x.size.to_string()).collect();
    let names: Vec<String> = mesh.axes.iter().map(|x| py_str(&x.name)).collect();
    let tuple = |v: &[String]| {
        if v.len() == 1 {
            format!("({},)", v[0])
        } else {
            format!("({})", v.join(", "))
        }
    };
    let iota = mesh
        .devices
        .iter()
        .enumerate()
        .all(|(i, &d)| d as usize == i);
    if iota {
        let _ = writeln!(
            s,
            "mesh = init_device_mesh(\"cuda\", {}, mesh_dim_names={})",
            tuple(&sizes),
            tuple(&names)
        );
    } else {
        let ids: Vec<String> = mesh.devices.iter().map(u32::to_string).collect();
        let _ = writeln!(
            s,
            "mesh = DeviceMesh(\"cuda\", torch.tensor([{}]).reshape{}, mesh_dim_names={})",
            ids.join(", "),
            tuple(&sizes),
            tuple(&names)
        );
    }
    s.push_str("\n\ndef apply_plan(model):\n    \"\"\"Shards `model`'s parameters in place as the plan does; returns the model.\"\"\"\n");
    let mut axes: Vec<&String> = p.styles.keys().map(|(a, _)| a).collect();
    axes.dedup();
    for ax in axes {
        let _ = writeln!(s, "    parallelize_module(model, mesh[{}], {{", py_str(ax));
        for ((a2, m), st) in &p.styles {
            if a2 == ax {
                let _ = writeln!(s, "        {}: {},", py_str(m), st.python());
            }
        }
        s.push_str("    })\n");
    }
    if !p.placements.is_empty() {
        s.push_str("    placements = {\n");
        for (n, pl) in &p.placements {
            let _ = writeln!(s, "        {}: {pl},", py_str(n));
        }
        s.push_str("    }\n");
        s.push_str("    for name, param in list(model.named_parameters()):\n");
        s.push_str("        if name in placements:\n");
        s.push_str("            path, _, leaf = name.rpartition(\".\")\n");
        s.push_str("            owner = model.get_submodule(path) if path else model\n");
        s.push_str("            dt = distribute_tensor(param.data, mesh, placements[name])\n");
        s.push_str("            setattr(owner, leaf, torch.nn.Parameter(dt, requires_grad=param.requires_grad))\n");
    }
    if let Some(ax) = &p.fsdp {
        let _ = writeln!(s, "    fully_shard(model, mesh=mesh[{}])", py_str(ax));
    }
    s.push_str("    return model\n");
    Ok(s)
}
