//! `TensorProto` and `TypeProto` decoding: element types, dims and the stored elements (inline,
//! raw little-endian bytes, or an external data file).

use super::proto::{tensor_proto::DataType, TensorProto, TypeProto};
use super::{ArrayData, ExternalData};
use crate::dtype::DType;
use crate::error::{IrError, Result};

/// The shardc dtype of an ONNX element type (narrow integers widen to i32, unsigned 32/64-bit
/// to i64; strings and complex numbers have no counterpart).
pub(crate) fn dtype_of(elem: i32, what: &str) -> Result<DType> {
    let t = DataType::try_from(elem).unwrap_or(DataType::Undefined);
    Ok(match t {
        DataType::Float => DType::F32,
        DataType::Double => DType::F64,
        DataType::Float16 => DType::F16,
        DataType::Bfloat16 => DType::BF16,
        DataType::Int8 | DataType::Uint8 | DataType::Int16 | DataType::Uint16 | DataType::Int32 => {
            DType::I32
        }
        DataType::Int64 | DataType::Uint32 | DataType::Uint64 => DType::I64,
        DataType::Bool => DType::Bool,
        _ => {
            return Err(IrError::Format(format!(
                "{what}: ONNX element type {} ({elem}) is not supported (float, double, float16, \
                 bfloat16, integers and bool are)",
                t.as_str_name()
            )))
        }
    })
}

/// The shape of a graph input or output, with symbolic dims looked up in `dims`.
pub(crate) fn value_type(
    name: &str,
    ty: Option<&TypeProto>,
    dims: &std::collections::BTreeMap<String, u64>,
) -> Result<crate::types::TensorType> {
    use super::proto::tensor_shape_proto::dimension::Value;
    use super::proto::type_proto::Value as TV;
    let err = |m: String| IrError::Format(format!("graph input `{name}`: {m}"));
    let Some(TV::TensorType(t)) = ty.and_then(|t| t.value.as_ref()) else {
        return Err(err(
            "is not a tensor (sequences, maps and optionals are not supported)".into(),
        ));
    };
    let dtype = dtype_of(t.elem_type(), &format!("graph input `{name}`"))?;
    let shape = t.shape.as_ref().ok_or_else(|| err("has no shape".into()))?;
    let mut out = Vec::new();
    for (i, d) in shape.dim.iter().enumerate() {
        out.push(match &d.value {
            Some(Value::DimValue(v)) if *v >= 0 => *v as u64,
            Some(Value::DimParam(p)) => *dims.get(p).ok_or_else(|| {
                err(format!("dim {i} is the dynamic dim `{p}`: give its size with --dim {p}=SIZE"))
            })?,
            _ => return Err(err(format!("dim {i} has no size and no name: the model must be exported with static or named dims"))),
        });
    }
    Ok(crate::types::TensorType::new(dtype, out))
}

/// The dims, dtype and elements of a tensor proto.
pub(crate) fn decode(t: &TensorProto, ext: &ExternalData) -> Result<(DType, Vec<u64>, ArrayData)> {
    let name = t.name();
    let what = format!("tensor `{name}`");
    let err = |m: String| IrError::Format(format!("{what}: {m}"));
    let dtype = dtype_of(t.data_type(), &what)?;
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        dims.push(u64::try_from(d).map_err(|_| err(format!("negative dim {d}")))?);
    }
    let n = dims
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err("element count overflows".into()))?;
    let elem = DataType::try_from(t.data_type()).unwrap_or(DataType::Undefined);
    let width = elem_bytes(elem);
    let external = t.data_location() == super::proto::tensor_proto::DataLocation::External;
    let raw: Option<Vec<u8>> = if external {
        let get = |k: &str| {
            t.external_data
                .iter()
                .find(|e| e.key() == k)
                .map(|e| e.value().to_string())
        };
        let location =
            get("location").ok_or_else(|| err("external data without a location".into()))?;
        let num = |k: &str| -> Result<Option<u64>> {
            get(k)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| err(format!("external data {k} `{v}` is not a number")))
                })
                .transpose()
        };
        Some(ext.read(name, &location, num("offset")?.unwrap_or(0), num("length")?)?)
    } else {
        t.raw_data.clone()
    };
    let data = match raw {
        Some(bytes) => {
            let want = n
                .checked_mul(width)
                .ok_or_else(|| err("byte size overflows".into()))?;
            if bytes.len() as u64 != want {
                return Err(err(format!(
                    "has {} bytes of data, its {n} elements need {want}",
                    bytes.len()
                )));
            }
            from_raw(elem, &bytes)
        }
        None => from_typed(t, elem),
    };
    if data.len() as u64 != n {
        return Err(err(format!(
            "has {} elements, its dims {dims:?} need {n}",
            data.len()
        )));
    }
    Ok((dtype, dims, data))
}

