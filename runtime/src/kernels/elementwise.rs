//! Elementwise kernels: unary, binary, compare, select, convert.
//!
//! Floating-point math runs in f64 and is rounded to the result's dtype (f32 results are then
//! correctly rounded for +,-,*,/ and sqrt, and within an ulp for the transcendental functions).
//! Integer arithmetic wraps as XLA's does; integer division by zero gives -1 (XLA's choice).

use ndarray::{ArrayD, Zip};
use shardc_ir::{BinaryFn, CompareDir, DType, TensorType, UnaryFn};

use super::fast_math::{exp_for_f32, gelu_for_f32, powi_exact, tanh_for_f32};
use super::{arr, par};
use crate::tensor::{with_elem, Data, Elem, Tensor};

/// GELU, tanh approximation (Hendrycks & Gimpel 2016, as GPT-2 and Megatron use it):
/// `0.5·x·(1 + tanh(u))`, computed as the equal `x / (1 + exp(-2u))`, one `exp` instead of a
/// `tanh` (a third of the time; accurate to a few f64 ulps, also where `exp` overflows: `x/∞`).
pub(crate) fn gelu(x: f64) -> f64 {
    const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
    let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    x / (1.0 + (-2.0 * u).exp())
}

fn unary_float(f: UnaryFn) -> Result<fn(f64) -> f64, String> {
    Ok(match f {
        UnaryFn::Neg => |x| -x,
        UnaryFn::Abs => f64::abs,
        UnaryFn::Exp => f64::exp,
        UnaryFn::Log => f64::ln,
        UnaryFn::Tanh => f64::tanh,
        UnaryFn::Gelu => gelu,
        UnaryFn::Relu => |x| if x > 0.0 { x } else { 0.0 },
        UnaryFn::Sigmoid => |x| 1.0 / (1.0 + (-x).exp()),
        UnaryFn::Sqrt => f64::sqrt,
        UnaryFn::Rsqrt => |x| 1.0 / x.sqrt(),
        UnaryFn::Sin => f64::sin,
        UnaryFn::Cos => f64::cos,
        UnaryFn::Erf => libm::erf,
        UnaryFn::Expm1 => f64::exp_m1,
        UnaryFn::Log1p => f64::ln_1p,
        UnaryFn::Floor => f64::floor,
        UnaryFn::Ceil => f64::ceil,
        UnaryFn::Round => f64::round,
        UnaryFn::RoundEven => f64::round_ties_even,
        UnaryFn::Sign => |x: f64| {
            if x == 0.0 || x.is_nan() {
                x
            } else {
                x.signum()
            }
        },
        UnaryFn::Not | UnaryFn::Popcnt => {
            return Err(format!("{} needs a bool or integer operand", f.name()))
        }
    })
}

fn unary_int(f: UnaryFn) -> Result<fn(i64) -> i64, String> {
    Ok(match f {
        UnaryFn::Neg => i64::wrapping_neg,
        UnaryFn::Abs => i64::wrapping_abs,
        UnaryFn::Relu => |x| x.max(0),
        UnaryFn::Sign => i64::signum,
        UnaryFn::Not => |x| !x,
        UnaryFn::Popcnt => |x| i64::from(x.count_ones()),
        _ => return Err(format!("{} needs a floating-point operand", f.name())),
    })
}

