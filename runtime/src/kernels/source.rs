//! Ops without operands: constant and iota.

use shardc_ir::{Literal, TensorType};

use ndarray::{ArrayD, IxDyn};
use shardc_ir::DType;

use super::pool;
use crate::tensor::{usize_dims, Data, Tensor};

pub(super) fn constant(value: &Literal, ty: &TensorType) -> Result<Tensor, String> {
    match value {
        // Float splats fill a recycled buffer (`pool`): transformer graphs make several
        // activation-sized constants per layer.
        Literal::Splat(v) if ty.dtype.is_float() && ty.dtype != DType::F64 => {
            let dims = usize_dims(ty).map_err(|e| e.to_string())?;
            let n = dims.iter().product();
            let a = ArrayD::from_shape_vec(IxDyn(&dims), pool::filled(n, *v as f32))
                .map_err(|e| format!("constant {ty}: {e}"))?;
            Ok(Tensor::from_data(ty.dtype, Data::F32(a)))
        }
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
    let size = dims[dim];
    // The coordinate as a 1-D tensor broadcast along every other dim (whole rows copied, not
    // one division per element).
    let line = Tensor::from_fn(ty.dtype, &[size], |i| i as f64);
    super::layout::broadcast(&line, &[dim], ty)
}
