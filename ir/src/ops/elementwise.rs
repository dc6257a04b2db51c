//! Elementwise ops: unary, binary, compare, select, convert, copy.

use super::{with_declared_dtype_check, TypeCtx};
use crate::autodiff::{GradCtx, Grads};
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ValueId;
use crate::op::{BinaryFn, CompareDir, Op, UnaryFn};
use crate::types::TensorType;

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
    match op {
        Op::Unary { func } => {
            cx.expect_operands(1)?;
            let x = cx.operands[0];
            unary_domain(*func, x.dtype)?;
            with_declared_dtype_check(cx, x.clone())
        }
        Op::Binary { func } => {
            cx.expect_operands(2)?;
            let (x, y) = (cx.operands[0], cx.operands[1]);
            same_type(x, y)?;
            binary_domain(*func, x.dtype)?;
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
        Op::BitcastConvert => {
            cx.expect_operands(1)?;
            let (from, to) = (cx.operands[0].dtype, cx.declared.dtype);
            if from.size_bytes() != to.size_bytes() || from == DType::Bool || to == DType::Bool {
                return Err(format!(
                    "bitcast_convert needs element types of one width (not bool), got {from} to {to}"
                ));
            }
            Ok(cx.operands[0].with_dtype(to))
        }
        _ => unreachable!("elementwise::infer called on {}", op.name()),
    }
}

/// The dtypes a unary function takes: `not` bool or integers, `popcnt` integers, `neg`, `abs`,
/// `relu` and `sign` any number, the rest floats.
fn unary_domain(func: UnaryFn, dt: DType) -> std::result::Result<(), String> {
    let ok = match func {
        UnaryFn::Not => dt == DType::Bool || dt.is_int(),
        UnaryFn::Popcnt => dt.is_int(),
        UnaryFn::Neg | UnaryFn::Abs | UnaryFn::Relu | UnaryFn::Sign => dt != DType::Bool,
        _ => dt.is_float(),
    };
    if ok {
        return Ok(());
    }
    let wants = match func {
        UnaryFn::Not => "bool or an integer",
        UnaryFn::Popcnt => "an integer",
        UnaryFn::Neg | UnaryFn::Abs | UnaryFn::Relu | UnaryFn::Sign => "a numeric operand",
        _ => "a floating-point operand",
    };
    Err(format!("{} needs {wants}, got {dt}", func.name()))
}

