//! Arithmetic operators: elementwise (with numpy broadcasting), matrix products, softmax,
//! normalizations and reductions, each as a composition of `ir`'s ops.

use super::build::{norm_axis, Ctx, Inputs, Val};
use super::tensor::dtype_of;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ValueId;
use crate::op::{BinaryFn, CompareDir, Op, ReduceFn, UnaryFn};
use crate::types::TensorType;

/// Every present input as a graph value.
fn nodes(cx: &mut Ctx, x: &Inputs) -> Result<Vec<ValueId>> {
    x.vals.iter().flatten().map(|v| cx.node(v)).collect()
}

pub(crate) fn binary(cx: &mut Ctx, op: &str, x: &Inputs) -> Result<ValueId> {
    let vs = nodes(cx, x)?;
    let (&first, rest) = vs
        .split_first()
        .ok_or_else(|| x.attrs.err("needs at least one input"))?;
    let dtype = cx.g.ty(first).dtype;
    let func = match op {
        "Add" | "Sum" | "Mean" => BinaryFn::Add,
        "Sub" => BinaryFn::Sub,
        "Mul" => BinaryFn::Mul,
        "Div" => BinaryFn::Div,
        "Pow" => BinaryFn::Pow,
        "Max" => BinaryFn::Max,
        "Min" => BinaryFn::Min,
        "And" => BinaryFn::And,
        "Or" => BinaryFn::Or,
        "Xor" => {
            let (a, b) = cx.broadcast_pair(first, vs[1])?;
            return cx.push(
                "xor",
                Op::Compare {
                    dir: CompareDir::Ne,
                },
                vec![a, b],
                None,
            );
        }
        _ => return modulo(cx, x, first, vs[1]),
    };
    let mut acc = first;
    for &v in rest {
        // Pow's exponent may have another type (`x ** 2` with an integer 2).
        let v = cx.convert(v, dtype)?;
        acc = cx.binary(func, acc, v)?;
    }
    if op == "Mean" {
        acc = cx.binary_scalar(BinaryFn::Div, acc, vs.len() as f64)?;
    }
    Ok(acc)
}

/// `Mod`: `a - trunc(a / b) * b` (fmod, floats) or `a - floor(a / b) * b` (integers, the
/// divisor's sign).
fn modulo(cx: &mut Ctx, x: &Inputs, a: ValueId, b: ValueId) -> Result<ValueId> {
    let (a, b) = cx.broadcast_pair(a, b)?;
    let dtype = cx.g.ty(a).dtype;
    let q = cx.push(
        "quotient",
        Op::Binary {
            func: BinaryFn::Div,
        },
        vec![a, b],
        None,
    )?;
    let q = if dtype.is_float() {
        let truncated = cx.convert(q, DType::I64)?;
        let t = cx.convert(truncated, dtype)?;
        if x.attrs.int("fmod", 0) == 1 {
            t
        } else {
            floor_of(cx, q, t)?
        }
    } else {
        // Integer division truncates; step down where the signs differ and it was inexact.
        let back = cx.push(
            "back",
            Op::Binary {
                func: BinaryFn::Mul,
            },
            vec![q, b],
            None,
        )?;
        let inexact = cx.push(
            "inexact",
            Op::Compare {
                dir: CompareDir::Ne,
            },
            vec![back, a],
            None,
        )?;
        let ab = cx.push(
            "sign",
            Op::Binary {
                func: BinaryFn::Mul,
            },
            vec![a, b],
            None,
        )?;
        let zero = cx.splat(dtype, cx.g.ty(a).dims().to_vec().as_slice(), 0.0)?;
        let neg = cx.push(
            "negative",
            Op::Compare {
                dir: CompareDir::Lt,
            },
            vec![ab, zero],
            None,
        )?;
        let both = cx.push(
            "step",
            Op::Binary {
                func: BinaryFn::And,
            },
            vec![inexact, neg],
            None,
        )?;
        let down = cx.binary_scalar(BinaryFn::Sub, q, 1.0)?;
        cx.push("floor", Op::Select, vec![both, down, q], None)?
    };
    let qb = cx.push(
        "multiple",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![q, b],
        None,
    )?;
    cx.push(
        "mod",
        Op::Binary {
            func: BinaryFn::Sub,
        },
        vec![a, qb],
        None,
    )
}

