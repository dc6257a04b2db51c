//! Tensors: a dtype and an n-d array of elements (row-major logical order).
//!
//! bf16 and f16 are stored as f32 and rounded to their precision (round to nearest even, via
//! `half`) whenever a tensor of those dtypes is made, so every op that produces them rounds.

use std::fmt;

use ndarray::{ArrayD, IxDyn};
use shardc_ir::{DType, TensorType};

use crate::error::RuntimeError;

/// The element storage of a tensor, one variant per storage type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Data {
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
    Bool(ArrayD<bool>),
}

impl Data {
    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Data::F32(a) => a.shape(),
            Data::F64(a) => a.shape(),
            Data::I32(a) => a.shape(),
            Data::I64(a) => a.shape(),
            Data::Bool(a) => a.shape(),
        }
    }
}

/// An element type of the storage, so that kernels can be written once for all of them.
pub(crate) trait Elem:
    Copy + Default + PartialOrd + Send + Sync + fmt::Debug + 'static
{
    fn get(d: &Data) -> Option<&ArrayD<Self>>;
    fn get_mut(d: &mut Data) -> Option<&mut ArrayD<Self>>;
    fn into_data(a: ArrayD<Self>) -> Data;
    fn to_f64(self) -> f64;
    /// Conversion as `as` does it (saturating for integers, `v != 0` for bool).
    fn from_f64(v: f64) -> Self;
}

