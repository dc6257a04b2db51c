//! NumPy's `.npz` (a zip of `.npy` arrays, as `np.savez` writes it): reading named arrays into
//! tensors, writing tensors back, and binding named arrays to a graph's inputs.
//!
//! `.npy` is version 1.0–3.0 of NumPy's format (`numpy/lib/format.py`): the magic `\x93NUMPY`,
//! a version, a little-endian header length, a Python-literal header
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 8), }` and the raw elements.

use std::io::{Read, Write};
use std::path::Path;

use shardc_ir::{DType, Graph, TensorType};

use crate::error::RuntimeError;
use crate::tensor::Tensor;

fn err(m: impl Into<String>) -> RuntimeError {
    RuntimeError::Invalid(m.into())
}

/// Reads every array of an `.npz` file, in the archive's order, keyed by name (without `.npy`).
pub fn read_npz(path: &Path) -> Result<Vec<(String, Tensor)>, RuntimeError> {
    let bytes =
        std::fs::read(path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    read_npz_bytes(&bytes).map_err(|e| err(format!("{}: {e}", path.display())))
}

/// Reads every array of an `.npz` archive held in memory.
pub fn read_npz_bytes(bytes: &[u8]) -> Result<Vec<(String, Tensor)>, RuntimeError> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| err(format!("not an .npz (zip) archive: {e}")))?;
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut f = zip
            .by_index(i)
            .map_err(|e| err(format!("entry {i}: {e}")))?;
        let name = f
            .name()
            .map_err(|e| err(format!("entry {i}: {e}")))?
            .to_string();
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        // The declared size bounds what is read; an array larger than its entry is an error below.
        let mut data = Vec::with_capacity(f.size().min(1 << 30) as usize);
        f.read_to_end(&mut data)
            .map_err(|e| err(format!("`{name}`: {e}")))?;
        let t = read_npy(&data).map_err(|e| err(format!("array `{key}`: {e}")))?;
        out.push((key, t));
    }
    Ok(out)
}

/// The element type of a `.npy` `descr`, with its width and whether its bytes are big-endian.
fn descr_type(descr: &str) -> Result<(DType, Elem, bool), RuntimeError> {
    let (order, code) = descr.split_at(1.min(descr.len()));
    let big = match order {
        "<" | "|" | "=" => false,
        ">" => true,
        _ => return Err(err(format!("descr `{descr}` has no byte order"))),
    };
    let e = match code {
        "f4" => (DType::F32, Elem::F32),
        "f8" => (DType::F64, Elem::F64),
        "f2" => (DType::F16, Elem::F16),
        "i8" => (DType::I64, Elem::I64),
        "u8" => (DType::U64, Elem::U64),
        "i4" => (DType::I32, Elem::I32),
        "u4" => (DType::U32, Elem::U32),
        "i2" => (DType::I32, Elem::I16),
        "u2" => (DType::I32, Elem::U16),
        "i1" => (DType::I32, Elem::I8),
        "u1" => (DType::I32, Elem::U8),
        "b1" => (DType::Bool, Elem::Bool),
        _ => {
            return Err(err(format!(
                "element type `{descr}` is not supported (floats, integers and bool are)"
            )))
        }
    };
    Ok((e.0, e.1, big))
}

#[derive(Copy, Clone)]
enum Elem {
    F32,
    F64,
    F16,
    I64,
    U64,
    I32,
    U32,
    I16,
    U16,
    I8,
    U8,
    Bool,
}

impl Elem {
    fn width(self) -> usize {
        match self {
            Elem::F64 | Elem::I64 | Elem::U64 => 8,
            Elem::F32 | Elem::I32 | Elem::U32 => 4,
            Elem::F16 | Elem::I16 | Elem::U16 => 2,
            Elem::I8 | Elem::U8 | Elem::Bool => 1,
        }
    }

    fn value(self, b: &[u8]) -> f64 {
        // invariant: callers pass exactly `width()` bytes, little-endian.
        let a = |n: usize| -> [u8; 8] {
            let mut x = [0u8; 8];
            x[..n].copy_from_slice(&b[..n]);
            x
        };
        let x = a(self.width());
        match self {
            Elem::F32 => f64::from(f32::from_le_bytes([x[0], x[1], x[2], x[3]])),
            Elem::F64 => f64::from_le_bytes(x),
            Elem::F16 => f64::from(half::f16::from_le_bytes([x[0], x[1]]).to_f32()),
            Elem::I64 => i64::from_le_bytes(x) as f64,
            Elem::U64 => u64::from_le_bytes(x) as f64,
            Elem::I32 => f64::from(i32::from_le_bytes([x[0], x[1], x[2], x[3]])),
            Elem::U32 => f64::from(u32::from_le_bytes([x[0], x[1], x[2], x[3]])),
            Elem::I16 => f64::from(i16::from_le_bytes([x[0], x[1]])),
            Elem::U16 => f64::from(u16::from_le_bytes([x[0], x[1]])),
            Elem::I8 => f64::from(x[0] as i8),
            Elem::U8 => f64::from(x[0]),
            Elem::Bool => f64::from(u8::from(x[0] != 0)),
        }
    }
}

/// Parses one `.npy` file.
pub fn read_npy(data: &[u8]) -> Result<Tensor, RuntimeError> {
    if data.len() < 10 || &data[..6] != b"\x93NUMPY" {
        return Err(err("not a .npy array (no \\x93NUMPY magic)"));
    }
    let (header_len, start) = match data[6] {
        1 => (usize::from(u16::from_le_bytes([data[8], data[9]])), 10),
        2 | 3 if data.len() >= 12 => (
            u32::from_le_bytes([data[8], data[9], data[10], data[11]]) as usize,
            12,
        ),
        v => {
            return Err(err(format!(
                ".npy version {v} is not supported (1, 2 and 3 are)"
            )))
        }
    };
    let header = data
        .get(start..start + header_len)
        .ok_or_else(|| err("header is cut short"))?;
    let header = std::str::from_utf8(header).map_err(|_| err("header is not text"))?;
    let descr = header_field(header, "descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    if header_field(header, "fortran_order")? != "False" {
        return Err(err(
            "Fortran-ordered arrays are not supported (save with np.ascontiguousarray)",
        ));
    }
    let shape = header_field(header, "shape")?;
    let dims: Vec<u64> = shape
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| err(format!("shape `{shape}` is not a tuple of sizes")))
        })
        .collect::<Result<_, _>>()?;
    let (dtype, elem, big) = descr_type(descr)?;
    let body = &data[start + header_len..];
    let n = dims
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err("element count overflows"))?;
    let need = n
        .checked_mul(elem.width() as u64)
        .ok_or_else(|| err("byte size overflows"))?;
    if (body.len() as u64) < need {
        return Err(err(format!(
            "shape {shape} needs {need} bytes of data, the file has {}",
            body.len()
        )));
    }
    let w = elem.width();
    let values: Vec<f64> = body[..need as usize]
        .chunks_exact(w)
        .map(|c| {
            if big {
                let r: Vec<u8> = c.iter().rev().copied().collect();
                elem.value(&r)
            } else {
                elem.value(c)
            }
        })
        .collect();
    Tensor::from_f64(TensorType::new(dtype, dims), &values)
}

/// The text of `key`'s value in a `.npy` header dict (a tuple kept whole).
fn header_field<'a>(header: &'a str, key: &str) -> Result<&'a str, RuntimeError> {
    let missing = || err(format!("header has no `{key}`: {header}"));
    let at = header.find(&format!("'{key}'")).ok_or_else(missing)?;
    let rest = header[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')
        .ok_or_else(missing)?
        .trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else {
        rest.find([',', '}'])
    };
    Ok(rest[..end.ok_or_else(missing)?].trim())
}

/// The `.npy` bytes of a tensor (version 1.0, C order; bf16 is written as f32, which NumPy
/// lacks).
pub fn npy_bytes(t: &Tensor) -> Vec<u8> {
    let (descr, width) = match t.dtype() {
        DType::F64 => ("<f8", 8),
        DType::F16 => ("<f2", 2),
        DType::F32 | DType::BF16 => ("<f4", 4),
        DType::I64 => ("<i8", 8),
        DType::I32 => ("<i4", 4),
        DType::U64 => ("<u8", 8),
        DType::U32 => ("<u4", 4),
        DType::Bool => ("|b1", 1),
    };
    let shape: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
    let shape = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // NumPy pads the header with spaces and a newline so the data starts 64-byte aligned.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + t.len() * width);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in t.to_f64_vec() {
        match t.dtype() {
            DType::F64 => out.extend_from_slice(&v.to_le_bytes()),
            DType::F16 => out.extend_from_slice(&half::f16::from_f64(v).to_le_bytes()),
            DType::F32 | DType::BF16 => out.extend_from_slice(&(v as f32).to_le_bytes()),
            DType::I64 => out.extend_from_slice(&(v as i64).to_le_bytes()),
            DType::I32 => out.extend_from_slice(&(v as i32).to_le_bytes()),
            DType::U64 => out.extend_from_slice(&(v as u64).to_le_bytes()),
            DType::U32 => out.extend_from_slice(&(v as u32).to_le_bytes()),
            DType::Bool => out.push(u8::from(v != 0.0)),
        }
    }
    out
}

/// Writes named tensors as an `.npz` file (stored, uncompressed, as `np.savez` does).
pub fn write_npz(path: &Path, arrays: &[(String, Tensor)]) -> Result<(), RuntimeError> {
    let bytes = npz_bytes(arrays)?;
    std::fs::write(path, bytes).map_err(|e| err(format!("cannot write {}: {e}", path.display())))
}

/// The bytes of an `.npz` archive of named tensors.
pub fn npz_bytes(arrays: &[(String, Tensor)]) -> Result<Vec<u8>, RuntimeError> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(false);
    for (name, t) in arrays {
        zip.start_file(format!("{name}.npy"), opts)
            .map_err(|e| err(format!("array `{name}`: {e}")))?;
        zip.write_all(&npy_bytes(t))
            .map_err(|e| err(format!("array `{name}`: {e}")))?;
    }
    let cursor = zip.finish().map_err(|e| err(e.to_string()))?;
    Ok(cursor.into_inner())
}

/// The graph's inputs (in the order of `g.inputs()`) from named arrays, or from `fallback` for
/// a value the arrays do not name. Every input must be given by one of them: the error lists
/// each one missing. An array's type must be the input's (integers of another width and f64
/// for f32 are converted, as NumPy's defaults differ from exported models').
pub fn bind_inputs(
    g: &Graph,
    named: &[(String, Tensor)],
    mut fallback: impl FnMut(&str) -> Option<Tensor>,
) -> Result<Vec<Tensor>, RuntimeError> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for v in g.inputs() {
        let n = g.node(v);
        let given = named
            .iter()
            .find(|(k, _)| *k == n.name)
            .map(|(_, t)| t.clone())
            .or_else(|| fallback(&n.name));
        let Some(t) = given else {
            missing.push(format!("{} ({} {})", n.name, n.role.name(), n.ty));
            continue;
        };
        if t.ty() == n.ty {
            out.push(t);
            continue;
        }
        let same_kind = t.dtype().is_int() == n.ty.dtype.is_int()
            && t.dtype().is_float() == n.ty.dtype.is_float();
        if t.ty().shape != n.ty.shape || !same_kind {
            return Err(err(format!(
                "array `{}` is {}, the graph's {} is {}",
                n.name,
                t.ty(),
                n.role.name(),
                n.ty
            )));
        }
        out.push(Tensor::from_f64(n.ty.clone(), &t.to_f64_vec())?);
    }
    if !missing.is_empty() {
        return Err(err(format!(
            "graph `{}`: no value for {} of its inputs: {}",
            g.name,
            missing.len(),
            missing.join(", ")
        )));
    }
    Ok(out)
}

/// A parameter's value from an imported model (an ONNX initializer) as a tensor.
pub fn param_tensor(p: &shardc_ir::onnx::ParamValue) -> Result<Tensor, RuntimeError> {
    use shardc_ir::onnx::ArrayData;
    let named = |e: RuntimeError| err(format!("parameter `{}`: {e}", p.name));
    match &p.data {
        ArrayData::F32(v) if p.ty.dtype == DType::F32 => {
            Tensor::from_f32_vec(p.ty.dims(), v.clone()).map_err(named)
        }
        d => Tensor::from_f64(p.ty.clone(), &d.to_f64_vec()).map_err(named),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npz_round_trips_every_dtype() {
        let arrays = vec![
            (
                "a".to_string(),
                Tensor::from_f64(
                    TensorType::new(DType::F32, vec![2, 3]),
                    &[1.0, 2.5, -3.0, 4.0, 5.0, 6.0],
                )
                .unwrap(),
            ),
            (
                "ids".to_string(),
                Tensor::from_f64(TensorType::new(DType::I64, vec![3]), &[7.0, -1.0, 1e12]).unwrap(),
            ),
            (
                "m".to_string(),
                Tensor::from_f64(TensorType::new(DType::Bool, vec![2]), &[1.0, 0.0]).unwrap(),
            ),
            (
                "s".to_string(),
                Tensor::from_f64(TensorType::new(DType::F64, vec![]), &[0.125]).unwrap(),
            ),
        ];
        let bytes = npz_bytes(&arrays).unwrap();
        let back = read_npz_bytes(&bytes).unwrap();
        assert_eq!(back, arrays);
    }

    #[test]
    fn bad_npy_names_the_problem() {
        let e = read_npy(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<c8'")
            .unwrap_err()
            .to_string();
        assert!(e.contains("header"), "{e}");
        let mut a =
            npy_bytes(&Tensor::from_f64(TensorType::new(DType::F32, vec![4]), &[1.0; 4]).unwrap());
        a.truncate(a.len() - 4);
        let e = read_npy(&a).unwrap_err().to_string();
        assert!(e.contains("needs 16 bytes"), "{e}");
    }
}
