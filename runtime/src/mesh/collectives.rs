//! What each device of a group gets from a collective, given every member's contribution in
//! rank order. Backend-independent: a backend moves the contributions, this computes results.

use std::ops::Range;

use ndarray::{ArrayD, Axis, IxDyn, Slice};
use rayon::prelude::*;
use shardc_ir::{DType, ReduceFn};

use crate::kernels::{arr, std_owned};
use crate::tensor::{with_elem, Data, Elem, Tensor};

/// Element types that collectives can reduce. Integer sums wrap; max/min propagate NaN.
trait Reducible: Elem {
    fn sum(a: Self, b: Self) -> Self;
}

impl Reducible for f32 {
    fn sum(a: f32, b: f32) -> f32 {
        a + b
    }
}
impl Reducible for f64 {
    fn sum(a: f64, b: f64) -> f64 {
        a + b
    }
}
impl Reducible for i32 {
    fn sum(a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }
}
impl Reducible for i64 {
    fn sum(a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }
}

/// `b` is NaN (`b != b`) or larger.
#[allow(clippy::eq_op)]
fn max<T: Reducible>(a: T, b: T) -> T {
    if b > a || b != b {
        b
    } else {
        a
    }
}

#[allow(clippy::eq_op)]
fn min<T: Reducible>(a: T, b: T) -> T {
    if b < a || b != b {
        b
    } else {
        a
    }
}

/// Combines `x` into `acc` elementwise; one loop per function so each vectorizes.
fn combine<T: Reducible>(func: ReduceFn, acc: &mut [T], x: &[T]) {
    match func {
        ReduceFn::Sum => acc.iter_mut().zip(x).for_each(|(a, &b)| *a = T::sum(*a, b)),
        ReduceFn::Max => acc.iter_mut().zip(x).for_each(|(a, &b)| *a = max(*a, b)),
        ReduceFn::Min => acc.iter_mut().zip(x).for_each(|(a, &b)| *a = min(*a, b)),
    }
}

fn reduce_typed<T: Reducible>(
    parts: &[&Tensor],
    func: ReduceFn,
    range: Range<usize>,
    reuse: Option<ArrayD<T>>,
) -> Result<ArrayD<T>, String> {
    let len = range.len();
    let mut out = match reuse {
        Some(a) if a.len() == len && a.ndim() == 1 && a.is_standard_layout() => a,
        _ => ArrayD::from_elem(IxDyn(&[len]), T::default()),
    };
    // invariant: `out` was made (or checked) to be one contiguous row.
    let dst = out
        .as_slice_mut()
        .expect("invariant: contiguous 1-D buffer");
    for (k, p) in parts.iter().enumerate() {
        let a = arr::<T>(p)?.as_standard_layout();
        let src = a
            .as_slice()
            .and_then(|s| s.get(range.clone()))
            .ok_or_else(|| format!("rank {k}'s contribution has no elements {range:?}"))?;
        if k == 0 {
            dst.copy_from_slice(src);
        } else {
            combine(func, dst, src);
        }
    }
    Ok(out)
}

/// Checks that every contribution has the type of the first.
pub(crate) fn check_same(parts: &[&Tensor]) -> Result<(), String> {
    let first = parts
        .first()
        .ok_or("a collective needs at least one contribution")?
        .ty();
    for (r, p) in parts.iter().enumerate() {
        if p.ty() != first {
            return Err(format!(
                "rank {r} contributed {}, rank 0 contributed {first}",
                p.ty()
            ));
        }
    }
    Ok(())
}

/// The elementwise reduction of `parts` over the row-major element range `range`, as a 1-D
/// tensor, written into `reuse`'s buffer when it fits (saving a fresh allocation).
pub(crate) fn reduce_flat(
    parts: &[&Tensor],
    func: ReduceFn,
    range: Range<usize>,
    reuse: Option<Tensor>,
) -> Result<Tensor, String> {
    let first = parts
        .first()
        .ok_or("a collective needs at least one contribution")?;
    let reuse = reuse
        .filter(|t| t.dtype() == first.dtype())
        .map(Tensor::into_data);
    let data = match (first.data(), reuse) {
        (Data::F32(_), Some(Data::F32(a))) => Data::F32(reduce_typed(parts, func, range, Some(a))?),
        (Data::F32(_), _) => Data::F32(reduce_typed(parts, func, range, None)?),
        (Data::F64(_), r) => Data::F64(reduce_typed(
            parts,
            func,
            range,
            r.and_then(|r| match r {
                Data::F64(a) => Some(a),
                _ => None,
            }),
        )?),
        (Data::I32(_), _) => Data::I32(reduce_typed(parts, func, range, None)?),
        (Data::I64(_), _) => Data::I64(reduce_typed(parts, func, range, None)?),
        (Data::Bool(_), _) => return Err("cannot reduce bool tensors".into()),
    };
    Ok(Tensor::from_data(first.dtype(), data))
}

