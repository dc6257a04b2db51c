//! The op table: for every op family, its shape rule, its factors and its gradient rule. This is the only place that matches on op kinds to give them meaning.

mod collective;
mod conv;
mod dot;
mod elementwise;
mod gather;
mod layout;
mod manual;
mod reduce;
mod sort;
mod source;
mod window;
mod xla_gather;
mod xla_gather_grad;

pub use xla_gather::{GatherGeometry, ScatterGeometry};

use crate::autodiff::{GradCtx, Grads};
use crate::error::Result;
use crate::factors::OpFactors;
use crate::mesh::Mesh;
use crate::op::{Conv, Op};
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

/// The op families of the table: each has one file holding its shape rule, factors and gradient.
/// This is the only place that sorts op variants into families.
enum Family<'a> {
    Source,
    Elementwise,
    Dot,
    Reduce,
    Layout,
    Conv(&'a Conv),
    Gather,
    XlaGather,
    Sort,
    Collective,
    Window,
    Manual,
}

fn family(op: &Op) -> Family<'_> {
    match op {
        Op::Input { .. }
        | Op::Constant { .. }
        | Op::Iota { .. }
        | Op::AxisIndex { .. }
        | Op::Recv { .. } => Family::Source,
        Op::Unary { .. }
        | Op::Binary { .. }
        | Op::Compare { .. }
        | Op::Select
        | Op::Convert
        | Op::Copy
        | Op::BitcastConvert => Family::Elementwise,
        Op::DotGeneral { .. } => Family::Dot,
        Op::Reduce { .. } => Family::Reduce,
        Op::Broadcast { .. }
        | Op::Reshape
        | Op::Transpose { .. }
        | Op::Reverse { .. }
        | Op::Slice { .. }
        | Op::Concatenate { .. }
        | Op::Pad { .. }
        | Op::DynamicSlice { .. }
        | Op::DynamicUpdateSlice => Family::Layout,
        Op::Convolution(c) => Family::Conv(c),
        Op::Gather { .. } | Op::ScatterAdd { .. } => Family::Gather,
        Op::GeneralGather(_) | Op::GeneralScatter { .. } => Family::XlaGather,
        Op::Sort { .. } => Family::Sort,
        Op::ReduceWindow { .. } | Op::SelectAndScatter { .. } => Family::Window,
        Op::AllReduce { .. }
        | Op::AllGather { .. }
        | Op::ReduceScatter { .. }
        | Op::AllToAll { .. }
        | Op::CollectivePermute { .. }
        | Op::Send { .. } => Family::Collective,
        Op::FullToShard { .. } | Op::ShardToFull { .. } => Family::Manual,
    }
}

/// Infers the result type of `op`, or says what is wrong (without the node's name; the caller
/// adds it).
pub(crate) fn infer_type(op: &Op, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
    match family(op) {
        Family::Source => source::infer(op, cx),
        Family::Elementwise => elementwise::infer(op, cx),
        Family::Dot => dot::infer(op, cx),
        Family::Reduce => reduce::infer(op, cx),
        Family::Layout => layout::infer(op, cx),
        Family::Conv(c) => conv::infer(c, cx),
        Family::Gather => gather::infer(op, cx),
        Family::XlaGather => xla_gather::infer(op, cx),
        Family::Sort => sort::infer(op, cx),
        Family::Collective => collective::infer(op, cx),
        Family::Window => window::infer(op, cx),
        Family::Manual => manual::infer(op, cx),
    }
}

/// The factors of `op` applied to operands and a result of these (verified) types.
pub fn op_factors(op: &Op, operands: &[&TensorType], result: &TensorType) -> OpFactors {
    match family(op) {
        Family::Source => OpFactors::elementwise(result.dims(), 0, 0),
        Family::Elementwise => {
            // Conversions and copies move data; every other elementwise op is one flop a point.
            let flops = u64::from(!matches!(op, Op::Convert | Op::Copy | Op::BitcastConvert));
            OpFactors::elementwise(result.dims(), operands.len(), flops)
        }
        Family::Dot => dot::factors(op, operands),
        Family::Reduce => reduce::factors(op, operands),
        Family::Layout => layout::factors(op, operands, result),
        Family::Conv(c) => conv::factors(c, operands, result),
        Family::Gather => gather::factors(op, operands, result),
        Family::XlaGather => xla_gather::factors(op, operands, result),
        Family::Sort => sort::factors(op, operands),
        Family::Collective => collective::factors(operands, result),
        Family::Window => window::factors(op, operands, result),
        Family::Manual => manual::factors(operands, result),
    }
}

/// The gradient rule of `op`: per operand, the contribution of this node's adjoint `cx.dy` to
/// that operand's adjoint (`None` where the operand wants none or the op passes none).
pub(crate) fn op_grad(op: &Op, cx: &mut GradCtx) -> Result<Grads> {
    match family(op) {
        Family::Source => source::grad(op, cx),
        Family::Elementwise => elementwise::grad(op, cx),
        Family::Dot => dot::grad(op, cx),
        Family::Reduce => reduce::grad(op, cx),
        Family::Layout => layout::grad(op, cx),
        Family::Conv(c) => conv::grad(c, cx),
        Family::Gather => gather::grad(op, cx),
        Family::XlaGather => xla_gather_grad::grad(op, cx),
        Family::Sort => sort::grad(op, cx),
        Family::Collective => collective::grad(op, cx),
        Family::Window => window::grad(op, cx),
        Family::Manual => manual::grad(op, cx),
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
