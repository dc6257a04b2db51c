//! Elementwise ops: unary, binary, compare, select, convert, copy.

use super::{with_declared_dtype_check, TypeCtx};
use crate::dtype::DType;
use crate::op::{BinaryFn, Op, UnaryFn};
use crate::types::TensorType;

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> Result<TensorType, String> {
    match op {
        Op::Unary { func } => {
            cx.expect_operands(1)?;
            let x = cx.operands[0];
            match func {
                UnaryFn::Not if x.dtype != DType::Bool => {
                    return Err(format!("not needs bool, got {}", x.dtype))
                }
                UnaryFn::Not => {}
                UnaryFn::Neg | UnaryFn::Abs | UnaryFn::Relu if x.dtype == DType::Bool => {
                    return Err(format!("{} needs a numeric operand, got bool", func.name()))
                }
                UnaryFn::Neg | UnaryFn::Abs | UnaryFn::Relu => {}
                _ if !x.dtype.is_float() => {
                    return Err(format!(
                        "{} needs a floating-point operand, got {}",
                        func.name(),
                        x.dtype
                    ))
                }
                _ => {}
            }
            with_declared_dtype_check(cx, x.clone())
        }
        Op::Binary { func } => {
            cx.expect_operands(2)?;
            let (x, y) = (cx.operands[0], cx.operands[1]);
            same_type(x, y)?;
            let logical = matches!(func, BinaryFn::And | BinaryFn::Or);
            if logical != (x.dtype == DType::Bool) {
                return Err(if logical {
                    format!("{} needs bool operands, got {}", func.name(), x.dtype)
                } else {
                    format!("{} needs numeric operands, got bool", func.name())
                });
            }
            with_declared_dtype_check(cx, x.clone())
        }
        Op::Compare { .. } => {
            cx.expect_operands(2)?;
            same_type(cx.operands[0], cx.operands[1])?;
            with_declared_dtype_check(cx, cx.operands[0].with_dtype(DType::Bool))
        }
        Op::Select => {
            cx.expect_operands(3)?;
            let (p, t, f) = (cx.operands[0], cx.operands[1], cx.operands[2]);
            if p.dtype != DType::Bool {
                return Err(format!("select's predicate must be bool, got {}", p.dtype));
            }
            if p.shape != t.shape {
                return Err(format!(
                    "select's predicate {p} and value {t} differ in shape"
                ));
            }
            same_type(t, f)?;
            with_declared_dtype_check(cx, t.clone())
        }
        Op::Convert => {
            cx.expect_operands(1)?;
            Ok(cx.operands[0].with_dtype(cx.declared.dtype))
        }
        Op::Copy => {
            cx.expect_operands(1)?;
            with_declared_dtype_check(cx, cx.operands[0].clone())
        }
        _ => unreachable!("elementwise::infer called on {}", op.name()),
    }
}

fn same_type(x: &TensorType, y: &TensorType) -> Result<(), String> {
    if x != y {
        return Err(format!("operands must have one type, got {x} and {y}"));
    }
    Ok(())
}
