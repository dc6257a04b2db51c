//! Manual regions (jax's `shard_map`, XLA's `SPMDFullToShardShape`/`SPMDShardToFullShape`).
//!
//! A region starts at [`Op::FullToShard`], which gives each device its block of a whole value,
//! and ends at [`Op::ShardToFull`]. Every value computed from a region's blocks (and every
//! collective or `axis_index`) up to the `shard_to_full` is a **per-device value**: its type is
//! the local shape, and each device holds its own. The region is manual over every mesh axis.
//!
//! - Propagation does not enter a region: per-device values are fixed replicated (each device
//!   keeps its own whole local value), the whole value entering a region is fixed to the
//!   region's sharding and the value leaving it too (`sharding::propagate`).
//! - The partitioner emits the region's nodes as written (they are per-device code already).
//! - The reference executor runs the program on one device: [`expand`] rewrites each region
//!   into one copy of its nodes per device, with the collectives written out as the sums,
//!   concatenations and slices of the devices' copies they compute, so the reference is the
//!   program's meaning without any device runtime.
//!
//! A graph input or output may itself be per-device (XLA's `sharding={manual}` on a
//! parameter): an input is then the same value on every device (a `full_to_shard` over no
//! axes), and an output is device 0's value, which is what a partitioned run gives back for a
//! replicated output.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::IrError;
use crate::graph::{Graph, Node, ValueId};
use crate::mesh::Mesh;
use crate::op::{BinaryFn, Literal, Op, ReduceFn};
use crate::types::TensorType;

/// Whether `g` has a manual region.
pub fn has_manual(g: &Graph) -> bool {
    g.nodes
        .iter()
        .any(|n| matches!(n.op, Op::FullToShard { .. }))
}

/// Per value of `g`: whether it is a per-device value of a manual region (all false when `g`
/// has no region: a partitioned program's collectives are not regions).
pub fn manual_values(g: &Graph) -> Vec<bool> {
    let mut m = vec![false; g.len()];
    if !has_manual(g) {
        return m;
    }
    for (i, n) in g.nodes.iter().enumerate() {
        m[i] = match n.op {
            Op::FullToShard { .. } => true,
            Op::ShardToFull { .. } => false,
            ref op if op.is_collective() || matches!(op, Op::AxisIndex { .. }) => true,
            _ => n.operands.iter().any(|o| m[o.index()]),
        };
    }
    m
}

/// Checks the regions of `g` are well formed: a `shard_to_full` reads a per-device value, a
/// `full_to_shard` a whole one (regions do not nest), no pipeline send or receive inside.
pub fn check_regions(g: &Graph) -> Result<(), IrError> {
    let m = manual_values(g);
    for (i, n) in g.nodes.iter().enumerate() {
        let operand_manual = n.operands.first().is_some_and(|o| m[o.index()]);
        let bad = match n.op {
            Op::ShardToFull { .. } if !operand_manual => {
                "its operand is not a per-device value of a manual region"
            }
            Op::FullToShard { .. } if operand_manual => {
                "its operand is already a per-device value (manual regions do not nest)"
            }
            Op::Send { .. } | Op::Recv { .. } if m[i] => {
                "pipeline sends and receives inside a manual region are unsupported"
            }
            _ => continue,
        };
        return Err(IrError::node(&n.name, n.op.name(), bad));
    }
    Ok(())
}

/// The mesh positions of the devices that share position `p`'s coordinates off `axes`, in
/// order of their linear index over `axes` (major first).
pub fn group_members(mesh: &Mesh, p: usize, axes: &[String]) -> Vec<usize> {
    let mut c = mesh.coords(p);
    let ks: Vec<usize> = axes.iter().filter_map(|a| mesh.axis_index(a)).collect();
    let n: u64 = ks.iter().map(|&k| mesh.axes[k].size).product();
    (0..n)
        .map(|mut lin| {
            for &k in ks.iter().rev() {
                c[k] = lin % mesh.axes[k].size;
                lin /= mesh.axes[k].size;
            }
            mesh.position(&c)
        })
        .collect()
}

fn position_of(mesh: &Mesh, device: u32) -> Result<usize, String> {
    mesh.devices
        .iter()
        .position(|&d| d == device)
        .ok_or_else(|| format!("device {device} is not on the mesh {mesh}"))
}

