//! `dense<..>` constants as HLO literals: splats, nested arrays, hexadecimal floats
//! (`0xFF800000` is f32 -inf) and hexadecimal byte strings (`"0x0000803F..."`, little-endian).

use super::parse::short;
use super::types::TensorTy;

/// The most elements a constant may hold (the HLO lowering's own limit).
const MAX_ELEMENTS: u64 = 1 << 16;

/// The HLO literal text (`1`, `{1, 2, 3}`) of `dense<V>`'s `V` for type `ty`.
pub(crate) fn literal(v: &str, ty: &TensorTy) -> Result<String, String> {
    let n = ty.elements();
    if n > MAX_ELEMENTS {
        return Err(format!(
            "constant of {n} elements is too large to import (at most {MAX_ELEMENTS})"
        ));
    }
    let v = v.trim();
    let values: Vec<String> =
        if let Some(hex) = v.strip_prefix("\"0x").and_then(|r| r.strip_suffix('"')) {
            hex_bytes(hex, &ty.dtype)?
        } else {
            v.replace(['[', ']'], " ")
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                .map(|t| scalar(t, &ty.dtype))
                .collect::<Result<_, _>>()?
        };
    let values = match values.len() as u64 {
        1 if n != 1 => vec![values[0].clone(); n as usize],
        k if k == n => values,
        k => {
            return Err(format!(
                "`dense<{}>` has {k} values, {} needs {n}",
                short(v),
                ty.hlo()
            ))
        }
    };
    Ok(if ty.dims.is_empty() {
        values[0].clone()
    } else {
        format!("{{{}}}", values.join(", "))
    })
}

/// One scalar: a number, `true`/`false`, or a float's bits in hex.
fn scalar(t: &str, dtype: &str) -> Result<String, String> {
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        let bits = u64::from_str_radix(h, 16).map_err(|_| format!("bad hex constant `{t}`"))?;
        return float_bits(bits, dtype);
    }
    match t {
        "true" | "false" => Ok(t.to_string()),
        _ => {
            let x = t
                .parse::<f64>()
                .map_err(|_| format!("expected a number in the constant, got `{t}`"))?;
            // MLIR prints an f32 with 9 digits (`0.899999976`); XLA prints the shortest text
            // that reads back as the same f32 (`0.9`), and so do we.
            Ok(match dtype {
                "f32" if x.is_finite() => format!("{:?}", x as f32),
                _ => t.to_string(),
            })
        }
    }
}

/// A float of `dtype` from its bits, in HLO's spelling (`inf`, `-inf`, `nan`).
fn float_bits(bits: u64, dtype: &str) -> Result<String, String> {
    let x = match dtype {
        "f64" => f64::from_bits(bits),
        "f32" => f64::from(f32::from_bits(bits as u32)),
        "bf16" => f64::from(f32::from_bits((bits as u32) << 16)),
        "f16" => f16_to_f64(bits as u16),
        // An integer written in hex is its value.
        "s32" => f64::from(bits as u32 as i32),
        "s64" => bits as i64 as f64,
        _ => bits as f64,
    };
    Ok(if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{x:?}")
    })
}

/// IEEE half precision bits as a value.
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// The elements of a hex byte string (little-endian) of `dtype`.
fn hex_bytes(hex: &str, dtype: &str) -> Result<Vec<String>, String> {
    let width = match dtype {
        "pred" | "s8" | "u8" => 1,
        "f16" | "bf16" | "s16" | "u16" => 2,
        "f32" | "s32" | "u32" => 4,
        _ => 8,
    };
    if hex.len() % (2 * width) != 0 || !hex.is_ascii() {
        return Err(format!(
            "hex constant of {} digits is not a whole number of {dtype} elements",
            hex.len()
        ));
    }
    hex.as_bytes()
        .chunks(2 * width)
        .map(|chunk| {
            let mut bits = 0u64;
            for (i, pair) in chunk.chunks(2).enumerate() {
                let s = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
                let b = u64::from_str_radix(s, 16).map_err(|_| format!("bad hex digits `{s}`"))?;
                bits |= b << (8 * i);
            }
            match dtype {
                "f16" | "bf16" | "f32" | "f64" => float_bits(bits, dtype),
                "pred" => Ok(if bits != 0 { "true" } else { "false" }.into()),
                "s8" => Ok((bits as u8 as i8).to_string()),
                "s16" => Ok((bits as u16 as i16).to_string()),
                "s32" => Ok((bits as u32 as i32).to_string()),
                "s64" => Ok((bits as i64).to_string()),
                _ => Ok(bits.to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> TensorTy {
        TensorTy::parse(s).unwrap()
    }

    #[test]
    fn dense_constants_become_hlo_literals() {
        assert_eq!(literal("42", &ty("tensor<i32>")).unwrap(), "42");
        assert_eq!(literal("0xFF800000", &ty("tensor<f32>")).unwrap(), "-inf");
        assert_eq!(literal("0x7FC00000", &ty("tensor<f32>")).unwrap(), "nan");
        assert_eq!(
            literal("true", &ty("tensor<2xi1>")).unwrap(),
            "{true, true}"
        );
        assert_eq!(
            literal("[[1, 2], [3, 4]]", &ty("tensor<2x2xi32>")).unwrap(),
            "{1, 2, 3, 4}"
        );
        assert_eq!(
            literal("\"0x0000803F00000040\"", &ty("tensor<2xf32>")).unwrap(),
            "{1.0, 2.0}"
        );
        assert_eq!(literal("0x3C00", &ty("tensor<f16>")).unwrap(), "1.0");
        assert!(literal("[1, 2, 3]", &ty("tensor<2xi32>")).is_err());
        assert!(literal("1", &ty("tensor<100000x10xf32>"))
            .unwrap_err()
            .contains("too large"));
    }
}
