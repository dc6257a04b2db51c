//! Values known at import time (shapes, constants and what is computed from them only).

use crate::dtype::DType;
use crate::types::TensorType;

/// Folded values larger than this many elements are emitted as graph nodes instead of being
/// computed at import time (a causal mask of a long sequence is better computed by the graph).
pub(crate) const FOLD_LIMIT: u64 = 1 << 16;

/// A tensor known at import time. Elements are held as f64, which is exact for every integer an
/// exported shape computation holds (below 2^53) and for f32 values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Host {
    pub dtype: DType,
    pub dims: Vec<u64>,
    pub data: Vec<f64>,
}

impl Host {
    pub(crate) fn new(dtype: DType, dims: Vec<u64>, data: Vec<f64>) -> Host {
        debug_assert_eq!(dims.iter().product::<u64>(), data.len() as u64);
        Host { dtype, dims, data }
    }

    pub(crate) fn scalar(dtype: DType, v: f64) -> Host {
        Host::new(dtype, vec![], vec![v])
    }

    /// A 1-d i64 tensor (a shape, a list of axes).
    pub(crate) fn ints(v: &[i64]) -> Host {
        Host::new(
            DType::I64,
            vec![v.len() as u64],
            v.iter().map(|&x| x as f64).collect(),
        )
    }

    pub(crate) fn ty(&self) -> TensorType {
        TensorType::new(self.dtype, self.dims.clone())
    }

    pub(crate) fn as_i64s(&self) -> Vec<i64> {
        self.data.iter().map(|&x| x as i64).collect()
    }

    /// Rounds or converts every element to what `dtype` holds (integer casts truncate toward
    /// zero, as ONNX's `Cast` does; bool is `!= 0`).
    pub(crate) fn cast(&self, dtype: DType) -> Host {
        let data = self.data.iter().map(|&x| cast_elem(x, dtype)).collect();
        Host::new(dtype, self.dims.clone(), data)
    }
}

/// One element converted to `dtype`'s value set.
pub(crate) fn cast_elem(x: f64, dtype: DType) -> f64 {
    match dtype {
        DType::Bool => f64::from(u8::from(x != 0.0)),
        DType::I32 => (x as i32) as f64,
        DType::I64 => (x as i64) as f64,
        DType::U32 => (x as u32) as f64,
        DType::U64 => (x as u64) as f64,
        DType::F32 | DType::BF16 | DType::F16 => (x as f32) as f64,
        DType::F64 => x,
    }
}

/// Row-major strides of `dims`.
pub(crate) fn strides(dims: &[u64]) -> Vec<u64> {
    let mut s = vec![1u64; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// The numpy broadcast of two shapes, or `None` where they do not broadcast.
pub(crate) fn broadcast_shape(a: &[u64], b: &[u64]) -> Option<Vec<u64>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// The elements of `t` broadcast (numpy rules) to `dims`, which must be a broadcast of its shape.
pub(crate) fn broadcast_data(t: &Host, dims: &[u64]) -> Vec<f64> {
    if t.dims == dims {
        return t.data.clone();
    }
    let r = dims.len();
    let off = r - t.dims.len();
    let src_strides = strides(&t.dims);
    let n: u64 = dims.iter().product();
    let out_strides = strides(dims);
    (0..n)
        .map(|i| {
            let mut src = 0u64;
            for d in 0..r {
                let coord = (i / out_strides[d]) % dims[d];
                if d >= off && t.dims[d - off] != 1 {
                    src += coord * src_strides[d - off];
                }
            }
            t.data[src as usize]
        })
        .collect()
}
