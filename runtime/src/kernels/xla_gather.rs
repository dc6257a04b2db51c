//! XLA's general gather (start indices clamped so that each slice fits) and scatter (each update
//! window combined into the operand at its start; windows that do not fit are skipped), as
//! <https://openxla.org/xla/operation_semantics#gather> and `#scatter` define them.

use ndarray::{ArrayD, IxDyn};
use shardc_ir::{BinaryFn, GatherDims, ScatterDims};

use super::elementwise::{binary_float, binary_int};
use super::{arr, indices};
use crate::tensor::{with_elem, Data, Elem, Tensor};

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Calls `f` with every multi-index of `shape` in row-major order.
fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut ix = vec![0usize; shape.len()];
    loop {
        f(&ix);
        let mut d = shape.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            ix[d] += 1;
            if ix[d] < shape[d] {
                break;
            }
            ix[d] = 0;
        }
    }
}

/// The index vectors of `indices`, one per position of its batch dims (row-major), each of
/// `len` elements.
fn index_vectors(
    indices_shape: &[usize],
    flat: &[i64],
    ivd: usize,
    batch_dims: &[usize],
    len: usize,
) -> Vec<Vec<i64>> {
    let st = strides(indices_shape);
    let batch_shape: Vec<usize> = batch_dims.iter().map(|&d| indices_shape[d]).collect();
    let mut out = Vec::new();
    for_each_index(&batch_shape, |b| {
        let base: usize = b.iter().zip(batch_dims).map(|(&i, &d)| i * st[d]).sum();
        let step = if ivd < indices_shape.len() {
            st[ivd]
        } else {
            0
        };
        out.push((0..len).map(|k| flat[base + k * step]).collect());
    });
    out
}

fn u64s(shape: &[usize]) -> Vec<u64> {
    shape.iter().map(|&d| d as u64).collect()
}

fn gather_typed<T: Elem>(
    x: &ArrayD<T>,
    idx_shape: &[usize],
    flat_idx: &[i64],
    dims: &GatherDims,
) -> Result<ArrayD<T>, String> {
    let xs = x.shape().to_vec();
    let g = dims.geometry(&u64s(&xs), &u64s(idx_shape))?;
    let out_shape: Vec<usize> = g.result_dims.iter().map(|&d| d as usize).collect();
    let x = x.as_standard_layout();
    let xv = x
        .as_slice()
        .ok_or("invariant: standard layout is contiguous")?;
    let (xst, ost) = (strides(&xs), strides(&out_shape));
    let slice_shape: Vec<usize> = g
        .offset_operand_dims
        .iter()
        .map(|&d| dims.slice_sizes[d] as usize)
        .collect();
    let vectors = index_vectors(
        idx_shape,
        flat_idx,
        dims.index_vector_dim,
        &g.batch_index_dims,
        g.index_vector_len,
    );
    let batch_shape: Vec<usize> = g.batch_index_dims.iter().map(|&d| idx_shape[d]).collect();
    let mut out = vec![T::default(); out_shape.iter().product()];
    let mut k = 0usize;
    for_each_index(&batch_shape, |b| {
        let mut start = vec![0usize; xs.len()];
        for (&d, &v) in dims.start_index_map.iter().zip(&vectors[k]) {
            let hi = (xs[d] - dims.slice_sizes[d] as usize) as i64;
            start[d] = v.clamp(0, hi) as usize;
        }
        for (&od, &id) in dims
            .operand_batching_dims
            .iter()
            .zip(&dims.start_indices_batching_dims)
        {
            // invariant: `geometry` checked the batching dims are batch dims of the indices.
            let p = g
                .batch_index_dims
                .iter()
                .position(|&d| d == id)
                .unwrap_or(0);
            start[od] = b[p];
        }
        let x_base: usize = start.iter().zip(&xst).map(|(&s, &st)| s * st).sum();
        let o_base: usize = b
            .iter()
            .zip(&g.result_batch_dims)
            .map(|(&i, &d)| i * ost[d])
            .sum();
        for_each_index(&slice_shape, |w| {
            let (mut xi, mut oi) = (x_base, o_base);
            for (j, &i) in w.iter().enumerate() {
                xi += i * xst[g.offset_operand_dims[j]];
                oi += i * ost[dims.offset_dims[j]];
            }
            out[oi] = xv[xi];
        });
        k += 1;
    });
    ArrayD::from_shape_vec(IxDyn(&out_shape), out).map_err(|e| format!("gather: {e}"))
}

/// XLA's general gather.
pub(super) fn general_gather(
    x: &Tensor,
    idx: &Tensor,
    dims: &GatherDims,
) -> Result<Tensor, String> {
    let flat = indices(idx)?;
    let data = with_elem!(x.data(), T => {
        T::into_data(gather_typed(arr::<T>(x)?, idx.shape(), &flat, dims)?)
    });
    Ok(Tensor::from_data(x.dtype(), data))
}

