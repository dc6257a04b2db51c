//! Data-movement ops on the reference executor against hand-computed values: pad, slices,
//! concatenation, dynamic slices, broadcast, transpose, reshape and iota.

mod common;

use common::{run_one, tensor, ty};
use shardc_ir::{DType, Graph, Op};
use shardc_runtime::execute;

#[test]
fn pad_handles_negative_edges_and_interior() {
    let x = tensor(DType::F32, &[2, 3], &[1., 2., 3., 4., 5., 6.]);
    // dim 0: one row of 9 before; dim 1: crop one at the front, interior 1, one after.
    let p = Op::Pad {
        low: vec![1, -1],
        high: vec![0, 1],
        interior: vec![0, 1],
        value: 9.0,
    };
    let out = run_one(p, &[x], None);
    assert_eq!(out.ty(), ty(DType::F32, &[3, 5]));
    // Dilated row 1 2 3 -> 1 9 2 9 3, cropped front -> 9 2 9 3, then 9 appended.
    assert_eq!(
        out.to_f64_vec(),
        vec![9., 9., 9., 9., 9., 9., 2., 9., 3., 9., 9., 5., 9., 6., 9.]
    );
}

#[test]
fn strided_slice_and_concatenate() {
    let x = tensor(
        DType::I32,
        &[2, 5],
        &[0., 1., 2., 3., 4., 5., 6., 7., 8., 9.],
    );
    let s = Op::Slice {
        start: vec![0, 1],
        limit: vec![2, 5],
        stride: vec![1, 2],
    };
    let out = run_one(s, std::slice::from_ref(&x), None);
    assert_eq!(out.to_f64_vec(), vec![1., 3., 6., 8.]);
    let y = tensor(DType::I32, &[1, 5], &[-1.; 5]);
    let out = run_one(Op::Concatenate { dim: 0 }, &[y.clone(), x], None);
    assert_eq!(out.ty(), ty(DType::I32, &[3, 5]));
    assert_eq!(&out.to_f64_vec()[..6], &[-1., -1., -1., -1., -1., 0.]);
}

#[test]
fn dynamic_slices_clamp_their_starts() {
    let x = tensor(DType::F32, &[4], &[0., 1., 2., 3.]);
    let ds = Op::DynamicSlice { sizes: vec![2] };
    let at = |v: f64| tensor(DType::I32, &[], &[v]);
    assert_eq!(
        run_one(ds.clone(), &[x.clone(), at(1.)], None).to_f64_vec(),
        vec![1., 2.]
    );
    assert_eq!(
        run_one(ds.clone(), &[x.clone(), at(3.)], None).to_f64_vec(),
        vec![2., 3.]
    );
    assert_eq!(
        run_one(ds, &[x.clone(), at(-5.)], None).to_f64_vec(),
        vec![0., 1.]
    );
    let u = tensor(DType::F32, &[2], &[8., 9.]);
    let dus = Op::DynamicUpdateSlice;
    assert_eq!(
        run_one(dus.clone(), &[x.clone(), u.clone(), at(1.)], None).to_f64_vec(),
        vec![0., 8., 9., 3.]
    );
    assert_eq!(
        run_one(dus, &[x, u, at(10.)], None).to_f64_vec(),
        vec![0., 1., 8., 9.]
    );
}

#[test]
fn broadcast_transpose_reshape_and_iota() {
    let x = tensor(DType::F32, &[2, 3], &[1., 2., 3., 4., 5., 6.]);
    // Operand dim 0 -> result dim 1, dim 1 -> result dim 0: a transposing broadcast.
    let b = run_one(
        Op::Broadcast { dims: vec![1, 0] },
        std::slice::from_ref(&x),
        Some(ty(DType::F32, &[3, 2])),
    );
    assert_eq!(b.to_f64_vec(), vec![1., 4., 2., 5., 3., 6.]);
    let b = run_one(
        Op::Broadcast { dims: vec![0, 2] },
        std::slice::from_ref(&x),
        Some(ty(DType::F32, &[2, 2, 3])),
    );
    assert_eq!(
        b.to_f64_vec(),
        vec![1., 2., 3., 1., 2., 3., 4., 5., 6., 4., 5., 6.]
    );
    let one = tensor(DType::F32, &[1, 3], &[7., 8., 9.]);
    let b = run_one(
        Op::Broadcast { dims: vec![0, 1] },
        &[one],
        Some(ty(DType::F32, &[2, 3])),
    );
    assert_eq!(b.to_f64_vec(), vec![7., 8., 9., 7., 8., 9.]);
    let t = run_one(
        Op::Transpose { perm: vec![1, 0] },
        std::slice::from_ref(&x),
        None,
    );
    assert_eq!(t.ty(), ty(DType::F32, &[3, 2]));
    assert_eq!(t.to_f64_vec(), vec![1., 4., 2., 5., 3., 6.]);
    let r = run_one(Op::Reshape, &[x], Some(ty(DType::F32, &[3, 2])));
    assert_eq!(r.to_f64_vec(), vec![1., 2., 3., 4., 5., 6.]);
    let mut g = Graph::new("iota");
    let i = g
        .push(
            "i",
            Op::Iota { dim: 0 },
            vec![],
            Some(ty(DType::I64, &[3, 2])),
        )
        .unwrap();
    g.outputs.push(i);
    assert_eq!(
        execute(&g, &[]).unwrap()[0].to_f64_vec(),
        vec![0., 0., 1., 1., 2., 2.]
    );
}