macro_rules! elem {
    ($t:ty, $variant:ident, $to:expr, $from:expr) => {
        impl Elem for $t {
            fn get(d: &Data) -> Option<&ArrayD<Self>> {
                match d {
                    Data::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn get_mut(d: &mut Data) -> Option<&mut ArrayD<Self>> {
                match d {
                    Data::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn into_data(a: ArrayD<Self>) -> Data {
                Data::$variant(a)
            }
            fn to_f64(self) -> f64 {
                $to(self)
            }
            fn from_f64(v: f64) -> Self {
                $from(v)
            }
        }
    };
}

elem!(f32, F32, |x: f32| x as f64, |v: f64| v as f32);
elem!(f64, F64, |x: f64| x, |v: f64| v);
elem!(i32, I32, |x: i32| x as f64, |v: f64| v as i32);
elem!(i64, I64, |x: i64| x as f64, |v: f64| v as i64);
elem!(bool, Bool, |x: bool| if x { 1.0 } else { 0.0 }, |v: f64| v
    != 0.0);

/// Runs `$body` with `$T` the storage element type of `$data`.
macro_rules! with_elem {
    ($data:expr, $T:ident => $body:expr) => {
        match $data {
            $crate::tensor::Data::F32(_) => {
                type $T = f32;
                $body
            }
            $crate::tensor::Data::F64(_) => {
                type $T = f64;
                $body
            }
            $crate::tensor::Data::I32(_) => {
                type $T = i32;
                $body
            }
            $crate::tensor::Data::I64(_) => {
                type $T = i64;
                $body
            }
            $crate::tensor::Data::Bool(_) => {
                type $T = bool;
                $body
            }
        }
    };
}
pub(crate) use with_elem;

/// A dense tensor on one device.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    dtype: DType,
    data: Data,
}

fn round_to(dtype: DType, a: &mut ArrayD<f32>) {
    match dtype {
        DType::BF16 => a.mapv_inplace(|x| half::bf16::from_f32(x).to_f32()),
        DType::F16 => a.mapv_inplace(|x| half::f16::from_f32(x).to_f32()),
        _ => {}
    }
}

/// The element count of `ty` as a `usize`, or an error naming the type.
pub(crate) fn element_count(ty: &TensorType) -> Result<usize, RuntimeError> {
    ty.shape
        .checked_elements()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| RuntimeError::Invalid(format!("{ty} has too many elements to store")))
}

pub(crate) fn usize_dims(ty: &TensorType) -> Result<Vec<usize>, RuntimeError> {
    element_count(ty)?;
    Ok(ty.dims().iter().map(|&d| d as usize).collect())
}

impl Tensor {
    /// Wraps storage of the right variant for `dtype` (the caller guarantees it), rounding
    /// bf16/f16 values to their precision.
    pub(crate) fn from_data(dtype: DType, mut data: Data) -> Tensor {
        if let Data::F32(a) = &mut data {
            round_to(dtype, a);
        }
        // u32 is stored in i64 (u64 as its bit pattern): wrap to 32 bits, as u32 arithmetic does.
        if let (DType::U32, Data::I64(a)) = (dtype, &mut data) {
            a.mapv_inplace(|x| x & 0xffff_ffff);
        }
        Tensor { dtype, data }
    }

    pub(crate) fn data(&self) -> &Data {
        &self.data
    }

    pub(crate) fn into_data(self) -> Data {
        self.data
    }

    /// Mutable storage; writers keep bf16/f16 values rounded (they copy already-rounded ones).
    pub(crate) fn data_mut(&mut self) -> &mut Data {
        &mut self.data
    }

    /// A tensor of type `ty` from row-major values, converted as `as` does (integers saturate,
    /// bool is `v != 0`, bf16/f16 round to nearest even).
    pub fn from_f64(ty: TensorType, values: &[f64]) -> Result<Tensor, RuntimeError> {
        let n = element_count(&ty)?;
        if values.len() != n {
            return Err(RuntimeError::Invalid(format!(
                "{ty} needs {n} values, got {}",
                values.len()
            )));
        }
        let dims = usize_dims(&ty)?;
        Ok(Self::from_fn(ty.dtype, &dims, |i| values[i]))
    }

    /// A tensor of `dtype` and shape `dims` whose element at row-major position `i` is `f(i)`.
    pub(crate) fn from_fn(dtype: DType, dims: &[usize], mut f: impl FnMut(usize) -> f64) -> Tensor {
        let n: usize = dims.iter().product();
        fn build<T: Elem>(dims: &[usize], n: usize, f: &mut impl FnMut(usize) -> f64) -> Data {
            let v: Vec<T> = (0..n).map(|i| T::from_f64(f(i))).collect();
            // invariant: `v` has exactly the product of `dims` elements.
            T::into_data(ArrayD::from_shape_vec(IxDyn(dims), v).expect("invariant: length matches"))
        }
        let data = match dtype {
            DType::F32 | DType::BF16 | DType::F16 => build::<f32>(dims, n, &mut f),
            DType::F64 => build::<f64>(dims, n, &mut f),
            DType::I32 => build::<i32>(dims, n, &mut f),
            DType::I64 | DType::U32 | DType::U64 => build::<i64>(dims, n, &mut f),
            DType::Bool => build::<bool>(dims, n, &mut f),
        };
        Tensor::from_data(dtype, data)
    }

    /// An f32 tensor that takes ownership of `values` (row-major) without copying them.
    pub fn from_f32_vec(dims: &[u64], values: Vec<f32>) -> Result<Tensor, RuntimeError> {
        let ty = TensorType::new(DType::F32, dims.to_vec());
        let shape = usize_dims(&ty)?;
        let a = ArrayD::from_shape_vec(IxDyn(&shape), values)
            .map_err(|e| RuntimeError::Invalid(format!("{ty}: {e}")))?;
        Ok(Tensor::from_data(DType::F32, Data::F32(a)))
    }

    /// Every element `value` (zeros, ones, ...).
    pub fn full(ty: &TensorType, value: f64) -> Result<Tensor, RuntimeError> {
        let dims = usize_dims(ty)?;
        Ok(Self::from_fn(ty.dtype, &dims, |_| value))
    }

    /// The tensor's type (`f32[2,3]`).
    pub fn ty(&self) -> TensorType {
        TensorType::new(
            self.dtype,
            self.shape().iter().map(|&d| d as u64).collect::<Vec<_>>(),
        )
    }

    /// The element type (bf16/f16 although stored as f32).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The size of each dim, major first.
    pub fn shape(&self) -> &[usize] {
        self.data.shape()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether the tensor has no elements (some dim is 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the tensor occupies in its own dtype (2 per bf16 element, even though stored as f32).
    pub fn size_bytes(&self) -> u64 {
        self.len() as u64 * self.dtype.size_bytes()
    }

    /// The elements in row-major order, as f64 (bool as 0/1).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        with_elem!(&self.data, T => match T::get(&self.data) {
            Some(a) => a.iter().map(|&x| x.to_f64()).collect(),
            None => unreachable!("with_elem matched the variant"),
        })
    }

    /// The f32 elements (also for bf16/f16, which are stored as f32), or `None` for other dtypes.
    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        f32::get(&self.data)
    }

    /// The f64 elements, or `None` for other dtypes.
    pub fn as_f64(&self) -> Option<&ArrayD<f64>> {
        f64::get(&self.data)
    }

    /// The value of a one-element tensor.
    pub fn scalar_f64(&self) -> Result<f64, RuntimeError> {
        if self.len() != 1 {
            return Err(RuntimeError::Invalid(format!(
                "expected a one-element tensor, got {}",
                self.ty()
            )));
        }
        Ok(self.to_f64_vec()[0])
    }

    /// Minimum, maximum, mean and L2 norm of the elements.
    pub fn summary(&self) -> Summary {
        let v = self.to_f64_vec();
        let mut s = Summary {
            ty: self.ty(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            mean: 0.0,
            l2: 0.0,
        };
        let mut sum = 0.0;
        for &x in &v {
            s.min = s.min.min(x);
            s.max = s.max.max(x);
            sum += x;
            s.l2 += x * x;
        }
        s.l2 = s.l2.sqrt();
        s.mean = if v.is_empty() {
            0.0
        } else {
            sum / v.len() as f64
        };
        if v.is_empty() {
            (s.min, s.max) = (0.0, 0.0);
        }
        s
    }
}

/// Statistics of a tensor's elements, for printing outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The tensor's type.
    pub ty: TensorType,
    /// Smallest element (0 for an empty tensor).
    pub min: f64,
    /// Largest element (0 for an empty tensor).
    pub max: f64,
    /// Arithmetic mean of the elements.
    pub mean: f64,
    /// Euclidean norm of all elements.
    pub l2: f64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} min {:.6e} max {:.6e} mean {:.6e} l2 {:.6e}",
            self.ty, self.min, self.max, self.mean, self.l2
        )
    }
}

