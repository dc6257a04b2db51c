//! HLO `sort`: a variadic sort becomes one `sort` node per result, the comparator's direction
//! and operand order decide ascending or descending, and comparators that are not a plain
//! compare of the first operand are refused with the reason.

use shardc_ir::hlo::{import, Lowered};
use shardc_ir::{DType, Op};

/// An argsort module: `keys` sorted along dim 1 with an iota riding along, comparator ROOT
/// `ROOT_LINE`.
fn argsort(root_line: &str) -> String {
    format!(
        r#"HloModule m

cmp {{
  p.0.lhs = f32[] parameter(0)
  p.0.rhs = f32[] parameter(1)
  p.1.lhs = s32[] parameter(2)
  p.1.rhs = s32[] parameter(3)
  {root_line}
}}

ENTRY e {{
  keys = f32[4,8] parameter(0), sharding={{devices=[2,1]0,1}}
  iota = s32[4,8] iota(), iota_dimension=1
  sort = (f32[4,8], s32[4,8]) sort(keys, iota), dimensions={{1}}, is_stable=true, to_apply=cmp
  sorted = f32[4,8] get-tuple-element(sort), index=0
  idx = s32[4,8] get-tuple-element(sort), index=1
  ROOT t = (f32[4,8], s32[4,8]) tuple(sorted, idx)
}}
"#
    )
}

fn sort_op(imp: &shardc_ir::hlo::HloImport, name: &str) -> Op {
    let v = imp.graph.find(name).unwrap();
    imp.graph.node(v).op.clone()
}

#[test]
fn a_variadic_sort_becomes_one_node_per_result() {
    let imp = import(&argsort(
        "ROOT lt = pred[] compare(p.0.lhs, p.0.rhs), direction=LT",
    ))
    .unwrap();
    assert!(matches!(&imp.values["sort"], Lowered::Tuple(es) if es.len() == 2));
    for (k, dtype) in [(0, DType::F32), (1, DType::I32)] {
        let name = format!("sort.{k}");
        assert_eq!(
            sort_op(&imp, &name),
            Op::Sort {
                dim: 1,
                descending: false,
                stable: true,
                output: k
            }
        );
        let v = imp.graph.find(&name).unwrap();
        assert_eq!(imp.graph.ty(v).dtype, dtype);
        assert_eq!(imp.graph.node(v).operands.len(), 2);
    }
}

#[test]
fn gt_or_swapped_parameters_sort_descending() {
    for (root, descending) in [
        (
            "ROOT gt = pred[] compare(p.0.lhs, p.0.rhs), direction=GT",
            true,
        ),
        (
            "ROOT gt = pred[] compare(p.0.rhs, p.0.lhs), direction=GT",
            false,
        ),
        (
            "ROOT lt = pred[] compare(p.0.rhs, p.0.lhs), direction=LT, type=TOTALORDER",
            true,
        ),
    ] {
        let imp = import(&argsort(root)).unwrap();
        assert!(
            matches!(sort_op(&imp, "sort.1"), Op::Sort { descending: d, .. } if d == descending),
            "{root}"
        );
    }
}

#[test]
fn a_single_operand_sort_is_one_node_named_after_it() {
    let hlo = r#"HloModule m
cmp {
  a = s32[] parameter(0)
  b = s32[] parameter(1)
  ROOT gt = pred[] compare(a, b), direction=GT
}
ENTRY e {
  p = s32[3,5] parameter(0)
  ROOT s = s32[3,5] sort(p), dimensions={0}, to_apply=cmp
}
"#;
    let imp = import(hlo).unwrap();
    assert_eq!(
        sort_op(&imp, "s"),
        Op::Sort {
            dim: 0,
            descending: true,
            stable: false,
            output: 0
        }
    );
}

#[test]
fn other_comparators_are_refused_with_the_reason() {
    for (root, why) in [
        (
            "ROOT lt = pred[] compare(p.1.lhs, p.1.rhs), direction=LT",
            "compares p.1.lhs, p.1.rhs",
        ),
        (
            "ROOT le = pred[] compare(p.0.lhs, p.0.rhs), direction=LE",
            "direction LE is not a strict order",
        ),
        ("ROOT c = pred[] constant(true)", "its ROOT is `constant`"),
    ] {
        let err = import(&argsort(root)).unwrap_err().to_string();
        assert!(
            err.contains("`sort`")
                && err.contains("sort comparator `cmp` is not a compare of the first operand")
                && err.contains(why),
            "{err}"
        );
    }
    let bad = argsort("ROOT lt = pred[] compare(p.0.lhs, p.0.rhs), direction=LT")
        .replace("dimensions={1}", "dimensions={0,1}");
    let err = import(&bad).unwrap_err().to_string();
    assert!(err.contains("must name one dim"), "{err}");
}
