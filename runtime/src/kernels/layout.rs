//! Data-movement kernels: broadcast, reshape, transpose, slice, concatenate, pad and the
//! dynamic slices. All are generic over the element type.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};
use shardc_ir::TensorType;

use super::{arr, par, scalar_index, std_owned};
use crate::tensor::{usize_dims, with_elem, Data, Elem, Tensor};

fn dims_of(ty: &TensorType) -> Result<Vec<usize>, String> {
    usize_dims(ty).map_err(|e| e.to_string())
}

/// Applies a generic, element-preserving kernel to `x`.
macro_rules! generic {
    ($x:expr, $T:ident => $body:expr) => {{
        let x: &Tensor = $x;
        let data = with_elem!(x.data(), $T => $T::into_data($body));
        Ok(Tensor::from_data(x.dtype(), data))
    }};
}

pub(super) fn broadcast(x: &Tensor, dims: &[usize], ty: &TensorType) -> Result<Tensor, String> {
    let out = dims_of(ty)?;
    if dims.len() != x.shape().len() || dims.iter().any(|&d| d >= out.len()) {
        return Err(format!(
            "broadcast dims {dims:?} do not fit {} -> {ty}",
            x.ty()
        ));
    }
    if let Some(t) = broadcast_contiguous(x, dims, &out) {
        return Ok(t);
    }
    generic!(x, T => {
        // Order the operand's axes by their target dim, then insert the missing axes in
        // increasing order, so each lands at its own position; then expand size-1 dims.
        let mut order: Vec<usize> = (0..dims.len()).collect();
        order.sort_by_key(|&i| dims[i]);
        let mut v: ArrayViewD<T> = arr::<T>(x)?.view().permuted_axes(order);
        for r in 0..out.len() {
            if !dims.contains(&r) {
                v = v.insert_axis(Axis(r));
            }
        }
        v.broadcast(IxDyn(&out))
            .ok_or_else(|| format!("cannot broadcast {} to {ty} with dims {dims:?}", x.ty()))?
            .as_standard_layout()
            .into_owned()
    })
}

/// The broadcast of a contiguous operand whose dims keep their order (every broadcast the
/// importers and autodiff make): rows filled or copied whole by `par::expand`.
fn broadcast_contiguous(x: &Tensor, dims: &[usize], out: &[usize]) -> Option<Tensor> {
    if dims.windows(2).any(|w| w[0] >= w[1]) {
        return None;
    }
    let shape = x.shape();
    // Row-major strides of the operand, placed at the output dims they map to; 0 elsewhere
    // and on size-1 dims that expand.
    let mut strides = vec![0usize; out.len()];
    let mut stride = 1;
    for (j, &d) in dims.iter().enumerate().rev() {
        if shape[j] == out[d] {
            strides[d] = stride;
        } else if shape[j] != 1 {
            return None;
        }
        stride *= shape[j];
    }
    let data = with_elem!(x.data(), T => {
        let src = arr::<T>(x).ok()?.as_slice()?;
        T::into_data(ArrayD::from_shape_vec(IxDyn(out), par::expand(src, out, &strides)).ok()?)
    });
    Some(Tensor::from_data(x.dtype(), data))
}

pub(super) fn reshape(x: &Tensor, ty: &TensorType) -> Result<Tensor, String> {
    let out = dims_of(ty)?;
    generic!(x, T => {
        std_owned(arr::<T>(x)?.view())
            .into_shape_with_order(IxDyn(&out))
            .map_err(|e| format!("cannot reshape {} to {ty}: {e}", x.ty()))?
    })
}

/// [`reshape`] of an operand the caller no longer needs: its storage relabelled when it is in
/// row-major layout (no copy), else `x` back.
pub(super) fn reshape_owned(x: Tensor, ty: &TensorType) -> Result<Result<Tensor, Tensor>, String> {
    let out = dims_of(ty)?;
    if x.dtype() != ty.dtype || x.len() != out.iter().product::<usize>() {
        return Ok(Err(x));
    }
    let dtype = x.dtype();
    macro_rules! relabel {
        ($a:expr, $v:ident) => {
            if $a.is_standard_layout() {
                match $a.into_shape_with_order(IxDyn(&out)) {
                    Ok(a) => Data::$v(a),
                    Err(e) => return Err(format!("cannot reshape to {ty}: {e}")),
                }
            } else {
                return Ok(Err(Tensor::from_data(dtype, Data::$v($a))));
            }
        };
    }
    let data = match x.into_data() {
        Data::F32(a) => relabel!(a, F32),
        Data::F64(a) => relabel!(a, F64),
        Data::I32(a) => relabel!(a, I32),
        Data::I64(a) => relabel!(a, I64),
        Data::Bool(a) => relabel!(a, Bool),
    };
    Ok(Ok(Tensor::from_data(dtype, data)))
}

pub(super) fn reverse(x: &Tensor, dims: &[usize]) -> Result<Tensor, String> {
    if let Some(&d) = dims.iter().find(|&&d| d >= x.shape().len()) {
        return Err(format!("reverse dim {d} is out of range for {}", x.ty()));
    }
    generic!(x, T => {
        let mut v = arr::<T>(x)?.view();
        for &d in dims {
            v.invert_axis(Axis(d));
        }
        v.as_standard_layout().into_owned()
    })
}

pub(super) fn transpose(x: &Tensor, perm: &[usize]) -> Result<Tensor, String> {
    let mut sorted = perm.to_vec();
    sorted.sort_unstable();
    if sorted != (0..x.shape().len()).collect::<Vec<_>>() {
        return Err(format!(
            "{perm:?} is not a permutation of the dims of {}",
            x.ty()
        ));
    }
    generic!(x, T => std_owned(arr::<T>(x)?.view().permuted_axes(perm.to_vec())))
}