/// The mesh axes whose devices make up each of `groups` (XLA's `replica_groups`, device ids),
/// ordered so that a group's k-th device is the one at linear index k over them. Empty groups
/// mean one group of every device. Errors name the groups when they are not the devices of
/// one set of mesh axes.
pub fn group_axes(mesh: &Mesh, groups: &[Vec<u32>]) -> Result<Vec<String>, String> {
    let all: Vec<Vec<u32>>;
    let groups = if groups.is_empty() {
        let mut ids = mesh.devices.clone();
        ids.sort_unstable();
        all = vec![ids];
        &all[..]
    } else {
        groups
    };
    let shown = || {
        let gs: Vec<String> = groups.iter().take(8).map(|g| format!("{g:?}")).collect();
        format!("replica groups {}", gs.join(", "))
    };
    let mut seen = BTreeSet::new();
    let pos: Vec<Vec<usize>> = groups
        .iter()
        .map(|g| g.iter().map(|&d| position_of(mesh, d)).collect())
        .collect::<Result<_, _>>()?;
    for &p in pos.iter().flatten() {
        if !seen.insert(p) {
            return Err(format!("{}: a device is in two groups", shown()));
        }
    }
    if seen.len() as u64 != mesh.num_devices() {
        return Err(format!(
            "{} cover {} of the mesh's {} devices",
            shown(),
            seen.len(),
            mesh.num_devices()
        ));
    }
    let c0: Vec<Vec<u64>> = pos[0].iter().map(|&p| mesh.coords(p)).collect();
    let varying: Vec<String> = (0..mesh.axes.len())
        .filter(|&k| c0.iter().any(|c| c[k] != c0[0][k]))
        .map(|k| mesh.axes[k].name.clone())
        .collect();
    for order in orders(&varying) {
        let fits = pos.iter().all(|g| {
            let members = group_members(mesh, g[0], &order);
            members == *g
        });
        if fits {
            return Ok(order);
        }
    }
    Err(format!(
        "{} are not the devices of a set of mesh axes of {mesh} (devices {:?}), in order",
        shown(),
        mesh.devices
    ))
}

/// `axes` in every order (mesh order first); a long list only in mesh order.
fn orders(axes: &[String]) -> Vec<Vec<String>> {
    if axes.len() > 5 {
        return vec![axes.to_vec()];
    }
    fn go(rest: &mut Vec<String>, cur: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if rest.is_empty() {
            out.push(cur.clone());
            return;
        }
        for i in 0..rest.len() {
            let a = rest.remove(i);
            cur.push(a.clone());
            go(rest, cur, out);
            cur.pop();
            rest.insert(i, a);
        }
    }
    let mut out = Vec::new();
    go(&mut axes.to_vec(), &mut Vec::new(), &mut out);
    out
}

/// XLA's `source_target_pairs` (device ids) as a collective-permute over mesh axes: the axes
/// along which pairs move, and the pairs as linear coordinates over them, the same in every
/// group of devices that differ only along those axes.
pub fn permute_axes(
    mesh: &Mesh,
    pairs: &[(u32, u32)],
) -> Result<(Vec<String>, Vec<(u64, u64)>), String> {
    let pp: Vec<(usize, usize)> = pairs
        .iter()
        .map(|&(s, t)| Ok((position_of(mesh, s)?, position_of(mesh, t)?)))
        .collect::<Result<_, String>>()?;
    let axes: Vec<String> = (0..mesh.axes.len())
        .filter(|&k| {
            pp.iter()
                .any(|&(s, t)| mesh.coords(s)[k] != mesh.coords(t)[k])
        })
        .map(|k| mesh.axes[k].name.clone())
        .collect();
    let mut per_group: BTreeMap<usize, BTreeSet<(u64, u64)>> = BTreeMap::new();
    for &(s, t) in &pp {
        let key = group_members(mesh, s, &axes)[0];
        per_group
            .entry(key)
            .or_default()
            .insert((mesh.linear_index(s, &axes), mesh.linear_index(t, &axes)));
    }
    let n_axes: u64 = axes.iter().filter_map(|a| mesh.axis_size(a)).product();
    let groups = mesh.num_devices() / n_axes.max(1);
    let first = per_group.values().next().cloned().unwrap_or_default();
    if per_group.len() as u64 != groups || per_group.values().any(|s| *s != first) {
        return Err(format!(
            "source_target_pairs {pairs:?} do not move data the same way in every group of \
             devices along mesh axes [{}] of {mesh}",
            axes.join(", ")
        ));
    }
    Ok((axes, first.into_iter().collect()))
}

