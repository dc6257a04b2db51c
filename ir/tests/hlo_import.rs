//! HLO importer forms beyond one op per instruction: unspecified dims of a `Sharding`
//! custom-call, tuple-shaped parameters, reduce inits that are not the identity, shard groups,
//! layout constraints and trivially reversed kernels.

use shardc_ir::hlo::{import, Lowered};
use shardc_ir::{BinaryFn, Op};

#[test]
fn unspecified_dims_of_a_sharding_custom_call_stay_open() {
    let hlo = r#"HloModule m
ENTRY e {
  p = f32[6,3] parameter(0)
  a = f32[6,3] custom-call(p), custom_call_target="Sharding", backend_config="unspecified_dims=[1]", sharding={devices=[2,1,2]0,2,1,3 last_tile_dim_replicate}
  ROOT c = f32[6,3] copy(a)
}
"#;
    let imp = import(hlo).unwrap();
    let a = imp
        .graph
        .annotations
        .iter()
        .find(|a| a.value == "a")
        .unwrap();
    let open: Vec<bool> = a.sharding.dims.iter().map(|d| d.open).collect();
    assert_eq!(open, [false, true]);
    assert_eq!(a.sharding.dims[0].axes.len(), 1);
    let bad = hlo.replace("unspecified_dims=[1]", "unspecified_dims=[one]");
    let err = import(&bad).unwrap_err().to_string();
    assert!(
        err.contains("`a`") && err.contains("not a dim number"),
        "{err}"
    );
}

#[test]
fn a_tuple_parameter_becomes_one_input_per_element_with_its_sharding() {
    let hlo = r#"HloModule m
ENTRY e {
  param = (f32[4], (f32[4], s32[2])) parameter(0), sharding={{devices=[4]0,1,2,3}, {replicated}, {replicated}}
  g0 = f32[4] get-tuple-element(param), index=0
  inner = (f32[4], s32[2]) get-tuple-element(param), index=1
  g1 = f32[4] get-tuple-element(inner), index=0
  ROOT add = f32[4] add(g0, g1)
}
"#;
    let imp = import(hlo).unwrap();
    let names: Vec<&str> = imp
        .graph
        .inputs()
        .map(|v| imp.graph.node(v).name.as_str())
        .collect();
    assert_eq!(names, ["param.0", "param.1.0", "param.1.1"]);
    assert!(matches!(&imp.values["param"], Lowered::Tuple(es) if es.len() == 2));
    let sharded = imp
        .graph
        .annotations
        .iter()
        .find(|a| a.value == "param.0")
        .unwrap();
    assert_eq!(sharded.sharding.to_jax().unwrap(), "P('x0')");
    assert!(imp
        .graph
        .annotations
        .iter()
        .any(|a| a.value == "param.1.0" && a.sharding.is_replicated()));
}

#[test]
fn a_reduce_init_that_is_no_constant_identity_is_folded_in_once() {
    let hlo = r#"HloModule m
add {
  l = f32[] parameter(0)
  r = f32[] parameter(1)
  ROOT s = f32[] add(l, r)
}
ENTRY e {
  x = f32[8,4] parameter(0)
  init = f32[] parameter(1)
  ROOT reduce = f32[4] reduce(x, init), dimensions={0}, to_apply=add
}
"#;
    let imp = import(hlo).unwrap();
    let g = &imp.graph;
    let r = imp.value("reduce").unwrap();
    assert_eq!(
        g.node(r).op,
        Op::Binary {
            func: BinaryFn::Add
        }
    );
    let [body, init] = g.node(r).operands[..] else {
        panic!("reduce is add(body, init)")
    };
    assert_eq!(g.node(body).name, "reduce.body");
    assert!(matches!(g.node(body).op, Op::Reduce { .. }));
    assert_eq!(g.node(init).name, "reduce.init");
    assert_eq!(g.ty(init).dims(), &[4]);
}

#[test]
fn shard_as_groups_layout_constraints_and_size_one_reversals_import() {
    let hlo = r#"HloModule m
ENTRY e {
  p = f32[8,2] parameter(0), sharding={devices=[4,2]<=[8]}
  a = f32[8,2] custom-call(p), custom_call_target="Sharding", sharding={unknown shard_as 0}
  l = f32[8,2]{0,1} custom-call(a), custom_call_target="LayoutConstraint"
  b = f32[8,2] negate(l), sharding={unknown shard_as 0}
  k = f32[1,1,2,3] parameter(1)
  x = f32[4,1,1,2] parameter(2)
  ROOT c = f32[4,1,1,3] convolution(x, k), window={size=1x1 rhs_reversal=1x1}, dim_labels=b01f_01io->b01f
}
"#;
    let imp = import(hlo).unwrap();
    assert_eq!(
        imp.shard_groups,
        vec![vec!["a".to_string(), "b".to_string()]]
    );
    assert_eq!(imp.graph.node(imp.value("l").unwrap()).op, Op::Copy);
}

#[test]
fn a_kernel_flip_becomes_a_reverse_of_the_kernel_spatial_dims() {
    let hlo = r#"HloModule m
ENTRY e {
  k = f32[3,2,5] parameter(0)
  x = f32[4,9,2] parameter(1)
  ROOT c = f32[4,7,5] convolution(x, k), window={size=3 rhs_reversal=1}, dim_labels=b0f_0io->b0f
}
"#;
    let imp = import(hlo).unwrap();
    let c = imp.value("c").unwrap();
    let k = imp.graph.node(c).operands[1];
    assert_eq!(imp.graph.node(k).name, "c.kernel_reversed");
    assert_eq!(imp.graph.node(k).op, Op::Reverse { dims: vec![0] });
}