/// `floor(x)` given `t = trunc(x)`: one less where the truncation went up.
fn floor_of(cx: &mut Ctx, x: ValueId, t: ValueId) -> Result<ValueId> {
    let above = cx.push(
        "above",
        Op::Compare {
            dir: CompareDir::Gt,
        },
        vec![t, x],
        None,
    )?;
    let down = cx.binary_scalar(BinaryFn::Sub, t, 1.0)?;
    cx.push("floor", Op::Select, vec![above, down, t], None)
}

pub(crate) fn compare(cx: &mut Ctx, op: &str, x: &Inputs) -> Result<ValueId> {
    let a = cx.node(x.get(0)?)?;
    let b = cx.node(x.get(1)?)?;
    let b = cx.convert(b, cx.g.ty(a).dtype)?;
    let (a, b) = cx.broadcast_pair(a, b)?;
    let dir = match op {
        "Equal" => CompareDir::Eq,
        "Less" => CompareDir::Lt,
        "Greater" => CompareDir::Gt,
        "LessOrEqual" => CompareDir::Le,
        _ => CompareDir::Ge,
    };
    cx.push("compare", Op::Compare { dir }, vec![a, b], None)
}

pub(crate) fn unary(cx: &mut Ctx, op: &str, x: &Inputs) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let ty = cx.g.ty(v).clone();
    let simple = match op {
        "Abs" => Some(UnaryFn::Abs),
        "Neg" => Some(UnaryFn::Neg),
        "Exp" => Some(UnaryFn::Exp),
        "Log" => Some(UnaryFn::Log),
        "Tanh" => Some(UnaryFn::Tanh),
        "Sigmoid" => Some(UnaryFn::Sigmoid),
        "Relu" => Some(UnaryFn::Relu),
        "Sqrt" => Some(UnaryFn::Sqrt),
        "Sin" => Some(UnaryFn::Sin),
        "Cos" => Some(UnaryFn::Cos),
        "Not" => Some(UnaryFn::Not),
        _ => None,
    };
    if let Some(f) = simple {
        return cx.unary(f, v);
    }
    match op {
        "Reciprocal" => {
            let one = cx.splat(ty.dtype, ty.dims(), 1.0)?;
            cx.push(
                "reciprocal",
                Op::Binary {
                    func: BinaryFn::Div,
                },
                vec![one, v],
                None,
            )
        }
        "Erf" => erf(cx, v),
        "Gelu" if x.attrs.string("approximate", "none") == "tanh" => cx.unary(UnaryFn::Gelu, v),
        "Gelu" => {
            // 0.5 x (1 + erf(x / sqrt(2))), the exact GELU.
            let s = cx.binary_scalar(BinaryFn::Mul, v, std::f64::consts::FRAC_1_SQRT_2)?;
            let e = erf(cx, s)?;
            let e1 = cx.binary_scalar(BinaryFn::Add, e, 1.0)?;
            let h = cx.binary_scalar(BinaryFn::Mul, v, 0.5)?;
            cx.push(
                "gelu",
                Op::Binary {
                    func: BinaryFn::Mul,
                },
                vec![h, e1],
                None,
            )
        }
        "Sign" => {
            let zero = cx.splat(ty.dtype, ty.dims(), 0.0)?;
            let one = cx.splat(ty.dtype, ty.dims(), 1.0)?;
            let minus = cx.splat(ty.dtype, ty.dims(), -1.0)?;
            let pos = cx.push(
                "positive",
                Op::Compare {
                    dir: CompareDir::Gt,
                },
                vec![v, zero],
                None,
            )?;
            let neg = cx.push(
                "negative",
                Op::Compare {
                    dir: CompareDir::Lt,
                },
                vec![v, zero],
                None,
            )?;
            let s = cx.push("negative_sign", Op::Select, vec![neg, minus, zero], None)?;
            cx.push("sign", Op::Select, vec![pos, one, s], None)
        }
        "Softplus" => {
            let e = cx.unary(UnaryFn::Exp, v)?;
            let e1 = cx.binary_scalar(BinaryFn::Add, e, 1.0)?;
            cx.unary(UnaryFn::Log, e1)
        }
        "IsNaN" => cx.push(
            "isnan",
            Op::Compare {
                dir: CompareDir::Ne,
            },
            vec![v, v],
            None,
        ),
        "IsInf" => {
            let a = cx.unary(UnaryFn::Abs, v)?;
            let big = cx.splat(ty.dtype, ty.dims(), f64::from(f32::MAX))?;
            cx.push(
                "isinf",
                Op::Compare {
                    dir: CompareDir::Gt,
                },
                vec![a, big],
                None,
            )
        }
        "Floor" | "Ceil" => {
            let v = if op == "Ceil" {
                cx.unary(UnaryFn::Neg, v)?
            } else {
                v
            };
            let truncated = cx.convert(v, DType::I64)?;
            let t = cx.convert(truncated, ty.dtype)?;
            let f = floor_of(cx, v, t)?;
            if op == "Ceil" {
                cx.unary(UnaryFn::Neg, f)
            } else {
                Ok(f)
            }
        }
        "LeakyRelu" => {
            let alpha = f64::from(x.attrs.float("alpha", 0.01));
            let zero = cx.splat(ty.dtype, ty.dims(), 0.0)?;
            let pos = cx.push(
                "positive",
                Op::Compare {
                    dir: CompareDir::Gt,
                },
                vec![v, zero],
                None,
            )?;
            let scaled = cx.binary_scalar(BinaryFn::Mul, v, alpha)?;
            cx.push("leaky_relu", Op::Select, vec![pos, v, scaled], None)
        }
        _ => {
            // HardSigmoid max(0, min(1, alpha x + beta)); HardSwish is x * HardSigmoid(x) with
            // alpha 1/6, beta 1/2.
            let (alpha, beta) = if op == "HardSwish" {
                (1.0 / 6.0, 0.5)
            } else {
                (
                    f64::from(x.attrs.float("alpha", 0.2)),
                    f64::from(x.attrs.float("beta", 0.5)),
                )
            };
            let a = cx.binary_scalar(BinaryFn::Mul, v, alpha)?;
            let b = cx.binary_scalar(BinaryFn::Add, a, beta)?;
            let lo = cx.binary_scalar(BinaryFn::Min, b, 1.0)?;
            let hs = cx.binary_scalar(BinaryFn::Max, lo, 0.0)?;
            if op == "HardSwish" {
                cx.push(
                    "hard_swish",
                    Op::Binary {
                        func: BinaryFn::Mul,
                    },
                    vec![v, hs],
                    None,
                )
            } else {
                Ok(hs)
            }
        }
    }
}

