//! XLA's general gather and scatter on the reference executor, against hand-computed values:
//! multi-index starts, clamping (gather), skipped windows (scatter), batching dims, combiners.

mod common;

use common::{input, run_one, tensor, ty};
use shardc_ir::{BinaryFn, DType, GatherDims, Graph, Op, ScatterDims, TensorType};
use shardc_runtime::Tensor;

/// `f(i)` for every row-major position of `dims`.
fn filled(dtype: DType, dims: &[u64], f: impl Fn(&[u64]) -> f64) -> Tensor {
    let mut vals = Vec::new();
    let n: u64 = dims.iter().product();
    for mut flat in 0..n {
        let mut ix = vec![0u64; dims.len()];
        for d in (0..dims.len()).rev() {
            ix[d] = flat % dims[d];
            flat /= dims[d];
        }
        vals.push(f(&ix));
    }
    tensor(dtype, dims, &vals)
}

fn gather_dims(
    offset: &[usize],
    collapsed: &[usize],
    map: &[usize],
    ivd: usize,
    sizes: &[u64],
) -> GatherDims {
    GatherDims {
        offset_dims: offset.to_vec(),
        collapsed_slice_dims: collapsed.to_vec(),
        start_index_map: map.to_vec(),
        index_vector_dim: ivd,
        slice_sizes: sizes.to_vec(),
        operand_batching_dims: vec![],
        start_indices_batching_dims: vec![],
    }
}

fn scatter_dims(window: &[usize], inserted: &[usize], map: &[usize], ivd: usize) -> ScatterDims {
    ScatterDims {
        update_window_dims: window.to_vec(),
        inserted_window_dims: inserted.to_vec(),
        scatter_dims_to_operand_dims: map.to_vec(),
        index_vector_dim: ivd,
        input_batching_dims: vec![],
        scatter_indices_batching_dims: vec![],
    }
}

#[test]
fn gather_with_a_two_element_index_vector_in_dim_0_takes_2x2_slices_and_clamps() {
    // The corpus's parallel gather: offset_dims={1,2}, collapsed_slice_dims={0,1},
    // start_index_map={0,1}, index_vector_dim=0, slice_sizes={1,1,2,2}.
    let x = filled(DType::F32, &[3, 2, 2, 2], |i| {
        (i[0] * 100 + i[1] * 10 + i[2] * 2 + i[3]) as f64
    });
    // indices[k, j]: element k of index vector j; vector 0 = (2, 1), vector 1 = (5, -3),
    // which clamps to (2, 0).
    let idx = tensor(DType::I32, &[2, 2], &[2., 5., 1., -3.]);
    let d = gather_dims(&[1, 2], &[0, 1], &[0, 1], 0, &[1, 1, 2, 2]);
    let out = run_one(Op::GeneralGather(d), &[x, idx], None);
    assert_eq!(out.ty(), ty(DType::F32, &[2, 2, 2]));
    assert_eq!(
        out.to_f64_vec(),
        vec![210., 211., 212., 213., 200., 201., 202., 203.]
    );
}

#[test]
fn gather_with_two_batch_dims_keeps_their_order_in_the_result() {
    // offset_dims={2,3} as in the corpus, indices [2, 2, 3] with the vector in dim 0.
    let x = filled(DType::F64, &[3, 2, 2, 2], |i| {
        (i[0] * 100 + i[1] * 10 + i[2] * 2 + i[3]) as f64
    });
    // Vectors at (j0, j1): (0,0)->(0,0), (0,1)->(1,1), (0,2)->(2,0), (1,0)->(2,1),
    // (1,1)->(0,1), (1,2)->(1,0). indices[0] holds the first elements, indices[1] the second.
    let idx = tensor(
        DType::I64,
        &[2, 2, 3],
        &[0., 1., 2., 2., 0., 1., 0., 1., 0., 1., 1., 0.],
    );
    let d = gather_dims(&[2, 3], &[0, 1], &[0, 1], 0, &[1, 1, 2, 2]);
    let out = run_one(Op::GeneralGather(d), &[x, idx], None);
    assert_eq!(out.ty(), ty(DType::F64, &[2, 3, 2, 2]));
    let starts = [0., 110., 200., 210., 10., 100.];
    let want: Vec<f64> = starts
        .iter()
        .flat_map(|s| [0., 1., 2., 3.].map(|o| s + o))
        .collect();
    assert_eq!(out.to_f64_vec(), want);
}

