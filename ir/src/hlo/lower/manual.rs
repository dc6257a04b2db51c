//! Manual regions (`shard_map`): `SPMDFullToShardShape`/`SPMDShardToFullShape` custom-calls,
//! `{manual}` parameters, and the collectives of a region's per-device code (`all-reduce`,
//! `all-gather`, `reduce-scatter`, `all-to-all`, `collective-permute`, `partition-id`).
//!
//! Which mesh axes a boundary splits and a collective spans depend on the module's mesh, which
//! is known only once every sharding is read; the nodes are pushed with their declared types
//! and a [`Fixup`] each, and [`resolve`] fills in the axes (see `crate::manual`).

use crate::error::IrError;
use crate::graph::{Graph, Node, Phase, Role, ValueId};
use crate::manual::{group_axes, permute_axes};
use crate::op::{Op, ReduceFn};
use crate::sharding::HloSharding;
use crate::types::TensorType;

use super::super::attrs;
use super::super::text::Instruction;
use super::{Lowered, Lowering};

/// What a manual node still needs from the module's mesh.
#[derive(Clone, Debug)]
pub(crate) enum Fixup {
    /// A `full_to_shard` splits as the annotation of this value (its operand) says.
    Enter(ValueId),
    /// A `shard_to_full` splits as its own annotation says.
    Exit,
    /// A collective over the devices of these `replica_groups` (device ids).
    Groups(Vec<Vec<u32>>),
    /// A collective-permute's `source_target_pairs` (device ids).
    Pairs(Vec<(u32, u32)>),
    /// `partition-id`: an `axis_index` over every mesh axis (the next node converts it).
    AllAxes,
    /// Nothing to fill in (a region over no axes).
    Keep,
}

