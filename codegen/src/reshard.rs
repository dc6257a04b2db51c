//! Lowering a change of sharding into local ops: all-reduce of pending partial sums, all-to-all
//! where an axis moves from one dim to another, all-gather where a dim loses axes, and a dynamic
//! slice at the device's shard offset where a dim gains axes.
//!
//! This is the one place the partitioner turns `from → to` into ops. Where every dim divides
//! evenly over the axes involved, it lowers the sharding crate's plan (the one that sends the
//! fewest bytes per device, and the one the cost model prices) step by step; uneven, padded
//! shapes take the lowering below, which pads and crops around each step.

use shardc_ir::{DType, Mesh, Op, ReduceFn, Sharding, TensorType, ValueId};
use shardc_sharding::{ReshardKind, ReshardStep};

use crate::builder::LocalBuilder;
use crate::error::{CodegenError, Result};

/// Per-device extent of every dim of `global` under `s`: `ceil(size / shards)`, padded at the
/// end of the last shards as XLA pads uneven shards.
pub fn local_dims(global: &[u64], s: &Sharding, mesh: &Mesh) -> Vec<u64> {
    global
        .iter()
        .enumerate()
        .map(|(d, &size)| s.local_dim(mesh, d, size))
        .collect()
}

/// The per-device type of a value of type `global` under `s`.
pub fn local_type(global: &TensorType, s: &Sharding, mesh: &Mesh) -> TensorType {
    TensorType::new(global.dtype, local_dims(global.dims(), s, mesh))
}

fn same_partial(a: &Sharding, b: &Sharding) -> bool {
    let mut pa = a.partial.clone();
    let mut pb = b.partial.clone();
    pa.sort();
    pb.sort();
    pa == pb && (pa.is_empty() || a.partial_fn == b.partial_fn)
}

/// Whether shards of a dim of `size` split over `prefix` then (minor) `more` line up with the
/// shards over `prefix` alone: each `prefix` shard is exactly `n(more)` smaller shards, or there
/// is one `prefix` shard (the whole dim, padded at the end).
fn aligned(size: u64, prefix: u64, more: u64) -> bool {
    prefix == 1 || size % (prefix * more) == 0
}

/// Estimated bytes a device receives to turn `from` into `to` (for choosing between ways of
/// lowering an op, not for the cost model): a pending sum costs its local size when it lands in a
/// split dim (a reduce-scatter) and twice that otherwise (an all-reduce); a dim that loses axes
/// costs what each device must hold before slicing; slicing is free.
pub(crate) fn reshard_bytes(
    from: &Sharding,
    to: &Sharding,
    global: &TensorType,
    mesh: &Mesh,
) -> u64 {
    if from.dims == to.dims && same_partial(from, to) {
        return 0;
    }
    let local = |s: &Sharding| local_type(global, s, mesh).size_bytes();
    let mut bytes = 0u64;
    let pending: Vec<&String> = from
        .partial
        .iter()
        .filter(|a| !to.partial.contains(a))
        .collect();
    if !pending.is_empty() {
        let lands_in_dim = to
            .dims
            .iter()
            .any(|d| d.axes.iter().any(|a| pending.contains(&a)));
        bytes = local(from).saturating_mul(if lands_in_dim { 1 } else { 2 });
    }
    let mut kept = Sharding::replicated(global.rank());
    let mut gathers = false;
    for (d, (f, t)) in from.dims.iter().zip(&to.dims).enumerate() {
        let common = f
            .axes
            .iter()
            .zip(&t.axes)
            .take_while(|(a, b)| a == b)
            .count();
        gathers |= common < f.axes.len();
        kept.dims[d].axes = f.axes[..common].to_vec();
    }
    if gathers {
        bytes = bytes.saturating_add(local(&kept));
    }
    bytes
}