/// `erf(x)` from `erfc`'s Chebyshev fit (Numerical Recipes, 3rd ed., §6.2 `erfccheb`'s
/// predecessor `erfcc`): fractional error below 1.2e-7 everywhere, as good as f32 holds.
fn erf(cx: &mut Ctx, x: ValueId) -> Result<ValueId> {
    const C: [f64; 10] = [
        -1.26551223,
        1.00002368,
        0.37409196,
        0.09678418,
        -0.18628806,
        0.27886807,
        -1.13520398,
        1.48851587,
        -0.82215223,
        0.17087277,
    ];
    let ty = cx.g.ty(x).clone();
    let z = cx.unary(UnaryFn::Abs, x)?;
    let half = cx.binary_scalar(BinaryFn::Mul, z, 0.5)?;
    let den = cx.binary_scalar(BinaryFn::Add, half, 1.0)?;
    let one = cx.splat(ty.dtype, ty.dims(), 1.0)?;
    let t = cx.push(
        "t",
        Op::Binary {
            func: BinaryFn::Div,
        },
        vec![one, den],
        None,
    )?;
    // Horner: C0 + t (C1 + t (C2 + ...)).
    let mut p = cx.splat(ty.dtype, ty.dims(), C[9])?;
    for &c in C[..9].iter().rev() {
        let m = cx.push(
            "horner",
            Op::Binary {
                func: BinaryFn::Mul,
            },
            vec![p, t],
            None,
        )?;
        p = cx.binary_scalar(BinaryFn::Add, m, c)?;
    }
    let z2 = cx.push(
        "square",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![z, z],
        None,
    )?;
    let arg = cx.push(
        "exponent",
        Op::Binary {
            func: BinaryFn::Sub,
        },
        vec![p, z2],
        None,
    )?;
    let e = cx.unary(UnaryFn::Exp, arg)?;
    let erfc = cx.push(
        "erfc",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![t, e],
        None,
    )?;
    let pos = cx.push(
        "erf_abs",
        Op::Binary {
            func: BinaryFn::Sub,
        },
        vec![one, erfc],
        None,
    )?;
    let neg = cx.unary(UnaryFn::Neg, pos)?;
    let zero = cx.splat(ty.dtype, ty.dims(), 0.0)?;
    let is_neg = cx.push(
        "negative",
        Op::Compare {
            dir: CompareDir::Lt,
        },
        vec![x, zero],
        None,
    )?;
    cx.push("erf", Op::Select, vec![is_neg, neg, pos], None)
}

