//! The op table: for every op family, its shape rule, its factors and its gradient rule. This is the only place that matches on op kinds to give them meaning.

mod collective;
mod conv;
mod dot;
mod elementwise;
mod gather;
mod layout;
mod reduce;
mod source;

use crate::autodiff::{GradCtx, Grads};
use crate::error::Result;
use crate::factors::OpFactors;
use crate::mesh::Mesh;
use crate::op::Op;
use crate::types::TensorType;

/// What a shape rule sees: operand types, the type the node declares, and the graph's mesh (for
/// collectives, whose shapes depend on axis sizes).
pub(crate) struct TypeCtx<'a> {
    pub operands: &'a [&'a TensorType],
    pub declared: &'a TensorType,
    pub mesh: Option<&'a Mesh>,
}

impl TypeCtx<'_> {
    pub(crate) fn expect_operands(&self, n: usize) -> std::result::Result<(), String> {
        if self.operands.len() != n {
            return Err(format!(
                "expected {n} operand(s), got {}",
                self.operands.len()
            ));
        }
        Ok(())
    }

    pub(crate) fn mesh(&self) -> std::result::Result<&Mesh, String> {
        self.mesh
            .ok_or_else(|| "collectives need the graph to name its mesh".to_string())
    }

    /// Product of the sizes of mesh axes `axes` (each must exist).
    pub(crate) fn axes_size(&self, axes: &[String]) -> std::result::Result<u64, String> {
        let mesh = self.mesh()?;
        let mut n = 1u64;
        for a in axes {
            n *= mesh.axis_size(a).ok_or_else(|| {
                format!(
                    "mesh has no axis `{a}` (axes: {})",
                    mesh.axis_names().join(", ")
                )
            })?;
        }
        Ok(n)
    }
}

/// Infers the result type of `op`, or says what is wrong (without the node's name; the caller
/// adds it).
pub(crate) fn infer_type(op: &Op, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
    match op {
        Op::Input { .. }
        | Op::Constant { .. }
        | Op::Iota { .. }
        | Op::AxisIndex { .. }
        | Op::Recv { .. } => source::infer(op, cx),
        Op::Unary { .. }
        | Op::Binary { .. }
        | Op::Compare { .. }
        | Op::Select
        | Op::Convert
        | Op::Copy => elementwise::infer(op, cx),
        Op::DotGeneral { .. } => dot::infer(op, cx),
        Op::Reduce { .. } => reduce::infer(op, cx),
        Op::Broadcast { .. }
        | Op::Reshape
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::Concatenate { .. }
        | Op::Pad { .. }
        | Op::DynamicSlice { .. }
        | Op::DynamicUpdateSlice => layout::infer(op, cx),
        Op::Convolution(c) => conv::infer(c, cx),
        Op::Gather { .. } | Op::ScatterAdd { .. } => gather::infer(op, cx),
        Op::AllReduce { .. }
        | Op::AllGather { .. }
        | Op::ReduceScatter { .. }
        | Op::AllToAll { .. }
        | Op::CollectivePermute { .. }
        | Op::Send { .. } => collective::infer(op, cx),
    }
}

/// The factors of `op` applied to operands and a result of these (verified) types.
pub fn op_factors(op: &Op, operands: &[&TensorType], result: &TensorType) -> OpFactors {
    match op {
        Op::Input { .. }
        | Op::Constant { .. }
        | Op::Iota { .. }
        | Op::AxisIndex { .. }
        | Op::Recv { .. } => OpFactors::elementwise(result.dims(), 0, 0),
        Op::Unary { .. } | Op::Binary { .. } | Op::Compare { .. } | Op::Select => {
            OpFactors::elementwise(result.dims(), operands.len(), 1)
        }
        Op::Convert | Op::Copy => OpFactors::elementwise(result.dims(), 1, 0),
        Op::DotGeneral { .. } => dot::factors(op, operands),
        Op::Reduce { .. } => reduce::factors(op, operands),
        Op::Broadcast { .. }
        | Op::Reshape
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::Concatenate { .. }
        | Op::Pad { .. }
        | Op::DynamicSlice { .. }
        | Op::DynamicUpdateSlice => layout::factors(op, operands, result),
        Op::Convolution(c) => conv::factors(c, operands, result),
        Op::Gather { .. } | Op::ScatterAdd { .. } => gather::factors(op, operands, result),
        Op::AllReduce { .. }
        | Op::AllGather { .. }
        | Op::ReduceScatter { .. }
        | Op::AllToAll { .. }
        | Op::CollectivePermute { .. }
        | Op::Send { .. } => collective::factors(operands, result),
    }
}

/// The gradient rule of `op`: per operand, the contribution of this node's adjoint `cx.dy` to
/// that operand's adjoint (`None` where the operand wants none or the op passes none).
pub(crate) fn op_grad(op: &Op, cx: &mut GradCtx) -> Result<Grads> {
    match op {
        Op::Input { .. }
        | Op::Constant { .. }
        | Op::Iota { .. }
        | Op::AxisIndex { .. }
        | Op::Recv { .. } => source::grad(op, cx),
        Op::Unary { .. }
        | Op::Binary { .. }
        | Op::Compare { .. }
        | Op::Select
        | Op::Convert
        | Op::Copy => elementwise::grad(op, cx),
        Op::DotGeneral { .. } => dot::grad(op, cx),
        Op::Reduce { .. } => reduce::grad(op, cx),
        Op::Broadcast { .. }
        | Op::Reshape
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::Concatenate { .. }
        | Op::Pad { .. }
        | Op::DynamicSlice { .. }
        | Op::DynamicUpdateSlice => layout::grad(op, cx),
        Op::Convolution(c) => conv::grad(c, cx),
        Op::Gather { .. } | Op::ScatterAdd { .. } => gather::grad(op, cx),
        Op::AllReduce { .. }
        | Op::AllGather { .. }
        | Op::ReduceScatter { .. }
        | Op::AllToAll { .. }
        | Op::CollectivePermute { .. }
        | Op::Send { .. } => collective::grad(op, cx),
    }
}

/// Checks that `dims` are distinct and below `rank`.
pub(crate) fn check_dims(
    what: &str,
    dims: &[usize],
    rank: usize,
) -> std::result::Result<(), String> {
    let mut seen = vec![false; rank];
    for &d in dims {
        if d >= rank {
            return Err(format!("{what} dim {d} is out of range for rank {rank}"));
        }
        if seen[d] {
            return Err(format!("{what} dim {d} is listed twice"));
        }
        seen[d] = true;
    }
    Ok(())
}

/// Checks that the declared dtype matches the one the rule derives.
pub(crate) fn with_declared_dtype_check(
    cx: &TypeCtx,
    ty: TensorType,
) -> std::result::Result<TensorType, String> {
    if cx.declared.dtype != ty.dtype {
        return Err(format!(
            "result dtype is {}, but the node declares {}",
            ty.dtype, cx.declared.dtype
        ));
    }
    Ok(ty)
}