impl Lowering<'_> {
    /// Pushes a node of declared type `ty` without inferring it (its axes come later).
    fn push_unresolved(
        &mut self,
        name: &str,
        op: Op,
        operands: Vec<ValueId>,
        ty: TensorType,
        fixup: Fixup,
    ) -> ValueId {
        self.graph.nodes.push(Node {
            name: name.to_string(),
            op,
            operands,
            ty,
            role: Role::Activation,
            phase: Phase::Forward,
            recompute: false,
        });
        let v = ValueId(self.graph.nodes.len() as u32 - 1);
        self.manual.push((v, fixup));
        v
    }

    /// `custom-call` `SPMDFullToShardShape` / `SPMDShardToFullShape`.
    pub(super) fn manual_boundary(
        &mut self,
        inst: &Instruction,
        enter: bool,
        operands: &[ValueId],
        ty: TensorType,
    ) -> Result<Lowered, String> {
        let [x] = operands[..] else {
            return Err("a manual region's boundary takes one operand".into());
        };
        let own = inst.attr("sharding").map(HloSharding::parse).transpose();
        let own = own.map_err(|e| e.to_string())?;
        // The manual side is `{manual}`; a sharding that is manual over part of the devices
        // only (`last_tile_dims={manual}`) is a region over some mesh axes, which shardc's
        // regions (manual over every axis) do not model.
        if enter && !matches!(own, Some(HloSharding::Manual)) {
            return Err(format!(
                "SPMDFullToShardShape with sharding {} is unsupported: only regions manual over \
                 every device (`sharding={{manual}}`) are",
                own.map_or("(none)".to_string(), |s| s.to_string())
            ));
        }
        let rank = ty.rank();
        let name = self.node_name(inst);
        let v = if enter {
            let op = Op::FullToShard {
                dims: vec![Vec::new(); rank],
            };
            self.push_unresolved(&name, op, vec![x], ty, Fixup::Enter(x))
        } else {
            let op = Op::ShardToFull {
                dims: vec![Vec::new(); rank],
            };
            self.push_unresolved(&name, op, vec![x], ty, Fixup::Exit)
        };
        Ok(Lowered::Node(v))
    }

    /// A parameter with `sharding={manual}`: the same value on every device, entering a
    /// region over no axes (`NAME` is the input, `NAME.manual` the per-device value).
    pub(super) fn manual_parameter(
        &mut self,
        name: &str,
        ty: &TensorType,
    ) -> Result<Lowered, String> {
        let Lowered::Node(x) = self.parameter(name, ty)? else {
            unreachable!("invariant: an array parameter is one node")
        };
        let n = self.fresh_name(&format!("{name}.manual"));
        let op = Op::FullToShard {
            dims: vec![Vec::new(); ty.rank()],
        };
        let v = self.push_unresolved(&n, op, vec![x], ty.clone(), Fixup::Keep);
        Ok(Lowered::Node(v))
    }

    /// `call-start` (an asynchronous call): the callee inlined, as XLA's async tuple
    /// `((operands), (results), context)`; the context is a u32 scalar, per-device when an
    /// operand is. `call-done` gives the results.
    pub(super) fn call_start(
        &mut self,
        inst: &Instruction,
        operand_names: &[String],
    ) -> Result<Lowered, String> {
        let args = self.lowered_operands(operand_names)?;
        let results = self.inline_call(inst, operand_names)?;
        let name = self.node_name(inst);
        let u32s = TensorType::scalar(crate::dtype::DType::U32);
        let ctx_name = self.fresh_name(&format!("{name}.context"));
        let zero = crate::op::Literal::Splat(0.0);
        let mut ctx = self.push(
            &ctx_name,
            Op::Constant { value: zero },
            vec![],
            u32s.clone(),
        )?;
        let mut leaves = Vec::new();
        for a in &args {
            super::flatten(a, &mut leaves);
        }
        let manual = crate::manual::manual_values(&self.graph);
        if leaves
            .iter()
            .any(|v| manual.get(v.index()).copied().unwrap_or(false))
        {
            let n = self.fresh_name(&format!("{name}.context.manual"));
            let op = Op::FullToShard { dims: Vec::new() };
            ctx = self.push_unresolved(&n, op, vec![ctx], u32s, Fixup::Keep);
        }
        Ok(Lowered::Tuple(vec![
            Lowered::Tuple(args),
            results,
            Lowered::Node(ctx),
        ]))
    }

    /// A collective of a region's per-device code, or `partition-id`.
    pub(super) fn collective(
        &mut self,
        inst: &Instruction,
        operands: &[ValueId],
        ty: TensorType,
    ) -> Result<Lowered, String> {
        let name = self.node_name(inst);
        let op_code = inst.opcode.as_str();
        if op_code == "partition-id" {
            let i32s = TensorType::scalar(crate::dtype::DType::I32);
            let idx = self.fresh_name(&format!("{name}.index"));
            let op = Op::AxisIndex { axes: Vec::new() };
            let i = self.push_unresolved(&idx, op, vec![], i32s, Fixup::AllAxes);
            return self
                .push(&name, Op::Convert, vec![i], ty)
                .map(Lowered::Node);
        }
        let [x] = operands[..] else {
            return Err(format!(
                "{op_code} of {} operands is unsupported (one array operand is)",
                operands.len()
            ));
        };
        let dim = || -> Result<usize, String> {
            match inst
                .attr("dimensions")
                .map(attrs::dims)
                .transpose()?
                .as_deref()
            {
                Some([d]) => Ok(*d),
                _ => Err(format!("{op_code} needs `dimensions={{D}}` of one dim")),
            }
        };
        let func = || -> Result<ReduceFn, String> {
            let comp = inst.attr("to_apply").ok_or("expected to_apply=")?;
            self.reducer(comp)
        };
        let (op, fixup) = if op_code == "collective-permute" {
            let pairs = device_lists(inst.attr("source_target_pairs").unwrap_or("{}"))?;
            let pairs = pairs
                .iter()
                .map(|p| match p[..] {
                    [s, t] => Ok((s, t)),
                    _ => Err(format!("source_target_pairs entry {p:?} is not a pair")),
                })
                .collect::<Result<Vec<_>, String>>()?;
            let op = Op::CollectivePermute {
                axes: Vec::new(),
                pairs: Vec::new(),
            };
            (op, Fixup::Pairs(pairs))
        } else {
            let groups = replica_groups(inst.attr("replica_groups").unwrap_or("{}"))?;
            let axes = Vec::new();
            let op = match op_code {
                "all-reduce" => Op::AllReduce {
                    axes,
                    func: func()?,
                },
                "all-gather" => Op::AllGather { dim: dim()?, axes },
                "reduce-scatter" => Op::ReduceScatter {
                    dim: dim()?,
                    axes,
                    func: func()?,
                },
                "all-to-all" => {
                    let d = dim()?;
                    // HLO's array all-to-all splits and concatenates one dim; the StableHLO
                    // reader writes StableHLO's concat dim when it differs.
                    let concat_dim = match inst.attr("concat_dimension") {
                        Some(k) => k
                            .trim()
                            .parse()
                            .map_err(|_| format!("bad concat_dimension `{k}`"))?,
                        None => d,
                    };
                    Op::AllToAll {
                        split_dim: d,
                        concat_dim,
                        axes,
                    }
                }
                _ => unreachable!("invariant: called for collectives only"),
            };
            (op, Fixup::Groups(groups))
        };
        let v = self.push_unresolved(&name, op, vec![x], ty, fixup);
        Ok(Lowered::Node(v))
    }
}

