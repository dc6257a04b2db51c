//! Collective simplification: each rewrite fires where it should and leaves a verified program.
//! That the numerics survive is checked in `numerics.rs`.

mod common;

use common::*;
use shardc_codegen::{partition, simplify, DEFAULT_BUCKET_BYTES};
use shardc_ir::{verify, Op, ReduceFn, Role};

/// `y = a · b` contracting a dim split over `tp`, the result split over `tp` along rows.
fn row_split_contraction() -> (shardc_ir::Graph, shardc_ir::ShardingAssignment) {
    let mut g = shardc_ir::Graph::new("rs");
    let a = input(&mut g, "a", &[8, 16], Role::Input);
    let b = input(&mut g, "b", &[16, 6], Role::Parameter);
    let y = matmul(&mut g, "y", a, b);
    g.outputs.push(y);
    let a_ = assign(
        &g,
        &mesh("tp=4"),
        &[("a", &["", "tp"]), ("b", &["tp", ""]), ("y", &["tp", ""])],
    );
    (g, a_)
}

#[test]
fn all_reduce_then_local_slice_becomes_reduce_scatter() {
    let (g, a) = row_split_contraction();
    let p = partition(&g, &a).unwrap();
    assert_eq!(collectives(&p), vec![("all_reduce", 1)], "{}", p.dump());
    let q = simplify(&p, 0).unwrap();
    verify(&q.graph).unwrap();
    assert_eq!(collectives(&q), vec![("reduce_scatter", 1)], "{}", q.dump());
    assert!(
        !q.graph
            .nodes
            .iter()
            .any(|n| matches!(n.op, Op::DynamicSlice { .. })),
        "{}",
        q.dump()
    );
}

#[test]
fn uneven_all_reduce_then_slice_pads_before_reduce_scatter() {
    let mut g = shardc_ir::Graph::new("rs_uneven");
    let a = input(&mut g, "a", &[10, 16], Role::Input);
    let b = input(&mut g, "b", &[16, 6], Role::Parameter);
    let y = matmul(&mut g, "y", a, b);
    g.outputs.push(y);
    let a_ = assign(
        &g,
        &mesh("tp=4"),
        &[("a", &["", "tp"]), ("b", &["tp", ""]), ("y", &["tp", ""])],
    );
    let q = simplify(&partition(&g, &a_).unwrap(), 0).unwrap();
    assert_eq!(collectives(&q), vec![("reduce_scatter", 1)], "{}", q.dump());
}

#[test]
fn all_gather_then_own_slice_disappears() {
    let mut g = shardc_ir::Graph::new("ag");
    let x = input(&mut g, "x", &[8, 4], Role::Input);
    let y = g.push("y", Op::Copy, vec![x], None).unwrap();
    let z = g.push("z", Op::Copy, vec![y], None).unwrap();
    g.outputs.push(z);
    let a = assign(&g, &mesh("dp=4"), &[("x", &["dp", ""]), ("z", &["dp", ""])]);
    let p = partition(&g, &a).unwrap();
    assert_eq!(collectives(&p), vec![("all_gather", 1)], "{}", p.dump());
    let q = simplify(&p, 0).unwrap();
    assert!(collectives(&q).is_empty(), "{}", q.dump());
}

#[test]
fn consecutive_all_reduces_over_disjoint_axes_fuse() {
    let mut g = shardc_ir::Graph::new("fuse");
    g.mesh = Some(mesh("dp=2,tp=2"));
    let x = input(&mut g, "x", &[4], Role::Input);
    let r1 = g
        .push(
            "r1",
            Op::AllReduce {
                axes: vec!["tp".into()],
                func: ReduceFn::Sum,
            },
            vec![x],
            None,
        )
        .unwrap();
    let r2 = g
        .push(
            "r2",
            Op::AllReduce {
                axes: vec!["dp".into()],
                func: ReduceFn::Sum,
            },
            vec![r1],
            None,
        )
        .unwrap();
    g.outputs.push(r2);
    let p = shardc_codegen::SpmdProgram {
        stage: 0,
        graph: g,
        inputs: vec![],
        outputs: vec![],
    };
    let q = simplify(&p, 0).unwrap();
    assert_eq!(collectives(&q), vec![("all_reduce", 1)], "{}", q.dump());
    let ar = q.graph.nodes.iter().find(|n| n.op.is_collective()).unwrap();
    assert_eq!(
        ar.op.collective_axes(),
        vec!["dp".to_string(), "tp".to_string()]
    );
}

#[test]
fn small_independent_all_reduces_are_bucketed() {
    // Three independent partial sums over `dp`: one all-reduce after bucketing.
    let mut g = shardc_ir::Graph::new("bucket");
    let x = input(&mut g, "x", &[8, 4], Role::Input);
    let mut outs = Vec::new();
    for (i, dims) in [[0usize].as_slice(), &[0, 1], &[0]].iter().enumerate() {
        let s = reduce(&mut g, &format!("s{i}"), ReduceFn::Sum, x, dims);
        outs.push(s);
    }
    g.outputs = outs;
    let a = assign(&g, &mesh("dp=4"), &[("x", &["dp", ""])]);
    let p = partition(&g, &a).unwrap();
    assert_eq!(collectives(&p), vec![("all_reduce", 3)], "{}", p.dump());
    let q = simplify(&p, DEFAULT_BUCKET_BYTES).unwrap();
    assert_eq!(collectives(&q), vec![("all_reduce", 1)], "{}", q.dump());
    let none = simplify(&p, 0).unwrap();
    assert_eq!(collectives(&none), vec![("all_reduce", 3)]);
}