fn scatter_typed<T: Elem>(
    x: &ArrayD<T>,
    idx_shape: &[usize],
    flat_idx: &[i64],
    updates: &ArrayD<T>,
    dims: &ScatterDims,
    combine: impl Fn(T, T) -> T,
) -> Result<ArrayD<T>, String> {
    let xs = x.shape().to_vec();
    let us = updates.shape().to_vec();
    let g = dims.geometry(&u64s(&xs), &u64s(idx_shape), &u64s(&us))?;
    let mut out: Vec<T> = x.as_standard_layout().iter().copied().collect();
    let u = updates.as_standard_layout();
    let uv = u
        .as_slice()
        .ok_or("invariant: standard layout is contiguous")?;
    let (xst, ust) = (strides(&xs), strides(&us));
    let window_shape: Vec<usize> = dims.update_window_dims.iter().map(|&d| us[d]).collect();
    let vectors = index_vectors(
        idx_shape,
        flat_idx,
        dims.index_vector_dim,
        &g.batch_index_dims,
        g.index_vector_len,
    );
    let batch_shape: Vec<usize> = g.batch_index_dims.iter().map(|&d| idx_shape[d]).collect();
    let mut k = 0usize;
    for_each_index(&batch_shape, |b| {
        let vector = &vectors[k];
        k += 1;
        let mut start = vec![0i64; xs.len()];
        for (&d, &v) in dims.scatter_dims_to_operand_dims.iter().zip(vector) {
            start[d] = v;
        }
        for (&od, &id) in dims
            .input_batching_dims
            .iter()
            .zip(&dims.scatter_indices_batching_dims)
        {
            let p = g
                .batch_index_dims
                .iter()
                .position(|&d| d == id)
                .unwrap_or(0);
            start[od] = b[p] as i64;
        }
        // A window that does not fit whole is skipped (XLA's scatter semantics).
        let fits = (0..xs.len())
            .all(|d| start[d] >= 0 && start[d] + g.window_sizes[d] as i64 <= xs[d] as i64);
        if !fits {
            return;
        }
        let x_base: usize = (0..xs.len()).map(|d| start[d] as usize * xst[d]).sum();
        let u_base: usize = b
            .iter()
            .zip(&g.update_scatter_dims)
            .map(|(&i, &d)| i * ust[d])
            .sum();
        for_each_index(&window_shape, |w| {
            let (mut xi, mut ui) = (x_base, u_base);
            for (j, &i) in w.iter().enumerate() {
                xi += i * xst[g.window_operand_dims[j]];
                ui += i * ust[dims.update_window_dims[j]];
            }
            out[xi] = combine(out[xi], uv[ui]);
        });
    });
    ArrayD::from_shape_vec(IxDyn(&xs), out).map_err(|e| format!("scatter: {e}"))
}

/// XLA's general scatter of one operand; `combine` `None` replaces.
pub(super) fn general_scatter(
    x: &Tensor,
    idx: &Tensor,
    updates: &Tensor,
    dims: &ScatterDims,
    combine: Option<BinaryFn>,
) -> Result<Tensor, String> {
    let flat = indices(idx)?;
    let s = idx.shape();
    let data = match (x.data(), combine) {
        (Data::F32(a), Some(f)) => {
            let c = binary_float(f)?;
            let f = |p: f32, q: f32| c(p as f64, q as f64) as f32;
            Data::F32(scatter_typed(a, s, &flat, arr::<f32>(updates)?, dims, f)?)
        }
        (Data::F64(a), Some(f)) => Data::F64(scatter_typed(
            a,
            s,
            &flat,
            arr::<f64>(updates)?,
            dims,
            binary_float(f)?,
        )?),
        (Data::I32(a), Some(f)) => {
            let c = binary_int(f)?;
            let f = |p: i32, q: i32| c(p as i64, q as i64) as i32;
            Data::I32(scatter_typed(a, s, &flat, arr::<i32>(updates)?, dims, f)?)
        }
        (Data::I64(a), Some(f)) => Data::I64(scatter_typed(
            a,
            s,
            &flat,
            arr::<i64>(updates)?,
            dims,
            binary_int(f)?,
        )?),
        (Data::Bool(a), Some(BinaryFn::Max)) => Data::Bool(scatter_typed(
            a,
            s,
            &flat,
            arr::<bool>(updates)?,
            dims,
            |p, q| p || q,
        )?),
        (Data::Bool(a), Some(BinaryFn::Min)) => Data::Bool(scatter_typed(
            a,
            s,
            &flat,
            arr::<bool>(updates)?,
            dims,
            |p, q| p && q,
        )?),
        (Data::Bool(_), Some(f)) => {
            return Err(format!(
                "a scatter on bool cannot combine with {}",
                f.name()
            ))
        }
        (_, None) => with_elem!(x.data(), T => {
            T::into_data(scatter_typed(arr::<T>(x)?, s, &flat, arr::<T>(updates)?, dims, |_, q| q)?)
        }),
    };
    Ok(Tensor::from_data(x.dtype(), data))
}
