//! Ops without operands: input, constant, iota, axis_index, recv.

use super::TypeCtx;
use crate::autodiff::{GradCtx, Grads};
use crate::dtype::DType;
use crate::error::Result;
use crate::op::{Init, Literal, Op};
use crate::types::TensorType;

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
    cx.expect_operands(0)?;
    let ty = cx.declared.clone();
    match op {
        Op::Input {
            init: Some(Init::Index { high }),
        } => {
            if !ty.dtype.is_int() {
                return Err(format!(
                    "an index init needs an integer dtype, the node is {}",
                    ty.dtype
                ));
            }
            if *high == 0 {
                return Err("an index init needs high >= 1".into());
            }
        }
        Op::Input {
            init: Some(Init::Normal { std }),
        } if !(*std >= 0.0) => {
            return Err(format!("normal init needs std >= 0, got {std}"));
        }
        Op::Input {
            init: Some(Init::Uniform { low, high }),
        } if !(low < high) => {
            return Err(format!(
                "uniform init needs low < high, got [{low}, {high})"
            ));
        }
        Op::Constant {
            value: Literal::Dense(v),
        } => {
            let n = ty.shape.elements();
            if v.len() as u64 != n {
                return Err(format!(
                    "constant has {} values, its type {ty} needs {n}",
                    v.len()
                ));
            }
        }
        Op::Iota { dim } => {
            if *dim >= ty.rank() {
                return Err(format!("iota dim {dim} is out of range for {ty}"));
            }
            if ty.dtype == DType::Bool {
                return Err("iota needs a numeric dtype".into());
            }
        }
        Op::AxisIndex { axes } => {
            cx.axes_size(axes)?;
            if ty != TensorType::scalar(DType::I32) {
                return Err(format!("axis_index gives i32[], the node declares {ty}"));
            }
        }
        _ => {}
    }
    Ok(ty)
}

/// Sources have no operands, so nothing to pass a gradient to: a parameter's gradient is the
/// adjoint autodiff accumulated for it.
pub(super) fn grad(_op: &Op, _cx: &mut GradCtx) -> Result<Grads> {
    Ok(Vec::new())
}
