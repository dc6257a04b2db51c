//! Ops without operands: constant and iota.

use shardc_ir::{Literal, TensorType};

use crate::tensor::{usize_dims, Tensor};

pub(super) fn constant(value: &Literal, ty: &TensorType) -> Result<Tensor, String> {
    match value {
        Literal::Splat(v) => Tensor::full(ty, *v),
        Literal::Dense(vs) => Tensor::from_f64(ty.clone(), vs),
    }
    .map_err(|e| e.to_string())
}

pub(super) fn iota(dim: usize, ty: &TensorType) -> Result<Tensor, String> {
    let dims = usize_dims(ty).map_err(|e| e.to_string())?;
    if dim >= dims.len() {
        return Err(format!("iota dim {dim} is out of range for {ty}"));
    }
    // The row-major position `i` has coordinate `(i / inner) % size` along `dim`.
    let inner: usize = dims[dim + 1..].iter().product();
    let size = dims[dim];
    Ok(Tensor::from_fn(ty.dtype, &dims, |i| {
        ((i / inner.max(1)) % size.max(1)) as f64
    }))
}
