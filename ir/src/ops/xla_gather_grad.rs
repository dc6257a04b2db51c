//! Gradient rules of XLA's general gather and scatter.
//!
//! A gather's adjoint adds `dy` into zeros at the *clamped* start indices (a scatter-add with the
//! mirrored dimension numbers; the gather clamps and the scatter skips, so the indices are clamped
//! first). A scatter's `updates` get the gather of `dy` at the same windows, zero where the
//! scatter skipped a window; its operand gets `dy` (add) or `dy` with the written windows zeroed
//! (replace). Replace assumes unique indices, as JAX's `unique_indices` does: with duplicates only
//! one of the colliding updates lands, and which one is unspecified.

use crate::autodiff::{GradCtx, Grads};
use crate::error::Result;
use crate::graph::ValueId;
use crate::op::{BinaryFn, CompareDir, GatherDims, Literal, Op, ReduceFn, ScatterDims};
use crate::types::TensorType;

pub(super) fn grad(op: &Op, cx: &mut GradCtx) -> Result<Grads> {
    match op {
        Op::GeneralGather(dims) => gather_grad(dims, cx),
        Op::GeneralScatter { dims, combine } => scatter_grad(dims, *combine, cx),
        _ => unreachable!("xla_gather_grad::grad called on {}", op.name()),
    }
}

/// The scatter that is a gather's adjoint.
fn mirrored_scatter(d: &GatherDims) -> ScatterDims {
    ScatterDims {
        update_window_dims: d.offset_dims.clone(),
        inserted_window_dims: d.collapsed_slice_dims.clone(),
        scatter_dims_to_operand_dims: d.start_index_map.clone(),
        index_vector_dim: d.index_vector_dim,
        input_batching_dims: d.operand_batching_dims.clone(),
        scatter_indices_batching_dims: d.start_indices_batching_dims.clone(),
    }
}

/// The gather that reads a scatter's windows back.
fn mirrored_gather(d: &ScatterDims, window_sizes: Vec<u64>) -> GatherDims {
    GatherDims {
        offset_dims: d.update_window_dims.clone(),
        collapsed_slice_dims: d.inserted_window_dims.clone(),
        start_index_map: d.scatter_dims_to_operand_dims.clone(),
        index_vector_dim: d.index_vector_dim,
        slice_sizes: window_sizes,
        operand_batching_dims: d.input_batching_dims.clone(),
        start_indices_batching_dims: d.scatter_indices_batching_dims.clone(),
    }
}

/// The largest start that fits a window of `window[d]` into operand dim `d`, for the operand dim
/// each index vector element starts.
fn start_limits(map: &[usize], operand: &[u64], window: &[u64]) -> Vec<f64> {
    map.iter()
        .map(|&d| operand[d].saturating_sub(window[d]) as f64)
        .collect()
}

/// A tensor shaped like `idx` holding `limits[k]` at index vector element `k`.
fn limits_like(cx: &mut GradCtx, idx: ValueId, ivd: usize, limits: Vec<f64>) -> Result<ValueId> {
    let it = cx.ty(idx);
    if ivd == it.rank() {
        return cx.splat("limit", limits[0], &it);
    }
    let n = limits.len() as u64;
    let v = cx.emit(
        "limits",
        Op::Constant {
            value: Literal::Dense(limits),
        },
        vec![],
        Some(TensorType::new(it.dtype, vec![n])),
    )?;
    cx.broadcast("limit", v, vec![ivd], it.dims())
}

