//! The SPMD partitioner: one pass over the graph in topological order. For every op it reads the
//! op's factors, shards each factor by the axes the result's sharding (pass-through factors) or
//! the operands' shardings (reduction factors) give it, reshards the operands to what those factor
//! axes require, emits the op on local shapes and reshards the local result (a pending partial
//! sum where reduction factors were split) to the value's assigned sharding.

use std::collections::{BTreeSet, HashMap};

use shardc_ir::{
    verify, FactorKind, Graph, Literal, Op, OpFactors, ReduceFn, Role, Sharding,
    ShardingAssignment, TensorType, ValueId,
};

use crate::builder::{reduce_identity, LocalBuilder};
use crate::error::{CodegenError, Result};
use crate::program::{ShardedValue, SpmdProgram};
use crate::reshard::{local_type, reshard, reshard_bytes};
use crate::window;

/// Partitions `graph` under `assignment` into the program every device of the mesh runs.
///
/// Each value's local shard has the shape `ceil(size / shards)` per dim; inputs are fed as local
/// shards (see [`crate::shard_inputs`]) and outputs come back as local shards of their assigned
/// sharding with pending sums reduced (see [`crate::gather_outputs`]).
pub fn partition(graph: &Graph, assignment: &ShardingAssignment) -> Result<SpmdProgram> {
    verify(graph)?;
    check_assignment(graph, assignment)?;
    let mesh = &assignment.mesh;
    let mut b = LocalBuilder::new(&graph.name, mesh);
    let mut vals = Values {
        local: Vec::with_capacity(graph.len()),
        resharded: HashMap::new(),
    };
    let mut inputs = Vec::new();
    // Manual regions (shard_map) are per-device code already: emitted as written.
    let manual = shardc_ir::manual::manual_values(graph);
    for v in graph.ids() {
        let node = graph.node(v);
        b.origin = node.name.clone();
        let target = &assignment.shardings[v.index()];
        let value = match &node.op {
            Op::Input { .. } => {
                let fed = Sharding {
                    partial: Vec::new(),
                    ..target.clone()
                };
                let x = b.push_named(
                    &node.name,
                    node.op.clone(),
                    vec![],
                    Some(local_type(&node.ty, &fed, mesh)),
                )?;
                b.set_role(x, node.role);
                inputs.push(ShardedValue {
                    name: node.name.clone(),
                    source: v,
                    local: x,
                    global: node.ty.clone(),
                    sharding: fed.clone(),
                });
                reshard(&mut b, x, &fed, target, &node.ty)?
            }
            Op::Constant {
                value: Literal::Dense(_),
            } => {
                // The whole constant on every device, then this device's part of it.
                let x = b.push_named(&node.name, node.op.clone(), vec![], Some(node.ty.clone()))?;
                reshard(
                    &mut b,
                    x,
                    &Sharding::replicated(node.ty.rank()),
                    target,
                    &node.ty,
                )?
            }
            Op::Iota { dim } => lower_iota(&mut b, node, *dim, target)?,
            Op::FullToShard { .. } | Op::ShardToFull { .. } => {
                lower_manual(&mut b, graph, v, &mut vals, assignment, &manual)?
            }
            _ if manual[v.index()] => {
                lower_manual(&mut b, graph, v, &mut vals, assignment, &manual)?
            }
            op if op.is_collective() || matches!(op, Op::AxisIndex { .. }) => {
                return Err(CodegenError::sharding(
                    &node.name,
                    format!(
                        "the graph already contains `{}`: partition the unpartitioned graph",
                        op.name()
                    ),
                ));
            }
            _ => lower_op(&mut b, graph, v, &mut vals, assignment)?,
        };
        if b.g.nodes[value.index()].role == Role::Activation && node.role != Role::Activation {
            b.set_role(value, node.role);
        }
        b.g.nodes[value.index()].phase = node.phase;
        vals.local.push(value);
    }
    b.origin.clear();
    let shardings = &assignment.shardings;
    let mut outputs = Vec::new();
    for &o in &graph.outputs {
        let whole = unpartial(&shardings[o.index()]);
        b.origin = format!("{}.out", graph.node(o).name);
        let x = vals.get(&mut b, graph, shardings, o, &whole)?;
        b.g.outputs.push(x);
        outputs.push(ShardedValue {
            name: graph.node(o).name.clone(),
            source: o,
            local: x,
            global: graph.ty(o).clone(),
            sharding: whole,
        });
    }
    let t = &graph.training;
    if let Some(l) = t.loss {
        b.origin = format!("{}.out", graph.node(l).name);
        let s = &shardings[l.index()];
        b.g.training.loss = Some(vals.get(&mut b, graph, shardings, l, &unpartial(s))?);
    }
    for (links, out) in [(&t.gradients, 0usize), (&t.updates, 1)] {
        for &(p, d) in links {
            // A gradient or update takes its parameter's sharding, so both have one local shape.
            let want = unpartial(&shardings[p.index()]);
            b.origin = format!("{}.out", graph.node(d).name);
            let x = vals.get(&mut b, graph, shardings, d, &want)?;
            let pair = (vals.local[p.index()], x);
            if out == 0 {
                b.g.training.gradients.push(pair);
            } else {
                b.g.training.updates.push(pair);
            }
        }
    }
    verify(&b.g)?;
    Ok(SpmdProgram {
        stage: 0,
        graph: b.g,
        inputs,
        outputs,
    })
}