fn elem_bytes(t: DataType) -> u64 {
    match t {
        DataType::Double | DataType::Int64 | DataType::Uint64 => 8,
        DataType::Float | DataType::Int32 | DataType::Uint32 => 4,
        DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16 => 2,
        _ => 1,
    }
}

fn from_raw(t: DataType, b: &[u8]) -> ArrayData {
    fn chunks<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        // invariant: chunks_exact(N) yields slices of length N.
        b.chunks_exact(N)
            .map(|c| c.try_into().expect("invariant: chunk of N bytes"))
    }
    match t {
        DataType::Float => ArrayData::F32(chunks::<4>(b).map(f32::from_le_bytes).collect()),
        DataType::Double => ArrayData::F64(chunks::<8>(b).map(f64::from_le_bytes).collect()),
        DataType::Float16 => ArrayData::F32(
            chunks::<2>(b)
                .map(|c| half_to_f32(u16::from_le_bytes(c)))
                .collect(),
        ),
        DataType::Bfloat16 => ArrayData::F32(
            chunks::<2>(b)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes(c)) << 16))
                .collect(),
        ),
        DataType::Int64 => ArrayData::I64(chunks::<8>(b).map(i64::from_le_bytes).collect()),
        DataType::Uint64 => ArrayData::I64(
            chunks::<8>(b)
                .map(|c| u64::from_le_bytes(c) as i64)
                .collect(),
        ),
        DataType::Int32 => ArrayData::I64(
            chunks::<4>(b)
                .map(|c| i64::from(i32::from_le_bytes(c)))
                .collect(),
        ),
        DataType::Uint32 => ArrayData::I64(
            chunks::<4>(b)
                .map(|c| i64::from(u32::from_le_bytes(c)))
                .collect(),
        ),
        DataType::Int16 => ArrayData::I64(
            chunks::<2>(b)
                .map(|c| i64::from(i16::from_le_bytes(c)))
                .collect(),
        ),
        DataType::Uint16 => ArrayData::I64(
            chunks::<2>(b)
                .map(|c| i64::from(u16::from_le_bytes(c)))
                .collect(),
        ),
        DataType::Int8 => ArrayData::I64(b.iter().map(|&x| i64::from(x as i8)).collect()),
        DataType::Uint8 => ArrayData::I64(b.iter().map(|&x| i64::from(x)).collect()),
        _ => ArrayData::Bool(b.iter().map(|&x| x != 0).collect()),
    }
}

fn from_typed(t: &TensorProto, elem: DataType) -> ArrayData {
    match elem {
        DataType::Float => ArrayData::F32(t.float_data.clone()),
        DataType::Double => ArrayData::F64(t.double_data.clone()),
        DataType::Int64 => ArrayData::I64(t.int64_data.clone()),
        DataType::Uint32 | DataType::Uint64 => {
            ArrayData::I64(t.uint64_data.iter().map(|&x| x as i64).collect())
        }
        // float16 and bfloat16 are stored as their bit patterns in int32_data.
        DataType::Float16 => ArrayData::F32(
            t.int32_data
                .iter()
                .map(|&x| half_to_f32(x as u16))
                .collect(),
        ),
        DataType::Bfloat16 => ArrayData::F32(
            t.int32_data
                .iter()
                .map(|&x| f32::from_bits((x as u32 & 0xffff) << 16))
                .collect(),
        ),
        DataType::Bool => ArrayData::Bool(t.int32_data.iter().map(|&x| x != 0).collect()),
        _ => ArrayData::I64(t.int32_data.iter().map(|&x| i64::from(x)).collect()),
    }
}

/// IEEE half-precision bits to f32 (exact).
fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 if frac == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_bits_decode_exactly() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(half_to_f32(0x7c00), f32::INFINITY);
    }
}