#[test]
fn gather_of_partial_slices_clamps_each_start_so_the_slice_fits() {
    let x = tensor(DType::I32, &[5], &[0., 1., 2., 3., 4.]);
    let idx = tensor(DType::I32, &[3, 1], &[1., 4., -2.]);
    let d = gather_dims(&[1], &[], &[0], 1, &[3]);
    let out = run_one(Op::GeneralGather(d), &[x, idx], None);
    assert_eq!(out.ty(), ty(DType::I32, &[3, 3]));
    // Starts 1, 4 -> 2 (5 - 3), -2 -> 0.
    assert_eq!(out.to_f64_vec(), vec![1., 2., 3., 2., 3., 4., 0., 1., 2.]);
}

#[test]
fn gather_with_explicit_batching_dims_reads_each_batch_from_its_own_operand_row() {
    let x = filled(DType::F32, &[2, 3, 2], |i| {
        (i[0] * 100 + i[1] * 10 + i[2]) as f64
    });
    // idx[b, j]: the row of batch b to read; the index vector dim is implicit (2).
    let idx = tensor(DType::I32, &[2, 2], &[2., 0., 1., 1.]);
    let d = GatherDims {
        operand_batching_dims: vec![0],
        start_indices_batching_dims: vec![0],
        ..gather_dims(&[2], &[1], &[1], 2, &[1, 1, 2])
    };
    let out = run_one(Op::GeneralGather(d), &[x, idx], None);
    assert_eq!(out.ty(), ty(DType::F32, &[2, 2, 2]));
    assert_eq!(
        out.to_f64_vec(),
        vec![20., 21., 0., 1., 110., 111., 110., 111.]
    );
}

#[test]
fn scatter_add_skips_windows_whose_start_is_out_of_bounds() {
    let x = tensor(DType::F32, &[4, 2], &[1.; 8]);
    let idx = tensor(DType::I32, &[4, 1], &[3., -1., 4., 3.]);
    let upd = tensor(DType::F32, &[4, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]);
    let op = Op::GeneralScatter {
        dims: scatter_dims(&[1], &[0], &[0], 1),
        combine: Some(BinaryFn::Add),
    };
    let out = run_one(op, &[x, idx, upd], None);
    // Row 3 gets (1,2) and (7,8); -1 and 4 are skipped, not clamped.
    assert_eq!(out.to_f64_vec(), vec![1., 1., 1., 1., 1., 1., 9., 11.]);
}

#[test]
fn scatter_replace_skips_a_window_that_would_run_past_the_end_whole() {
    let x = tensor(DType::F64, &[5], &[0.; 5]);
    let idx = tensor(DType::I32, &[3, 1], &[0., 3., 4.]);
    let upd = tensor(DType::F64, &[3, 2], &[1., 2., 3., 4., 5., 6.]);
    let op = Op::GeneralScatter {
        dims: scatter_dims(&[1], &[], &[0], 1),
        combine: None,
    };
    let out = run_one(op, &[x, idx, upd], None);
    // The window at 4 would cover [4, 6): skipped entirely, not written partly.
    assert_eq!(out.to_f64_vec(), vec![1., 2., 0., 3., 4.]);
}

#[test]
fn scatter_combines_repeated_indices_with_max_min_mul_and_add() {
    let x = tensor(DType::I32, &[3], &[5., 5., 5.]);
    let idx = tensor(DType::I32, &[4], &[0., 2., 0., 1.]);
    let upd = tensor(DType::I32, &[4], &[7., 1., 3., 9.]);
    let dims = scatter_dims(&[], &[0], &[0], 1);
    let cases = [
        (Some(BinaryFn::Max), [7., 9., 5.]),
        (Some(BinaryFn::Min), [3., 5., 1.]),
        (Some(BinaryFn::Mul), [105., 45., 5.]),
        (Some(BinaryFn::Add), [15., 14., 6.]),
    ];
    for (combine, want) in cases {
        let op = Op::GeneralScatter {
            dims: dims.clone(),
            combine,
        };
        let out = run_one(op, &[x.clone(), idx.clone(), upd.clone()], None);
        assert_eq!(out.to_f64_vec(), want.to_vec(), "{combine:?}");
    }
}

