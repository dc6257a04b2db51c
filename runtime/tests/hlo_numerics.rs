//! Imported HLO computes what XLA would: forms the importer lowers to more than one node,
//! executed by the reference executor on known inputs.

use shardc_ir::hlo::import;
use shardc_runtime::{execute, Tensor};

#[test]
fn a_reduce_with_a_parameter_init_folds_the_init_in_once() {
    let hlo = r#"HloModule m
add {
  l = f32[] parameter(0)
  r = f32[] parameter(1)
  ROOT s = f32[] add(l, r)
}
max {
  l = f32[] parameter(0)
  r = f32[] parameter(1)
  ROOT s = f32[] maximum(l, r)
}
ENTRY e {
  x = f32[3,2] parameter(0)
  init = f32[] parameter(1)
  sum = f32[2] reduce(x, init), dimensions={0}, to_apply=add
  big = f32[2] reduce(x, init), dimensions={0}, to_apply=max
  ROOT t = (f32[2], f32[2]) tuple(sum, big)
}
"#;
    let imp = import(hlo).unwrap();
    let x = Tensor::from_f32_vec(&[3, 2], vec![1.0, -2.0, 3.0, -4.0, 5.0, -6.0]).unwrap();
    let init = Tensor::from_f32_vec(&[], vec![10.0]).unwrap();
    let out = execute(&imp.graph, &[x, init]).unwrap();
    // Columns (1, 3, 5) and (-2, -4, -6), plus 10 once; the max with 10 is 10 in both.
    assert_eq!(out[0].to_f64_vec(), vec![19.0, -2.0]);
    assert_eq!(out[1].to_f64_vec(), vec![10.0, 10.0]);
}

#[test]
fn a_tuple_parameter_feeds_its_elements_in_order() {
    let hlo = r#"HloModule m
ENTRY e {
  p = (f32[2], f32[2]) parameter(0)
  a = f32[2] get-tuple-element(p), index=0
  b = f32[2] get-tuple-element(p), index=1
  ROOT d = f32[2] subtract(a, b)
}
"#;
    let imp = import(hlo).unwrap();
    let a = Tensor::from_f32_vec(&[2], vec![5.0, 7.0]).unwrap();
    let b = Tensor::from_f32_vec(&[2], vec![1.0, 2.0]).unwrap();
    let out = execute(&imp.graph, &[a, b]).unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![4.0, 5.0]);
}

/// TopK's comparator (from XLA's `PartitionSortInTopK` test): descending in total order on the
/// keys' integer images, ties broken by the iota riding along.
const TOP_K: &str = r#"HloModule m
%compare-greater-than (p.0.lhs: f32[], p.0.rhs: f32[], p.1.lhs: s32[], p.1.rhs: s32[]) -> pred[] {
  %p.0.lhs = f32[] parameter(0)
  %bitcast-convert.48 = s32[] bitcast-convert(f32[] %p.0.lhs)
  %constant.285 = s32[] constant(0)
  %compare.84 = pred[] compare(s32[] %bitcast-convert.48, s32[] %constant.285), direction=LT
  %constant.286 = u32[] constant(2147483647)
  %bitcast-convert.49 = u32[] bitcast-convert(f32[] %p.0.lhs)
  %subtract.84 = u32[] subtract(u32[] %constant.286, u32[] %bitcast-convert.49)
  %bitcast-convert.50 = s32[] bitcast-convert(u32[] %subtract.84)
  %select.40 = s32[] select(pred[] %compare.84, s32[] %bitcast-convert.50, s32[] %bitcast-convert.48)
  %p.0.rhs = f32[] parameter(1)
  %bitcast-convert.51 = s32[] bitcast-convert(f32[] %p.0.rhs)
  %compare.85 = pred[] compare(s32[] %bitcast-convert.51, s32[] %constant.285), direction=LT
  %bitcast-convert.52 = u32[] bitcast-convert(f32[] %p.0.rhs)
  %subtract.85 = u32[] subtract(u32[] %constant.286, u32[] %bitcast-convert.52)
  %bitcast-convert.53 = s32[] bitcast-convert(u32[] %subtract.85)
  %select.41 = s32[] select(pred[] %compare.85, s32[] %bitcast-convert.53, s32[] %bitcast-convert.51)
  %compare.86 = pred[] compare(s32[] %select.40, s32[] %select.41), direction=GT
  %compare.1645 = pred[] compare(s32[] %select.41, s32[] %select.40), direction=GT
  %compare.1646 = pred[] compare(pred[] %compare.86, pred[] %compare.1645), direction=EQ
  %p.1.lhs = s32[] parameter(2)
  %p.1.rhs = s32[] parameter(3)
  %compare.1647 = pred[] compare(s32[] %p.1.lhs, s32[] %p.1.rhs), direction=LT
  ROOT %select.1054 = pred[] select(pred[] %compare.1646, pred[] %compare.1647, pred[] %compare.86)
}
ENTRY e {
  x = f32[2,5] parameter(0)
  iota = s32[2,5] iota(), iota_dimension=1
  sort = (f32[2,5], s32[2,5]) sort(x, iota), dimensions={1}, is_stable=true, to_apply=%compare-greater-than
  v = f32[2,5] get-tuple-element(sort), index=0
  i = s32[2,5] get-tuple-element(sort), index=1
  top_v = f32[2,2] slice(v), slice={[0:2], [0:2]}
  top_i = s32[2,2] slice(i), slice={[0:2], [0:2]}
  ROOT t = (f32[2,2], s32[2,2]) tuple(top_v, top_i)
}
"#;

