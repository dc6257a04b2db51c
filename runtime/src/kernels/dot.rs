//! `dot_general`: operands are viewed as `[batch, m, k]` and `[batch, k, n]` and multiplied
//! with ndarray's blocked `general_mat_mul` (matrixmultiply's SIMD kernels for f32/f64, spread
//! over the cores by its `threading` feature). An operand is copied only when no strided view
//! of it has that shape (a permutation that mixes dims across the groups); a transposed weight
//! is read in place, as GEMM takes any strides.

use ndarray::linalg::general_mat_mul;
use ndarray::{
    Array3, ArrayD, ArrayView3, ArrayViewD, Axis, CowArray, Ix2, Ix3, IxDyn, LinalgScalar,
};

use super::arr;
use crate::tensor::{Data, Elem, Tensor};

/// The dimension numbers of a `dot_general`.
pub(crate) struct DotDims<'a> {
    pub lhs_batch: &'a [usize],
    pub rhs_batch: &'a [usize],
    pub lhs_contract: &'a [usize],
    pub rhs_contract: &'a [usize],
}

fn free_dims(rank: usize, batch: &[usize], contract: &[usize]) -> Vec<usize> {
    (0..rank)
        .filter(|d| !batch.contains(d) && !contract.contains(d))
        .collect()
}

fn size(shape: &[usize], dims: &[usize]) -> usize {
    dims.iter().map(|&d| shape[d]).product()
}

/// `v` as a 3-D array of `dims`: a view when its strides allow (contiguous in that order, or a
/// 2-D strided matrix as one batch), else a standard-layout copy.
fn as_3d<T: Clone>(
    v: ArrayViewD<'_, T>,
    dims: (usize, usize, usize),
) -> Result<CowArray<'_, T, Ix3>, String> {
    if let Ok(view) = v.clone().into_shape_with_order(dims) {
        return Ok(CowArray::from(view));
    }
    if v.ndim() == 2 && dims.0 == 1 {
        if let Ok(m) = v.clone().into_dimensionality::<Ix2>() {
            return Ok(CowArray::from(m.insert_axis(Axis(0))));
        }
    }
    let owned = v.as_standard_layout().into_owned();
    owned
        .into_shape_with_order(dims)
        .map(CowArray::from)
        .map_err(|e| format!("dot_general reshape: {e}"))
}

/// Multiplies `[b, m, k] · [b, k, n]` batch by batch.
pub(crate) fn batched_matmul<T: LinalgScalar + Elem>(
    l: &ArrayView3<T>,
    r: &ArrayView3<T>,
) -> Array3<T> {
    let (b, m, _) = l.dim();
    let n = r.dim().2;
    let zeros = super::pool::filled(b * m * n, T::zero());
    // invariant: the buffer has b·m·n elements.
    let mut out = Array3::from_shape_vec((b, m, n), zeros).expect("invariant: b·m·n elements");
    for i in 0..b {
        general_mat_mul(
            T::one(),
            &l.index_axis(Axis(0), i),
            &r.index_axis(Axis(0), i),
            T::zero(),
            &mut out.index_axis_mut(Axis(0), i),
        );
    }
    out
}

fn dot_typed<T: LinalgScalar + Elem>(
    l: &ArrayD<T>,
    r: &ArrayD<T>,
    d: &DotDims,
) -> Result<ArrayD<T>, String> {
    let (ls, rs) = (l.shape(), r.shape());
    let lfree = free_dims(ls.len(), d.lhs_batch, d.lhs_contract);
    let rfree = free_dims(rs.len(), d.rhs_batch, d.rhs_contract);
    for (&a, &b) in d
        .lhs_batch
        .iter()
        .chain(d.lhs_contract)
        .zip(d.rhs_batch.iter().chain(d.rhs_contract))
    {
        if a >= ls.len() || b >= rs.len() || ls[a] != rs[b] {
            return Err(format!(
                "lhs dim {a} and rhs dim {b} do not match in {ls:?} · {rs:?}"
            ));
        }
    }
    let (b, m, k, n) = (
        size(ls, d.lhs_batch),
        size(ls, &lfree),
        size(ls, d.lhs_contract),
        size(rs, &rfree),
    );
    let lperm: Vec<usize> = d
        .lhs_batch
        .iter()
        .chain(&lfree)
        .chain(d.lhs_contract)
        .copied()
        .collect();
    let rperm: Vec<usize> = d
        .rhs_batch
        .iter()
        .chain(d.rhs_contract)
        .chain(&rfree)
        .copied()
        .collect();
    let shape_err = |e: ndarray::ShapeError| format!("dot_general reshape: {e}");
    let l3 = as_3d(l.view().permuted_axes(lperm), (b, m, k))?;
    let r3 = as_3d(r.view().permuted_axes(rperm), (b, k, n))?;
    let mut out_shape: Vec<usize> = d.lhs_batch.iter().map(|&i| ls[i]).collect();
    out_shape.extend(lfree.iter().map(|&i| ls[i]));
    out_shape.extend(rfree.iter().map(|&i| rs[i]));
    // [batch, m, n] in row-major order is exactly [batch dims, lhs free dims, rhs free dims].
    batched_matmul(&l3.view(), &r3.view())
        .into_shape_with_order(IxDyn(&out_shape))
        .map_err(shape_err)
}

pub(super) fn dot_general(l: &Tensor, r: &Tensor, d: DotDims) -> Result<Tensor, String> {
    let data = match l.data() {
        Data::F32(a) => Data::F32(dot_typed(a, arr::<f32>(r)?, &d)?),
        Data::F64(a) => Data::F64(dot_typed(a, arr::<f64>(r)?, &d)?),
        Data::I32(a) => Data::I32(dot_typed(a, arr::<i32>(r)?, &d)?),
        Data::I64(a) => Data::I64(dot_typed(a, arr::<i64>(r)?, &d)?),
        Data::Bool(_) => return Err("dot_general needs numeric operands, got bool".into()),
    };
    Ok(Tensor::from_data(l.dtype(), data))
}
