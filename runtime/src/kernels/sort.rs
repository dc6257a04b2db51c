//! `sort`: a stable sort along one dim by the first operand (the keys), applied to one operand.
//!
//! Floats order by IEEE total order (`-NaN < -inf < ... < -0 < +0 < ... < inf < NaN`, XLA's
//! `TOTALORDER` comparison; with a plain `LT` comparator XLA leaves the place of NaNs
//! unspecified, so this is one valid answer there too). Integers order numerically, bools
//! `false < true`. Descending reverses the comparison, not the result: ties still keep their
//! original order.

use std::cmp::Ordering;

use ndarray::{ArrayD, IxDyn};

use super::arr;
use crate::tensor::{with_elem, Data, Elem, Tensor};

/// For every row-major position of the result, the row-major position in the operands of the
/// element that lands there.
fn source_positions<T: Copy>(
    keys: &ArrayD<T>,
    dim: usize,
    descending: bool,
    cmp: impl Fn(&T, &T) -> Ordering,
) -> Result<Vec<usize>, String> {
    let shape = keys.shape();
    if dim >= shape.len() {
        return Err(format!(
            "sort dim {dim} is out of range for rank {}",
            shape.len()
        ));
    }
    let flat: Vec<T> = keys.as_standard_layout().iter().copied().collect();
    let (n, inner) = (shape[dim], shape[dim + 1..].iter().product::<usize>());
    let outer: usize = shape[..dim].iter().product();
    let mut src = vec![0usize; flat.len()];
    // One lane at a time, keys copied next to their positions so the sort reads contiguously.
    let mut lane: Vec<(T, usize)> = Vec::with_capacity(n);
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            lane.clear();
            lane.extend((0..n).map(|j| (flat[base + j * inner], base + j * inner)));
            // Equal keys keep their original order either way (the position breaks ties, so
            // the faster unstable sort gives the stable order).
            if descending {
                lane.sort_unstable_by(|a, b| cmp(&b.0, &a.0).then(a.1.cmp(&b.1)));
            } else {
                lane.sort_unstable_by(|a, b| cmp(&a.0, &b.0).then(a.1.cmp(&b.1)));
            }
            for (j, &(_, s)) in lane.iter().enumerate() {
                src[base + j * inner] = s;
            }
        }
    }
    Ok(src)
}

/// Operand `operands[output]` permuted along `dim` the way a stable sort of `operands[0]`
/// (ascending, or descending) permutes it.
pub(super) fn sort(
    operands: &[&Tensor],
    dim: usize,
    descending: bool,
    output: usize,
) -> Result<Tensor, String> {
    let (Some(keys), Some(x)) = (operands.first(), operands.get(output)) else {
        return Err(format!(
            "sort output {output} is out of range for {} operand(s)",
            operands.len()
        ));
    };
    if keys.shape() != x.shape() {
        return Err(format!(
            "sort operand {output} is {}, the keys are {}",
            x.ty(),
            keys.ty()
        ));
    }
    let src = match keys.data() {
        Data::F32(a) => source_positions(a, dim, descending, |p: &f32, q| p.total_cmp(q))?,
        Data::F64(a) => source_positions(a, dim, descending, |p: &f64, q| p.total_cmp(q))?,
        Data::I32(a) => source_positions(a, dim, descending, Ord::cmp)?,
        Data::I64(a) => source_positions(a, dim, descending, Ord::cmp)?,
        Data::Bool(a) => source_positions(a, dim, descending, Ord::cmp)?,
    };
    let data = with_elem!(x.data(), T => {
        let v: Vec<T> = arr::<T>(x)?.as_standard_layout().iter().copied().collect();
        let out: Vec<T> = src.iter().map(|&s| v[s]).collect();
        T::into_data(
            ArrayD::from_shape_vec(IxDyn(x.shape()), out).map_err(|e| format!("sort: {e}"))?,
        )
    });
    Ok(Tensor::from_data(x.dtype(), data))
}

#[cfg(test)]
mod tests {
    use shardc_ir::{DType, TensorType};

    use super::sort;
    use crate::tensor::Tensor;

    fn t(dtype: DType, dims: &[u64], v: &[f64]) -> Tensor {
        Tensor::from_f64(TensorType::new(dtype, dims.to_vec()), v).unwrap()
    }