/// The local value of every original value lowered so far, and the resharded forms already
/// emitted (several users wanting one value in one sharding share one collective).
struct Values {
    local: Vec<ValueId>,
    resharded: HashMap<(ValueId, Sharding), ValueId>,
}

impl Values {
    /// Original value `v` in sharding `want`.
    fn get(
        &mut self,
        b: &mut LocalBuilder,
        graph: &Graph,
        shardings: &[Sharding],
        v: ValueId,
        want: &Sharding,
    ) -> Result<ValueId> {
        if let Some(&x) = self.resharded.get(&(v, want.clone())) {
            return Ok(x);
        }
        let x = reshard(
            b,
            self.local[v.index()],
            &shardings[v.index()],
            want,
            graph.ty(v),
        )?;
        self.resharded.insert((v, want.clone()), x);
        Ok(x)
    }
}

/// `s` with its pending sums reduced.
fn unpartial(s: &Sharding) -> Sharding {
    Sharding {
        partial: Vec::new(),
        partial_fn: ReduceFn::Sum,
        dims: s.dims.clone(),
    }
}

fn check_assignment(graph: &Graph, a: &ShardingAssignment) -> Result<()> {
    a.mesh.validate()?;
    if a.shardings.len() != graph.len() {
        return Err(CodegenError::sharding(
            &graph.name,
            format!(
                "the assignment has {} shardings, the graph has {} values",
                a.shardings.len(),
                graph.len()
            ),
        ));
    }
    for v in graph.ids() {
        let n = graph.node(v);
        a.shardings[v.index()]
            .validate(&a.mesh, n.ty.rank())
            .map_err(|m| CodegenError::sharding(&n.name, m))?;
    }
    Ok(())
}

/// A manual region's boundary or per-device node (see `shardc_ir::manual`). Per-device
/// values are assigned replicated (each device holds its whole local value); the whole value
/// entering a region is resharded to the region's split, whose local block is the region's
/// value, and the value leaving it is that split of the devices' values.
fn lower_manual(
    b: &mut LocalBuilder,
    graph: &Graph,
    v: ValueId,
    vals: &mut Values,
    assignment: &ShardingAssignment,
    manual: &[bool],
) -> Result<ValueId> {
    let node = graph.node(v);
    let shardings = &assignment.shardings;
    let mesh = &assignment.mesh;
    let split = |dims: &[Vec<String>]| {
        let mut s = Sharding::replicated(dims.len());
        for (d, axes) in s.dims.iter_mut().zip(dims) {
            d.axes = axes.clone();
        }
        s
    };
    let target = &shardings[v.index()];
    let per_device = manual[v.index()];
    if per_device && !unpartial(target).is_replicated() {
        return Err(CodegenError::sharding(
            &node.name,
            format!(
                "a per-device value of a manual region must be assigned replicated, not {:?}",
                target.dims
            ),
        ));
    }
    let replicated = |o: ValueId| Sharding::replicated(graph.ty(o).rank());
    match &node.op {
        Op::FullToShard { dims } => {
            let x = vals.get(b, graph, shardings, node.operands[0], &split(dims))?;
            b.push_named(&node.name, Op::Copy, vec![x], Some(node.ty.clone()))
        }
        Op::ShardToFull { dims } => {
            let o = node.operands[0];
            let x = vals.get(b, graph, shardings, o, &replicated(o))?;
            let s = split(dims);
            let ty = local_type(&node.ty, &s, mesh);
            let y = b.push_named(&node.name, Op::Copy, vec![x], Some(ty))?;
            reshard(b, y, &s, target, &node.ty)
        }
        op => {
            let mut xs = Vec::with_capacity(node.operands.len());
            for &o in &node.operands {
                xs.push(vals.get(b, graph, shardings, o, &replicated(o))?);
            }
            b.push_named(&node.name, op.clone(), xs, Some(node.ty.clone()))
        }
    }
}