#[test]
fn top_k_takes_the_largest_keys_first_and_the_earliest_of_ties() {
    let imp = import(TOP_K).unwrap();
    // Row 0: the largest is 9 at 3, then 4 at 1 and 4 at 4 (a tie: the earlier first).
    // Row 1: -0 and +0 in total order (+0 is larger), beneath 2.5 at 4.
    let x = Tensor::from_f32_vec(
        &[2, 5],
        vec![1.0, 4.0, -3.0, 9.0, 4.0, -0.0, -1.0, 0.0, -7.0, 2.5],
    )
    .unwrap();
    let out = execute(&imp.graph, &[x]).unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![9.0, 4.0, 2.5, 0.0]);
    assert_eq!(out[1].to_f64_vec(), vec![3.0, 1.0, 4.0, 2.0]);
}

#[test]
fn top_k_refuses_ties_broken_by_anything_but_an_iota_along_the_sort_dim() {
    let other = TOP_K.replace(
        "iota = s32[2,5] iota(), iota_dimension=1",
        "iota = s32[2,5] iota(), iota_dimension=0",
    );
    let err = import(&other).unwrap_err().to_string();
    assert!(err.contains("not an iota along the sort dim 1"), "{err}");
    // NaN and zero canonicalised before the bit trick (XLA's `SortShardedOnSortDim_SlowSortBug`)
    // is a different order (-0 ties +0): refused.
    let canon = TOP_K.replace(
        "%select.40 = s32[] select(pred[] %compare.84, s32[] %bitcast-convert.50, s32[] %bitcast-convert.48)",
        "%zero.0 = f32[] constant(0)\n  %is0 = pred[] compare(%p.0.lhs, %zero.0), direction=EQ\n  %canon = s32[] select(%is0, %constant.285, %bitcast-convert.48)\n  %select.40 = s32[] select(pred[] %compare.84, s32[] %bitcast-convert.50, s32[] %canon)",
    );
    let err = import(&canon).unwrap_err().to_string();
    assert!(
        err.contains("is not a compare of the first operand"),
        "{err}"
    );
}

/// The comparator `jnp.argmax` writes: larger value, NaN first, lowest index on ties.
const ARGMAX: &str = r#"HloModule m
argmax {
  v0 = f32[] parameter(0)
  i0 = s32[] parameter(1)
  v1 = f32[] parameter(2)
  i1 = s32[] parameter(3)
  gt = pred[] compare(v0, v1), direction=GT
  nan = pred[] compare(v0, v0), direction=NE
  either = pred[] or(gt, nan)
  eq = pred[] compare(v0, v1), direction=EQ
  lower = pred[] compare(i0, i1), direction=LT
  tie = pred[] and(eq, lower)
  keep = pred[] or(either, tie)
  v = f32[] select(keep, v0, v1)
  i = s32[] select(keep, i0, i1)
  ROOT r = (f32[], s32[]) tuple(v, i)
}
ENTRY e {
  x = f32[2,4] parameter(0)
  INIT
  iota = s32[2,4] iota(), iota_dimension=1
  ROOT r = (f32[2], s32[2]) reduce(x, iota, init, zero), dimensions={1}, to_apply=argmax
}
"#;