    #[test]
    fn ascending_and_descending_along_the_last_dim() {
        let k = t(DType::F32, &[2, 3], &[3., 1., 2., -1., 5., 0.]);
        let up = sort(&[&k], 1, false, 0).unwrap();
        assert_eq!(up.to_f64_vec(), vec![1., 2., 3., -1., 0., 5.]);
        let down = sort(&[&k], 1, true, 0).unwrap();
        assert_eq!(down.to_f64_vec(), vec![3., 2., 1., 5., 0., -1.]);
    }

    #[test]
    fn ties_keep_their_original_order_both_ways() {
        // Keys 2, 1, 2, 1 with values 0..4: stable ascending gives 1 (v1), 1 (v3), 2 (v0), 2 (v2).
        let k = t(DType::I32, &[4], &[2., 1., 2., 1.]);
        let v = t(DType::F64, &[4], &[10., 11., 12., 13.]);
        assert_eq!(
            sort(&[&k, &v], 0, false, 1).unwrap().to_f64_vec(),
            vec![11., 13., 10., 12.]
        );
        assert_eq!(
            sort(&[&k, &v], 0, true, 1).unwrap().to_f64_vec(),
            vec![10., 12., 11., 13.]
        );
    }

    #[test]
    fn values_follow_their_keys_along_a_middle_dim() {
        // [2, 3, 2]: sort dim 1. Lane (0, *, 0) keys 5, 4, 6; lane (0, *, 1) keys 0, 2, 1;
        // lane (1, *, 0) keys 9, 7, 8; lane (1, *, 1) keys 3, 3, -3.
        let k = t(
            DType::F64,
            &[2, 3, 2],
            &[5., 0., 4., 2., 6., 1., 9., 3., 7., 3., 8., -3.],
        );
        let v = t(
            DType::I64,
            &[2, 3, 2],
            &(0..12).map(f64::from).collect::<Vec<_>>(),
        );
        let keys = sort(&[&k, &v], 1, false, 0).unwrap().to_f64_vec();
        assert_eq!(keys, vec![4., 0., 5., 1., 6., 2., 7., -3., 8., 3., 9., 3.]);
        let vals = sort(&[&k, &v], 1, false, 1).unwrap();
        assert_eq!(vals.dtype(), DType::I64);
        assert_eq!(
            vals.to_f64_vec(),
            vec![2., 1., 0., 5., 4., 3., 8., 11., 10., 7., 6., 9.]
        );
    }

    #[test]
    fn floats_follow_the_total_order() {
        let k = t(
            DType::F32,
            &[6],
            &[f64::NAN, 1.0, -0.0, f64::NEG_INFINITY, 0.0, -f64::NAN],
        );
        let i = t(DType::I32, &[6], &[0., 1., 2., 3., 4., 5.]);
        assert_eq!(
            sort(&[&k, &i], 0, false, 1).unwrap().to_f64_vec(),
            vec![5., 3., 2., 4., 1., 0.]
        );
        assert_eq!(
            sort(&[&k, &i], 0, true, 1).unwrap().to_f64_vec(),
            vec![0., 1., 4., 2., 3., 5.]
        );
    }

    #[test]
    fn bool_and_bf16_keys_sort_too() {
        let k = t(DType::Bool, &[3], &[1., 0., 1.]);
        let v = t(DType::BF16, &[3], &[1.5, 2.5, 3.5]);
        assert_eq!(
            sort(&[&k, &v], 0, false, 1).unwrap().to_f64_vec(),
            vec![2.5, 1.5, 3.5]
        );
        assert_eq!(
            sort(&[&v], 0, true, 0).unwrap().to_f64_vec(),
            vec![3.5, 2.5, 1.5]
        );
    }

    #[test]
    fn a_bad_output_or_shape_is_an_error() {
        let k = t(DType::F32, &[3], &[1., 2., 3.]);
        let w = t(DType::F32, &[2], &[1., 2.]);
        assert!(sort(&[&k], 0, false, 1)
            .unwrap_err()
            .contains("out of range"));
        assert!(sort(&[&k, &w], 0, false, 1)
            .unwrap_err()
            .contains("the keys are"));
        assert!(sort(&[&k], 1, false, 0).unwrap_err().contains("sort dim 1"));
    }
}