/// Emits the ops that turn `x`, the local shard of a value of type `global` under `from`, into
/// its local shard under `to`. Returns `x` itself when nothing changes.
pub(crate) fn reshard(
    b: &mut LocalBuilder,
    x: ValueId,
    from: &Sharding,
    to: &Sharding,
    global: &TensorType,
) -> Result<ValueId> {
    if from.dims == to.dims && same_partial(from, to) {
        return Ok(x);
    }
    if let Some(plan) = even_plan(b, from, to, global)? {
        return lower_plan(b, x, &plan, global, to);
    }
    let g = global.dims();
    let mut cur = from.clone();
    let mut x = x;

    // 1. Pending partial reductions the target does not keep.
    let keep_fn = to.partial.is_empty() || to.partial_fn == cur.partial_fn;
    let reduce: Vec<String> = cur
        .partial
        .iter()
        .filter(|a| !keep_fn || !to.partial.contains(a))
        .cloned()
        .collect();
    if !reduce.is_empty() {
        x = b.push(
            "all_reduce",
            Op::AllReduce {
                axes: reduce.clone(),
                func: cur.partial_fn,
            },
            vec![x],
            None,
        )?;
        cur.partial.retain(|a| !reduce.contains(a));
    }

    // 2. Axes that move from the minor end of one dim to the minor end of another: all-to-all.
    for c in 0..g.len() {
        for e in 0..g.len() {
            if c == e {
                continue;
            }
            let (cc, ce) = (&cur.dims[c].axes, &cur.dims[e].axes);
            let (tc, te) = (&to.dims[c].axes, &to.dims[e].axes);
            if tc.len() >= cc.len() || !cc.starts_with(tc) || !te.starts_with(ce) {
                continue;
            }
            let moved = &cc[tc.len()..];
            if te[ce.len()..] != *moved {
                continue;
            }
            let n = b.axes_size(moved);
            let (se, sc) = (b.axes_size(ce), b.axes_size(tc));
            let le = g[e].div_ceil(se);
            if g[e] % se != 0 || le % n != 0 || !aligned(g[c], sc, n) {
                continue;
            }
            let moved = moved.to_vec();
            x = b.push(
                "all_to_all",
                Op::AllToAll {
                    split_dim: e,
                    concat_dim: c,
                    axes: moved.clone(),
                },
                vec![x],
                None,
            )?;
            cur.dims[c].axes.truncate(tc.len());
            cur.dims[e].axes.extend(moved);
            if sc == 1 {
                let mut dims = b.ty(x).dims().to_vec();
                dims[c] = g[c];
                x = b.slice_prefix(x, &dims)?;
            }
        }
    }

    // 3. Dims that lose axes: gather the axes past the common prefix (all of them where the
    //    shards would not line up), then drop the padding of a now-whole dim.
    for d in 0..g.len() {
        let (ca, ta) = (cur.dims[d].axes.clone(), to.dims[d].axes.clone());
        if ca.is_empty()
            || ta.starts_with(&ca) && {
                let (sc, st) = (b.axes_size(&ca), b.axes_size(&ta));
                aligned(g[d], sc, st / sc)
            }
        {
            continue;
        }
        let common = ca.iter().zip(&ta).take_while(|(a, t)| a == t).count();
        let (pre, post) = (b.axes_size(&ca[..common]), b.axes_size(&ca[common..]));
        let st = b.axes_size(&ta);
        let keep = if aligned(g[d], pre, post) && aligned(g[d], pre, st / pre) {
            common
        } else {
            0
        };
        x = b.push(
            "all_gather",
            Op::AllGather {
                dim: d,
                axes: ca[keep..].to_vec(),
            },
            vec![x],
            None,
        )?;
        cur.dims[d].axes.truncate(keep);
        if keep == 0 || b.axes_size(&ca[..keep]) == 1 {
            let mut dims = b.ty(x).dims().to_vec();
            dims[d] = g[d].div_ceil(b.axes_size(&ca[..keep]));
            x = b.slice_prefix(x, &dims)?;
        }
    }

    // 4. Dims that gain axes: pad to whole shards and slice at this device's offset.
    let target = local_dims(g, to, &b.mesh);
    if cur.dims.iter().zip(&to.dims).any(|(c, t)| c.axes != t.axes) {
        let mut padded = b.ty(x).dims().to_vec();
        let mut starts = Vec::with_capacity(g.len());
        for d in 0..g.len() {
            let extra = to.dims[d].axes[cur.dims[d].axes.len()..].to_vec();
            padded[d] = target[d] * b.axes_size(&extra);
            starts.push(b.shard_offset(&extra, target[d])?);
        }
        x = b.pad_high(x, &padded)?;
        x = b.dynamic_slice(x, starts, target.clone())?;
        for d in 0..g.len() {
            cur.dims[d].axes = to.dims[d].axes.clone();
        }
    }

    // 5. Axes the target keeps as a pending sum: one device keeps the value, the others zeros
    //    (a pending max or min may hold the value on every device).
    let add: Vec<String> = to
        .partial
        .iter()
        .filter(|a| !cur.partial.contains(a))
        .cloned()
        .collect();
    if !add.is_empty() && to.partial_fn == ReduceFn::Sum {
        x = first_keeps(b, x, &add)?;
    }

    check_local(b, x, &target)
}