/// The relative error of `a` against the reference `b`:
/// `max_i |a_i - b_i| / max(max_i |b_i|, f64::MIN_POSITIVE)`, i.e. the largest absolute
/// difference measured against the reference's largest magnitude (so elements near zero do not
/// blow the error up). Elements that are NaN in both count as equal; a NaN in one only, or
/// infinities that differ, give infinity. Types must match.
pub fn max_relative_error(a: &Tensor, b: &Tensor) -> Result<f64, RuntimeError> {
    if a.ty() != b.ty() {
        return Err(RuntimeError::Invalid(format!(
            "cannot compare {} with {}",
            a.ty(),
            b.ty()
        )));
    }
    let (va, vb) = (a.to_f64_vec(), b.to_f64_vec());
    let mut diff = 0.0f64;
    let mut scale = 0.0f64;
    for (&x, &y) in va.iter().zip(&vb) {
        if x.is_nan() && y.is_nan() || x == y {
            scale = scale.max(if y.is_finite() { y.abs() } else { 0.0 });
            continue;
        }
        let d = (x - y).abs();
        diff = if d.is_nan() {
            f64::INFINITY
        } else {
            diff.max(d)
        };
        if y.is_finite() {
            scale = scale.max(y.abs());
        }
    }
    Ok(diff / scale.max(f64::MIN_POSITIVE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_and_f16_round_to_their_precision() {
        // 1 + 2^-10 is exact in f16 (10 mantissa bits) but not in bf16 (7 bits).
        let x = 1.0 + 2f64.powi(-10);
        let b = Tensor::from_f64(TensorType::new(DType::BF16, vec![1]), &[x]).unwrap();
        let h = Tensor::from_f64(TensorType::new(DType::F16, vec![1]), &[x]).unwrap();
        assert_eq!(b.to_f64_vec(), vec![1.0]);
        assert_eq!(h.to_f64_vec(), vec![x]);
        // 3.2 in bf16 is 3.203125 (nearest value with 8 significant bits: 410/128).
        let b = Tensor::from_f64(TensorType::new(DType::BF16, vec![1]), &[3.2]).unwrap();
        assert_eq!(b.to_f64_vec(), vec![3.203125]);
    }

    #[test]
    fn from_f64_checks_the_length() {
        let e = Tensor::from_f64(TensorType::new(DType::F32, vec![2, 2]), &[1.0]).unwrap_err();
        assert_eq!(e.to_string(), "f32[2,2] needs 4 values, got 1");
    }

    #[test]
    fn integers_saturate_and_bools_are_nonzero() {
        let t = Tensor::from_f64(TensorType::new(DType::I32, vec![3]), &[1e12, -2.7, 3.9]).unwrap();
        assert_eq!(t.to_f64_vec(), vec![i32::MAX as f64, -2.0, 3.0]);
        let t = Tensor::from_f64(TensorType::new(DType::Bool, vec![2]), &[0.0, -0.5]).unwrap();
        assert_eq!(t.to_f64_vec(), vec![0.0, 1.0]);
    }

    #[test]
    fn relative_error_is_measured_against_the_reference_magnitude() {
        let ty = TensorType::new(DType::F64, vec![3]);
        let a = Tensor::from_f64(ty.clone(), &[1.0, 2.0, 4.01]).unwrap();
        let b = Tensor::from_f64(ty.clone(), &[1.0, 2.0, 4.0]).unwrap();
        assert!((max_relative_error(&a, &b).unwrap() - 0.01 / 4.0).abs() < 1e-12);
        let z = Tensor::full(&ty, 0.0).unwrap();
        assert_eq!(max_relative_error(&z, &z).unwrap(), 0.0);
        let n = Tensor::from_f64(ty.clone(), &[f64::NAN, 0.0, 0.0]).unwrap();
        assert_eq!(max_relative_error(&n, &z).unwrap(), f64::INFINITY);
        assert_eq!(max_relative_error(&n, &n).unwrap(), 0.0);
        let other = Tensor::full(&TensorType::new(DType::F32, vec![3]), 0.0).unwrap();
        assert!(max_relative_error(&z, &other).is_err());
    }

    #[test]
    fn summary_gives_min_max_mean_and_norm() {
        let t = Tensor::from_f64(
            TensorType::new(DType::F32, vec![2, 2]),
            &[3.0, -4.0, 0.0, 1.0],
        )
        .unwrap();
        let s = t.summary();
        assert_eq!((s.min, s.max, s.mean), (-4.0, 3.0, 0.0));
        assert!((s.l2 - 26f64.sqrt()).abs() < 1e-12);
    }
}
