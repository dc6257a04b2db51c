//! Gradient samples of `sort`. The keys are a small parameter plus distinct integers a whole unit
//! apart, so that the finite differences never reorder them (the permutation is locally
//! constant, which the gradient rule assumes).

use shardc_ir::{BinaryFn, DType, Init, Literal, Op, TensorType, ValueId};

use super::{single, Sample, B};

/// Keys of shape `dims`: a parameter in `[0, 0.5)` plus the distinct integers `order`.
fn keys(b: &mut B, dims: &[u64], order: &[f64]) -> ValueId {
    let p = b.param_init(
        dims,
        Init::Uniform {
            low: 0.0,
            high: 0.5,
        },
    );
    let c = b.op(
        Op::Constant {
            value: Literal::Dense(order.to_vec()),
        },
        vec![],
        Some(B::f64t(dims)),
    );
    b.op(
        Op::Binary {
            func: BinaryFn::Add,
        },
        vec![p, c],
        None,
    )
}

fn sort(dim: usize, descending: bool, output: usize) -> Op {
    Op::Sort {
        dim,
        descending,
        stable: true,
        output,
    }
}

pub(super) fn sort_samples() -> Vec<Sample> {
    let mut out = Vec::new();
    // The sorted keys themselves, along the last dim.
    let mut b = B::new();
    let k = keys(
        &mut b,
        &[3, 4],
        &[3., 0., 2., 1., 7., 9., 8., 6., 4., 5., 11., 10.],
    );
    let y = b.op(sort(1, false, 0), vec![k], None);
    out.push(single("sort, keys ascending along dim 1", b.finish(y)));
    // Values permuted along a middle dim, descending; an integer operand rides along and the
    // keys get no gradient from this output.
    let mut b = B::new();
    let k = keys(
        &mut b,
        &[2, 3, 2],
        &[5., 0., 4., 2., 6., 1., 9., 3., 7., 4., 8., -3.],
    );
    let v = b.p(&[2, 3, 2]);
    let i = b.op(
        Op::Iota { dim: 1 },
        vec![],
        Some(TensorType::new(DType::I32, vec![2, 3, 2])),
    );
    let y = b.op(sort(1, true, 1), vec![k, v, i], None);
    out.push(single(
        "sort, values descending along a middle dim",
        b.finish(y),
    ));
    // Both results used: the keys' and the values' adjoints each come from their own output.
    let mut b = B::new();
    let k = keys(&mut b, &[5], &[2., 4., 0., 3., 1.]);
    let v = b.p(&[5]);
    let y0 = b.op(sort(0, false, 0), vec![k, v], None);
    let y1 = b.op(sort(0, false, 1), vec![k, v], None);
    let y = b.op(
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![y0, y1],
        None,
    );
    out.push(single("sort, keys times values", b.finish(y)));
    out
}