pub(crate) fn clip(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let mut v = cx.node(x.get(0)?)?;
    for (i, func) in [(2, BinaryFn::Min), (1, BinaryFn::Max)] {
        if let Some(b) = x.opt(i) {
            let b = cx.node(b)?;
            v = cx.binary(func, v, b)?;
        }
    }
    Ok(v)
}

pub(crate) fn select(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let c = cx.node(x.get(0)?)?;
    let a = cx.node(x.get(1)?)?;
    let b = cx.node(x.get(2)?)?;
    let dims = [c, a, b].iter().try_fold(Vec::new(), |acc, &v| {
        super::host::broadcast_shape(&acc, cx.g.ty(v).dims())
    });
    let dims = dims.ok_or_else(|| x.attrs.err("condition and values do not broadcast"))?;
    let c = cx.broadcast_to(c, &dims)?;
    let a = cx.broadcast_to(a, &dims)?;
    let b = cx.broadcast_to(b, &dims)?;
    cx.push("where", Op::Select, vec![c, a, b], None)
}

pub(crate) fn cast(cx: &mut Ctx, op: &str, x: &Inputs) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let dtype = if op == "CastLike" {
        cx.ty(x.get(1)?).dtype
    } else {
        dtype_of(x.attrs.int("to", 1) as i32, "Cast")?
    };
    cx.convert(v, dtype)
}

/// `MatMul` with numpy semantics: 1-d operands gain and lose a dim, batch dims broadcast.
pub(crate) fn matmul(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let mut a = cx.node(x.get(0)?)?;
    let mut b = cx.node(x.get(1)?)?;
    let (ta, tb) = (cx.g.ty(a).clone(), cx.g.ty(b).clone());
    if ta.rank() == 0 || tb.rank() == 0 {
        return Err(x.attrs.err("MatMul of a scalar"));
    }
    if ta.rank() == 1 {
        a = cx.reshape(a, &[1, ta.dims()[0]])?;
    }
    if tb.rank() == 1 {
        b = cx.reshape(b, &[tb.dims()[0], 1])?;
    }
    let (ra, rb) = (cx.g.ty(a).rank(), cx.g.ty(b).rank());
    let out = if rb == 2 {
        // [.., m, k] x [k, n]: no batch dims, the lhs's leading dims stay free.
        cx.push(
            "matmul",
            Op::DotGeneral {
                lhs_batch: vec![],
                rhs_batch: vec![],
                lhs_contract: vec![ra - 1],
                rhs_contract: vec![0],
            },
            vec![a, b],
            None,
        )?
    } else {
        let (da, db) = (cx.g.ty(a).dims().to_vec(), cx.g.ty(b).dims().to_vec());
        let batch =
            super::host::broadcast_shape(&da[..ra - 2], &db[..rb - 2]).ok_or_else(|| {
                x.attrs
                    .err(format!("batch dims of {ta} and {tb} do not broadcast"))
            })?;
        let nb = batch.len();
        let full = |d: &[u64], r: usize| [batch.clone(), d[r - 2..].to_vec()].concat();
        let a2 = cx.broadcast_to(a, &full(&da, ra))?;
        let b2 = cx.broadcast_to(b, &full(&db, rb))?;
        let bd: Vec<usize> = (0..nb).collect();
        cx.push(
            "matmul",
            Op::DotGeneral {
                lhs_batch: bd.clone(),
                rhs_batch: bd,
                lhs_contract: vec![nb + 1],
                rhs_contract: vec![nb],
            },
            vec![a2, b2],
            None,
        )?
    };
    let mut dims = cx.g.ty(out).dims().to_vec();
    let r = dims.len();
    match (ta.rank(), tb.rank()) {
        (1, 1) => dims.clear(),
        (1, _) => {
            dims.remove(r - 2);
        }
        (_, 1) => {
            dims.pop();
        }
        _ => return Ok(out),
    }
    cx.reshape(out, &dims)
}