/// `iota` along a sharded dim counts from this device's offset.
fn lower_iota(
    b: &mut LocalBuilder,
    node: &shardc_ir::Node,
    dim: usize,
    target: &Sharding,
) -> Result<ValueId> {
    let whole = unpartial(target);
    let ty = local_type(&node.ty, &whole, &b.mesh);
    let axes = whole.dims[dim].axes.clone();
    let x = b.push_named(&node.name, Op::Iota { dim }, vec![], Some(ty.clone()))?;
    let x = if axes.is_empty() {
        x
    } else {
        let off = b.shard_offset(&axes, ty.dims()[dim])?;
        let off = b.push(
            "offset_c",
            Op::Convert,
            vec![off],
            Some(TensorType::scalar(ty.dtype)),
        )?;
        let off = b.push(
            "offset_b",
            Op::Broadcast { dims: vec![] },
            vec![off],
            Some(ty),
        )?;
        b.push(
            "shifted",
            Op::Binary {
                func: shardc_ir::BinaryFn::Add,
            },
            vec![x, off],
            None,
        )?
    };
    reshard(b, x, &whole, target, &node.ty)
}

/// The factor of a tensor dim that carries the dim's sharding: the first factor of size > 1,
/// provided every factor before it is trivial and, in a compound dim, it divides evenly (a split
/// minor factor or an uneven major one would not be a contiguous block).
fn carrier(f: &OpFactors, facs: &[usize], n: u64) -> Option<usize> {
    let i = facs.iter().position(|&k| f.factors[k].size > 1)?;
    let k = facs[i];
    let compound = facs[i + 1..].iter().any(|&j| f.factors[j].size > 1);
    (!compound || f.factors[k].size % n == 0).then_some(k)
}

/// Whether factor `k` can carry `n`-way sharding in every tensor dim it appears in.
fn carries_everywhere(f: &OpFactors, k: usize, n: u64) -> bool {
    f.operands
        .iter()
        .flatten()
        .chain(&f.result)
        .filter(|facs| facs.contains(&k))
        .all(|facs| carrier(f, facs, n) == Some(k))
}

/// Factor → mesh axes for one op. Reduction factors can take the axes their operands are
/// already split by (a contraction becomes a partial sum instead of gathering its operands), and
/// pass-through factors the axes of the result's dims; where both want an axis, the order with the
/// smaller estimated traffic wins (`reduction_first` breaks ties). A factor that cannot be split
/// stays whole; its result dims are sliced afterwards.
fn factor_axes(
    b: &LocalBuilder,
    f: &OpFactors,
    operand_shardings: &[&Sharding],
    result: &Sharding,
    window_ok: &dyn Fn(usize) -> bool,
    reduction_first: bool,
) -> Vec<Vec<String>> {
    let mut fa = vec![Vec::new(); f.factors.len()];
    let mut used = BTreeSet::new();
    let mut assign = |fa: &mut Vec<Vec<String>>, k: usize, axes: &[String]| {
        if fa[k].is_empty()
            && axes.iter().all(|a| !used.contains(a))
            && carries_everywhere(f, k, b.axes_size(axes))
        {
            used.extend(axes.iter().cloned());
            fa[k] = axes.to_vec();
        }
    };
    let mut wants: Vec<(usize, &[String])> = Vec::new();
    let mut reductions = Vec::new();
    for (dims, s) in f.operands.iter().zip(operand_shardings) {
        for (facs, ds) in dims.iter().zip(&s.dims) {
            if ds.axes.is_empty() {
                continue;
            }
            if let Some(k) = carrier(f, facs, b.axes_size(&ds.axes)) {
                if f.factors[k].kind == FactorKind::Reduction {
                    reductions.push((k, ds.axes.as_slice()));
                }
            }
        }
    }
    let mut passes = Vec::new();
    for (k_dim, ds) in f.result.iter().zip(&result.dims) {
        if ds.axes.is_empty() {
            continue;
        }
        if let Some(k) = carrier(f, k_dim, b.axes_size(&ds.axes)) {
            let ok = match f.factors[k].kind {
                FactorKind::PassThrough => true,
                FactorKind::Window => window_ok(k),
                _ => false,
            };
            if ok {
                passes.push((k, ds.axes.as_slice()));
            }
        }
    }
    if reduction_first {
        wants.extend(reductions);
        wants.extend(passes);
    } else {
        wants.extend(passes);
        wants.extend(reductions);
    }
    for (k, axes) in wants {
        assign(&mut fa, k, axes);
    }
    fa
}