#[test]
fn scatter_with_explicit_batching_dims_writes_each_batch_into_its_own_row() {
    let x = tensor(DType::F32, &[2, 3], &[0.; 6]);
    let idx = tensor(DType::I32, &[2, 2], &[2., 2., 0., 5.]);
    let upd = tensor(DType::F32, &[2, 2], &[1., 2., 3., 4.]);
    let op = Op::GeneralScatter {
        dims: ScatterDims {
            input_batching_dims: vec![0],
            scatter_indices_batching_dims: vec![0],
            ..scatter_dims(&[], &[1], &[1], 2)
        },
        combine: Some(BinaryFn::Add),
    };
    let out = run_one(op, &[x, idx, upd], None);
    // Batch 0 adds 1 and 2 at column 2; batch 1 adds 3 at column 0 and skips column 5.
    assert_eq!(out.to_f64_vec(), vec![0., 0., 3., 3., 0., 0.]);
}

#[test]
fn scatter_with_a_two_element_index_vector_writes_2x2_windows() {
    let x = tensor(DType::F32, &[3, 2, 2, 2], &[0.; 24]);
    let idx = tensor(DType::I32, &[2, 2], &[2., 0., 1., 0.]);
    let upd = filled(DType::F32, &[2, 2, 2], |i| {
        (i[0] * 4 + i[1] * 2 + i[2] + 1) as f64
    });
    let op = Op::GeneralScatter {
        dims: scatter_dims(&[1, 2], &[0, 1], &[0, 1], 0),
        combine: None,
    };
    let out = run_one(op, &[x, idx, upd], None).to_f64_vec();
    // x[2,1,:,:] = 1..4 (flat 20..24), x[0,0,:,:] = 5..8 (flat 0..4).
    let mut want = vec![0.; 24];
    want[20..24].copy_from_slice(&[1., 2., 3., 4.]);
    want[0..4].copy_from_slice(&[5., 6., 7., 8.]);
    assert_eq!(out, want);
}

#[test]
fn bad_dimension_numbers_are_rejected_with_what_was_expected() {
    let mut g = Graph::new("bad");
    let x = input(&mut g, "x", DType::F32, &[4, 3]);
    let i = input(&mut g, "i", DType::I32, &[2]);
    let bad = gather_dims(&[1], &[0], &[0], 1, &[1, 4]);
    let err = g
        .push("g", Op::GeneralGather(bad), vec![x, i], None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("slice_sizes[1] = 4 exceeds operand dim 1"),
        "{err}"
    );
    let t: TensorType = ty(DType::F32, &[4, 3]);
    let u = input(&mut g, "u", DType::F32, &[2, 3]);
    let op = Op::GeneralScatter {
        dims: scatter_dims(&[1], &[0], &[0], 1),
        combine: Some(BinaryFn::Sub),
    };
    let err = g
        .push("s", op, vec![x, i, u], Some(t))
        .unwrap_err()
        .to_string();
    assert!(err.contains("add, mul, max or min"), "{err}");
}

#[test]
fn gather_takes_rows_and_clamps_out_of_range_indices() {
    let table = tensor(DType::F32, &[4, 2], &[0., 1., 10., 11., 20., 21., 30., 31.]);
    let idx = tensor(DType::I32, &[2, 2], &[2., 0., -1., 9.]);
    let out = run_one(Op::Gather { axis: 0 }, &[table.clone(), idx.clone()], None);
    assert_eq!(out.ty(), ty(DType::F32, &[2, 2, 2]));
    assert_eq!(out.to_f64_vec(), vec![20., 21., 0., 1., 0., 1., 30., 31.]);
    // Along axis 1: result dims are x[..1], idx, x[2..] = [4, 2, 2].
    let out = run_one(Op::Gather { axis: 1 }, &[table, idx], None);
    assert_eq!(out.ty(), ty(DType::F32, &[4, 2, 2]));
    assert_eq!(&out.to_f64_vec()[..4], &[1., 0., 0., 1.]);
}

#[test]
fn scatter_add_accumulates_repeated_indices() {
    let x = tensor(DType::F32, &[3, 2], &[1.; 6]);
    let idx = tensor(DType::I64, &[4], &[2., 0., 2., 7.]);
    let upd = tensor(DType::F32, &[4, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]);
    let out = run_one(Op::ScatterAdd { axis: 0 }, &[x, idx, upd], None);
    // Row 0 gets (3,4); row 2 gets (1,2)+(5,6)+(7,8) (7 clamps to 2).
    assert_eq!(out.to_f64_vec(), vec![4., 5., 1., 1., 14., 17.]);
}
