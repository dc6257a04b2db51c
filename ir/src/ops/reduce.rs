//! `reduce`: sum, max or min over dims.

use super::{check_dims, with_declared_dtype_check, TypeCtx};
use crate::factors::{FactorKind, OpFactors};
use crate::op::Op;
use crate::types::TensorType;

fn reduced(op: &Op) -> &[usize] {
    match op {
        Op::Reduce { dims, .. } => dims,
        _ => unreachable!("reduce::reduced called on {}", op.name()),
    }
}

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> Result<TensorType, String> {
    cx.expect_operands(1)?;
    let x = cx.operands[0];
    let dims = reduced(op);
    check_dims("reduced", dims, x.rank())?;
    if x.dtype == crate::DType::Bool {
        return Err("reduce needs a numeric operand, got bool".into());
    }
    let out: Vec<u64> = (0..x.rank())
        .filter(|d| !dims.contains(d))
        .map(|d| x.dims()[d])
        .collect();
    with_declared_dtype_check(cx, TensorType::new(x.dtype, out))
}

pub(super) fn factors(op: &Op, operands: &[&TensorType]) -> OpFactors {
    let x = operands[0];
    let dims = reduced(op);
    let mut f = OpFactors {
        flops_per_point: 1,
        ..Default::default()
    };
    let mut xs = Vec::new();
    for (d, &size) in x.dims().iter().enumerate() {
        if dims.contains(&d) {
            xs.push(vec![f.add(size, FactorKind::Reduction)]);
        } else {
            let i = f.add(size, FactorKind::PassThrough);
            xs.push(vec![i]);
            f.result.push(vec![i]);
        }
    }
    f.operands = vec![xs];
    f
}