/// Estimated bytes one device receives to run the op at `v` under factor axes `fa`: resharding
/// each operand to what `fa` needs, then the local result to the assigned sharding.
fn traffic(
    graph: &Graph,
    assignment: &ShardingAssignment,
    v: ValueId,
    f: &OpFactors,
    fa: &[Vec<String>],
) -> u64 {
    let node = graph.node(v);
    let s = &assignment.shardings;
    let mut total = 0u64;
    for (i, &o) in node.operands.iter().enumerate() {
        let want = tensor_sharding(&f.operands[i], fa);
        let bytes = reshard_bytes(&s[o.index()], &want, graph.ty(o), &assignment.mesh);
        total = total.saturating_add(bytes);
    }
    let computed = computed_sharding(f, fa, reduction_fn(&node.op));
    let bytes = reshard_bytes(&computed, &s[v.index()], &node.ty, &assignment.mesh);
    total.saturating_add(bytes)
}

/// The sharding of the op's local result under factor axes `fa`: result dims split by their
/// factors' axes, pending `red` over the axes of split reduction factors.
fn computed_sharding(f: &OpFactors, fa: &[Vec<String>], red: ReduceFn) -> Sharding {
    let mut computed = tensor_sharding(&f.result, fa);
    computed.partial = f
        .factors
        .iter()
        .zip(fa)
        .filter(|(fac, _)| fac.kind == FactorKind::Reduction)
        .flat_map(|(_, axes)| axes.iter().cloned())
        .collect();
    if !computed.partial.is_empty() {
        computed.partial_fn = red;
    }
    computed
}

/// The sharding of a tensor whose dims have factors `dims` under factor axes `fa`.
fn tensor_sharding(dims: &[Vec<usize>], fa: &[Vec<String>]) -> Sharding {
    let mut s = Sharding::replicated(dims.len());
    for (d, facs) in dims.iter().enumerate() {
        s.dims[d].axes = facs.iter().flat_map(|&k| fa[k].iter().cloned()).collect();
    }
    s
}

/// The reduction an op's reduction factors perform (sum for contractions and scatter-adds).
fn reduction_fn(op: &Op) -> ReduceFn {
    match op {
        Op::Reduce { func, .. } => *func,
        _ => ReduceFn::Sum,
    }
}