/// Runs `$body` with `$g` an inlinable `Fn(f32) -> f32` computing `$f` for f32 storage (as the
/// f64 function rounded to f32; `exp`, GELU and tanh through `fast_math`). Ops with no f32 form
/// here go through the f64 function pointer; ops with no float form return the error.
macro_rules! with_f32_unary {
    ($f:expr, $g:ident => $body:expr) => {
        match $f {
            UnaryFn::Exp => {
                let $g = |v: f32| exp_for_f32(v as f64) as f32;
                $body
            }
            UnaryFn::Gelu => {
                let $g = |v: f32| gelu_for_f32(v as f64) as f32;
                $body
            }
            UnaryFn::Tanh => {
                let $g = |v: f32| tanh_for_f32(v as f64) as f32;
                $body
            }
            UnaryFn::Neg => {
                let $g = |v: f32| -v;
                $body
            }
            UnaryFn::Abs => {
                let $g = |v: f32| v.abs();
                $body
            }
            // Correctly rounded in f32 as in f64 (f64 has more than 2·24+2 bits).
            UnaryFn::Sqrt => {
                let $g = |v: f32| v.sqrt();
                $body
            }
            UnaryFn::Rsqrt => {
                let $g = |v: f32| (1.0 / (v as f64).sqrt()) as f32;
                $body
            }
            UnaryFn::Relu => {
                let $g = |v: f32| if v > 0.0 { v } else { 0.0 };
                $body
            }
            f => {
                let h = unary_float(f)?;
                let $g = |v: f32| h(v as f64) as f32;
                $body
            }
        }
    };
}

pub(super) fn unary(f: UnaryFn, x: &Tensor, ty: &TensorType) -> Result<Tensor, String> {
    let data = match x.data() {
        Data::F32(a) => Data::F32(with_f32_unary!(f, g => map(a, g))),
        Data::F64(a) => Data::F64(map(a, unary_float(f)?)),
        // The bits of an i32, not of its sign extension.
        Data::I32(a) if f == UnaryFn::Popcnt => Data::I32(a.mapv(|v| v.count_ones() as i32)),
        Data::I32(a) => {
            let g = unary_int(f)?;
            Data::I32(a.mapv(|v| g(v as i64) as i32))
        }
        Data::I64(a) => Data::I64(a.mapv(unary_int(f)?)),
        Data::Bool(a) if f == UnaryFn::Not => Data::Bool(a.mapv(|v| !v)),
        Data::Bool(_) => return Err(format!("{} needs a numeric operand, got bool", f.name())),
    };
    Ok(Tensor::from_data(ty.dtype, data))
}

/// [`unary`] of an f32 operand the caller no longer needs, written over its storage. `None`
/// (and `x` back) when `x` is not contiguous f32 storage of the result's dtype.
pub(super) fn unary_in_place(
    f: UnaryFn,
    mut x: Tensor,
    ty: &TensorType,
) -> Result<Result<Tensor, Tensor>, String> {
    if x.dtype() != ty.dtype {
        return Ok(Err(x));
    }
    let Some(v) = f32_slice_mut(&mut x) else {
        return Ok(Err(x));
    };
    with_f32_unary!(f, g => par::for_each_mut(v, |e| *e = g(*e)));
    Ok(Ok(Tensor::from_data(ty.dtype, x.into_data())))
}

fn f32_slice_mut(x: &mut Tensor) -> Option<&mut [f32]> {
    match x.data_mut() {
        Data::F32(a) => a.as_slice_mut(),
        _ => None,
    }
}

pub(super) fn binary_float(f: BinaryFn) -> Result<fn(f64, f64) -> f64, String> {
    Ok(match f {
        BinaryFn::Add => |x, y| x + y,
        BinaryFn::Sub => |x, y| x - y,
        BinaryFn::Mul => |x, y| x * y,
        BinaryFn::Div => |x, y| x / y,
        BinaryFn::Max => |x: f64, y: f64| {
            if x.is_nan() || y.is_nan() {
                f64::NAN
            } else {
                x.max(y)
            }
        },
        BinaryFn::Min => |x: f64, y: f64| {
            if x.is_nan() || y.is_nan() {
                f64::NAN
            } else {
                x.min(y)
            }
        },
        BinaryFn::Pow => pow,
        BinaryFn::Rem => |x, y| x % y,
        BinaryFn::Atan2 => f64::atan2,
        BinaryFn::And
        | BinaryFn::Or
        | BinaryFn::Xor
        | BinaryFn::ShiftLeft
        | BinaryFn::ShiftRightLogical
        | BinaryFn::ShiftRightArithmetic => {
            return Err(format!("{} needs bool or integer operands", f.name()))
        }
    })
}

