//! Gradient samples of XLA's general gather and scatter. Their indices are constants that
//! repeat, run out of range (a gather clamps them, a scatter skips the window) and use batching
//! dims, so that every case of the rules is checked.

use shardc_ir::{BinaryFn, DType, GatherDims, Literal, Op, ScatterDims, TensorType, ValueId};

use super::{single, Sample, B};

/// Constant i32 indices of shape `dims`.
fn indices(b: &mut B, dims: &[u64], values: &[f64]) -> ValueId {
    b.op(
        Op::Constant {
            value: Literal::Dense(values.to_vec()),
        },
        vec![],
        Some(TensorType::new(DType::I32, dims.to_vec())),
    )
}

/// `y * y`, so that the operand's adjoint depends on what the scatter wrote.
fn square(b: &mut B, y: ValueId) -> ValueId {
    b.op(
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![y, y],
        None,
    )
}

pub(super) fn general_gather() -> Vec<Sample> {
    let mut out = Vec::new();
    // The corpus's two-element index vector in dim 0; (5, -3) clamps to (2, 0), (2, 1) repeats.
    let mut b = B::new();
    let x = b.p(&[3, 2, 2, 2]);
    let i = indices(&mut b, &[2, 3], &[2., 5., 2., 1., -3., 1.]);
    let d = GatherDims {
        offset_dims: vec![1, 2],
        collapsed_slice_dims: vec![0, 1],
        start_index_map: vec![0, 1],
        index_vector_dim: 0,
        slice_sizes: vec![1, 1, 2, 2],
        operand_batching_dims: vec![],
        start_indices_batching_dims: vec![],
    };
    let y = b.op(Op::GeneralGather(d), vec![x, i], None);
    out.push(single(
        "general_gather, index vector in dim 0, clamped",
        b.finish(y),
    ));
    // Batching dim 0, partial slices of 2 along the indexed dim 1 (4 clamps to 3, -1 to 0).
    let mut b = B::new();
    let x = b.p(&[2, 5, 3]);
    let i = indices(&mut b, &[2, 3], &[4., 1., 1., -1., 2., 3.]);
    let d = GatherDims {
        offset_dims: vec![2, 3],
        collapsed_slice_dims: vec![],
        start_index_map: vec![1],
        index_vector_dim: 2,
        slice_sizes: vec![1, 2, 3],
        operand_batching_dims: vec![0],
        start_indices_batching_dims: vec![0],
    };
    let y = b.op(Op::GeneralGather(d), vec![x, i], None);
    out.push(single(
        "general_gather, batching dims, partial slices",
        b.finish(y),
    ));
    out
}

pub(super) fn general_scatter() -> Vec<Sample> {
    let mut out = Vec::new();
    let rows = ScatterDims {
        update_window_dims: vec![1],
        inserted_window_dims: vec![0],
        scatter_dims_to_operand_dims: vec![0],
        index_vector_dim: 1,
        input_batching_dims: vec![],
        scatter_indices_batching_dims: vec![],
    };
    // Add: row 3 twice, -1 and 9 skipped (their updates get no gradient).
    let mut b = B::new();
    let x = b.p(&[4, 3]);
    let i = indices(&mut b, &[5, 1], &[3., -1., 1., 3., 9.]);
    let u = b.p(&[5, 3]);
    let y = b.op(
        Op::GeneralScatter {
            dims: rows.clone(),
            combine: Some(BinaryFn::Add),
        },
        vec![x, i, u],
        None,
    );
    let y = square(&mut b, y);
    out.push(single("general_scatter add, skipped windows", b.finish(y)));
    // Replace: 2x3 windows at rows 0 and 3; the one at row 4 does not fit and is skipped.
    let mut b = B::new();
    let x = b.p(&[5, 3]);
    let i = indices(&mut b, &[3, 1], &[0., 3., 4.]);
    let u = b.p(&[3, 2, 3]);
    let d = ScatterDims {
        update_window_dims: vec![1, 2],
        inserted_window_dims: vec![],
        ..rows
    };
    let y = b.op(
        Op::GeneralScatter {
            dims: d,
            combine: None,
        },
        vec![x, i, u],
        None,
    );
    let y = square(&mut b, y);
    out.push(single(
        "general_scatter replace, partial windows",
        b.finish(y),
    ));
    // Add with batching dim 0: each batch scatters into its own row (5 is skipped).
    let mut b = B::new();
    let x = b.p(&[2, 4]);
    let i = indices(&mut b, &[2, 3], &[1., 1., 3., 0., 5., 2.]);
    let u = b.p(&[2, 3]);
    let d = ScatterDims {
        update_window_dims: vec![],
        inserted_window_dims: vec![1],
        scatter_dims_to_operand_dims: vec![1],
        index_vector_dim: 2,
        input_batching_dims: vec![0],
        scatter_indices_batching_dims: vec![0],
    };
    let y = b.op(
        Op::GeneralScatter {
            dims: d,
            combine: Some(BinaryFn::Add),
        },
        vec![x, i, u],
        None,
    );
    let y = square(&mut b, y);
    out.push(single("general_scatter add, batching dims", b.finish(y)));
    out
}