/// Lowers one compute op by its factors.
fn lower_op(
    b: &mut LocalBuilder,
    graph: &Graph,
    v: ValueId,
    vals: &mut Values,
    assignment: &ShardingAssignment,
) -> Result<ValueId> {
    let node = graph.node(v);
    let f = graph.factors(v);
    let shardings = &assignment.shardings;
    let operand_shardings: Vec<&Sharding> = node
        .operands
        .iter()
        .map(|o| &shardings[o.index()])
        .collect();
    let target = &shardings[v.index()];
    let conv = match &node.op {
        Op::Convolution(c) => Some(c),
        _ => None,
    };
    let window_ok = |k: usize| conv.is_some_and(|c| window::shardable(c, &f, k));
    let fa = {
        let first = factor_axes(b, &f, &operand_shardings, target, &window_ok, true);
        let second = factor_axes(b, &f, &operand_shardings, target, &window_ok, false);
        if first == second
            || traffic(graph, assignment, v, &f, &first)
                <= traffic(graph, assignment, v, &f, &second)
        {
            first
        } else {
            second
        }
    };

    let mut operands = Vec::with_capacity(node.operands.len());
    for (i, &o) in node.operands.iter().enumerate() {
        let mut want = tensor_sharding(&f.operands[i], &fa);
        // An operand without a split reduction factor (scatter-add's base) would be summed once
        // per device: it enters as a pending sum itself (kept on one device, zeros elsewhere).
        let present: BTreeSet<usize> = f.operands[i].iter().flatten().copied().collect();
        for (k, axes) in fa.iter().enumerate() {
            if f.factors[k].kind == FactorKind::Reduction && !present.contains(&k) {
                want.partial.extend(axes.iter().cloned());
                want.partial_fn = reduction_fn(&node.op);
            }
        }
        if let (Some(c), 0) = (conv, i) {
            let kernel = graph.ty(node.operands[1]);
            window::input_sharding(c, &f, &fa, b, &mut want, graph.ty(o), kernel);
        }
        let x = vals.get(b, graph, shardings, o, &want)?;
        operands.push(x);
    }
    // Padding of uneven shards must not reach a reduction: fill it with the reduction's identity.
    let red = reduction_fn(&node.op);
    for (k, axes) in fa.iter().enumerate() {
        let fac = f.factors[k];
        if axes.is_empty() || fac.kind != FactorKind::Reduction || fac.size % b.axes_size(axes) == 0
        {
            continue;
        }
        for (i, dims) in f.operands.iter().enumerate() {
            for (d, facs) in dims.iter().enumerate() {
                if facs.contains(&k) {
                    let id = reduce_identity(red, b.ty(operands[i]).dtype);
                    operands[i] = b.mask_padding(operands[i], d, axes, fac.size, id)?;
                }
            }
        }
    }
    let computed = computed_sharding(&f, &fa, red);
    let local_ty = local_type(&node.ty, &computed, &b.mesh);
    let mut op = localize(&node.op, &operands, b, &local_ty);
    if let (Some(c), Op::Convolution(lc)) = (conv, &mut op) {
        // Split feature or batch groups: each device convolves its own groups.
        let groups = |d: usize, count: u64| {
            let k = f.operands[0][d].first().copied();
            count / k.map_or(1, |k| b.axes_size(&fa[k])).max(1)
        };
        if c.feature_group_count > 1 {
            lc.feature_group_count = groups(c.dims.input_feature, c.feature_group_count);
        }
        if c.batch_group_count > 1 {
            lc.batch_group_count = groups(c.dims.input_batch, c.batch_group_count);
        }
        let (input, kernel) = (graph.ty(node.operands[0]), graph.ty(node.operands[1]));
        window::lower_conv_windows(b, c, lc, &f, &fa, &mut operands, input, kernel)?;
    }
    let y = b.push_named(&node.name, op, operands, Some(local_ty.clone()))?;
    if *b.ty(y) != local_ty {
        return Err(CodegenError::sharding(
            &node.name,
            format!(
                "internal: the local op gives {} where {} was expected",
                b.ty(y),
                local_ty
            ),
        ));
    }
    reshard(b, y, &computed, target, &node.ty)
}

/// Rewrites the attributes of an op that name whole-dim extents to the local extents.
fn localize(op: &Op, operands: &[ValueId], b: &LocalBuilder, result: &TensorType) -> Op {
    match op {
        Op::Slice {
            start,
            limit,
            stride,
        } => {
            let x = b.ty(operands[0]).dims();
            let mut limit = limit.clone();
            for d in 0..limit.len() {
                // Only whole dims can be sharded; a windowed dim stays whole.
                if start[d] == 0 && stride[d] == 1 && limit[d] > x[d] {
                    limit[d] = x[d];
                }
            }
            Op::Slice {
                start: start.clone(),
                limit,
                stride: stride.clone(),
            }
        }
        Op::DynamicSlice { .. } => Op::DynamicSlice {
            sizes: result.dims().to_vec(),
        },
        // Only whole slices of unindexed dims can be sharded: they become the local extent.
        Op::GeneralGather(d) => {
            let x = b.ty(operands[0]).dims();
            let mut d = d.clone();
            for (s, &n) in d.slice_sizes.iter_mut().zip(x) {
                *s = (*s).min(n);
            }
            Op::GeneralGather(d)
        }
        other => other.clone(),
    }
}