/// `x^y`; small integer exponents (GELU's `x^3`, squares in norms) by multiplication, which is
/// several times faster than `powf` and within an ulp or two of it in f64.
fn pow(x: f64, y: f64) -> f64 {
    if y == y.trunc() && y.abs() <= 8.0 {
        x.powi(y as i32)
    } else {
        x.powf(y)
    }
}

fn int_pow(x: i64, y: i64) -> i64 {
    if y < 0 {
        // x^-n truncates to 0 unless |x| == 1.
        return match x {
            1 => 1,
            -1 if y % 2 == 0 => 1,
            -1 => -1,
            _ => 0,
        };
    }
    let mut result = 1i64;
    let (mut base, mut e) = (x, y as u64);
    while e > 0 {
        if e & 1 == 1 {
            result = result.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        e >>= 1;
    }
    result
}

pub(super) fn binary_int(f: BinaryFn) -> Result<fn(i64, i64) -> i64, String> {
    Ok(match f {
        BinaryFn::Add => i64::wrapping_add,
        BinaryFn::Sub => i64::wrapping_sub,
        BinaryFn::Mul => i64::wrapping_mul,
        BinaryFn::Div => |x, y| if y == 0 { -1 } else { x.wrapping_div(y) },
        BinaryFn::Max => i64::max,
        BinaryFn::Min => i64::min,
        BinaryFn::Pow => int_pow,
        BinaryFn::And => |x, y| x & y,
        BinaryFn::Or => |x, y| x | y,
        BinaryFn::Xor => |x, y| x ^ y,
        // Shifts by the bit width or more (or negative amounts) give 0, or the sign, as XLA's.
        BinaryFn::ShiftLeft => |x, y| if (0..64).contains(&y) { x << y } else { 0 },
        BinaryFn::ShiftRightLogical => |x, y| {
            if (0..64).contains(&y) {
                ((x as u64) >> y) as i64
            } else {
                0
            }
        },
        BinaryFn::ShiftRightArithmetic => |x, y| x >> y.clamp(0, 63),
        BinaryFn::Rem => |x, y| if y == 0 { x } else { x.wrapping_rem(y) },
        BinaryFn::Atan2 => return Err("atan2 needs floating-point operands".into()),
    })
}

/// `f` of every element: in parallel over contiguous storage, else ndarray's strided loop.
fn map<A, B>(a: &ArrayD<A>, f: impl Fn(A) -> B + Sync) -> ArrayD<B>
where
    A: Copy + Sync,
    B: Elem,
{
    par::map(a, &f).unwrap_or_else(|| a.mapv(f))
}

fn zip2<A: Copy + Sync, B: Elem>(
    a: &ArrayD<A>,
    b: &ArrayD<A>,
    f: impl Fn(A, A) -> B + Sync,
) -> Result<ArrayD<B>, String> {
    if let Some(out) = par::zip(a, b, &f) {
        return Ok(out);
    }
    if a.shape() != b.shape() {
        return Err(format!(
            "operand shapes {:?} and {:?} differ",
            a.shape(),
            b.shape()
        ));
    }
    Ok(Zip::from(a).and(b).map_collect(|&x, &y| f(x, y)))
}

/// Runs `$body` with `$g` an inlinable `Fn(f32, f32) -> f32` computing `$f` for f32 storage.
/// +, -, ×, ÷ of two f32s rounded once equal the f64 result rounded to f32 (f64 has more than
/// 2·24+2 bits), so these run in f32 in loops that vectorize; the rest through f64.
macro_rules! with_f32_binary {
    ($f:expr, $g:ident => $body:expr) => {
        match $f {
            BinaryFn::Add => {
                let $g = |p: f32, q: f32| p + q;
                $body
            }
            BinaryFn::Sub => {
                let $g = |p: f32, q: f32| p - q;
                $body
            }
            BinaryFn::Mul => {
                let $g = |p: f32, q: f32| p * q;
                $body
            }
            BinaryFn::Div => {
                let $g = |p: f32, q: f32| p / q;
                $body
            }
            f => {
                let h = binary_float(f)?;
                let $g = |p: f32, q: f32| h(p as f64, q as f64) as f32;
                $body
            }
        }
    };
}

/// The exponent when every element of `y` is the same small integer (GELU's `x^3`, squares in
/// norms): then `pow` is `powi`, computed inline.
fn uniform_small_exponent(s: &[f32]) -> Option<i32> {
    let &e = s.first()?;
    (e == e.trunc() && e.abs() <= 8.0 && s.iter().all(|&v| v == e)).then_some(e as i32)
}

fn binary_f32(f: BinaryFn, a: &ArrayD<f32>, b: &ArrayD<f32>) -> Result<ArrayD<f32>, String> {
    if f == BinaryFn::Pow {
        if let Some(n) = b.as_slice().and_then(uniform_small_exponent) {
            if a.shape() == b.shape() {
                return Ok(map(a, |p| powi_exact(p as f64, n) as f32));
            }
        }
    }
    with_f32_binary!(f, g => zip2(a, b, g))
}

/// [`binary`] of f32 operands where the caller no longer needs one of them (`x`, operand
/// `x_pos` of the two), written over its storage; `x` back when the storage does not fit.
pub(super) fn binary_in_place(
    f: BinaryFn,
    mut x: Tensor,
    x_pos: usize,
    other: &Tensor,
    ty: &TensorType,
) -> Result<Result<Tensor, Tensor>, String> {
    let Data::F32(oa) = other.data() else {
        return Ok(Err(x));
    };
    if x.dtype() != ty.dtype || x.shape() != oa.shape() {
        return Ok(Err(x));
    }
    let (Some(o), Some(v)) = (oa.as_slice(), f32_slice_mut(&mut x)) else {
        return Ok(Err(x));
    };
    // `x^n` with the exponents `n` the overwritten operand: the base is read from `o`.
    let n = match f {
        BinaryFn::Pow if x_pos == 0 => uniform_small_exponent(o),
        BinaryFn::Pow => uniform_small_exponent(v),
        _ => None,
    };
    match (n, x_pos) {
        (Some(n), 0) => par::for_each_mut(v, |p| *p = powi_exact(*p as f64, n) as f32),
        (Some(n), _) => par::zip_mut(v, o, |q, &p| *q = powi_exact(p as f64, n) as f32),
        (None, 0) => with_f32_binary!(f, g => par::zip_mut(v, o, |p, &q| *p = g(*p, q))),
        (None, _) => with_f32_binary!(f, g => par::zip_mut(v, o, |q, &p| *q = g(p, *q))),
    }
    Ok(Ok(Tensor::from_data(ty.dtype, x.into_data())))
}

pub(super) fn binary(
    f: BinaryFn,
    x: &Tensor,
    y: &Tensor,
    ty: &TensorType,
) -> Result<Tensor, String> {
    let data = match (x.data(), y.data()) {
        (Data::F32(a), Data::F32(b)) => Data::F32(binary_f32(f, a, b)?),
        (Data::F64(a), Data::F64(b)) => Data::F64(zip2(a, b, binary_float(f)?)?),
        // Logical shifts of i32 and arithmetic ones of u32 (stored in i64) read 32 bits.
        (Data::I32(a), Data::I32(b)) if f == BinaryFn::ShiftRightLogical => {
            Data::I32(zip2(a, b, |p, q| {
                if (0..32).contains(&q) {
                    ((p as u32) >> q) as i32
                } else {
                    0
                }
            })?)
        }
        (Data::I64(a), Data::I64(b))
            if f == BinaryFn::ShiftRightArithmetic && ty.dtype == DType::U32 =>
        {
            Data::I64(zip2(a, b, |p, q| {
                ((p as u32 as i32) >> q.clamp(0, 31)) as i64
            })?)
        }
        (Data::I32(a), Data::I32(b)) => {
            let g = binary_int(f)?;
            Data::I32(zip2(a, b, |p, q| g(p as i64, q as i64) as i32)?)
        }
        (Data::I64(a), Data::I64(b)) => Data::I64(zip2(a, b, binary_int(f)?)?),
        (Data::Bool(a), Data::Bool(b)) => match f {
            BinaryFn::And => Data::Bool(zip2(a, b, |p, q| p && q)?),
            BinaryFn::Or => Data::Bool(zip2(a, b, |p, q| p || q)?),
            BinaryFn::Xor => Data::Bool(zip2(a, b, |p, q| p != q)?),
            _ => return Err(format!("{} needs numeric operands, got bool", f.name())),
        },
        _ => {
            return Err(format!(
                "operands {} and {} differ in dtype",
                x.ty(),
                y.ty()
            ))
        }
    };
    Ok(Tensor::from_data(ty.dtype, data))
}

fn compare_with<T: PartialOrd + Copy>(dir: CompareDir) -> impl Fn(T, T) -> bool {
    move |x, y| match dir {
        CompareDir::Eq => x == y,
        CompareDir::Ne => x != y,
        CompareDir::Lt => x < y,
        CompareDir::Le => x <= y,
        CompareDir::Gt => x > y,
        CompareDir::Ge => x >= y,
    }
}

pub(super) fn compare(dir: CompareDir, x: &Tensor, y: &Tensor) -> Result<Tensor, String> {
    let out = with_elem!(x.data(), T => {
        zip2(arr::<T>(x)?, arr::<T>(y)?, compare_with::<T>(dir))?
    });
    Ok(Tensor::from_data(DType::Bool, Data::Bool(out)))
}

pub(super) fn select(p: &Tensor, t: &Tensor, f: &Tensor) -> Result<Tensor, String> {
    let pred = arr::<bool>(p)?;
    let data = with_elem!(t.data(), T => {
        let (a, b) = (arr::<T>(t)?, arr::<T>(f)?);
        if pred.shape() != a.shape() || a.shape() != b.shape() {
            return Err(format!("select shapes {:?}, {:?}, {:?} differ", pred.shape(), a.shape(), b.shape()));
        }
        T::into_data(Zip::from(pred).and(a).and(b).map_collect(|&c, &x, &y| if c { x } else { y }))
    });
    Ok(Tensor::from_data(t.dtype(), data))
}

pub(super) fn convert(x: &Tensor, to: DType) -> Result<Tensor, String> {
    fn ints<T: Elem>(x: &Tensor, f: impl Fn(i64) -> T + Sync) -> Option<ArrayD<T>> {
        match x.data() {
            Data::I32(a) => Some(map(a, |v| f(v as i64))),
            Data::I64(a) => Some(map(a, &f)),
            _ => None,
        }
    }
    fn floats<T: Elem>(x: &Tensor) -> ArrayD<T> {
        with_elem!(x.data(), S => match S::get(x.data()) {
            Some(a) => map(a, |v| T::from_f64(v.to_f64())),
            None => unreachable!("with_elem matched the variant"),
        })
    }
    // Integer to integer conversions wrap (two's complement), everything else goes through f64
    // (float to integer saturates, NaN gives 0, as Rust's `as` and XLA's convert do).
    let data = match to {
        DType::I32 => Data::I32(ints(x, |v| v as i32).unwrap_or_else(|| floats(x))),
        DType::I64 => Data::I64(ints(x, |v| v).unwrap_or_else(|| floats(x))),
        // Integers wrap into u32 (from_data masks); floats saturate into its range.
        DType::U32 => Data::I64(
            ints(x, |v| v)
                .unwrap_or_else(|| floats::<f64>(x).mapv(|v| v.clamp(0.0, u32::MAX as f64) as i64)),
        ),
        DType::U64 => Data::I64(
            ints(x, |v| v).unwrap_or_else(|| floats::<f64>(x).mapv(|v| v.max(0.0) as u64 as i64)),
        ),
        DType::F32 | DType::BF16 | DType::F16 => Data::F32(floats(x)),
        DType::F64 => Data::F64(floats(x)),
        DType::Bool => Data::Bool(floats(x)),
    };
    Ok(Tensor::from_data(to, data))
}