fn gather_grad(d: &GatherDims, cx: &mut GradCtx) -> Result<Grads> {
    if !cx.wants(0) {
        return Ok(vec![None, None]);
    }
    let (x, idx, dy) = (cx.x(0), cx.x(1), cx.dy);
    let xt = cx.ty(x);
    let limits = start_limits(&d.start_index_map, xt.dims(), &d.slice_sizes);
    let hi = limits_like(cx, idx, d.index_vector_dim, limits)?;
    let lo = cx.zeros_like("idx.zero", idx)?;
    let clamped = cx.binary("idx.lo", BinaryFn::Max, idx, lo)?;
    let clamped = cx.binary("idx.clamped", BinaryFn::Min, clamped, hi)?;
    let z = cx.zeros_like("grad.zero", x)?;
    let s = cx.emit(
        "grad",
        Op::GeneralScatter {
            dims: mirrored_scatter(d),
            combine: Some(BinaryFn::Add),
        },
        vec![z, clamped, dy],
        None,
    )?;
    Ok(vec![Some(s), None])
}

/// A bool mask shaped like the updates: true where the scatter wrote the update's window (its
/// start fits), false where it skipped it.
fn window_fits(
    cx: &mut GradCtx,
    d: &ScatterDims,
    idx: ValueId,
    limits: Vec<f64>,
    update_scatter_dims: Vec<usize>,
    updates: &[u64],
) -> Result<ValueId> {
    let it = cx.ty(idx);
    let hi = limits_like(cx, idx, d.index_vector_dim, limits)?;
    let lo = cx.zeros_like("idx.zero", idx)?;
    let above = cx.compare("idx.ge0", CompareDir::Ge, idx, lo)?;
    let below = cx.compare("idx.le_limit", CompareDir::Le, idx, hi)?;
    let ok = cx.binary("idx.fits", BinaryFn::And, above, below)?;
    let ok = if d.index_vector_dim < it.rank() {
        // Every element of the index vector must fit: the minimum over it, in integers.
        let n = cx.convert("fits.int", ok, it.dtype)?;
        let all = cx.emit(
            "fits.all",
            Op::Reduce {
                func: ReduceFn::Min,
                dims: vec![d.index_vector_dim],
            },
            vec![n],
            None,
        )?;
        let one = cx.splat_like("fits.one", 1.0, all)?;
        cx.compare("fits", CompareDir::Eq, all, one)?
    } else {
        ok
    };
    cx.broadcast("fits.b", ok, update_scatter_dims, updates)
}

fn scatter_grad(d: &ScatterDims, combine: Option<BinaryFn>, cx: &mut GradCtx) -> Result<Grads> {
    match combine {
        None | Some(BinaryFn::Add) => {}
        Some(f) => {
            return Err(cx.err(format!(
                "no gradient for scatter with {}: only add and replace scatters are differentiable",
                f.name()
            )))
        }
    }
    let (x, idx, upd, dy) = (cx.x(0), cx.x(1), cx.x(2), cx.dy);
    let (xt, it, ut) = (cx.ty(x), cx.ty(idx), cx.ty(upd));
    let g = d
        .geometry(xt.dims(), it.dims(), ut.dims())
        .map_err(|m| cx.err(m))?;
    let gu = if cx.wants(2) {
        let gathered = cx.emit(
            "grad_updates.all",
            Op::GeneralGather(mirrored_gather(d, g.window_sizes.clone())),
            vec![dy, idx],
            None,
        )?;
        let limits = start_limits(&d.scatter_dims_to_operand_dims, xt.dims(), &g.window_sizes);
        let fits = window_fits(cx, d, idx, limits, g.update_scatter_dims, ut.dims())?;
        Some(cx.mask("grad_updates", fits, gathered, true)?)
    } else {
        None
    };
    let gx = match (cx.wants(0), combine) {
        (false, _) => None,
        (true, Some(_)) => Some(dy),
        (true, None) => {
            // What the scatter overwrote does not reach the result.
            let z = cx.zeros_like("grad_operand.zero", upd)?;
            Some(cx.emit(
                "grad_operand",
                Op::GeneralScatter {
                    dims: d.clone(),
                    combine: None,
                },
                vec![dy, idx, z],
                None,
            )?)
        }
    };
    Ok(vec![gx, None, gu])
}
