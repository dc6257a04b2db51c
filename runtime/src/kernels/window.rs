//! Window kernels: `reduce_window` and `select_and_scatter`, XLA's semantics (padding
//! positions hold `init` in a reduction and are never picked by a select; base dilation
//! leaves holes that behave as padding).
//!
//! Arithmetic runs in f64 (integers exact up to 2^53), rounded to the result's dtype.

use ndarray::{ArrayD, IxDyn};
use shardc_ir::{CompareDir, ReduceFn, TensorType, Window};

use super::arr;
use crate::tensor::{usize_dims, with_elem, Elem, Tensor};

/// For each window position of output element `out` (row-major over the window's sizes),
/// the operand's row-major index, or `None` for padding and dilation holes.
fn window_sources(w: &Window, x: &[usize], out: &[usize], buf: &mut Vec<Option<usize>>) {
    buf.clear();
    let rank = x.len();
    let mut pos = vec![0u64; rank];
    loop {
        let mut flat = Some(0usize);
        for d in 0..rank {
            let at = out[d] as u64 * w.stride[d] + pos[d] * w.window_dilation[d];
            let at = at.checked_sub(w.padding[d].0);
            let idx = at
                .filter(|a| a % w.base_dilation[d] == 0)
                .map(|a| a / w.base_dilation[d]);
            flat = match (flat, idx) {
                (Some(f), Some(i)) if (i as usize) < x[d] => Some(f * x[d] + i as usize),
                _ => None,
            };
        }
        buf.push(flat);
        // Next window position, last dim fastest.
        let mut d = rank;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            pos[d] += 1;
            if pos[d] < w.size[d] {
                break;
            }
            pos[d] = 0;
        }
    }
}

/// Visits every output multi-index in row-major order.
fn for_each_index(dims: &[usize], mut f: impl FnMut(usize, &[usize])) {
    let n: usize = dims.iter().product();
    let mut idx = vec![0usize; dims.len()];
    for flat in 0..n {
        f(flat, &idx);
        for d in (0..dims.len()).rev() {
            idx[d] += 1;
            if idx[d] < dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

fn combine(func: ReduceFn, a: f64, b: f64) -> f64 {
    match func {
        ReduceFn::Sum => a + b,
        _ if a.is_nan() || b.is_nan() => f64::NAN,
        ReduceFn::Max => a.max(b),
        ReduceFn::Min => a.min(b),
    }
}

fn window_checked(w: &Window, rank: usize) -> Result<(), String> {
    let ok = [
        w.size.len(),
        w.stride.len(),
        w.padding.len(),
        w.base_dilation.len(),
        w.window_dilation.len(),
    ]
    .iter()
    .all(|&n| n == rank);
    if !ok || w.base_dilation.contains(&0) {
        return Err(format!("the window does not fit an operand of rank {rank}"));
    }
    Ok(())
}

pub(super) fn reduce_window(
    func: ReduceFn,
    w: &Window,
    init: f64,
    x: &Tensor,
    ty: &TensorType,
) -> Result<Tensor, String> {
    window_checked(w, x.shape().len())?;
    let out_dims = usize_dims(ty).map_err(|e| e.to_string())?;
    let data = with_elem!(x.data(), T => {
        let a = arr::<T>(x)?.as_standard_layout();
        let src = a.as_slice().ok_or("internal: standard layout is contiguous")?;
        let mut out = Vec::with_capacity(out_dims.iter().product());
        let mut buf = Vec::new();
        for_each_index(&out_dims, |_, o| {
            window_sources(w, x.shape(), o, &mut buf);
            let acc = buf.iter().fold(init, |acc, s| {
                combine(func, acc, s.map_or(init, |i| src[i].to_f64()))
            });
            out.push(T::from_f64(acc));
        });
        let out = ArrayD::from_shape_vec(IxDyn(&out_dims), out).map_err(|e| e.to_string())?;
        T::into_data(out)
    });
    Ok(Tensor::from_data(ty.dtype, data))
}

fn selects(dir: CompareDir, a: f64, b: f64) -> bool {
    match dir {
        CompareDir::Ge => a >= b,
        CompareDir::Gt => a > b,
        CompareDir::Le => a <= b,
        CompareDir::Lt => a < b,
        CompareDir::Eq => a == b,
        CompareDir::Ne => a != b,
    }
}

pub(super) fn select_and_scatter(
    w: &Window,
    select: CompareDir,
    init: f64,
    x: &Tensor,
    source: &Tensor,
) -> Result<Tensor, String> {
    window_checked(w, x.shape().len())?;
    let src_dims = source.shape().to_vec();
    let data = with_elem!(x.data(), T => {
        let a = arr::<T>(x)?.as_standard_layout();
        let s = arr::<T>(source)?.as_standard_layout();
        let xs = a.as_slice().ok_or("internal: standard layout is contiguous")?;
        let ss = s.as_slice().ok_or("internal: standard layout is contiguous")?;
        let mut acc = vec![init; xs.len()];
        let mut buf = Vec::new();
        for_each_index(&src_dims, |flat, o| {
            window_sources(w, x.shape(), o, &mut buf);
            // The first candidate that `select` keeps against every later one.
            let mut pick: Option<usize> = None;
            for &i in buf.iter().flatten() {
                pick = match pick {
                    Some(p) if selects(select, xs[p].to_f64(), xs[i].to_f64()) => Some(p),
                    _ => Some(i),
                };
            }
            if let Some(p) = pick {
                acc[p] += ss[flat].to_f64();
            }
        });
        let out: Vec<T> = acc.into_iter().map(T::from_f64).collect();
        let out = ArrayD::from_shape_vec(IxDyn(x.shape()), out).map_err(|e| e.to_string())?;
        T::into_data(out)
    });
    Ok(Tensor::from_data(x.dtype(), data))
}