/// Elements per block of the in-place all-reduce: a block of every buffer stays in L1/L2 while
/// it is summed and written back (16 KiB of f32).
const IN_PLACE_BLOCK: usize = 4096;

/// All-reduce over buffers the caller owns: afterwards every buffer holds the elementwise
/// reduction of all of them, summed in rank order as `reduce_flat` does (the same bits). Each
/// element is read once from every buffer and written once to every buffer, the fewest moves an
/// all-reduce can make, with blocks spread over the cores. bf16/f16 sums are rounded once.
pub(crate) fn all_reduce_in_place(bufs: &mut [Tensor], func: ReduceFn) -> Result<(), String> {
    check_same(&bufs.iter().collect::<Vec<_>>())?;
    if bufs.len() == 1 {
        return Ok(());
    }
    let dtype = bufs[0].dtype();
    for t in bufs.iter_mut() {
        if !with_elem!(t.data(), T => arr::<T>(t)?.is_standard_layout()) {
            let data = with_elem!(t.data(), T => T::into_data(std_owned(arr::<T>(t)?.view())));
            *t = Tensor::from_data(dtype, data);
        }
    }
    let round: fn(&mut [f32]) = match dtype {
        DType::BF16 => |s| {
            s.iter_mut()
                .for_each(|x| *x = half::bf16::from_f32(*x).to_f32())
        },
        DType::F16 => |s| {
            s.iter_mut()
                .for_each(|x| *x = half::f16::from_f32(*x).to_f32())
        },
        _ => |_| {},
    };
    match bufs[0].data() {
        Data::F32(_) => in_place_typed::<f32>(bufs, func, round),
        Data::F64(_) => in_place_typed::<f64>(bufs, func, |_| {}),
        Data::I32(_) => in_place_typed::<i32>(bufs, func, |_| {}),
        Data::I64(_) => in_place_typed::<i64>(bufs, func, |_| {}),
        Data::Bool(_) => Err("cannot reduce bool tensors".into()),
    }
}

fn in_place_typed<T: Reducible>(
    bufs: &mut [Tensor],
    func: ReduceFn,
    round: fn(&mut [T]),
) -> Result<(), String> {
    let mut blocks: Vec<std::slice::ChunksMut<'_, T>> = Vec::with_capacity(bufs.len());
    for (k, t) in bufs.iter_mut().enumerate() {
        let s = T::get_mut(t.data_mut())
            .and_then(|a| a.as_slice_mut())
            .ok_or_else(|| {
                format!(
                    "rank {k}'s buffer is not one contiguous {}",
                    std::any::type_name::<T>()
                )
            })?;
        blocks.push(s.chunks_mut(IN_PLACE_BLOCK));
    }
    // Block j of every buffer, side by side: the unit of work a core takes.
    let mut groups: Vec<Vec<&mut [T]>> = Vec::new();
    loop {
        let group: Vec<&mut [T]> = blocks.iter_mut().filter_map(Iterator::next).collect();
        if group.is_empty() {
            break;
        }
        groups.push(group);
    }
    groups.into_par_iter().for_each(|mut group| {
        if let Some((acc, rest)) = group.split_first_mut() {
            for x in rest.iter() {
                combine(func, acc, x);
            }
            round(acc);
            for x in rest.iter_mut() {
                x.copy_from_slice(acc);
            }
        }
    });
    Ok(())
}

/// The row-major range of chunk `r` of `len` elements split over `n` (the first `len % n`
/// chunks are one longer).
pub(crate) fn flat_chunk(len: usize, n: usize, r: usize) -> Range<usize> {
    let (q, rem) = (len / n, len % n);
    let start = r * q + r.min(rem);
    start..start + q + usize::from(r < rem)
}

/// Joins 1-D chunks into a tensor of `shape`.
pub(crate) fn concat_flat(chunks: &[&Tensor], shape: &[usize]) -> Result<Tensor, String> {
    let first = chunks.first().ok_or("nothing to join")?;
    let data = with_elem!(first.data(), T => {
        let mut v: Vec<T> = Vec::with_capacity(shape.iter().product());
        for c in chunks {
            // Copy whole slices: element-wise iteration over a dynamic-rank array is ~10x slower.
            let a = arr::<T>(c)?.as_standard_layout();
            // invariant: a standard-layout array is one contiguous slice.
            v.extend_from_slice(a.as_slice().expect("invariant: standard layout is contiguous"));
        }
        T::into_data(ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| format!("joining chunks: {e}"))?)
    });
    Ok(Tensor::from_data(first.dtype(), data))
}

