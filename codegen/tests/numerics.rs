//! Partitioned programs compute what the unpartitioned graph computes: every output within 1e-5
//! relative of the reference executor, before and after collective simplification.

mod common;

use common::run::check;
use common::*;
use shardc_ir::{Graph, Op, ReduceFn, Role, UnaryFn};

fn both(g: &Graph, a: &shardc_ir::ShardingAssignment) {
    check(g, a, false);
    check(g, a, true);
}

#[test]
fn megatron_mlp_matches_the_reference() {
    let g = mlp(8, 16, 32);
    let a = assign(
        &g,
        &mesh("tp=4"),
        &[
            ("w1", &["", "tp"]),
            ("fc1", &["", "tp"]),
            ("act", &["", "tp"]),
            ("w2", &["tp", ""]),
        ],
    );
    both(&g, &a);
}

#[test]
fn uneven_reduction_matches_the_reference() {
    let mut g = Graph::new("sum");
    let x = input(&mut g, "x", &[10, 3], Role::Input);
    let s = reduce(&mut g, "s", ReduceFn::Sum, x, &[0]);
    let m = reduce(&mut g, "m", ReduceFn::Max, x, &[0]);
    let e = unary(&mut g, "e", UnaryFn::Exp, x);
    let se = reduce(&mut g, "se", ReduceFn::Min, e, &[0]);
    g.outputs = vec![s, m, se];
    both(
        &g,
        &assign(&g, &mesh("dp=4"), &[("x", &["dp", ""]), ("e", &["dp", ""])]),
    );
}

#[test]
fn uneven_contraction_matches_the_reference() {
    let mut g = Graph::new("dot");
    let a = input(&mut g, "a", &[6, 10], Role::Input);
    let b = input(&mut g, "b", &[10, 5], Role::Input);
    let ea = unary(&mut g, "ea", UnaryFn::Exp, a);
    let y = matmul(&mut g, "y", ea, b);
    g.outputs = vec![y];
    both(
        &g,
        &assign(
            &g,
            &mesh("tp=4"),
            &[
                ("a", &["", "tp"]),
                ("ea", &["", "tp"]),
                ("b", &["tp", ""]),
                ("y", &["tp", ""]),
            ],
        ),
    );
}

#[test]
fn axis_moves_between_dims_match_the_reference() {
    let mut g = Graph::new("a2a");
    let x = input(&mut g, "x", &[8, 12], Role::Input);
    let y = g.push("y", Op::Copy, vec![x], None).unwrap();
    let z = g.push("z", Op::Copy, vec![y], None).unwrap();
    g.outputs.push(z);
    both(
        &g,
        &assign(
            &g,
            &mesh("a=2,b=2"),
            &[("x", &["a", "b"]), ("y", &["b", "a"]), ("z", &["a,b", ""])],
        ),
    );
}

#[test]
fn halo_exchange_on_an_uneven_spatial_dim_matches_the_reference() {
    // 10 rows over 4 devices (shards of 3 with 2 rows of padding on the last).
    let g = conv_net(2, 3, (10, 6), 4, 3, 1, 1);
    let s = &["", "", "sp", ""][..];
    let p = check(
        &g,
        &assign(&g, &mesh("sp=4"), &[("x", s), ("conv", s), ("relu", s)]),
        true,
    );
    assert_eq!(collectives(&p), vec![("collective_permute", 2)]);
}

#[test]
fn strided_split_convolution_matches_the_reference() {
    let g = conv_net(1, 2, (10, 5), 2, 3, 2, 1);
    let s = &["", "", "sp", ""][..];
    both(
        &g,
        &assign(&g, &mesh("sp=4"), &[("x", s), ("conv", s), ("relu", s)]),
    );
}

#[test]
fn iota_and_dense_constants_split_by_device_offset() {
    let mut g = Graph::new("iota");
    let i = g
        .push("i", Op::Iota { dim: 0 }, vec![], Some(f32t(&[10, 3])))
        .unwrap();
    let c = g
        .push(
            "c",
            Op::Constant {
                value: shardc_ir::Literal::Dense((0..30).map(f64::from).collect()),
            },
            vec![],
            Some(f32t(&[10, 3])),
        )
        .unwrap();
    let y = binary(&mut g, "y", shardc_ir::BinaryFn::Mul, i, c);
    g.outputs.push(y);
    both(
        &g,
        &assign(
            &g,
            &mesh("dp=4"),
            &[("i", &["dp", ""]), ("c", &["dp", ""]), ("y", &["dp", ""])],
        ),
    );
}