/// `Gemm`: `alpha * A' B' + beta * C` with `'` the optional transposes, as one contraction.
pub(crate) fn gemm(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let a = cx.node(x.get(0)?)?;
    let b = cx.node(x.get(1)?)?;
    let ta = usize::from(x.attrs.int("transA", 0) != 0);
    let tb = usize::from(x.attrs.int("transB", 0) != 0);
    let mut y = cx.push(
        "gemm",
        Op::DotGeneral {
            lhs_batch: vec![],
            rhs_batch: vec![],
            lhs_contract: vec![1 - ta],
            rhs_contract: vec![tb],
        },
        vec![a, b],
        None,
    )?;
    let alpha = f64::from(x.attrs.float("alpha", 1.0));
    if alpha != 1.0 {
        y = cx.binary_scalar(BinaryFn::Mul, y, alpha)?;
    }
    if let Some(c) = x.opt(2) {
        let mut c = cx.node(c)?;
        let beta = f64::from(x.attrs.float("beta", 1.0));
        if beta != 1.0 {
            c = cx.binary_scalar(BinaryFn::Mul, c, beta)?;
        }
        y = cx.binary(BinaryFn::Add, y, c)?;
    }
    Ok(y)
}

/// Softmax over one axis (opset 13): `exp(x - max) / sum`, or its log.
pub(crate) fn softmax(cx: &mut Ctx, x: &Inputs, log: bool) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let rank = cx.g.ty(v).rank();
    let axis = norm_axis(&x.attrs, x.attrs.int("axis", -1), rank)?;
    let m = cx.reduce(ReduceFn::Max, v, &[axis], true)?;
    let d = cx.binary(BinaryFn::Sub, v, m)?;
    let e = cx.unary(UnaryFn::Exp, d)?;
    let s = cx.reduce(ReduceFn::Sum, e, &[axis], true)?;
    if log {
        let ls = cx.unary(UnaryFn::Log, s)?;
        return cx.binary(BinaryFn::Sub, d, ls);
    }
    cx.binary(BinaryFn::Div, e, s)
}

/// The mean over `dims`, keeping them.
fn mean(cx: &mut Ctx, v: ValueId, dims: &[usize]) -> Result<ValueId> {
    let n: u64 = dims.iter().map(|&d| cx.g.ty(v).dims()[d]).product();
    let s = cx.reduce(ReduceFn::Sum, v, dims, true)?;
    cx.binary_scalar(BinaryFn::Div, s, n as f64)
}

/// `x * rsqrt(mean(x²) + eps)` over `dims` (the normalization without the gain).
fn rms(cx: &mut Ctx, v: ValueId, dims: &[usize], eps: f64) -> Result<ValueId> {
    let sq = cx.push(
        "square",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![v, v],
        None,
    )?;
    let ms = mean(cx, sq, dims)?;
    let ms = cx.binary_scalar(BinaryFn::Add, ms, eps)?;
    let r = cx.unary(UnaryFn::Rsqrt, ms)?;
    cx.binary(BinaryFn::Mul, v, r)
}

fn norm_dims(cx: &Ctx, x: &Inputs, v: ValueId) -> Result<Vec<usize>> {
    let rank = cx.g.ty(v).rank();
    let axis = norm_axis(&x.attrs, x.attrs.int("axis", -1), rank)?;
    Ok((axis..rank).collect())
}

fn scale_and_shift(
    cx: &mut Ctx,
    x: &Inputs,
    mut y: ValueId,
    scale: usize,
    bias: usize,
) -> Result<ValueId> {
    if let Some(s) = x.opt(scale) {
        let s = cx.node(s)?;
        y = cx.binary(BinaryFn::Mul, y, s)?;
    }
    if let Some(b) = x.opt(bias) {
        let b = cx.node(b)?;
        y = cx.binary(BinaryFn::Add, y, b)?;
    }
    Ok(y)
}

pub(crate) fn layer_norm(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let dims = norm_dims(cx, x, v)?;
    let eps = f64::from(x.attrs.float("epsilon", 1e-5));
    let mu = mean(cx, v, &dims)?;
    let d = cx.binary(BinaryFn::Sub, v, mu)?;
    let n = rms(cx, d, &dims, eps)?;
    scale_and_shift(cx, x, n, 1, 2)
}

pub(crate) fn rms_norm(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let dims = norm_dims(cx, x, v)?;
    let eps = f64::from(x.attrs.float("epsilon", 1e-5));
    let n = rms(cx, v, &dims, eps)?;
    scale_and_shift(cx, x, n, 1, usize::MAX)
}