/// Writes 1-D chunks, in order, over the elements of `target` (reusing its buffer); `None`
/// when the target is not contiguous or the lengths or dtypes differ.
pub(crate) fn concat_flat_into(chunks: &[&Tensor], mut target: Tensor) -> Option<Tensor> {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    if total != target.len() || chunks.iter().any(|c| c.dtype() != target.dtype()) {
        return None;
    }
    let written = with_elem!(target.data(), T => {
        match T::get_mut(target.data_mut()).and_then(|a| a.as_slice_mut()) {
            Some(dst) => {
                let mut at = 0;
                for c in chunks {
                    let src = arr::<T>(c).ok().map(|a| a.as_standard_layout());
                    let Some(src) = src.as_ref().and_then(|a| a.as_slice()) else { break };
                    dst[at..at + src.len()].copy_from_slice(src);
                    at += src.len();
                }
                at == total
            }
            None => false,
        }
    });
    written.then_some(target)
}

/// Chunk `r` of `n` equal chunks of `t` along `dim`.
pub(crate) fn chunk(t: &Tensor, dim: usize, n: usize, r: usize) -> Result<Tensor, String> {
    let size = *t
        .shape()
        .get(dim)
        .ok_or_else(|| format!("dim {dim} is out of range for {}", t.ty()))?;
    if n == 0 || size % n != 0 {
        return Err(format!(
            "dim {dim} of {} does not split into {n} equal chunks",
            t.ty()
        ));
    }
    let c = size / n;
    let data = with_elem!(t.data(), T => T::into_data(std_owned(arr::<T>(t)?.slice_axis(Axis(dim), Slice::from(r * c..(r + 1) * c)))));
    Ok(Tensor::from_data(t.dtype(), data))
}

/// `parts` joined along `dim`, in order.
pub(crate) fn concat(parts: &[&Tensor], dim: usize) -> Result<Tensor, String> {
    let first = parts.first().ok_or("nothing to join")?;
    let data = with_elem!(first.data(), T => {
        let views = parts.iter().map(|p| arr::<T>(p).map(|a| a.view())).collect::<Result<Vec<_>, _>>()?;
        T::into_data(ndarray::concatenate(Axis(dim), &views).map_err(|e| format!("joining along dim {dim}: {e}"))?)
    });
    Ok(Tensor::from_data(first.dtype(), data))
}

/// Reduce-scatter: rank `r`'s chunk along `dim` of the reduction of `parts`, reduced straight
/// from the contributions: the chunk is `outer` blocks of `blk` contiguous elements, each read
/// once from every part and written once (no per-part chunk copies), in rank order as
/// `reduce_flat` sums.
pub(crate) fn reduce_scatter(
    parts: &[&Tensor],
    dim: usize,
    func: ReduceFn,
    r: usize,
) -> Result<Tensor, String> {
    let n = parts.len();
    let first = parts
        .first()
        .ok_or("a collective needs at least one contribution")?;
    let shape = first.shape();
    let size = *shape
        .get(dim)
        .ok_or_else(|| format!("dim {dim} is out of range for {}", first.ty()))?;
    if size % n != 0 {
        return Err(format!(
            "dim {dim} of {} does not split into {n} equal chunks",
            first.ty()
        ));
    }
    let (outer, inner) = (
        shape[..dim].iter().product::<usize>(),
        shape[dim + 1..].iter().product::<usize>(),
    );
    let blk = size / n * inner;
    let geometry = Blocks {
        outer,
        row: size * inner,
        offset: r * blk,
        blk,
    };
    let mut out_shape = shape.to_vec();
    out_shape[dim] = size / n;
    let data = match first.data() {
        Data::F32(_) => Data::F32(reduce_blocks(parts, func, &geometry, &out_shape)?),
        Data::F64(_) => Data::F64(reduce_blocks(parts, func, &geometry, &out_shape)?),
        Data::I32(_) => Data::I32(reduce_blocks(parts, func, &geometry, &out_shape)?),
        Data::I64(_) => Data::I64(reduce_blocks(parts, func, &geometry, &out_shape)?),
        Data::Bool(_) => return Err("cannot reduce bool tensors".into()),
    };
    Ok(Tensor::from_data(first.dtype(), data))
}

