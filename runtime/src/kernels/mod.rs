//! CPU kernels, one file per op family (mirroring `shardc_ir`'s `ops/`). [`eval`] is the one
//! place that maps an op to its kernel.
//!
//! Kernels see verified operand types; they still check what they rely on and report a message
//! (the executor adds the node's name) rather than panic.

mod bitcast;
mod conv;
mod dot;
mod elementwise;
mod fast_math;
mod gather;
mod layout;
mod par;
pub(crate) mod pool;
mod reduce;
mod sort;
mod source;
mod window;
mod xla_gather;

use ndarray::{ArrayD, ArrayViewD};
use shardc_ir::{Node, Op};

use crate::tensor::{Elem, Tensor};

/// Computes `node` from its operands' values. Ops that need other devices (collectives,
/// `axis_index`, send/recv) and inputs are not kernels: the executor handles them.
pub(crate) fn eval(node: &Node, operands: &[&Tensor]) -> Result<Tensor, String> {
    if operands.len() != node.operands.len() {
        return Err(format!(
            "expected {} operand values, got {}",
            node.operands.len(),
            operands.len()
        ));
    }
    let ty = &node.ty;
    match &node.op {
        Op::Constant { value } => source::constant(value, ty),
        Op::Iota { dim } => source::iota(*dim, ty),
        Op::Unary { func } => elementwise::unary(*func, operands[0], ty),
        Op::Binary { func } => elementwise::binary(*func, operands[0], operands[1], ty),
        Op::Compare { dir } => elementwise::compare(*dir, operands[0], operands[1]),
        Op::Select => elementwise::select(operands[0], operands[1], operands[2]),
        Op::Convert => elementwise::convert(operands[0], ty.dtype),
        Op::Copy => Ok(operands[0].clone()),
        Op::BitcastConvert => bitcast::bitcast_convert(operands[0], ty),
        Op::ReduceWindow { func, window, init } => {
            window::reduce_window(*func, window, *init, operands[0], ty)
        }
        Op::SelectAndScatter {
            window,
            select,
            init,
        } => window::select_and_scatter(window, *select, *init, operands[0], operands[1]),
        Op::DotGeneral {
            lhs_batch,
            rhs_batch,
            lhs_contract,
            rhs_contract,
        } => dot::dot_general(
            operands[0],
            operands[1],
            dot::DotDims {
                lhs_batch,
                rhs_batch,
                lhs_contract,
                rhs_contract,
            },
        ),
        Op::Reduce { func, dims } => reduce::reduce(*func, dims, operands[0]),
        Op::Broadcast { dims } => layout::broadcast(operands[0], dims, ty),
        Op::Reshape => layout::reshape(operands[0], ty),
        Op::Transpose { perm } => layout::transpose(operands[0], perm),
        Op::Reverse { dims } => layout::reverse(operands[0], dims),
        Op::Slice {
            start,
            limit,
            stride,
        } => layout::slice(operands[0], start, limit, stride),
        Op::Concatenate { dim } => layout::concatenate(operands, *dim),
        Op::Pad {
            low,
            high,
            interior,
            value,
        } => layout::pad(operands[0], low, high, interior, *value, ty),
        Op::DynamicSlice { sizes } => layout::dynamic_slice(operands[0], &operands[1..], sizes),
        Op::DynamicUpdateSlice => {
            layout::dynamic_update_slice(operands[0], operands[1], &operands[2..])
        }
        Op::Convolution(c) => conv::convolution(c, operands[0], operands[1], ty),
        Op::Gather { axis } => gather::gather(operands[0], operands[1], *axis),
        Op::ScatterAdd { axis } => {
            gather::scatter_add(operands[0], operands[1], operands[2], *axis)
        }
        Op::GeneralGather(dims) => xla_gather::general_gather(operands[0], operands[1], dims),
        Op::GeneralScatter { dims, combine } => {
            xla_gather::general_scatter(operands[0], operands[1], operands[2], dims, *combine)
        }
        Op::Sort {
            dim,
            descending,
            output,
            ..
        } => sort::sort(operands, *dim, *descending, *output),
        Op::Input { .. } => Err("inputs are fed by the executor, not computed".into()),
        Op::AxisIndex { .. }
        | Op::AllReduce { .. }
        | Op::AllGather { .. }
        | Op::ReduceScatter { .. }
        | Op::AllToAll { .. }
        | Op::CollectivePermute { .. }
        | Op::Send { .. }
        | Op::Recv { .. } => Err(format!(
            "{} needs the mesh executor (run_spmd), not the single-device reference executor",
            node.op.name()
        )),
        // The reference executor writes manual regions out per device (`ir::manual::expand`)
        // and the partitioner emits their boundary as local copies, so no kernel sees these.
        Op::FullToShard { .. } | Op::ShardToFull { .. } => Err(format!(
            "{} (a manual region's boundary) runs through `execute`, which expands the region \
             per device, or through a partitioned program",
            node.op.name()
        )),
    }
}