/// `{{0,1},{2,3}}` as lists of device ids.
fn device_lists(s: &str) -> Result<Vec<Vec<u32>>, String> {
    let t = s.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("expected `{{{{..}},..}}`, got `{t}`"))?;
    let mut out = Vec::new();
    for part in inner.split('}') {
        let part = part.trim().trim_start_matches(',').trim();
        if part.is_empty() {
            continue;
        }
        let ids = part
            .strip_prefix('{')
            .ok_or_else(|| format!("expected `{{..}}` in `{t}`"))?;
        let ids: Vec<u32> = ids
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(|x| {
                x.parse()
                    .map_err(|_| format!("bad device id `{x}` in `{t}`"))
            })
            .collect::<Result<_, _>>()?;
        out.push(ids);
    }
    Ok(out)
}

/// `replica_groups={{0,1},{2,3}}` or the iota form `[2,2]<=[4]` (`[G,S]<=[..]T(..)`).
fn replica_groups(s: &str) -> Result<Vec<Vec<u32>>, String> {
    let t = s.trim();
    if !t.starts_with('[') {
        return device_lists(t);
    }
    let parsed = HloSharding::parse(&format!("{{devices={t}}}"))
        .map_err(|e| format!("replica_groups `{t}`: {e}"))?;
    let HloSharding::Tiled(tiled) = parsed else {
        return Err(format!("replica_groups `{t}`: expected `[G,S]<=[..]`"));
    };
    let [_, size] = tiled.tile[..] else {
        return Err(format!(
            "replica_groups `{t}`: expected two dims (groups, group size)"
        ));
    };
    let ids = tiled.devices.expand();
    Ok(ids
        .chunks(size.max(1) as usize)
        .map(<[u32]>::to_vec)
        .collect())
}

/// Fills in the mesh axes of the manual nodes of `graph` (its mesh and annotations set).
pub(crate) fn resolve(graph: &mut Graph, fixups: &[(ValueId, Fixup)]) -> Result<(), IrError> {
    if fixups.is_empty() {
        return Ok(());
    }
    let mesh = graph.mesh.clone().ok_or_else(|| {
        IrError::Graph("a manual region needs a mesh, and the module names none".into())
    })?;
    for (v, fixup) in fixups {
        let node = &graph.nodes[v.index()];
        let err = |m: String| IrError::node(&node.name, node.op.name(), m);
        let annotated = |of: ValueId| {
            let name = &graph.nodes[of.index()].name;
            graph
                .annotations
                .iter()
                .find(|a| &a.value == name)
                .map(|a| a.sharding.dims.iter().map(|d| d.axes.clone()).collect())
                .ok_or_else(|| {
                    err(format!(
                        "`{name}` carries no sharding on the mesh {mesh}, so the region's \
                         split is unknown"
                    ))
                })
        };
        let op = match (fixup, &node.op) {
            (Fixup::Enter(of), Op::FullToShard { .. }) => Op::FullToShard {
                dims: annotated(*of)?,
            },
            (Fixup::Exit, Op::ShardToFull { .. }) => Op::ShardToFull {
                dims: annotated(*v)?,
            },
            (Fixup::AllAxes, _) => {
                if mesh
                    .devices
                    .iter()
                    .enumerate()
                    .any(|(i, &d)| d as usize != i)
                {
                    return Err(err(format!(
                        "partition-id on the mesh {mesh} whose devices {:?} are not in order",
                        mesh.devices
                    )));
                }
                let axes = mesh.axes.iter().map(|a| a.name.clone()).collect();
                Op::AxisIndex { axes }
            }
            (Fixup::Groups(groups), op) => {
                let axes = group_axes(&mesh, groups).map_err(err)?;
                match op.clone() {
                    Op::AllReduce { func, .. } => Op::AllReduce { axes, func },
                    Op::AllGather { dim, .. } => Op::AllGather { dim, axes },
                    Op::ReduceScatter { dim, func, .. } => Op::ReduceScatter { dim, axes, func },
                    Op::AllToAll {
                        split_dim,
                        concat_dim,
                        ..
                    } => Op::AllToAll {
                        split_dim,
                        concat_dim,
                        axes,
                    },
                    op => op,
                }
            }
            (Fixup::Pairs(pairs), _) => {
                let (axes, pairs) = permute_axes(&mesh, pairs).map_err(err)?;
                Op::CollectivePermute { axes, pairs }
            }
            (_, op) => op.clone(),
        };
        graph.nodes[v.index()].op = op;
    }
    // The region's per-device values carry no sharding of their own: drop what the module's
    // `{manual}` shardings could not say anyway (propagation fixes them, see crate::manual).
    let manual = crate::manual::manual_values(graph);
    let keep: Vec<bool> = {
        let index = graph.name_index();
        graph
            .annotations
            .iter()
            .map(|a| {
                index
                    .get(a.value.as_str())
                    .is_none_or(|v| !manual[v.index()])
            })
            .collect()
    };
    let mut k = keep.into_iter();
    graph.annotations.retain(|_| k.next().unwrap_or(true));
    crate::manual::check_regions(graph)
}
