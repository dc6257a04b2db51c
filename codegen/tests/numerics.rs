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

/// `y[b, p, :] = x[b, i[b, p], :]` (XLA's general gather with an explicit batching dim, or the
/// scatter back into `x` with `combine`). Indices reach past the 10 rows (up to 12), so the gather
/// clamps some and the scatter skips some.
fn batched_lookup(scatter: Option<Option<shardc_ir::BinaryFn>>) -> Graph {
    use shardc_ir::{DType, GatherDims, Init, ScatterDims, TensorType};
    let mut g = Graph::new("batched_lookup");
    let x = input(&mut g, "x", &[4, 10, 6], Role::Input);
    let i = g
        .push(
            "i",
            Op::Input {
                init: Some(Init::Index { high: 13 }),
            },
            vec![],
            Some(TensorType::new(DType::I32, vec![4, 5])),
        )
        .unwrap();
    g.nodes[i.index()].role = Role::Input;
    let y = match scatter {
        None => {
            let d = GatherDims {
                offset_dims: vec![2],
                collapsed_slice_dims: vec![1],
                start_index_map: vec![1],
                index_vector_dim: 2,
                slice_sizes: vec![1, 1, 6],
                operand_batching_dims: vec![0],
                start_indices_batching_dims: vec![0],
            };
            g.push("y", Op::GeneralGather(d), vec![x, i], None).unwrap()
        }
        Some(combine) => {
            let u = input(&mut g, "u", &[4, 5, 6], Role::Input);
            let dims = ScatterDims {
                update_window_dims: vec![2],
                inserted_window_dims: vec![1],
                scatter_dims_to_operand_dims: vec![1],
                index_vector_dim: 2,
                input_batching_dims: vec![0],
                scatter_indices_batching_dims: vec![0],
            };
            let op = Op::GeneralScatter { dims, combine };
            g.push("y", op, vec![x, i, u], None).unwrap()
        }
    };
    g.outputs.push(y);
    g
}

#[test]
fn general_gather_sharded_on_batching_and_whole_slice_dims_needs_no_collective() {
    let g = batched_lookup(None);
    let a = assign(
        &g,
        &mesh("dp=2,tp=2"),
        &[
            ("x", &["dp", "", "tp"]),
            ("i", &["dp", ""]),
            ("y", &["dp", "", "tp"]),
        ],
    );
    let p = check(&g, &a, false);
    assert_eq!(collectives(&p), vec![], "{}", p.dump());
    check(&g, &a, true);
    // The indices' other batch dim, split unevenly (5 positions over 2).
    let a = assign(
        &g,
        &mesh("tp=2"),
        &[("i", &["", "tp"]), ("y", &["", "tp", ""])],
    );
    both(&g, &a);
}

#[test]
fn general_gather_with_its_indexed_dim_sharded_gathers_the_operand_first() {
    let g = batched_lookup(None);
    let a = assign(&g, &mesh("tp=2"), &[("x", &["", "tp", ""])]);
    let p = check(&g, &a, false);
    assert_eq!(collectives(&p), vec![("all_gather", 1)], "{}", p.dump());
    check(&g, &a, true);
}

#[test]
fn general_scatter_add_split_over_its_updates_is_a_pending_sum() {
    let g = batched_lookup(Some(Some(shardc_ir::BinaryFn::Add)));
    let a = assign(
        &g,
        &mesh("dp=2,tp=2"),
        &[
            ("x", &["dp", "", ""]),
            ("i", &["dp", "tp"]),
            ("u", &["dp", "tp", ""]),
            ("y", &["dp", "", ""]),
        ],
    );
    let p = check(&g, &a, false);
    assert!(
        collectives(&p).iter().any(|(op, _)| *op == "all_reduce"),
        "{}",
        p.dump()
    );
    check(&g, &a, true);
}

#[test]
fn general_scatter_sharded_on_window_or_indexed_dims_matches_the_reference() {
    for combine in [
        None,
        Some(shardc_ir::BinaryFn::Add),
        Some(shardc_ir::BinaryFn::Max),
    ] {
        let g = batched_lookup(Some(combine));
        // The whole window dim: operand, updates and result split alike.
        let s = &["", "", "tp"][..];
        both(
            &g,
            &assign(&g, &mesh("tp=2"), &[("x", s), ("u", s), ("y", s)]),
        );
        // The indexed dim needs replication: gathered, scattered whole, split again.
        let s = &["", "tp", ""][..];
        both(&g, &assign(&g, &mesh("tp=2"), &[("x", s), ("y", s)]));
        // The updates' scatter dim: a pending sum for add, gathered first otherwise.
        both(
            &g,
            &assign(
                &g,
                &mesh("tp=2"),
                &[("i", &["", "tp"]), ("u", &["", "tp", ""])],
            ),
        );
    }
}