/// Computes `node` when the value of its operand `pos` (`x`, given by value) dies here: over
/// `x`'s storage where the kernel can (elementwise f32 ops, reshape, copy), so that no buffer is
/// allocated. `Ok(Err(x))` gives `x` back when it cannot; the caller then runs [`eval`]. `others`
/// are the node's operands with `x`'s position left out.
pub(crate) fn eval_owned(
    node: &Node,
    x: Tensor,
    pos: usize,
    others: &[&Tensor],
) -> Result<Result<Tensor, Tensor>, String> {
    let ty = &node.ty;
    match (&node.op, others) {
        (Op::Unary { func }, []) => elementwise::unary_in_place(*func, x, ty),
        (Op::Binary { func }, [y]) => elementwise::binary_in_place(*func, x, pos, y, ty),
        (Op::Reshape, []) => layout::reshape_owned(x, ty),
        (Op::Copy, []) => Ok(Ok(x)),
        _ => Ok(Err(x)),
    }
}

/// Whether [`eval_owned`] may compute `op` over an operand's storage (the executor plans which
/// operand it hands over by value).
pub(crate) fn overwrites_operand(op: &Op) -> bool {
    matches!(
        op,
        Op::Unary { .. } | Op::Binary { .. } | Op::Reshape | Op::Copy
    )
}

/// The storage of `t` as element type `T`.
pub(crate) fn arr<T: Elem>(t: &Tensor) -> Result<&ArrayD<T>, String> {
    T::get(t.data()).ok_or_else(|| {
        format!(
            "operand {} is not stored as {}",
            t.ty(),
            std::any::type_name::<T>()
        )
    })
}

/// An owned copy in standard (row-major) layout, so that it can be reshaped.
pub(crate) fn std_owned<T: Elem>(v: ArrayViewD<'_, T>) -> ArrayD<T> {
    par::to_standard(v)
}

/// The integer value of a scalar index operand.
pub(crate) fn scalar_index(t: &Tensor) -> Result<i64, String> {
    match t.data() {
        crate::tensor::Data::I32(a) if a.len() == 1 => {
            Ok(a.iter().next().copied().unwrap_or(0) as i64)
        }
        crate::tensor::Data::I64(a) if a.len() == 1 => Ok(a.iter().next().copied().unwrap_or(0)),
        _ => Err(format!("expected an integer scalar index, got {}", t.ty())),
    }
}

/// The elements of an integer tensor as i64, row-major.
pub(crate) fn indices(t: &Tensor) -> Result<Vec<i64>, String> {
    match t.data() {
        crate::tensor::Data::I32(a) => Ok(a.iter().map(|&x| x as i64).collect()),
        crate::tensor::Data::I64(a) => Ok(a.iter().copied().collect()),
        _ => Err(format!("indices must be integers, got {}", t.ty())),
    }
}