/// Where one rank's chunk lies in a row-major contribution: `outer` blocks of `blk` elements,
/// block `k` at `k·row + offset`.
struct Blocks {
    outer: usize,
    row: usize,
    offset: usize,
    blk: usize,
}

fn reduce_blocks<T: Reducible>(
    parts: &[&Tensor],
    func: ReduceFn,
    g: &Blocks,
    out_shape: &[usize],
) -> Result<ArrayD<T>, String> {
    let views = parts
        .iter()
        .map(|p| arr::<T>(p).map(|a| a.as_standard_layout()))
        .collect::<Result<Vec<_>, _>>()?;
    let srcs = views
        .iter()
        .map(|v| {
            v.as_slice()
                .ok_or("a standard-layout array is contiguous (invariant)")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(g.outer * g.blk);
    for k in 0..g.outer {
        let at = k * g.row + g.offset;
        fn block<'s, T>(s: &'s [T], at: usize, len: usize) -> Result<&'s [T], String> {
            s.get(at..at + len)
                .ok_or_else(|| format!("a contribution has no elements {at}..{}", at + len))
        }
        out.extend_from_slice(block(srcs[0], at, g.blk)?);
        let dst = &mut out[k * g.blk..];
        for s in &srcs[1..] {
            combine(func, dst, block(s, at, g.blk)?);
        }
    }
    ArrayD::from_shape_vec(IxDyn(out_shape), out).map_err(|e| format!("reduce-scatter result: {e}"))
}

/// All-to-all: rank `r` gets chunk `r` (along `split_dim`) of every rank's contribution, joined
/// along `concat_dim` in rank order.
pub(crate) fn all_to_all(
    parts: &[&Tensor],
    split_dim: usize,
    concat_dim: usize,
    r: usize,
) -> Result<Tensor, String> {
    let n = parts.len();
    let chunks = parts
        .iter()
        .map(|p| chunk(p, split_dim, n, r))
        .collect::<Result<Vec<_>, _>>()?;
    concat(&chunks.iter().collect::<Vec<_>>(), concat_dim)
}

/// Collective permute: the contribution of the rank that sends to `r`, or zeros.
pub(crate) fn permute(parts: &[&Tensor], pairs: &[(u64, u64)], r: usize) -> Result<Tensor, String> {
    match pairs.iter().find(|&&(_, t)| t == r as u64) {
        Some(&(s, _)) => parts
            .get(s as usize)
            .map(|t| (*t).clone())
            .ok_or_else(|| format!("source {s} is outside a group of {}", parts.len())),
        None => Tensor::full(&parts[0].ty(), 0.0).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardc_ir::{DType, TensorType};

    fn t(dims: &[u64], v: &[f64]) -> Tensor {
        Tensor::from_f64(TensorType::new(DType::F32, dims.to_vec()), v).unwrap()
    }

    #[test]
    fn flat_chunks_cover_the_range_without_overlap() {
        let ranges: Vec<_> = (0..3).map(|r| flat_chunk(10, 3, r)).collect();
        assert_eq!(ranges, vec![0..4, 4..7, 7..10]);
        assert_eq!(flat_chunk(2, 4, 3), 2..2);
    }

    #[test]
    fn max_reduction_propagates_nan() {
        let a = t(&[2], &[1.0, f64::NAN]);
        let b = t(&[2], &[3.0, 0.0]);
        let r = reduce_flat(&[&a, &b], ReduceFn::Max, 0..2, None)
            .unwrap()
            .to_f64_vec();
        assert_eq!(r[0], 3.0);
        assert!(r[1].is_nan());
    }

    #[test]
    fn reduce_scatter_along_a_middle_dim_sums_each_ranks_blocks() {
        // [2, 4, 3] over 2 ranks along dim 1: rank 1 keeps rows 2..4 of both outer blocks.
        let v = |k: f64| (0..24).map(|i| i as f64 * k).collect::<Vec<_>>();
        let (a, b) = (t(&[2, 4, 3], &v(1.0)), t(&[2, 4, 3], &v(10.0)));
        let got = reduce_scatter(&[&a, &b], 1, ReduceFn::Sum, 1).unwrap();
        assert_eq!(got.shape(), &[2, 2, 3]);
        let want: Vec<f64> = [6, 7, 8, 9, 10, 11, 18, 19, 20, 21, 22, 23]
            .iter()
            .map(|&i| i as f64 * 11.0)
            .collect();
        assert_eq!(got.to_f64_vec(), want);
        assert!(reduce_scatter(&[&a, &b], 2, ReduceFn::Sum, 0)
            .unwrap_err()
            .contains("does not split into 2"));
    }
}