/// onnxruntime's `SkipSimplifiedLayerNormalization`: `s = input + skip (+ bias)`, outputs the
/// RMS-normalized `s` times `gamma` and (fourth output) `s` itself.
pub(crate) fn skip_rms_norm(cx: &mut Ctx, x: &Inputs) -> Result<Vec<Val>> {
    let a = cx.node(x.get(0)?)?;
    let b = cx.node(x.get(1)?)?;
    let mut s = cx.binary(BinaryFn::Add, a, b)?;
    if let Some(bias) = x.opt(3) {
        let bias = cx.node(bias)?;
        s = cx.binary(BinaryFn::Add, s, bias)?;
    }
    let rank = cx.g.ty(s).rank();
    let eps = f64::from(x.attrs.float("epsilon", 1e-5));
    let n = rms(cx, s, &[rank - 1], eps)?;
    let y = scale_and_shift(cx, x, n, 2, usize::MAX)?;
    let none = Val::Node(y);
    Ok(vec![Val::Node(y), none.clone(), none, Val::Node(s)])
}

pub(crate) fn reduce(cx: &mut Ctx, op: &str, x: &Inputs) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let rank = cx.g.ty(v).rank();
    let keep = x.attrs.int("keepdims", 1) != 0;
    let axes = x.ints_input_or_attr(1, "axes")?;
    let dims: Vec<usize> = match axes {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|&a| norm_axis(&x.attrs, a, rank))
            .collect::<Result<_>>()?,
        _ if x.attrs.int("noop_with_empty_axes", 0) == 1 => return Ok(v),
        _ => (0..rank).collect(),
    };
    let n: u64 = dims.iter().map(|&d| cx.g.ty(v).dims()[d]).product();
    let (input, func) = match op {
        "ReduceMax" => (v, ReduceFn::Max),
        "ReduceMin" => (v, ReduceFn::Min),
        "ReduceL2" | "ReduceSumSquare" => (
            cx.push(
                "square",
                Op::Binary {
                    func: BinaryFn::Mul,
                },
                vec![v, v],
                None,
            )?,
            ReduceFn::Sum,
        ),
        _ => (v, ReduceFn::Sum),
    };
    let r = cx.reduce(func, input, &dims, keep)?;
    match op {
        "ReduceMean" => cx.binary_scalar(BinaryFn::Div, r, n as f64),
        "ReduceL2" => cx.unary(UnaryFn::Sqrt, r),
        _ => Ok(r),
    }
}

/// `CumSum` along an axis as a product with a triangular matrix of ones (integers go through
/// f64, exact below 2^53).
pub(crate) fn cumsum(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let ty = cx.g.ty(v).clone();
    let axis = norm_axis(&x.attrs, *x.host_ints(1)?.first().unwrap_or(&0), ty.rank())?;
    let n = ty.dims()[axis];
    if n > 4096 {
        return Err(x.attrs.err(format!(
            "CumSum over {n} elements is larger than the importer lowers"
        )));
    }
    let (excl, rev) = (
        x.attrs.int("exclusive", 0) != 0,
        x.attrs.int("reverse", 0) != 0,
    );
    // tri[i][j] = 1 where input i counts toward output j.
    let mut tri = Vec::with_capacity((n * n) as usize);
    for i in 0..n {
        for j in 0..n {
            let counts = match (rev, excl) {
                (false, false) => i <= j,
                (false, true) => i < j,
                (true, false) => i >= j,
                (true, true) => i > j,
            };
            tri.push(f64::from(u8::from(counts)));
        }
    }
    let work = if ty.dtype.is_float() {
        ty.dtype
    } else {
        DType::F64
    };
    let vw = cx.convert(v, work)?;
    let t = cx.push(
        "triangle",
        Op::Constant {
            value: crate::op::Literal::Dense(tri),
        },
        vec![],
        Some(TensorType::new(work, vec![n, n])),
    )?;
    let d = cx.push(
        "cumsum",
        Op::DotGeneral {
            lhs_batch: vec![],
            rhs_batch: vec![],
            lhs_contract: vec![axis],
            rhs_contract: vec![0],
        },
        vec![vw, t],
        None,
    )?;
    // The contraction puts the summed axis last; move it back.
    let r = ty.rank();
    let mut perm: Vec<usize> = (0..r - 1).collect();
    perm.insert(axis, r - 1);
    let d = if axis == r - 1 {
        d
    } else {
        cx.push("cumsum_order", Op::Transpose { perm }, vec![d], None)?
    };
    cx.convert(d, ty.dtype)
}
