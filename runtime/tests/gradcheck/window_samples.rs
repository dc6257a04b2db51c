//! Gradient samples of the window ops (`reduce_window`, `select_and_scatter`), of
//! `bitcast_convert`, and of the integer-only elementwise functions (which have no gradient:
//! their samples check that the float path around them is right and that they run).

use shardc_ir::{BinaryFn, DType, Op, ReduceFn, TensorType, ValueId, Window};

use super::{single, Sample, B};

fn mul(b: &mut B, x: ValueId, y: ValueId) -> ValueId {
    b.op(
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![x, y],
        None,
    )
}

fn as_f64(b: &mut B, i: ValueId, dims: &[u64]) -> ValueId {
    b.op(Op::Convert, vec![i], Some(B::f64t(dims)))
}

/// `x * op(x)`.
pub(super) fn times_self(b: &mut B, op: &Op) -> ValueId {
    let x = b.p(&[2, 3]);
    let f = b.op(op.clone(), vec![x], None);
    mul(b, x, f)
}

/// `x * f64(op(i))` for integers `i` in `[0, 64)`.
pub(super) fn int_unary(b: &mut B, op: &Op) -> ValueId {
    let x = b.p(&[2, 3]);
    let i = b.idx(&[2, 3], 64);
    let r = b.op(op.clone(), vec![i], None);
    let f = as_f64(b, r, &[2, 3]);
    mul(b, x, f)
}

/// `x * f64(op(i, j))` for integers `i` in `[0, 64)`, shift amounts `j` in `[0, 8)`.
pub(super) fn int_binary(b: &mut B, op: &Op) -> ValueId {
    let x = b.p(&[2, 3]);
    let (i, j) = (b.idx(&[2, 3], 64), b.idx(&[2, 3], 8));
    let r = b.op(op.clone(), vec![i, j], None);
    let f = as_f64(b, r, &[2, 3]);
    mul(b, x, f)
}

fn padded(size: Vec<u64>, stride: Vec<u64>, padding: Vec<(u64, u64)>) -> Window {
    Window {
        padding,
        ..Window::simple(size, stride)
    }
}

pub(super) fn samples(op: &Op) -> Vec<Sample> {
    match op {
        Op::BitcastConvert => {
            // The bits of 1.0 plus small integers, read as f64 (just above 1), scale a parameter.
            let mut b = B::new();
            let x = b.p(&[2, 3]);
            let i = b.idx(&[2, 3], 1 << 20);
            let wide = b.op(
                Op::Convert,
                vec![i],
                Some(TensorType::new(DType::I64, vec![2, 3])),
            );
            let one_bits = b.op(
                Op::Constant {
                    value: shardc_ir::Literal::Splat(4_607_182_418_800_017_408.0),
                },
                vec![],
                Some(TensorType::new(DType::I64, vec![2, 3])),
            );
            let wide = b.op(
                Op::Binary {
                    func: BinaryFn::Add,
                },
                vec![wide, one_bits],
                None,
            );
            let f = b.op(Op::BitcastConvert, vec![wide], Some(B::f64t(&[2, 3])));
            let y = mul(&mut b, x, f);
            vec![single("bitcast_convert", b.finish(y))]
        }
        Op::ReduceWindow { .. } => {
            let windows = [
                (
                    "max pool 2x2",
                    ReduceFn::Max,
                    Window::simple(vec![1, 2, 2], vec![1, 2, 2]),
                    f64::NEG_INFINITY,
                ),
                (
                    "max pool 3x3 stride 1 padded",
                    ReduceFn::Max,
                    padded(vec![1, 3, 3], vec![1, 1, 1], vec![(0, 0), (1, 1), (1, 1)]),
                    f64::NEG_INFINITY,
                ),
                (
                    "min pool 2x2",
                    ReduceFn::Min,
                    Window::simple(vec![1, 2, 2], vec![1, 2, 2]),
                    f64::INFINITY,
                ),
                (
                    "cumulative sum",
                    ReduceFn::Sum,
                    padded(vec![1, 1, 4], vec![1, 1, 1], vec![(0, 0), (0, 0), (3, 0)]),
                    0.0,
                ),
                (
                    "sum pool 3 stride 2",
                    ReduceFn::Sum,
                    padded(vec![1, 3, 1], vec![1, 2, 1], vec![(0, 0), (1, 0), (0, 0)]),
                    0.0,
                ),
            ];
            windows
                .into_iter()
                .map(|(what, func, window, init)| {
                    let mut b = B::new();
                    let x = b.p(&[2, 4, 4]);
                    let op = Op::ReduceWindow { func, window, init };
                    let r = b.op(op, vec![x], None);
                    let y = mul(&mut b, r, r);
                    single(format!("reduce_window {what}"), b.finish(y))
                })
                .collect()
        }
        Op::SelectAndScatter { .. } => {
            // The gradient of a 2x2 max pool, scaled by a parameter so the operand's picks
            // and the source both matter.
            let mut b = B::new();
            let x = b.p(&[2, 4, 4]);
            let src = b.p(&[2, 2, 2]);
            let op = Op::SelectAndScatter {
                window: Window::simple(vec![1, 2, 2], vec![1, 2, 2]),
                select: shardc_ir::CompareDir::Ge,
                init: 0.0,
            };
            let s = b.op(op, vec![x, src], None);
            let y = mul(&mut b, s, s);
            vec![single("select_and_scatter", b.finish(y))]
        }
        _ => unreachable!("window_samples::samples called on {}", op.name()),
    }
}
