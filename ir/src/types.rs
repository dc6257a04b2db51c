//! Shapes and tensor types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::dtype::DType;
use crate::error::IrError;

/// A tensor shape: the size of each dimension, major first. A scalar has no dims.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Shape(pub Vec<u64>);

impl Shape {
    pub fn new(dims: impl Into<Vec<u64>>) -> Self {
        Shape(dims.into())
    }

    pub fn scalar() -> Self {
        Shape(Vec::new())
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    pub fn dims(&self) -> &[u64] {
        &self.0
    }

    /// Number of elements, `None` if the product overflows u64.
    pub fn checked_elements(&self) -> Option<u64> {
        self.0.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }

    /// Number of elements. Shapes in a verified graph never overflow (the verifier checks it).
    pub fn elements(&self) -> u64 {
        self.checked_elements().unwrap_or(u64::MAX)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// The type of a value: element type and shape, written `f32[8,1024]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Shape,
}

impl TensorType {
    pub fn new(dtype: DType, dims: impl Into<Vec<u64>>) -> Self {
        TensorType {
            dtype,
            shape: Shape::new(dims),
        }
    }

    pub fn scalar(dtype: DType) -> Self {
        TensorType {
            dtype,
            shape: Shape::scalar(),
        }
    }

    pub fn rank(&self) -> usize {
        self.shape.rank()
    }

    pub fn dims(&self) -> &[u64] {
        self.shape.dims()
    }

    /// Size in bytes (saturating; verified graphs never overflow).
    pub fn size_bytes(&self) -> u64 {
        self.shape
            .elements()
            .saturating_mul(self.dtype.size_bytes())
    }

    pub fn with_dtype(&self, dtype: DType) -> Self {
        TensorType {
            dtype,
            shape: self.shape.clone(),
        }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)
    }
}

impl FromStr for TensorType {
    type Err = IrError;
    /// Parses `f32[8,1024]`, `i32[]` (scalar); XLA layouts (`{1,0}`) are ignored.
    fn from_str(s: &str) -> Result<Self, IrError> {
        let err = |m: &str| IrError::parse("tensor type", s, m);
        let t = s.trim();
        let open = t
            .find('[')
            .ok_or_else(|| err("expected DTYPE[d0,d1,...], e.g. f32[8,16]"))?;
        let close = t.find(']').ok_or_else(|| err("missing `]`"))?;
        if close < open {
            return Err(err("`]` before `[`"));
        }
        let rest = t[close + 1..].trim();
        if !rest.is_empty() && !(rest.starts_with('{') && rest.ends_with('}')) {
            return Err(err("unexpected text after `]`"));
        }
        let dtype: DType = t[..open].trim().parse()?;
        let inner = t[open + 1..close].trim();
        let mut dims = Vec::new();
        if !inner.is_empty() {
            for part in inner.split(',') {
                let d: u64 = part.trim().parse().map_err(|_| {
                    err(&format!(
                        "dimension `{}` is not a non-negative integer",
                        part.trim()
                    ))
                })?;
                dims.push(d);
            }
        }
        Ok(TensorType {
            dtype,
            shape: Shape(dims),
        })
    }
}

impl Serialize for TensorType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TensorType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_types() {
        let t: TensorType = "bf16[2,3]".parse().unwrap();
        assert_eq!(t, TensorType::new(DType::BF16, vec![2, 3]));
        assert_eq!(t.to_string(), "bf16[2,3]");
        assert_eq!("f32[]".parse::<TensorType>().unwrap().rank(), 0);
        assert_eq!(
            "f32[5,7]{1,0}".parse::<TensorType>().unwrap().dims(),
            &[5, 7]
        );
        assert!("f32[a]".parse::<TensorType>().is_err());
        assert!("q8[1]".parse::<TensorType>().is_err());
    }

    #[test]
    fn overflow_is_detected() {
        let s = Shape::new(vec![u64::MAX, 2]);
        assert_eq!(s.checked_elements(), None);
    }
}
