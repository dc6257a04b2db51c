//! Element types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::IrError;

/// The element type of a tensor.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    F64,
    BF16,
    F16,
    I32,
    I64,
    /// Unsigned 32-bit integers (`jax.random` keys and threefry's hash).
    U32,
    /// Unsigned 64-bit integers.
    U64,
    Bool,
}

impl DType {
    /// Every dtype, in a fixed order (used by error messages and tests).
    pub const ALL: [DType; 9] = [
        DType::F32,
        DType::F64,
        DType::BF16,
        DType::F16,
        DType::I32,
        DType::I64,
        DType::U32,
        DType::U64,
        DType::Bool,
    ];

    /// Bytes per element.
    pub fn size_bytes(self) -> u64 {
        match self {
            DType::F64 | DType::I64 | DType::U64 => 8,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::BF16 | DType::F16 => 2,
            DType::Bool => 1,
        }
    }

    /// Floating-point types carry gradients; integers and booleans do not.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::BF16 | DType::F16)
    }

    pub fn is_int(self) -> bool {
        matches!(self, DType::I32 | DType::I64 | DType::U32 | DType::U64)
    }

    /// Unsigned integers.
    pub fn is_unsigned(self) -> bool {
        matches!(self, DType::U32 | DType::U64)
    }

    /// Bits per element of an integer type (`None` for floats and bool).
    pub fn int_bits(self) -> Option<u32> {
        match self {
            DType::I32 | DType::U32 => Some(32),
            DType::I64 | DType::U64 => Some(64),
            _ => None,
        }
    }

    /// The short name used in type strings (`f32`, `bf16`, `pred` is accepted for bool on input).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::BF16 => "bf16",
            DType::F16 => "f16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::Bool => "bool",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = IrError;
    fn from_str(s: &str) -> Result<Self, IrError> {
        Ok(match s {
            "f32" | "float32" => DType::F32,
            "f64" | "float64" => DType::F64,
            "bf16" | "bfloat16" => DType::BF16,
            "f16" | "float16" => DType::F16,
            "i32" | "s32" | "int32" => DType::I32,
            "i64" | "s64" | "int64" => DType::I64,
            "u32" | "uint32" => DType::U32,
            "u64" | "uint64" => DType::U64,
            "bool" | "pred" => DType::Bool,
            _ => {
                return Err(IrError::parse(
                    "dtype",
                    s,
                    "expected one of f32, f64, bf16, f16, i32, i64, u32, u64, bool",
                ))
            }
        })
    }
}

impl Serialize for DType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for DType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