fn combine(f: ReduceFn) -> BinaryFn {
    match f {
        ReduceFn::Sum => BinaryFn::Add,
        ReduceFn::Max => BinaryFn::Max,
        ReduceFn::Min => BinaryFn::Min,
    }
}

/// Builds the expanded graph.
struct Expander<'g> {
    g: &'g Graph,
    mesh: &'g Mesh,
    out: Graph,
    names: BTreeSet<String>,
}

impl Expander<'_> {
    fn fresh(&mut self, want: String) -> String {
        if self.names.insert(want.clone()) {
            return want;
        }
        (1u64..)
            .map(|i| format!("{want}.{i}"))
            .find(|c| self.names.insert(c.clone()))
            .expect("invariant: an unbounded range finds a free name")
    }

    /// Appends `op` (type inferred, or `ty`) under a fresh name derived from `name`.
    fn push(
        &mut self,
        like: &Node,
        name: String,
        op: Op,
        operands: Vec<ValueId>,
        ty: Option<TensorType>,
    ) -> Result<ValueId, IrError> {
        let name = self.fresh(name);
        let v = self.out.push(name, op, operands, ty)?;
        let n = &mut self.out.nodes[v.index()];
        n.role = like.role;
        n.phase = like.phase;
        n.recompute = like.recompute;
        Ok(v)
    }

    fn slice(
        &mut self,
        like: &Node,
        name: String,
        x: ValueId,
        dim: usize,
        start: u64,
        len: u64,
    ) -> Result<ValueId, IrError> {
        let dims = self.out.ty(x).dims().to_vec();
        let mut s = vec![0; dims.len()];
        let mut l = dims.clone();
        s[dim] = start;
        l[dim] = start + len;
        let op = Op::Slice {
            start: s,
            limit: l,
            stride: vec![1; dims.len()],
        };
        self.push(like, name, op, vec![x], None)
    }

    fn concat(
        &mut self,
        like: &Node,
        name: String,
        parts: Vec<ValueId>,
        dim: usize,
    ) -> Result<ValueId, IrError> {
        if parts.len() == 1 {
            return Ok(parts[0]);
        }
        self.push(like, name, Op::Concatenate { dim }, parts, None)
    }

    fn reduce_over(
        &mut self,
        like: &Node,
        name: &str,
        parts: &[ValueId],
        f: ReduceFn,
    ) -> Result<ValueId, IrError> {
        let mut acc = parts[0];
        for (k, &x) in parts.iter().enumerate().skip(1) {
            let op = Op::Binary { func: combine(f) };
            acc = self.push(like, format!("{name}.{k}"), op, vec![acc, x], None)?;
        }
        Ok(acc)
    }

    /// Device `p`'s copy of per-device node `node`, its operands' copies being `xs`.
    fn device_copy(
        &mut self,
        node: &Node,
        p: usize,
        xs: &[ValueId],
        copies: &[Vec<ValueId>],
    ) -> Result<ValueId, IrError> {
        let mesh = self.mesh;
        let name = format!("{}.dev{p}", node.name);
        let err = |m: &str| IrError::node(&node.name, node.op.name(), m);
        // The operand's copies on the devices of `axes` around `p`.
        let group = |axes: &[String]| -> Vec<ValueId> {
            let o = node.operands[0].index();
            group_members(mesh, p, axes)
                .into_iter()
                .map(|q| copies[o][q])
                .collect()
        };
        Ok(match &node.op {
            Op::FullToShard { dims } => {
                let mut x = xs[0];
                for (d, axes) in dims.iter().enumerate() {
                    if axes.is_empty() {
                        continue;
                    }
                    let len = node.ty.dims()[d];
                    let b = mesh.linear_index(p, axes);
                    x = self.slice(node, format!("{name}.{d}"), x, d, b * len, len)?;
                }
                self.push(node, name, Op::Copy, vec![x], None)?
            }
            Op::AxisIndex { axes } => {
                let i = mesh.linear_index(p, axes) as f64;
                let op = Op::Constant {
                    value: Literal::Splat(i),
                };
                self.push(node, name, op, vec![], Some(node.ty.clone()))?
            }
            Op::AllReduce { axes, func } => {
                let parts = group(axes);
                let sum = self.reduce_over(node, &name, &parts, *func)?;
                self.push(node, name, Op::Copy, vec![sum], None)?
            }
            Op::AllGather { dim, axes } => {
                let parts = group(axes);
                self.concat(node, name, parts, *dim)?
            }
            Op::ReduceScatter { dim, axes, func } => {
                let parts = group(axes);
                let sum = self.reduce_over(node, &name, &parts, *func)?;
                let len = node.ty.dims()[*dim];
                let i = mesh.linear_index(p, axes);
                self.slice(node, name, sum, *dim, i * len, len)?
            }
            Op::AllToAll {
                split_dim,
                concat_dim,
                axes,
            } => {
                let parts = group(axes);
                let n = parts.len() as u64;
                let len = self.out.ty(parts[0]).dims()[*split_dim] / n;
                let i = mesh.linear_index(p, axes);
                let mut got = Vec::new();
                for (j, x) in parts.into_iter().enumerate() {
                    let s = self.slice(node, format!("{name}.{j}"), x, *split_dim, i * len, len)?;
                    got.push(s);
                }
                self.concat(node, name, got, *concat_dim)?
            }
            Op::CollectivePermute { axes, pairs } => {
                let t = mesh.linear_index(p, axes);
                match pairs.iter().find(|&&(_, tt)| tt == t) {
                    Some(&(s, _)) => {
                        let from = group(axes)[s as usize];
                        self.push(node, name, Op::Copy, vec![from], None)?
                    }
                    None => {
                        let op = Op::Constant {
                            value: Literal::Splat(0.0),
                        };
                        self.push(node, name, op, vec![], Some(node.ty.clone()))?
                    }
                }
            }
            Op::Send { .. } | Op::Recv { .. } => {
                return Err(err("pipeline sends and receives inside a manual region"))
            }
            op => {
                let ty = Some(node.ty.clone());
                self.push(node, name, op.clone(), xs.to_vec(), ty)?
            }
        })
    }

    /// The whole value of `shard_to_full` node `node` from the devices' blocks.
    fn assemble(
        &mut self,
        node: &Node,
        dims: &[Vec<String>],
        blocks: &[ValueId],
        d: usize,
        coords: &mut Vec<u64>,
    ) -> Result<ValueId, IrError> {
        if d == dims.len() {
            return Ok(blocks[self.mesh.position(coords)]);
        }
        let ks: Vec<usize> = dims[d]
            .iter()
            .filter_map(|a| self.mesh.axis_index(a))
            .collect();
        let n: u64 = ks.iter().map(|&k| self.mesh.axes[k].size).product();
        let mut parts = Vec::new();
        for b in 0..n {
            let mut rest = b;
            for &k in ks.iter().rev() {
                coords[k] = rest % self.mesh.axes[k].size;
                rest /= self.mesh.axes[k].size;
            }
            parts.push(self.assemble(node, dims, blocks, d + 1, coords)?);
        }
        for &k in &ks {
            coords[k] = 0;
        }
        self.concat(node, format!("{}.whole{d}", node.name), parts, d)
    }
}