pub(super) fn slice(
    x: &Tensor,
    start: &[u64],
    limit: &[u64],
    stride: &[u64],
) -> Result<Tensor, String> {
    let shape = x.shape();
    if start.len() != shape.len() || limit.len() != shape.len() || stride.len() != shape.len() {
        return Err(format!("slice bounds need {} entries each", shape.len()));
    }
    for d in 0..shape.len() {
        if stride[d] == 0 || start[d] > limit[d] || limit[d] > shape[d] as u64 {
            return Err(format!(
                "dim {d}: need start <= limit <= {} and stride >= 1, got [{}, {}) step {}",
                shape[d], start[d], limit[d], stride[d]
            ));
        }
    }
    generic!(x, T => {
        std_owned(arr::<T>(x)?.slice_each_axis(|ax| {
            let d = ax.axis.index();
            Slice::new(start[d] as isize, Some(limit[d] as isize), stride[d] as isize)
        }))
    })
}

pub(super) fn concatenate(xs: &[&Tensor], dim: usize) -> Result<Tensor, String> {
    let first = *xs.first().ok_or("concatenate needs at least one operand")?;
    generic!(first, T => {
        let views = xs.iter().map(|t| arr::<T>(t).map(|a| a.view())).collect::<Result<Vec<_>, _>>()?;
        ndarray::concatenate(Axis(dim), &views).map_err(|e| format!("concatenate along dim {dim}: {e}"))?
    })
}

/// For one dim of a pad: the operand range `[i0, i1)` that lands inside the result and the
/// result position of `i0`, or `None` when nothing does.
fn pad_range(n: usize, low: i64, interior: u64, out: usize) -> Option<(usize, usize, usize)> {
    let step = interior as i128 + 1;
    let (low, n, out) = (low as i128, n as i128, out as i128);
    // Operand index i lands at low + i*step; keep those within [0, out).
    let i0 = if low < 0 { (-low + step - 1) / step } else { 0 };
    let last = out - 1 - low;
    if last < 0 {
        return None;
    }
    let i1 = (last / step + 1).min(n);
    (i1 > i0).then(|| (i0 as usize, i1 as usize, (low + i0 * step) as usize))
}

pub(super) fn pad(
    x: &Tensor,
    low: &[i64],
    high: &[i64],
    interior: &[u64],
    value: f64,
    ty: &TensorType,
) -> Result<Tensor, String> {
    let out = dims_of(ty)?;
    let shape = x.shape().to_vec();
    let rank = shape.len();
    if low.len() != rank || high.len() != rank || interior.len() != rank || out.len() != rank {
        return Err(format!(
            "pad needs {rank} entries for low, high and interior"
        ));
    }
    let mut ranges = Vec::with_capacity(rank);
    for d in 0..rank {
        match pad_range(shape[d], low[d], interior[d], out[d]) {
            Some(r) => ranges.push(r),
            None => return Tensor::full(ty, value).map_err(|e| e.to_string()),
        }
    }
    generic!(x, T => {
        let a = arr::<T>(x)?;
        let mut res = ArrayD::<T>::from_elem(IxDyn(&out), T::from_f64(value));
        let src = a.slice_each_axis(|ax| {
            let (i0, i1, _) = ranges[ax.axis.index()];
            Slice::from(i0..i1)
        });
        res.slice_each_axis_mut(|ax| {
            let d = ax.axis.index();
            let (i0, i1, at) = ranges[d];
            let step = interior[d] as usize + 1;
            Slice::new(at as isize, Some((at + (i1 - i0 - 1) * step + 1) as isize), step as isize)
        })
        .assign(&src);
        res
    })
}

/// Start indices clamped into range, as XLA does: `clamp(s, 0, n - size)`.
fn clamped_starts(
    shape: &[usize],
    sizes: &[usize],
    starts: &[&Tensor],
) -> Result<Vec<usize>, String> {
    if starts.len() != shape.len() || sizes.len() != shape.len() {
        return Err(format!(
            "need one start index per dim ({}), got {}",
            shape.len(),
            starts.len()
        ));
    }
    shape
        .iter()
        .zip(sizes)
        .zip(starts)
        .enumerate()
        .map(|(d, ((&n, &size), s))| {
            if size > n {
                return Err(format!("size {size} of dim {d} exceeds the dim's size {n}"));
            }
            Ok(scalar_index(s)?.clamp(0, (n - size) as i64) as usize)
        })
        .collect()
}

pub(super) fn dynamic_slice(
    x: &Tensor,
    starts: &[&Tensor],
    sizes: &[u64],
) -> Result<Tensor, String> {
    let sizes: Vec<usize> = sizes.iter().map(|&s| s as usize).collect();
    let at = clamped_starts(x.shape(), &sizes, starts)?;
    generic!(x, T => {
        std_owned(arr::<T>(x)?.slice_each_axis(|ax| {
            let d = ax.axis.index();
            Slice::from(at[d]..at[d] + sizes[d])
        }))
    })
}

pub(super) fn dynamic_update_slice(
    x: &Tensor,
    update: &Tensor,
    starts: &[&Tensor],
) -> Result<Tensor, String> {
    let sizes = update.shape().to_vec();
    let at = clamped_starts(x.shape(), &sizes, starts)?;
    generic!(x, T => {
        let mut res = arr::<T>(x)?.clone();
        res.slice_each_axis_mut(|ax| {
            let d = ax.axis.index();
            Slice::from(at[d]..at[d] + sizes[d])
        })
        .assign(arr::<T>(update)?);
        res
    })
}
