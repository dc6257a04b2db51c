//! `bitcast_convert`: each element's bits read as another type of the same width. u32 and u64
//! are stored in i64 (see `tensor.rs`), so their bits are the low 32 or all 64 of it.

use shardc_ir::{DType, TensorType};

use crate::tensor::{Data, Tensor};

pub(super) fn bitcast_convert(x: &Tensor, ty: &TensorType) -> Result<Tensor, String> {
    let to = ty.dtype;
    let data = match (x.data(), to) {
        (Data::F32(a), DType::I32) if x.dtype() == DType::F32 => {
            Data::I32(a.mapv(|v| v.to_bits() as i32))
        }
        (Data::F32(a), DType::U32) if x.dtype() == DType::F32 => {
            Data::I64(a.mapv(|v| i64::from(v.to_bits())))
        }
        (Data::I32(a), DType::F32) => Data::F32(a.mapv(|v| f32::from_bits(v as u32))),
        (Data::I64(a), DType::F32) if x.dtype() == DType::U32 => {
            Data::F32(a.mapv(|v| f32::from_bits(v as u32)))
        }
        (Data::I32(a), DType::U32) => Data::I64(a.mapv(|v| i64::from(v as u32))),
        (Data::I64(a), DType::I32) if x.dtype() == DType::U32 => {
            Data::I32(a.mapv(|v| v as u32 as i32))
        }
        (Data::F64(a), DType::I64 | DType::U64) => Data::I64(a.mapv(|v| v.to_bits() as i64)),
        (Data::I64(a), DType::F64) => Data::F64(a.mapv(|v| f64::from_bits(v as u64))),
        (Data::I64(a), DType::I64 | DType::U64) if x.dtype().size_bytes() == 8 => {
            Data::I64(a.clone())
        }
        (Data::I64(a), DType::U32) if x.dtype() == DType::U32 => Data::I64(a.clone()),
        (Data::I32(a), DType::I32) => Data::I32(a.clone()),
        (Data::F32(a), DType::F32) if x.dtype() == DType::F32 => Data::F32(a.clone()),
        (Data::F64(a), DType::F64) => Data::F64(a.clone()),
        _ => {
            return Err(format!(
            "bitcast_convert from {} to {to} is not supported (f32/i32/u32 and f64/i64/u64 are)",
            x.dtype()
        ))
        }
    };
    Ok(Tensor::from_data(to, data))
}
