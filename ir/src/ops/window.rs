//! Window ops: `reduce_window` (pooling, cumulative sums) and `select_and_scatter` (the
//! gradient of a max pool), XLA's `reduce-window` and `select-and-scatter`.
//!
//! Factors, per dim: a dim the window leaves alone (size 1, stride 1, no padding or dilation)
//! is one pass-through factor; a dim cut into disjoint blocks (size = stride, no padding or
//! dilation, the extent a multiple of the size) is a compound `[blocks, within]` whose block
//! part passes through and whose within-block part needs replication, so a split of whole
//! blocks needs no communication; any other dim is a `Window` factor of the result's extent
//! (a split there needs a halo).

use super::{with_declared_dtype_check, TypeCtx};
use crate::autodiff::{GradCtx, Grads};
use crate::error::Result;
use crate::factors::{FactorKind, OpFactors};
use crate::op::{CompareDir, Op, ReduceFn, Window};
use crate::types::TensorType;

/// The result extent of one windowed dim, or why the window does not fit.
pub(crate) fn window_extent(w: &Window, d: usize, n: u64) -> std::result::Result<u64, String> {
    let (size, stride) = (w.size[d], w.stride[d]);
    let (bd, wd) = (w.base_dilation[d], w.window_dilation[d]);
    if size == 0 || stride == 0 || bd == 0 || wd == 0 {
        return Err(format!(
            "dim {d}: window size, stride and dilations must be positive"
        ));
    }
    let (lo, hi) = w.padding[d];
    let dilated = if n == 0 {
        0
    } else {
        (n - 1)
            .checked_mul(bd)
            .and_then(|x| x.checked_add(1))
            .ok_or("window extent overflows")?
    };
    let padded = dilated
        .checked_add(lo)
        .and_then(|x| x.checked_add(hi))
        .ok_or("window padding overflows")?;
    let span = (size - 1)
        .checked_mul(wd)
        .and_then(|x| x.checked_add(1))
        .ok_or("window span overflows")?;
    Ok(if padded < span {
        0
    } else {
        (padded - span) / stride + 1
    })
}

/// Checks that the window has one entry per dim of `x` and gives the result's dims.
fn windowed_dims(w: &Window, x: &TensorType) -> std::result::Result<Vec<u64>, String> {
    let r = x.rank();
    let lens = [
        ("size", w.size.len()),
        ("stride", w.stride.len()),
        ("padding", w.padding.len()),
        ("base_dilation", w.base_dilation.len()),
        ("window_dilation", w.window_dilation.len()),
    ];
    for (what, n) in lens {
        if n != r {
            return Err(format!(
                "window {what} has {n} entries, the operand {x} has rank {r}"
            ));
        }
    }
    x.dims()
        .iter()
        .enumerate()
        .map(|(d, &n)| window_extent(w, d, n))
        .collect()
}

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
    match op {
        Op::ReduceWindow { window, .. } => {
            cx.expect_operands(1)?;
            let x = cx.operands[0];
            let dims = windowed_dims(window, x)?;
            with_declared_dtype_check(cx, TensorType::new(x.dtype, dims))
        }
        Op::SelectAndScatter { window, select, .. } => {
            cx.expect_operands(2)?;
            let (x, src) = (cx.operands[0], cx.operands[1]);
            if matches!(select, CompareDir::Eq | CompareDir::Ne) {
                return Err("select must be an ordering (ge, gt, le, lt)".into());
            }
            let dims = windowed_dims(window, x)?;
            if src.dims() != dims.as_slice() || src.dtype != x.dtype {
                return Err(format!(
                    "source is {src}, the windows of {x} need {}",
                    TensorType::new(x.dtype, dims)
                ));
            }
            with_declared_dtype_check(cx, x.clone())
        }
        _ => unreachable!("window::infer called on {}", op.name()),
    }
}

/// How a dim is windowed (see the module doc).
enum DimKind {
    Untouched,
    Blocks,
    Sliding,
}

fn dim_kind(w: &Window, d: usize, n: u64) -> DimKind {
    let plain = w.padding[d] == (0, 0) && w.base_dilation[d] == 1 && w.window_dilation[d] == 1;
    if plain && w.size[d] == 1 && w.stride[d] == 1 {
        DimKind::Untouched
    } else if plain && w.size[d] == w.stride[d] && n % w.size[d] == 0 {
        DimKind::Blocks
    } else {
        DimKind::Sliding
    }
}

