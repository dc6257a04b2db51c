//! Contiguous, multi-threaded loops for the kernels' hot paths (issue 15: CPU kernels that use
//! the machine). Each helper works on row-major slices and splits the elements into fixed-size
//! pieces over rayon's pool; every output element is computed by one thread in the same order
//! as the sequential loop, so results do not depend on the thread count.
//!
//! Kernels try these first and fall back to ndarray's general (strided, dynamic-rank) loops when
//! an operand is not in standard layout.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use rayon::prelude::*;

use super::pool;
use crate::tensor::Elem;

/// Elements per task: large enough that a task costs far more than rayon's hand-off (a few
/// microseconds), small enough that two cores share a 1 MiB tensor.
const GRAIN: usize = 1 << 15;

/// `f` applied to every element of `a`, or `None` when `a` is not contiguous.
pub(crate) fn map<A, B>(a: &ArrayD<A>, f: impl Fn(A) -> B + Sync) -> Option<ArrayD<B>>
where
    A: Copy + Sync,
    B: Elem,
{
    let src = a.as_slice()?;
    let mut out = pool::take(src.len()).unwrap_or_else(|| vec![B::default(); src.len()]);
    let body = |(o, i): (&mut [B], &[A])| o.iter_mut().zip(i).for_each(|(o, &x)| *o = f(x));
    if src.len() <= GRAIN {
        body((&mut out, src));
    } else {
        out.par_chunks_mut(GRAIN)
            .zip(src.par_chunks(GRAIN))
            .for_each(body);
    }
    ArrayD::from_shape_vec(a.raw_dim(), out).ok()
}

/// `f` applied to every pair of elements of `a` and `b` (same shape), or `None` when either is
/// not contiguous or the shapes differ.
pub(crate) fn zip<A, B>(
    a: &ArrayD<A>,
    b: &ArrayD<A>,
    f: impl Fn(A, A) -> B + Sync,
) -> Option<ArrayD<B>>
where
    A: Copy + Sync,
    B: Elem,
{
    if a.shape() != b.shape() {
        return None;
    }
    let (x, y) = (a.as_slice()?, b.as_slice()?);
    let mut out = pool::take(x.len()).unwrap_or_else(|| vec![B::default(); x.len()]);
    let body = |((o, p), q): ((&mut [B], &[A]), &[A])| {
        for ((o, &p), &q) in o.iter_mut().zip(p).zip(q) {
            *o = f(p, q);
        }
    };
    if x.len() <= GRAIN {
        body(((&mut out, x), y));
    } else {
        out.par_chunks_mut(GRAIN)
            .zip(x.par_chunks(GRAIN))
            .zip(y.par_chunks(GRAIN))
            .for_each(body);
    }
    ArrayD::from_shape_vec(a.raw_dim(), out).ok()
}

/// `f` applied to every element of `v` in place, in pieces over the threads when `v` is large.
pub(crate) fn for_each_mut<T: Send>(v: &mut [T], f: impl Fn(&mut T) + Sync) {
    if v.len() <= GRAIN {
        v.iter_mut().for_each(f);
    } else {
        v.par_chunks_mut(GRAIN)
            .for_each(|c| c.iter_mut().for_each(&f));
    }
}

/// `f(v_i, o_i)` for every pair of elements of `v` (written in place) and `o` (same length), in
/// pieces over the threads when they are large.
pub(crate) fn zip_mut<T: Send, U: Sync>(v: &mut [T], o: &[U], f: impl Fn(&mut T, &U) + Sync) {
    if v.len() <= GRAIN {
        v.iter_mut().zip(o).for_each(|(p, q)| f(p, q));
    } else {
        v.par_chunks_mut(GRAIN)
            .zip(o.par_chunks(GRAIN))
            .for_each(|(c, d)| c.iter_mut().zip(d).for_each(|(p, q)| f(p, q)));
    }
}

/// One value per row of `inner` consecutive elements: `row(slice)` for each, rows spread over
/// the threads. `None` when `a` is not contiguous.
pub(crate) fn rows<A, B>(
    a: &ArrayD<A>,
    inner: usize,
    kept: &[usize],
    row: impl Fn(&[A]) -> B + Sync,
) -> Option<ArrayD<B>>
where
    A: Copy + Sync,
    B: Elem,
{
    let src = a.as_slice()?;
    let outer: usize = kept.iter().product();
    if inner == 0 || outer * inner != src.len() {
        return None;
    }
    let mut out = vec![B::default(); outer];
    let per_task = (GRAIN / inner).max(1);
    out.par_chunks_mut(per_task)
        .zip(src.par_chunks(per_task * inner))
        .for_each(|(o, s)| {
            o.iter_mut()
                .zip(s.chunks_exact(inner))
                .for_each(|(o, r)| *o = row(r))
        });
    ArrayD::from_shape_vec(IxDyn(kept), out).ok()
}

/// Row-major copy of a broadcast: `strides[r]` is the source stride of output dim `r` (0 where
/// the source is repeated). Whole rows are filled or copied at once.
pub(crate) fn expand<T: Elem>(src: &[T], out: &[usize], strides: &[usize]) -> Vec<T> {
    let n: usize = out.iter().product();
    let mut dst = match pool::take(n) {
        Some(mut v) => {
            v.clear();
            v
        }
        None => Vec::with_capacity(n),
    };
    if n > 0 {
        expand_into(src, out, strides, 0, &mut dst);
    }
    dst
}

