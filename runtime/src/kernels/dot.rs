//! `dot_general`: operands are permuted to `[batch, m, k]` and `[batch, k, n]` and multiplied
//! with ndarray's blocked `general_mat_mul` (matrixmultiply's SIMD kernels for f32/f64).

use ndarray::linalg::general_mat_mul;
use ndarray::{Array3, ArrayD, Axis, IxDyn, LinalgScalar};

use super::{arr, std_owned};
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

/// Multiplies `[b, m, k] · [b, k, n]` batch by batch.
pub(crate) fn batched_matmul<T: LinalgScalar>(l: &Array3<T>, r: &Array3<T>) -> Array3<T> {
    let (b, m, _) = l.dim();
    let n = r.dim().2;
    let mut out = Array3::<T>::zeros((b, m, n));
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
    let l3 = std_owned(l.view().permuted_axes(lperm))
        .into_shape_with_order((b, m, k))
        .map_err(shape_err)?;
    let r3 = std_owned(r.view().permuted_axes(rperm))
        .into_shape_with_order((b, k, n))
        .map_err(shape_err)?;
    let mut out_shape: Vec<usize> = d.lhs_batch.iter().map(|&i| ls[i]).collect();
    out_shape.extend(lfree.iter().map(|&i| ls[i]));
    out_shape.extend(rfree.iter().map(|&i| rs[i]));
    // [batch, m, n] in row-major order is exactly [batch dims, lhs free dims, rhs free dims].
    batched_matmul(&l3, &r3)
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