/// One device along `axes` keeps `x`, the others hold zeros: a pending sum over `axes`.
fn first_keeps(b: &mut LocalBuilder, x: ValueId, axes: &[String]) -> Result<ValueId> {
    let idx = b.axis_index(axes)?;
    let zero = b.i32_const(0)?;
    let ty = b.ty(x).clone();
    let first = b.push(
        "is_first",
        Op::Compare {
            dir: shardc_ir::CompareDir::Eq,
        },
        vec![idx, zero],
        None,
    )?;
    let first = b.push(
        "is_first_b",
        Op::Broadcast { dims: vec![] },
        vec![first],
        Some(ty.with_dtype(DType::Bool)),
    )?;
    let zeros = b.splat("zeros", ty, 0.0)?;
    b.push("summand", Op::Select, vec![first, x, zeros], None)
}

/// The sharding crate's plan from `from` to `to`, where every dim divides evenly over every
/// axis either uses (so every layout on the way has whole shards).
fn even_plan(
    b: &LocalBuilder,
    from: &Sharding,
    to: &Sharding,
    global: &TensorType,
) -> Result<Option<Vec<ReshardStep>>> {
    let mut axes: Vec<String> = from.used_axes().into_iter().map(String::from).collect();
    axes.extend(to.used_axes().into_iter().map(String::from));
    axes.sort();
    axes.dedup();
    let n = b.axes_size(&axes);
    if global.dims().iter().any(|&d| d % n != 0) {
        return Ok(None);
    }
    shardc_sharding::reshard(from, to, global, &b.mesh)
        .map(Some)
        .map_err(|e| CodegenError::sharding(b.origin.clone(), e.to_string()))
}

/// Emits the ops of `plan`, one per step (a local slice is a dynamic slice at the device's
/// shard offset; a new pending sum keeps the value on one device of its axes).
fn lower_plan(
    b: &mut LocalBuilder,
    mut x: ValueId,
    plan: &[ReshardStep],
    global: &TensorType,
    to: &Sharding,
) -> Result<ValueId> {
    for step in plan {
        x = match &step.kind {
            ReshardKind::LocalSlice { dim, axes } => {
                let mut sizes = b.ty(x).dims().to_vec();
                sizes[*dim] /= b.axes_size(axes);
                let mut starts = Vec::with_capacity(sizes.len());
                for (d, &size) in sizes.iter().enumerate() {
                    starts.push(if d == *dim {
                        b.shard_offset(axes, size)?
                    } else {
                        b.i32_const(0)?
                    });
                }
                b.dynamic_slice(x, starts, sizes)?
            }
            ReshardKind::MakePartial { axes } => {
                if step.after.partial_fn == ReduceFn::Sum {
                    first_keeps(b, x, axes)?
                } else {
                    // A pending max or min of copies is the value itself.
                    x
                }
            }
            _ => {
                let op = step
                    .collective()
                    .expect("invariant: every other step kind is a collective");
                let name = op.name().to_string();
                b.push(&name, op, vec![x], None)?
            }
        };
    }
    let target = local_dims(global.dims(), to, &b.mesh);
    check_local(b, x, &target)
}

fn check_local(b: &LocalBuilder, x: ValueId, target: &[u64]) -> Result<ValueId> {
    if b.ty(x).dims() != target {
        return Err(CodegenError::sharding(
            b.origin.clone(),
            format!(
                "internal: resharding gave {} where {:?} was expected",
                b.ty(x),
                target
            ),
        ));
    }
    Ok(x)
}
