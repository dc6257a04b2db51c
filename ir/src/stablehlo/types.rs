//! MLIR tensor types (`tensor<8x16xf32>`) and op type signatures, in HLO's spelling.

use super::parse::{find_top, short, split_top};

/// A ranked tensor type: HLO element type name and dims.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TensorTy {
    pub dtype: String,
    pub dims: Vec<u64>,
}

impl TensorTy {
    /// Reads `tensor<8x16xf32>` (`tensor<f32>` for a scalar).
    pub fn parse(s: &str) -> Result<TensorTy, String> {
        let s = s.trim();
        let inner = s
            .strip_prefix("tensor<")
            .and_then(|r| r.strip_suffix('>'))
            .ok_or_else(|| {
                format!(
                    "expected a ranked tensor type `tensor<..>`, got `{}`",
                    short(s)
                )
            })?;
        // An encoding (`tensor<4xf32, #enc>`) is not part of the value.
        let inner = inner.split(',').next().unwrap_or(inner).trim();
        let parts: Vec<&str> = inner.split('x').collect();
        let (elem, dims) = parts.split_last().ok_or("empty tensor type")?;
        let dims = dims
            .iter()
            .map(|d| {
                d.parse::<u64>()
                    .map_err(|_| format!("dim `{d}` of `{s}` is not a static size"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TensorTy {
            dtype: hlo_dtype(elem)?.to_string(),
            dims,
        })
    }

    /// HLO's spelling: `f32[8,16]`.
    pub fn hlo(&self) -> String {
        let dims: Vec<String> = self.dims.iter().map(u64::to_string).collect();
        format!("{}[{}]", self.dtype, dims.join(","))
    }

    /// The same dims with another element type.
    pub fn with_dtype(&self, dtype: &str) -> TensorTy {
        TensorTy {
            dtype: dtype.to_string(),
            dims: self.dims.clone(),
        }
    }

    pub fn elements(&self) -> u64 {
        // Saturating: a (mutated) type of huge dims is refused by the size limits, not overflow.
        self.dims.iter().fold(1, |n: u64, &d| n.saturating_mul(d))
    }
}

/// HLO's element type name for MLIR's.
fn hlo_dtype(elem: &str) -> Result<&'static str, String> {
    Ok(match elem {
        "f32" => "f32",
        "f64" => "f64",
        "bf16" => "bf16",
        "f16" => "f16",
        "i1" => "pred",
        "i8" => "s8",
        "i16" => "s16",
        "i32" => "s32",
        "i64" => "s64",
        "ui8" => "u8",
        "ui16" => "u16",
        "ui32" => "u32",
        "ui64" => "u64",
        _ => return Err(format!("unsupported element type `{elem}`")),
    })
}

/// HLO's text of a list of types: one type, or a tuple of several.
pub(crate) fn hlo_types(ts: &[TensorTy]) -> String {
    match ts {
        [t] => t.hlo(),
        _ => format!(
            "({})",
            ts.iter().map(TensorTy::hlo).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A type list, with or without parentheses.
pub(crate) fn type_list(s: &str) -> Result<Vec<TensorTy>, String> {
    let s = s.trim();
    let s = match s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        Some(inner) => inner,
        None => s,
    };
    split_top(s, ',')
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            // A result's attributes (`tensor<4xf32> {sdy.sharding = ..}`) are not its type.
            let end = t.find(" {").unwrap_or(t.len());
            TensorTy::parse(&t[..end])
        })
        .collect()
}

/// An op's signature: `(T1, T2) -> R`, `T -> R`, or `T` (operands and result alike) / `T1, T2`
/// (select: the result is the last). Returns (operand types, result types).
pub(crate) fn signature(s: &str, results: usize) -> Result<(Vec<TensorTy>, Vec<TensorTy>), String> {
    if let Some(arrow) = find_top(s, "->") {
        return Ok((type_list(&s[..arrow])?, type_list(&s[arrow + 2..])?));
    }
    let list = type_list(s)?;
    if results > 1 && list.len() == results {
        return Ok((list.clone(), list));
    }
    let last = list.last().cloned().ok_or("the op has no type")?;
    Ok((list, vec![last]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlir_types_read_in_hlo_spelling() {
        assert_eq!(
            TensorTy::parse("tensor<8x16xf32>").unwrap().hlo(),
            "f32[8,16]"
        );
        assert_eq!(TensorTy::parse("tensor<i1>").unwrap().hlo(), "pred[]");
        assert_eq!(TensorTy::parse("tensor<2xui32>").unwrap().hlo(), "u32[2]");
        assert!(TensorTy::parse("tensor<?x4xf32>")
            .unwrap_err()
            .contains("static"));
        let (a, r) = signature("(tensor<4xf32>, tensor<f32>) -> tensor<4xi1>", 1).unwrap();
        assert_eq!((a.len(), r[0].hlo()), (2, "pred[4]".to_string()));
        let (_, r) = signature("tensor<4xi1>, tensor<4xf32>", 1).unwrap();
        assert_eq!(r[0].hlo(), "f32[4]");
        let (_, r) = signature("tensor<i32>, tensor<4xf32>", 2).unwrap();
        assert_eq!(hlo_types(&r), "(s32[], f32[4])");
    }
}
