//! What the partitioner emits: local shapes, which collectives and where, and errors on bad
//! shardings. Numerics are checked against the reference executor in `numerics.rs`.

mod common;

use common::*;
use shardc_codegen::{partition, CodegenError};
use shardc_ir::{verify, Op, ReduceFn, Role};

#[test]
fn megatron_mlp_has_exactly_one_all_reduce() {
    let g = mlp(8, 16, 32);
    let m = mesh("tp=4");
    let a = assign(
        &g,
        &m,
        &[
            ("w1", &["", "tp"]),
            ("fc1", &["", "tp"]),
            ("act", &["", "tp"]),
            ("w2", &["tp", ""]),
        ],
    );
    let p = partition(&g, &a).unwrap();
    verify(&p.graph).unwrap();
    assert_eq!(collectives(&p), vec![("all_reduce", 1)]);
    let w1 = p.graph.find("w1").unwrap();
    assert_eq!(p.graph.ty(w1).to_string(), "f32[16,8]");
    let fc2 = p.graph.find("fc2").unwrap();
    assert_eq!(p.graph.ty(fc2).to_string(), "f32[8,16]");
}

#[test]
fn data_parallel_forward_needs_no_communication() {
    let g = mlp(8, 16, 32);
    let m = mesh("dp=4");
    let a = assign(
        &g,
        &m,
        &[
            ("x", &["dp", ""]),
            ("fc1", &["dp", ""]),
            ("act", &["dp", ""]),
            ("fc2", &["dp", ""]),
        ],
    );
    let p = partition(&g, &a).unwrap();
    assert!(collectives(&p).is_empty(), "{}", p.dump());
    assert_eq!(
        p.graph.ty(p.graph.find("x").unwrap()).to_string(),
        "f32[2,16]"
    );
    assert_eq!(p.outputs[0].sharding, a.shardings[g.outputs[0].index()]);
}

#[test]
fn uneven_shards_are_padded_and_masked_before_a_reduction() {
    let mut g = shardc_ir::Graph::new("sum");
    let x = input(&mut g, "x", &[10, 3], Role::Input);
    let s = reduce(&mut g, "s", ReduceFn::Sum, x, &[0]);
    g.outputs.push(s);
    let m = mesh("dp=4");
    let a = assign(&g, &m, &[("x", &["dp", ""])]);
    let p = partition(&g, &a).unwrap();
    assert_eq!(
        p.graph.ty(p.graph.find("x").unwrap()).to_string(),
        "f32[3,3]"
    );
    assert!(
        p.graph.nodes.iter().any(|n| matches!(n.op, Op::Select)),
        "{}",
        p.dump()
    );
    assert_eq!(collectives(&p), vec![("all_reduce", 1)]);
}

#[test]
fn resharding_between_dims_uses_all_to_all() {
    let mut g = shardc_ir::Graph::new("a2a");
    let x = input(&mut g, "x", &[8, 12], Role::Input);
    let y = g.push("y", Op::Copy, vec![x], None).unwrap();
    g.outputs.push(y);
    let m = mesh("ep=4");
    let a = assign(&g, &m, &[("x", &["ep", ""]), ("y", &["", "ep"])]);
    let p = partition(&g, &a).unwrap();
    assert_eq!(collectives(&p), vec![("all_to_all", 1)], "{}", p.dump());
}

#[test]
fn spatially_split_convolution_exchanges_halos() {
    // 10 rows over 4 devices: shards of 3, the last one 1 row and 2 of padding.
    let g = conv_net(2, 3, (10, 6), 4, 3, 1, 1);
    let m = mesh("sp=4");
    let a = assign(
        &g,
        &m,
        &[
            ("x", &["", "", "sp", ""]),
            ("conv", &["", "", "sp", ""]),
            ("relu", &["", "", "sp", ""]),
        ],
    );
    let p = partition(&g, &a).unwrap();
    assert_eq!(
        collectives(&p),
        vec![("collective_permute", 2)],
        "{}",
        p.dump()
    );
    assert_eq!(
        p.graph.ty(p.graph.find("conv").unwrap()).to_string(),
        "f32[2,4,3,6]"
    );
}