/// `g` with every manual region written out per device (see the module docs), for the
/// reference executor; also the new id of each value of `g` (device 0's copy for a
/// per-device value). A graph without regions comes back unchanged.
pub fn expand(g: &Graph) -> Result<(Graph, Vec<ValueId>), IrError> {
    let ids: Vec<ValueId> = g.ids().collect();
    if !has_manual(g) {
        return Ok((g.clone(), ids));
    }
    check_regions(g)?;
    let mesh = g
        .mesh
        .as_ref()
        .ok_or_else(|| IrError::Graph("a graph with manual regions must name its mesh".into()))?;
    let manual = manual_values(g);
    let mut e = Expander {
        g,
        mesh,
        out: Graph::new(g.name.clone()),
        names: g.nodes.iter().map(|n| n.name.clone()).collect(),
    };
    e.out.mesh = g.mesh.clone();
    let ndev = mesh.num_devices() as usize;
    // Per value: its one copy, or one per device.
    let mut copies: Vec<Vec<ValueId>> = Vec::with_capacity(g.len());
    for (i, node) in e.g.nodes.iter().enumerate() {
        let at = |o: &ValueId, p: usize, copies: &[Vec<ValueId>]| {
            let c = &copies[o.index()];
            c[if c.len() == 1 { 0 } else { p }]
        };
        if manual[i] {
            let mut mine = Vec::with_capacity(ndev);
            for p in 0..ndev {
                let xs: Vec<ValueId> = node.operands.iter().map(|o| at(o, p, &copies)).collect();
                mine.push(e.device_copy(node, p, &xs, &copies)?);
            }
            copies.push(mine);
            continue;
        }
        let v = match &node.op {
            Op::ShardToFull { dims } => {
                let blocks = copies[node.operands[0].index()].clone();
                let mut coords = vec![0; mesh.axes.len()];
                let whole = e.assemble(node, dims, &blocks, 0, &mut coords)?;
                e.names.remove(&node.name);
                e.push(
                    node,
                    node.name.clone(),
                    Op::Copy,
                    vec![whole],
                    Some(node.ty.clone()),
                )?
            }
            _ => {
                let mut n = node.clone();
                n.operands = node.operands.iter().map(|o| at(o, 0, &copies)).collect();
                e.out.nodes.push(n);
                ValueId(e.out.nodes.len() as u32 - 1)
            }
        };
        copies.push(vec![v]);
    }
    let map: Vec<ValueId> = copies.iter().map(|c| c[0]).collect();
    let m = |v: &ValueId| map[v.index()];
    e.out.outputs = g.outputs.iter().map(m).collect();
    e.out.training.loss = g.training.loss.as_ref().map(m);
    e.out.training.gradients = g
        .training
        .gradients
        .iter()
        .map(|(a, b)| (m(a), m(b)))
        .collect();
    e.out.training.updates = g
        .training
        .updates
        .iter()
        .map(|(a, b)| (m(a), m(b)))
        .collect();
    crate::verify::verify(&e.out)?;
    Ok((e.out, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mesh() -> Mesh {
        Mesh::new(&[("dp", 2), ("tp", 4)]).unwrap()
    }

    #[test]
    fn replica_groups_become_mesh_axes() {
        let m = mesh();
        let g = |v: &[&[u32]]| v.iter().map(|g| g.to_vec()).collect::<Vec<_>>();
        assert_eq!(
            group_axes(&m, &g(&[&[0, 1, 2, 3], &[4, 5, 6, 7]])).unwrap(),
            ["tp"]
        );
        assert_eq!(
            group_axes(&m, &g(&[&[0, 4], &[1, 5], &[2, 6], &[3, 7]])).unwrap(),
            ["dp"]
        );
        assert_eq!(group_axes(&m, &[]).unwrap(), ["dp", "tp"]);
        // tp-major order over both axes.
        assert_eq!(
            group_axes(&m, &g(&[&[0, 4, 1, 5, 2, 6, 3, 7]])).unwrap(),
            ["tp", "dp"]
        );
        let e = group_axes(&m, &g(&[&[0, 1], &[2, 3, 4, 5], &[6, 7]])).unwrap_err();
        assert!(e.contains("not the devices of a set of mesh axes"), "{e}");
        let e = group_axes(&m, &g(&[&[0, 1, 2, 3]])).unwrap_err();
        assert!(e.contains("cover 4 of the mesh's 8"), "{e}");
    }

    #[test]
    fn permute_pairs_become_mesh_axes() {
        let m = mesh();
        // A ring along tp in both dp rows.
        let pairs = [
            (0, 1),
            (1, 2),
            (2, 3),
            (3, 0),
            (4, 5),
            (5, 6),
            (6, 7),
            (7, 4),
        ];
        let (axes, p) = permute_axes(&m, &pairs).unwrap();
        assert_eq!(axes, ["tp"]);
        assert_eq!(p, [(0, 1), (1, 2), (2, 3), (3, 0)]);
        assert!(permute_axes(&m, &[(0, 1), (5, 4)]).is_err());
    }
}