pub(super) fn factors(op: &Op, operands: &[&TensorType], result: &TensorType) -> OpFactors {
    let (window, scatter) = match op {
        Op::ReduceWindow { window, .. } => (window, false),
        Op::SelectAndScatter { window, .. } => (window, true),
        _ => unreachable!("window::factors called on {}", op.name()),
    };
    let x = operands[0].dims();
    let out = if scatter {
        operands[1].dims()
    } else {
        result.dims()
    };
    let mut f = OpFactors {
        flops_per_point: 1,
        ..Default::default()
    };
    // Per dim: the full-size tensor's factors and the windowed one's.
    let (mut full, mut windowed) = (Vec::new(), Vec::new());
    for d in 0..x.len() {
        match dim_kind(window, d, x[d]) {
            DimKind::Untouched => {
                let k = f.add(x[d], FactorKind::PassThrough);
                full.push(vec![k]);
                windowed.push(vec![k]);
            }
            DimKind::Blocks => {
                let k = f.add(out[d], FactorKind::PassThrough);
                let within = f.add(window.size[d], FactorKind::NeedReplication);
                full.push(vec![k, within]);
                windowed.push(vec![k]);
            }
            DimKind::Sliding => {
                let k = f.add(out[d], FactorKind::Window);
                full.push(vec![k]);
                windowed.push(vec![k]);
            }
        }
    }
    if scatter {
        f.operands = vec![full.clone(), windowed];
        f.result = full;
    } else {
        f.operands = vec![full];
        f.result = windowed;
    }
    f
}

/// Gradients: a max (min) pool scatters `dy` onto the element each window picked; a sum
/// window spreads `dy` back by the transposed window (a sum window over `dy` dilated by the
/// stride); `select_and_scatter` passes to `source` what `dy` holds at each window's pick
/// (windows that do not overlap only). The picks themselves are piecewise constant: the
/// operand of `select_and_scatter` gets no gradient.
pub(super) fn grad(op: &Op, cx: &mut GradCtx) -> Result<Grads> {
    match op {
        Op::ReduceWindow { .. } if !cx.wants(0) => Ok(vec![None]),
        Op::ReduceWindow {
            func: ReduceFn::Sum,
            window,
            ..
        } => {
            let n = cx.ty(cx.x(0)).dims().to_vec();
            let m = cx.ty(cx.dy).dims().to_vec();
            let t = transposed_sum_window(window, &n, &m).map_err(|e| cx.err(e))?;
            let op = Op::ReduceWindow {
                func: ReduceFn::Sum,
                window: t,
                init: 0.0,
            };
            Ok(vec![Some(cx.emit("grad", op, vec![cx.dy], None)?)])
        }
        Op::ReduceWindow { func, window, .. } => {
            let select = if *func == ReduceFn::Max {
                CompareDir::Ge
            } else {
                CompareDir::Le
            };
            let scatter = Op::SelectAndScatter {
                window: window.clone(),
                select,
                init: 0.0,
            };
            let g = cx.emit("grad", scatter, vec![cx.x(0), cx.dy], None)?;
            Ok(vec![Some(g)])
        }
        Op::SelectAndScatter { window, select, .. } => {
            if !cx.wants(1) {
                return Ok(vec![None, None]);
            }
            let overlap = (0..window.size.len())
                .any(|d| window.stride[d] < (window.size[d] - 1) * window.window_dilation[d] + 1);
            if overlap {
                return Err(cx.err(
                    "no gradient for select_and_scatter over overlapping windows (only for windows that do not overlap)",
                ));
            }
            // Each operand element is in one window at most: mask dy to the picks, then sum
            // each window (which holds one pick).
            let ones = cx.splat_like("grad.ones", 1.0, cx.x(1))?;
            let pick = Op::SelectAndScatter {
                window: window.clone(),
                select: *select,
                init: 0.0,
            };
            let picked = cx.emit("grad.picked", pick, vec![cx.x(0), ones], None)?;
            let masked = cx.mul("grad.masked", cx.dy, picked)?;
            let sum = Op::ReduceWindow {
                func: ReduceFn::Sum,
                window: window.clone(),
                init: 0.0,
            };
            Ok(vec![None, Some(cx.emit("grad", sum, vec![masked], None)?)])
        }
        _ => unreachable!("window::grad called on {}", op.name()),
    }
}

/// The window whose sums over `dy` (extents `m`) give a sum window's operand gradient
/// (extents `n`): `dx[i]` sums `dy[w]` over the windows `w` that hold `i`. `dy` is dilated by
/// the stride and padded by `size - 1 - low` below and what makes the extent `n` above.
fn transposed_sum_window(w: &Window, n: &[u64], m: &[u64]) -> std::result::Result<Window, String> {
    let r = n.len();
    let mut t = Window::simple(w.size.clone(), vec![1; r]);
    for d in 0..r {
        let (lo, _) = w.padding[d];
        if w.base_dilation[d] != 1 || w.window_dilation[d] != 1 || lo + 1 > w.size[d] {
            return Err(format!(
                "no gradient for a sum window with dilation or padding beyond its size (dim {d})"
            ));
        }
        let low = w.size[d] - 1 - lo;
        let spread = m[d].saturating_sub(1) * w.stride[d] + 1;
        let high = (n[d] + w.size[d] - 1)
            .checked_sub(low + spread)
            .ok_or_else(|| format!("no gradient for this sum window (dim {d})"))?;
        t.padding[d] = (low, high);
        t.base_dilation[d] = w.stride[d];
    }
    Ok(t)
}