#[test]
fn strided_convolution_whose_shards_do_not_line_up_slices_its_window() {
    let g = conv_net(1, 2, (10, 5), 2, 3, 2, 1);
    let m = mesh("sp=4");
    let a = assign(
        &g,
        &m,
        &[
            ("x", &["", "", "sp", ""]),
            ("conv", &["", "", "sp", ""]),
            ("relu", &["", "", "sp", ""]),
        ],
    );
    let p = partition(&g, &a).unwrap();
    verify(&p.graph).unwrap();
    assert_eq!(collectives(&p), vec![("all_gather", 1)], "{}", p.dump());
    assert!(p
        .graph
        .nodes
        .iter()
        .any(|n| matches!(n.op, Op::DynamicSlice { .. })));
}

#[test]
fn a_sharding_naming_an_unknown_axis_is_an_error() {
    let g = mlp(8, 16, 32);
    let m = mesh("tp=4");
    let a = assign(&g, &m, &[("w1", &["", "mp"])]);
    let e = partition(&g, &a).unwrap_err();
    assert!(
        matches!(e, CodegenError::Sharding { ref value, .. } if value == "w1"),
        "{e}"
    );
    assert!(e.to_string().contains("no axis `mp`"), "{e}");
}

#[test]
fn an_assignment_of_the_wrong_length_is_an_error() {
    let g = mlp(8, 16, 32);
    let mut a = assign(&g, &mesh("tp=2"), &[]);
    a.shardings.pop();
    let e = partition(&g, &a).unwrap_err();
    assert!(e.to_string().contains("the graph has 6 values"), "{e}");
}

#[test]
fn zero3_weights_are_gathered_before_use_not_the_activations() {
    // More tokens than weights (as in training): gathering w moves less than moving x around
    // and scattering a pending sum of y, so the partitioner gathers w.
    let mut g = shardc_ir::Graph::new("zero3");
    let x = input(&mut g, "x", &[64, 16], Role::Input);
    let w = input(&mut g, "w", &[16, 16], Role::Parameter);
    let y = matmul(&mut g, "y", x, w);
    g.outputs.push(y);
    let a = assign(
        &g,
        &mesh("dp=4"),
        &[("x", &["dp", ""]), ("w", &["dp", ""]), ("y", &["dp", ""])],
    );
    let p = partition(&g, &a).unwrap();
    assert_eq!(collectives(&p), vec![("all_gather", 1)], "{}", p.dump());
    let ag = p.graph.nodes.iter().find(|n| n.op.is_collective()).unwrap();
    assert_eq!(p.graph.node(ag.operands[0]).name, "w");
}

#[test]
fn sequence_parallel_row_projection_reduces_into_the_sequence_shards() {
    // h[s, f] with f split (Megatron), w2[f, h] row-split, result split over the sequence:
    // a pending sum scattered over `tp`, not a gather of h and w2.
    let mut g = shardc_ir::Graph::new("sp");
    let h = input(&mut g, "h", &[16, 32], Role::Input);
    let w = input(&mut g, "w2", &[32, 8], Role::Parameter);
    let y = matmul(&mut g, "y", h, w);
    g.outputs.push(y);
    let a = assign(
        &g,
        &mesh("tp=4"),
        &[("h", &["", "tp"]), ("w2", &["tp", ""]), ("y", &["tp", ""])],
    );
    let p = partition(&g, &a).unwrap();
    // The resharding plan goes straight to the reduce-scatter (no all-reduce and slice for the
    // simplifier to fuse).
    assert_eq!(collectives(&p), vec![("reduce_scatter", 1)], "{}", p.dump());
}
