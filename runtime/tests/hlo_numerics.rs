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