fn expand_into<T: Copy>(
    src: &[T],
    out: &[usize],
    strides: &[usize],
    base: usize,
    dst: &mut Vec<T>,
) {
    match out.len() {
        0 => dst.push(src[base]),
        1 => match strides[0] {
            0 => dst.extend(std::iter::repeat(src[base]).take(out[0])),
            1 => dst.extend_from_slice(&src[base..base + out[0]]),
            s => dst.extend((0..out[0]).map(|i| src[base + i * s])),
        },
        _ => {
            let start = dst.len();
            expand_into(src, &out[1..], &strides[1..], base, dst);
            if strides[0] == 0 {
                // The same block again: copy what was just written.
                let len = dst.len() - start;
                for _ in 1..out[0] {
                    dst.extend_from_within(start..start + len);
                }
            } else {
                for i in 1..out[0] {
                    expand_into(src, &out[1..], &strides[1..], base + i * strides[0], dst);
                }
            }
        }
    }
}

/// A row-major copy of `v`: one memcpy when it is contiguous, else one per innermost row when
/// those are (slices and transposes that keep the last dim), else ndarray's element loop.
pub(crate) fn to_standard<T: Elem>(v: ArrayViewD<'_, T>) -> ArrayD<T> {
    let n = v.len();
    if !v.is_standard_layout() {
        if let Some(out) = permuted_copy(&v) {
            return out;
        }
    }
    let last = v.ndim().checked_sub(1);
    let rows_contiguous = last.is_some_and(|l| v.strides()[l] == 1 && v.shape()[l] >= 8);
    if !v.is_standard_layout() && !rows_contiguous {
        return v.as_standard_layout().into_owned();
    }
    let mut out = match pool::take(n) {
        Some(mut b) => {
            b.clear();
            b
        }
        None => Vec::with_capacity(n),
    };
    match (v.as_slice(), last) {
        (Some(s), _) => out.extend_from_slice(s),
        (None, Some(l)) => {
            for lane in v.lanes(Axis(l)) {
                match lane.as_slice() {
                    Some(s) => out.extend_from_slice(s),
                    None => out.extend(lane.iter().copied()),
                }
            }
        }
        (None, None) => out.extend(v.iter().copied()),
    }
    // invariant: `out` holds the view's elements in row-major order.
    ArrayD::from_shape_vec(v.raw_dim(), out).expect("invariant: one element per position")
}

/// A row-major copy of a view whose elements fill its memory (a transpose of a whole array: the
/// view's memory is one slice, every stride non-negative), by an index odometer over the outer
/// dims and a loop over the last; `None` for other views. ndarray's lane iterator costs more per
/// lane than a transpose of a small attention tensor's 8-element rows.
fn permuted_copy<T: Elem>(v: &ArrayViewD<'_, T>) -> Option<ArrayD<T>> {
    let mem = v.as_slice_memory_order()?;
    let strides: Vec<usize> = v
        .strides()
        .iter()
        .map(|&s| usize::try_from(s).ok())
        .collect::<Option<_>>()?;
    let shape = v.shape();
    let rank = shape.len();
    if rank == 0 || v.is_empty() {
        return None;
    }
    let n = v.len();
    let mut out = match pool::take(n) {
        Some(mut b) => {
            b.clear();
            b
        }
        None => Vec::with_capacity(n),
    };
    let (inner, step) = (shape[rank - 1], strides[rank - 1]);
    let mut index = vec![0usize; rank - 1];
    let mut base = 0usize;
    loop {
        if step == 1 {
            out.extend_from_slice(mem.get(base..base + inner)?);
        } else {
            out.extend((0..inner).map(|i| mem[base + i * step]));
        }
        // Advance the odometer over the outer dims, last fastest.
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return ArrayD::from_shape_vec(v.raw_dim(), out).ok();
            }
            d -= 1;
            index[d] += 1;
            base += strides[d];
            if index[d] < shape[d] {
                break;
            }
            base -= strides[d] * shape[d];
            index[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permuted_copies_equal_ndarrays_standard_layout() {
        let a =
            ArrayD::from_shape_vec(IxDyn(&[2, 3, 4, 5]), (0..120).collect::<Vec<i64>>()).unwrap();
        for perm in [
            [0, 2, 1, 3],
            [3, 2, 1, 0],
            [1, 0, 3, 2],
            [0, 1, 3, 2],
            [2, 3, 0, 1],
        ] {
            let v = a.view().permuted_axes(perm.to_vec());
            let want = v.as_standard_layout().into_owned();
            assert_eq!(permuted_copy(&v).unwrap(), want, "perm {perm:?}");
            assert_eq!(to_standard(v), want, "perm {perm:?}");
        }
        // A slice does not fill its memory: not this path, and the general copy still agrees.
        let s = a.slice_each_axis(|ax| ndarray::Slice::from(0..ax.len.min(2)));
        assert!(permuted_copy(&s).is_none());
        assert_eq!(to_standard(s.clone()), s.as_standard_layout().into_owned());
    }
}
