//! `exp` for f32 results, as straight-line code that the compiler inlines and vectorizes (the
//! libm call it replaces costs an indirect call per element and takes most of a softmax).
//!
//! Computed in f64 to a relative error below 1e-13, far below an f32 ulp (6e-8), so the f32 result
//! is the correctly rounded one except when the exact value lies within 1e-13 of a rounding
//! boundary, and then within one ulp, as the elementwise kernels promise. f64 results keep libm.

/// 2^52 + 2^51: adding it rounds an f64 of magnitude below 2^51 to an integer held in the low
/// mantissa bits (the classic trick; it needs no SSE4.1 `round`).
const SHIFTER: f64 = 6_755_399_441_055_744.0;
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// ln 2 split in two so that `k·LN2_HI` is exact for |k| < 2^11 (fdlibm's constants).
const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;

/// e^x to a relative error below 1e-13 for |x| ≤ 708 (inputs are clamped there: the results
/// beyond overflow or underflow an f32 anyway); NaN stays NaN.
#[inline]
pub(crate) fn exp_for_f32(x: f64) -> f64 {
    let x = x.clamp(-708.0, 709.0);
    let t = x * LOG2_E + SHIFTER;
    let k = t - SHIFTER;
    // x = k·ln2 + r with |r| ≤ ln2/2.
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Taylor series to r^11/11!: the remainder is below 0.35^12/12! < 2e-15.
    let mut p = 1.0 / 39_916_800.0;
    for c in [
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // 2^k from the bits: k sits in the low bits of `t`.
    let k_bits = t.to_bits().wrapping_sub(SHIFTER.to_bits());
    let scale = f64::from_bits(k_bits.wrapping_add(1023) << 52);
    if x.is_nan() {
        return x;
    }
    p * scale
}

/// GELU (tanh approximation) for f32 results, as `elementwise::gelu` with this file's `exp`.
#[inline]
pub(crate) fn gelu_for_f32(x: f64) -> f64 {
    const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
    let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    x / (1.0 + exp_for_f32(-2.0 * u))
}

/// tanh for f32 results: `1 - 2/(e^{2|x|} + 1)` with this file's `exp` (relative error below
/// 1e-13 from |x| = 1/16 on, where the subtraction loses under 4 bits), and below that the odd
/// Taylor series to x^11 (remainder below 1e-14 relative). `libm`'s `tanh` goes through `expm1`
/// per element and took a sixth of the GPT-2 fixture's run.
#[inline]
pub(crate) fn tanh_for_f32(x: f64) -> f64 {
    let a = x.abs();
    // Both forms, then a select rather than a branch, so that the loop vectorizes.
    let x2 = x * x;
    // tanh x = x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835 - 1382x^11/155925 + ...
    let p = -1382.0 / 155_925.0;
    let p = p * x2 + 62.0 / 2835.0;
    let p = p * x2 - 17.0 / 315.0;
    let p = p * x2 + 2.0 / 15.0;
    let p = p * x2 - 1.0 / 3.0;
    let series = x + x * x2 * p;
    // For large a, e^{2a} (clamped at e^709) makes 2/(e^{2a} + 1) vanish: exactly ±1.
    let t = (1.0 - 2.0 / (exp_for_f32(2.0 * a) + 1.0)).copysign(x);
    // tanh is odd: the sign is x's (also -0 for -0, which the series' sum loses).
    let y = if a < 0.0625 { series } else { t }.copysign(x);
    // NaN stays NaN (the comparison above is false for it, and `t` may have lost its payload).
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// `x^n` for an integer `n`, by the same sequence of squarings and products as compiler-rt's
/// `__powidf2` (what `f64::powi` calls for an exponent not known at compile time), so that the
/// results are bit for bit those of `powi`; inlined, so a uniform exponent's loop vectorizes.
#[inline]
pub(crate) fn powi_exact(mut a: f64, n: i32) -> f64 {
    let mut b = n;
    let mut r = 1.0;
    loop {
        if b & 1 != 0 {
            r *= a;
        }
        b /= 2;
        if b == 0 {
            break;
        }
        a *= a;
    }
    if n < 0 {
        1.0 / r
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_to_1e_13_over_the_f32_range() {
        let mut worst = 0.0f64;
        let mut x = -110.0;
        while x < 90.0 {
            let (got, want) = (exp_for_f32(x), x.exp());
            if want > 1e-300 {
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.000_731;
        }
        assert!(worst < 1e-13, "worst relative error {worst:e}");
    }

    #[test]
    fn exp_rounds_to_the_same_f32_as_libm_and_keeps_the_special_values() {
        let mismatches = (-1_000_000..1_000_000)
            .map(|i| i as f64 * 8.9e-5)
            .filter(|&x| exp_for_f32(x) as f32 != x.exp() as f32)
            .count();
        assert!(
            mismatches <= 2,
            "{mismatches} f32 results differ from libm's"
        );
        assert!(exp_for_f32(f64::NAN).is_nan());
        assert_eq!(exp_for_f32(f64::INFINITY) as f32, f32::INFINITY);
        assert_eq!(exp_for_f32(f64::NEG_INFINITY) as f32, 0.0);
        assert_eq!(exp_for_f32(0.0), 1.0);
    }

    #[test]
    fn gelu_agrees_with_the_tanh_form() {
        for i in -4000..4000 {
            let x = i as f64 * 0.01;
            let tanh_form =
                0.5 * x * (1.0 + (0.797_884_560_802_865_4 * (x + 0.044715 * x * x * x)).tanh());
            let got = gelu_for_f32(x);
            assert!(
                (got - tanh_form).abs() <= 1e-12 * (1.0 + x.abs()),
                "x={x}: {got} vs {tanh_form}"
            );
        }
    }
    #[test]
    fn tanh_rounds_to_the_same_f32_as_libm_and_keeps_the_special_values() {
        let mut mismatches = 0;
        let mut worst = 0.0f64;
        for i in -2_000_000..2_000_000 {
            // Dense near 0 (the series), then out to where tanh is 1 in f32.
            let x = (i as f64 * 1.1e-5).powi(3);
            let (got, want) = (tanh_for_f32(x), x.tanh());
            if got as f32 != want as f32 {
                mismatches += 1;
            }
            if want != 0.0 {
                worst = worst.max(((got - want) / want).abs());
            }
        }
        assert!(worst < 1e-13, "worst relative error {worst:e}");
        assert!(
            mismatches <= 4,
            "{mismatches} f32 results differ from libm's"
        );
        assert!(tanh_for_f32(f64::NAN).is_nan());
        assert_eq!(tanh_for_f32(f64::INFINITY), 1.0);
        assert_eq!(tanh_for_f32(-1e300), -1.0);
        assert_eq!(tanh_for_f32(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh_for_f32(1e-300), 1e-300);
    }

    #[test]
    fn powi_exact_is_powi_bit_for_bit() {
        for n in -8..=8 {
            for i in -3000..3000 {
                let x = i as f64 * 0.013_7 + 0.001;
                let (got, want) = (powi_exact(x, n), x.powi(std::hint::black_box(n)));
                assert!(
                    got.to_bits() == want.to_bits() || got.is_nan() && want.is_nan(),
                    "{x}^{n}: {got} vs {want}"
                );
            }
        }
    }
}