#[test]
fn indexed_dims_sliced_whole_pass_shardings_through_gather_and_scatter() {
    use shardc_ir::{BinaryFn, DType, GatherDims, Init, ScatterDims, TensorType};
    // Index vectors (row, col) into x[6, 4] with windows of one whole row: the col start clamps
    // to 0 (gather) or skips the window (scatter) unless it is 0, on every shard alike.
    let mut g = Graph::new("whole_rows");
    let x = input(&mut g, "x", &[6, 4], Role::Input);
    let i = g
        .push(
            "i",
            Op::Input {
                init: Some(Init::Index { high: 7 }),
            },
            vec![],
            Some(TensorType::new(DType::I32, vec![3, 2])),
        )
        .unwrap();
    g.nodes[i.index()].role = Role::Input;
    let u = input(&mut g, "u", &[3, 4], Role::Input);
    let gd = GatherDims {
        offset_dims: vec![1],
        collapsed_slice_dims: vec![0],
        start_index_map: vec![0, 1],
        index_vector_dim: 1,
        slice_sizes: vec![1, 4],
        operand_batching_dims: vec![],
        start_indices_batching_dims: vec![],
    };
    let y = g
        .push("y", Op::GeneralGather(gd), vec![x, i], None)
        .unwrap();
    let sd = ScatterDims {
        update_window_dims: vec![1],
        inserted_window_dims: vec![0],
        scatter_dims_to_operand_dims: vec![0, 1],
        index_vector_dim: 1,
        input_batching_dims: vec![],
        scatter_indices_batching_dims: vec![],
    };
    let op = Op::GeneralScatter {
        dims: sd,
        combine: Some(BinaryFn::Add),
    };
    let s = g.push("s", op, vec![x, i, u], None).unwrap();
    g.outputs = vec![y, s];
    let cols = &["", "tp"][..];
    let a = assign(
        &g,
        &mesh("tp=2"),
        &[("x", cols), ("u", cols), ("y", cols), ("s", cols)],
    );
    let p = check(&g, &a, false);
    assert_eq!(collectives(&p), vec![], "{}", p.dump());
    check(&g, &a, true);
}

/// Keys `x` (f32 `[6, 5]`) sorted along dim 1, with an iota riding along: `s0` the sorted
/// keys, `s1` the permutation (argsort).
fn argsort_graph() -> Graph {
    let mut g = Graph::new("argsort");
    let x = input(&mut g, "x", &[6, 5], Role::Input);
    let i = g
        .push(
            "i",
            Op::Iota { dim: 1 },
            vec![],
            Some(shardc_ir::TensorType::new(
                shardc_ir::DType::I32,
                vec![6, 5],
            )),
        )
        .unwrap();
    let sort = |output| Op::Sort {
        dim: 1,
        descending: true,
        stable: true,
        output,
    };
    let s0 = g.push("s0", sort(0), vec![x, i], None).unwrap();
    let s1 = g.push("s1", sort(1), vec![x, i], None).unwrap();
    g.outputs = vec![s0, s1];
    g
}

#[test]
fn sort_sharded_on_a_non_sort_dim_passes_through() {
    let g = argsort_graph();
    // 6 rows over 4 devices: shards of 2, the last one all padding.
    let s = &["dp", ""][..];
    let a = assign(
        &g,
        &mesh("dp=4"),
        &[("x", s), ("i", s), ("s0", s), ("s1", s)],
    );
    let p = check(&g, &a, false);
    assert_eq!(collectives(&p), vec![], "{}", p.dump());
    check(&g, &a, true);
}

#[test]
fn sort_sharded_on_its_sort_dim_gathers_the_rows_first() {
    let g = argsort_graph();
    let s = &["", "tp"][..];
    let a = assign(
        &g,
        &mesh("tp=2"),
        &[("x", s), ("i", s), ("s0", s), ("s1", s)],
    );
    let p = check(&g, &a, false);
    assert!(
        collectives(&p).iter().any(|(op, _)| *op == "all_gather"),
        "{}",
        p.dump()
    );
    check(&g, &a, true);
}

#[test]
fn reverse_split_on_a_kept_dim_or_a_reversed_dim_matches_the_reference() {
    let mut g = Graph::new("reverse");
    let x = input(&mut g, "x", &[8, 6], Role::Input);
    let r = g
        .push("r", Op::Reverse { dims: vec![1] }, vec![x], None)
        .unwrap();
    g.outputs = vec![r];
    // Rows split: each device reverses its own rows.
    both(
        &g,
        &assign(&g, &mesh("dp=4"), &[("x", &["dp", ""]), ("r", &["dp", ""])]),
    );
    // The reversed dim split (unevenly, 6 over 4): gathered first, then sliced back.
    both(
        &g,
        &assign(&g, &mesh("dp=4"), &[("x", &["", "dp"]), ("r", &["", "dp"])]),
    );
}