/// The dtypes a binary function takes: `and`/`or`/`xor` bool or integers, shifts integers,
/// `atan2` floats, the rest any number.
fn binary_domain(func: BinaryFn, dt: DType) -> std::result::Result<(), String> {
    let (ok, wants) = match func {
        BinaryFn::And | BinaryFn::Or | BinaryFn::Xor => {
            (dt == DType::Bool || dt.is_int(), "bool or integer operands")
        }
        BinaryFn::ShiftLeft | BinaryFn::ShiftRightLogical | BinaryFn::ShiftRightArithmetic => {
            (dt.is_int(), "integer operands")
        }
        BinaryFn::Atan2 => (dt.is_float(), "floating-point operands"),
        _ => (dt != DType::Bool, "numeric operands"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{} needs {wants}, got {dt}", func.name()))
    }
}

fn same_type(x: &TensorType, y: &TensorType) -> std::result::Result<(), String> {
    if x != y {
        return Err(format!("operands must have one type, got {x} and {y}"));
    }
    Ok(())
}

/// Gradient rules of the elementwise family. Integer and boolean operands never want a gradient
/// (autodiff only asks for float values), so the logical ops and `compare` give none.
pub(super) fn grad(op: &Op, cx: &mut GradCtx) -> Result<Grads> {
    let dy = cx.dy;
    match op {
        Op::Unary { func } => {
            if !cx.wants(0) {
                return Ok(vec![None]);
            }
            Ok(vec![unary_grad(*func, cx, dy)?])
        }
        Op::Binary { func } => binary_grad(*func, cx, dy),
        Op::Compare { .. } => Ok(vec![None, None]),
        Op::Select => {
            let p = cx.x(0);
            let on_true = if cx.wants(1) {
                Some(cx.mask("grad_on_true", p, dy, true)?)
            } else {
                None
            };
            let on_false = if cx.wants(2) {
                Some(cx.mask("grad_on_false", p, dy, false)?)
            } else {
                None
            };
            Ok(vec![None, on_true, on_false])
        }
        Op::Convert => {
            if !cx.wants(0) {
                return Ok(vec![None]);
            }
            let dtype = cx.ty(cx.x(0)).dtype;
            Ok(vec![Some(cx.convert("grad", dy, dtype)?)])
        }
        Op::Copy => Ok(vec![cx.wants(0).then_some(dy)]),
        // Reinterpreted bits have no derivative.
        Op::BitcastConvert => Ok(vec![None]),
        _ => unreachable!("elementwise::grad called on {}", op.name()),
    }
}

/// `d/dx f(x) * dy`, with `y = f(x)` reused where the derivative is a function of it.
fn unary_grad(func: UnaryFn, cx: &mut GradCtx, dy: ValueId) -> Result<Option<ValueId>> {
    let (x, y) = (cx.x(0), cx.y());
    let g = match func {
        UnaryFn::Neg => cx.unary("grad", UnaryFn::Neg, dy)?,
        UnaryFn::Abs => {
            let z = cx.zeros_like("grad.zero", x)?;
            let neg = cx.compare("grad.negative", CompareDir::Lt, x, z)?;
            let ndy = cx.unary("grad.neg", UnaryFn::Neg, dy)?;
            cx.select("grad", neg, ndy, dy)?
        }
        UnaryFn::Exp => cx.mul("grad", dy, y)?,
        UnaryFn::Log => cx.div("grad", dy, x)?,
        UnaryFn::Tanh => {
            // 1 - y^2
            let yy = cx.mul("grad.y2", y, y)?;
            let one = cx.splat_like("grad.one", 1.0, y)?;
            let d = cx.sub("grad.d", one, yy)?;
            cx.mul("grad", dy, d)?
        }
        UnaryFn::Gelu => {
            let d = gelu_derivative(cx, x)?;
            cx.mul("grad", dy, d)?
        }
        UnaryFn::Relu => {
            let z = cx.zeros_like("grad.zero", x)?;
            let pos = cx.compare("grad.positive", CompareDir::Gt, x, z)?;
            cx.select("grad", pos, dy, z)?
        }
        UnaryFn::Sigmoid => {
            // y (1 - y)
            let one = cx.splat_like("grad.one", 1.0, y)?;
            let omy = cx.sub("grad.1my", one, y)?;
            let d = cx.mul("grad.d", y, omy)?;
            cx.mul("grad", dy, d)?
        }
        UnaryFn::Sqrt => {
            // 1 / (2 sqrt x)
            let t = cx.div("grad.q", dy, y)?;
            cx.scale("grad", t, 0.5)?
        }
        UnaryFn::Rsqrt => {
            // d/dx x^(-1/2) = -1/2 x^(-3/2) = -1/2 y / x
            let t = cx.div("grad.q", y, x)?;
            let t = cx.mul("grad.t", dy, t)?;
            cx.scale("grad", t, -0.5)?
        }
        UnaryFn::Sin => {
            let c = cx.unary("grad.cos", UnaryFn::Cos, x)?;
            cx.mul("grad", dy, c)?
        }
        UnaryFn::Cos => {
            let s = cx.unary("grad.sin", UnaryFn::Sin, x)?;
            let t = cx.mul("grad.t", dy, s)?;
            cx.unary("grad", UnaryFn::Neg, t)?
        }
        UnaryFn::Erf => {
            // d/dx erf(x) = 2/sqrt(pi) exp(-x^2)
            let x2 = cx.mul("grad.x2", x, x)?;
            let nx2 = cx.unary("grad.neg_x2", UnaryFn::Neg, x2)?;
            let e = cx.unary("grad.exp", UnaryFn::Exp, nx2)?;
            let t = cx.mul("grad.t", dy, e)?;
            cx.scale("grad", t, std::f64::consts::FRAC_2_SQRT_PI)?
        }
        UnaryFn::Expm1 => {
            // exp(x) = y + 1
            let one = cx.splat_like("grad.one", 1.0, y)?;
            let e = cx.add("grad.exp", y, one)?;
            cx.mul("grad", dy, e)?
        }
        UnaryFn::Log1p => {
            let one = cx.splat_like("grad.one", 1.0, x)?;
            let d = cx.add("grad.1px", one, x)?;
            cx.div("grad", dy, d)?
        }
        // Piecewise constant: the derivative is 0 wherever it exists.
        UnaryFn::Floor | UnaryFn::Ceil | UnaryFn::Round | UnaryFn::RoundEven | UnaryFn::Sign => {
            cx.zeros_like("grad", x)?
        }
        UnaryFn::Not | UnaryFn::Popcnt => return Ok(None),
    };
    Ok(Some(g))
}

/// The derivative of GELU's tanh approximation `0.5 x (1 + tanh(u))`, `u = c (x + a x^3)`
/// (Hendrycks & Gimpel 2016, the form GPT-2 uses): `0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)`.
fn gelu_derivative(cx: &mut GradCtx, x: ValueId) -> Result<ValueId> {
    const A: f64 = 0.044715;
    let c = (2.0 / std::f64::consts::PI).sqrt();
    let x2 = cx.mul("grad.x2", x, x)?;
    let a_x2 = cx.scale("grad.ax2", x2, A)?;
    let one = cx.splat_like("grad.one", 1.0, x)?;
    let inner = cx.add("grad.inner", one, a_x2)?;
    let xin = cx.mul("grad.xinner", x, inner)?;
    let u = cx.scale("grad.u", xin, c)?;
    let t = cx.unary("grad.tanh", UnaryFn::Tanh, u)?;
    let one_t = cx.add("grad.1pt", one, t)?;
    let left = cx.scale("grad.left", one_t, 0.5)?;
    let tt = cx.mul("grad.t2", t, t)?;
    let sech2 = cx.sub("grad.sech2", one, tt)?;
    let a3_x2 = cx.scale("grad.3ax2", x2, 3.0 * A)?;
    let du = cx.add("grad.du", one, a3_x2)?;
    let du = cx.scale("grad.dudx", du, c)?;
    let r = cx.mul("grad.r1", x, sech2)?;
    let r = cx.mul("grad.r2", r, du)?;
    let right = cx.scale("grad.right", r, 0.5)?;
    cx.add("grad.d", left, right)
}

fn binary_grad(func: BinaryFn, cx: &mut GradCtx, dy: ValueId) -> Result<Grads> {
    let (x, y, z) = (cx.x(0), cx.x(1), cx.y());
    let (wx, wy) = (cx.wants(0), cx.wants(1));
    let pair = |a: Option<ValueId>, b: Option<ValueId>| Ok(vec![a, b]);
    match func {
        BinaryFn::Add => pair(wx.then_some(dy), wy.then_some(dy)),
        BinaryFn::Sub => {
            let gy = if wy {
                Some(cx.unary("grad_rhs", UnaryFn::Neg, dy)?)
            } else {
                None
            };
            pair(wx.then_some(dy), gy)
        }
        BinaryFn::Mul => {
            let gx = if wx {
                Some(cx.mul("grad_lhs", dy, y)?)
            } else {
                None
            };
            let gy = if wy {
                Some(cx.mul("grad_rhs", dy, x)?)
            } else {
                None
            };
            pair(gx, gy)
        }
        BinaryFn::Div => {
            // z = x / y: dx = dy / y, dy' = -dy z / y
            let gx = if wx {
                Some(cx.div("grad_lhs", dy, y)?)
            } else {
                None
            };
            let gy = if wy {
                let q = cx.div("grad_rhs.q", z, y)?;
                let t = cx.mul("grad_rhs.t", dy, q)?;
                Some(cx.unary("grad_rhs", UnaryFn::Neg, t)?)
            } else {
                None
            };
            pair(gx, gy)
        }
        BinaryFn::Max | BinaryFn::Min => {
            // A subgradient: ties go to the left operand.
            let dir = if func == BinaryFn::Max {
                CompareDir::Ge
            } else {
                CompareDir::Le
            };
            let p = cx.compare("grad.lhs_wins", dir, x, y)?;
            let gx = if wx {
                Some(cx.mask("grad_lhs", p, dy, true)?)
            } else {
                None
            };
            let gy = if wy {
                Some(cx.mask("grad_rhs", p, dy, false)?)
            } else {
                None
            };
            pair(gx, gy)
        }
        BinaryFn::Pow => {
            // z = x^y: dx = dy y x^(y-1); dy' = dy z ln x (taken as 0 where x <= 0, as JAX does at 0).
            let gx = if wx {
                let one = cx.splat_like("grad_lhs.one", 1.0, y)?;
                let ym1 = cx.sub("grad_lhs.ym1", y, one)?;
                let p = cx.binary("grad_lhs.pow", BinaryFn::Pow, x, ym1)?;
                let t = cx.mul("grad_lhs.t", y, p)?;
                Some(cx.mul("grad_lhs", dy, t)?)
            } else {
                None
            };
            let gy = if wy {
                let zero = cx.zeros_like("grad_rhs.zero", x)?;
                let pos = cx.compare("grad_rhs.positive", CompareDir::Gt, x, zero)?;
                let one = cx.splat_like("grad_rhs.one", 1.0, x)?;
                let safe = cx.select("grad_rhs.safe_x", pos, x, one)?;
                let ln = cx.unary("grad_rhs.log", UnaryFn::Log, safe)?;
                let t = cx.mul("grad_rhs.t", z, ln)?;
                let t = cx.mul("grad_rhs.dt", dy, t)?;
                Some(cx.select("grad_rhs", pos, t, zero)?)
            } else {
                None
            };
            pair(gx, gy)
        }
        BinaryFn::Rem => {
            // z = x - trunc(x / y) y: dx = dy, dy' = -dy trunc(x / y) = -dy (x - z) / y
            let gy = if wy {
                let d = cx.sub("grad_rhs.d", x, z)?;
                let q = cx.div("grad_rhs.q", d, y)?;
                let t = cx.mul("grad_rhs.t", dy, q)?;
                Some(cx.unary("grad_rhs", UnaryFn::Neg, t)?)
            } else {
                None
            };
            pair(wx.then_some(dy), gy)
        }
        BinaryFn::Atan2 => {
            // z = atan2(x, y): dx = dy y / (x^2 + y^2), dy' = -dy x / (x^2 + y^2)
            let x2 = cx.mul("grad.x2", x, x)?;
            let y2 = cx.mul("grad.y2", y, y)?;
            let r2 = cx.add("grad.r2", x2, y2)?;
            let s = cx.div("grad.s", dy, r2)?;
            let gx = if wx {
                Some(cx.mul("grad_lhs", s, y)?)
            } else {
                None
            };
            let gy = if wy {
                let t = cx.mul("grad_rhs.t", s, x)?;
                Some(cx.unary("grad_rhs", UnaryFn::Neg, t)?)
            } else {
                None
            };
            pair(gx, gy)
        }
        BinaryFn::And
        | BinaryFn::Or
        | BinaryFn::Xor
        | BinaryFn::ShiftLeft
        | BinaryFn::ShiftRightLogical
        | BinaryFn::ShiftRightArithmetic => pair(None, None),
    }
}