#[test]
fn an_argmax_reduce_gives_the_largest_value_and_its_lowest_index() {
    let hlo = ARGMAX.replace(
        "INIT",
        "init = f32[] constant(-inf)\n  zero = s32[] constant(0)",
    );
    let imp = import(&hlo).unwrap();
    let x =
        Tensor::from_f32_vec(&[2, 4], vec![1.0, 7.0, 3.0, 7.0, -5.0, -2.0, -9.0, -3.0]).unwrap();
    let out = execute(&imp.graph, &[x]).unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![7.0, -2.0]);
    // Row 0 has 7 at columns 1 and 3: the lowest index wins, as jnp.argmax's comparator says.
    assert_eq!(out[1].to_f64_vec(), vec![1.0, 1.0]);
}

#[test]
fn an_argmax_reduce_with_a_parameter_init_lets_the_init_win_only_when_strictly_larger() {
    let hlo = ARGMAX.replace(
        "INIT",
        "init = f32[] parameter(1)\n  zero = s32[] parameter(2)",
    );
    let imp = import(&hlo).unwrap();
    let x =
        Tensor::from_f32_vec(&[2, 4], vec![1.0, 7.0, 3.0, 7.0, -5.0, -2.0, -9.0, -3.0]).unwrap();
    let init = Tensor::from_f32_vec(&[], vec![0.0]).unwrap();
    let zero = Tensor::from_f64(
        shardc_ir::TensorType::new(shardc_ir::DType::I32, vec![]),
        &[-1.0],
    )
    .unwrap();
    let out = execute(&imp.graph, &[x, init, zero]).unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![7.0, 0.0]);
    assert_eq!(out[1].to_f64_vec(), vec![1.0, -1.0]);
}

#[test]
fn a_variadic_reduce_that_is_no_argmax_is_refused_with_the_reason() {
    let hlo = ARGMAX
        .replace(
            "INIT",
            "init = f32[] constant(-inf)\n  zero = s32[] constant(0)",
        )
        .replace(
            "i = s32[] select(keep, i0, i1)",
            "i = s32[] select(gt, i0, i1)",
        );
    let err = import(&hlo).unwrap_err().to_string();
    assert!(
        err.contains("`r`") && err.contains("different predicates"),
        "{err}"
    );
}

#[test]
fn a_reversed_kernel_convolves_as_a_flipped_one() {
    // y[i] = sum_j x[i + j] * k'[j] with k' the kernel flipped: k = (1, 0, -1) acts as (-1, 0, 1).
    let hlo = r#"HloModule m
ENTRY e {
  x = f32[1,4,1] parameter(0)
  k = f32[3,1,1] parameter(1)
  plain = f32[1,2,1] convolution(x, k), window={size=3}, dim_labels=b0f_0io->b0f
  flipped = f32[1,2,1] convolution(x, k), window={size=3 rhs_reversal=1}, dim_labels=b0f_0io->b0f
  ROOT t = (f32[1,2,1], f32[1,2,1]) tuple(plain, flipped)
}
"#;
    let imp = import(hlo).unwrap();
    let x = Tensor::from_f32_vec(&[1, 4, 1], vec![1.0, 2.0, 3.0, 5.0]).unwrap();
    let k = Tensor::from_f32_vec(&[3, 1, 1], vec![1.0, 0.0, -1.0]).unwrap();
    let out = execute(&imp.graph, &[x, k]).unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![-2.0, -3.0]);
    assert_eq!(out[1].to_f64_vec(), vec![2.0, 3.0]);
}

#[test]
fn reverse_flips_only_the_named_dims() {
    let hlo = "HloModule m\nENTRY e {\n  x = f32[2,3] parameter(0)\n  ROOT r = f32[2,3] reverse(x), dimensions={1}\n}\n";
    let imp = import(hlo).unwrap();
    let x = Tensor::from_f32_vec(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let out = execute(&imp.graph, &[x]).unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
}
