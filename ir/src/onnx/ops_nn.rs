//! Convolutional-network operators: `Conv`, `BatchNormalization` (inference form), pooling.

use super::build::{Ctx, Inputs};
use crate::error::Result;
use crate::graph::ValueId;
use crate::op::{BinaryFn, Conv, ConvDims, Literal, Op, ReduceFn, UnaryFn};
use crate::types::TensorType;

/// Per spatial dim `(low, high)` padding from `pads`/`auto_pad`, for windows of `kernel`
/// (dilated), `strides` over `input`.
fn padding(
    x: &Inputs,
    input: &[u64],
    kernel: &[u64],
    strides: &[u64],
    dilations: &[u64],
) -> Result<Vec<(i64, i64)>> {
    let n = input.len();
    let auto = x.attrs.string("auto_pad", "NOTSET");
    match auto.as_str() {
        "NOTSET" => {
            let pads = x.attrs.ints("pads").unwrap_or_else(|| vec![0; 2 * n]);
            if pads.len() != 2 * n {
                return Err(x.attrs.err(format!("pads {pads:?} need {} entries", 2 * n)));
            }
            Ok((0..n).map(|d| (pads[d], pads[d + n])).collect())
        }
        "VALID" => Ok(vec![(0, 0); n]),
        "SAME_UPPER" | "SAME_LOWER" => Ok((0..n)
            .map(|d| {
                let out = input[d].div_ceil(strides[d]);
                let k = (kernel[d] - 1) * dilations[d] + 1;
                let total = ((out - 1) * strides[d] + k).saturating_sub(input[d]) as i64;
                let (small, big) = (total / 2, total - total / 2);
                if auto == "SAME_UPPER" {
                    (small, big)
                } else {
                    (big, small)
                }
            })
            .collect()),
        other => Err(x.attrs.err(format!(
            "auto_pad `{other}` is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER"
        ))),
    }
}

fn spatial_attr(x: &Inputs, name: &str, n: usize) -> Result<Vec<u64>> {
    let v = x.attrs.ints(name).unwrap_or_else(|| vec![1; n]);
    if v.len() != n || v.iter().any(|&s| s < 1) {
        return Err(x
            .attrs
            .err(format!("{name} {v:?} must be {n} positive numbers")));
    }
    Ok(v.iter().map(|&s| s as u64).collect())
}

pub(crate) fn conv(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let input = cx.node(x.get(0)?)?;
    let kernel = cx.node(x.get(1)?)?;
    let (ti, tk) = (cx.g.ty(input).clone(), cx.g.ty(kernel).clone());
    if ti.rank() < 3 || tk.rank() != ti.rank() {
        return Err(x.attrs.err(format!(
            "input {ti} and kernel {tk} must be [N, C, spatial...] and [M, C/group, spatial...]"
        )));
    }
    let n = ti.rank() - 2;
    let strides = spatial_attr(x, "strides", n)?;
    let dilations = spatial_attr(x, "dilations", n)?;
    let padding = padding(x, &ti.dims()[2..], &tk.dims()[2..], &strides, &dilations)?;
    let conv = Conv {
        dims: ConvDims::nchw(n),
        window_strides: strides,
        padding,
        lhs_dilation: vec![1; n],
        rhs_dilation: dilations,
        feature_group_count: x.attrs.int("group", 1).max(1) as u64,
        batch_group_count: 1,
    };
    let y = cx.push("conv", Op::Convolution(conv), vec![input, kernel], None)?;
    match x.opt(2) {
        Some(b) => {
            let b = cx.node(b)?;
            let b = per_channel(cx, b, cx.g.ty(y).rank())?;
            cx.binary(BinaryFn::Add, y, b)
        }
        None => Ok(y),
    }
}

/// A `[C]` vector as `[1, C, 1, ...]`, to broadcast over an NC... tensor of rank `rank`.
fn per_channel(cx: &mut Ctx, v: ValueId, rank: usize) -> Result<ValueId> {
    let c = cx.g.ty(v).shape.elements();
    let mut dims = vec![1; rank];
    dims[1] = c;
    cx.reshape(v, &dims)
}

/// Inference-mode batch normalization: `(x - mean) * scale / sqrt(var + eps) + bias`, with the
/// per-channel factors computed in the graph (they are parameters).
pub(crate) fn batch_norm(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    if x.attrs.int("training_mode", 0) != 0 {
        return Err(x
            .attrs
            .err("training_mode=1 is not supported (export the model in eval mode)"));
    }
    let v = cx.node(x.get(0)?)?;
    let rank = cx.g.ty(v).rank();
    let mut ch = Vec::new();
    for i in 1..5 {
        let p = cx.node(x.get(i)?)?;
        ch.push(per_channel(cx, p, rank)?);
    }
    let (scale, bias, mean, var) = (ch[0], ch[1], ch[2], ch[3]);
    let eps = f64::from(x.attrs.float("epsilon", 1e-5));
    let ve = cx.binary_scalar(BinaryFn::Add, var, eps)?;
    let inv = cx.unary(UnaryFn::Rsqrt, ve)?;
    let factor = cx.push(
        "factor",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![scale, inv],
        None,
    )?;
    let d = cx.binary(BinaryFn::Sub, v, mean)?;
    let y = cx.binary(BinaryFn::Mul, d, factor)?;
    cx.binary(BinaryFn::Add, y, bias)
}

/// `MaxPool` and `AveragePool` as the elementwise max or sum of one strided slice per kernel
/// offset of the padded input (shardc's op set has no windowed reduction; kernels are small).
pub(crate) fn pool(cx: &mut Ctx, op: &str, x: &Inputs) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let ty = cx.g.ty(v).clone();
    if ty.rank() < 3 {
        return Err(x
            .attrs
            .err(format!("input {ty} must be [N, C, spatial...]")));
    }
    let n = ty.rank() - 2;
    let kernel = spatial_attr(x, "kernel_shape", n)?;
    let strides = spatial_attr(x, "strides", n)?;
    let dil = spatial_attr(x, "dilations", n)?;
    let mut pads = padding(x, &ty.dims()[2..], &kernel, &strides, &dil)?;
    let ceil = x.attrs.int("ceil_mode", 0) != 0;
    let mut out = Vec::with_capacity(n);
    for d in 0..n {
        let size = ty.dims()[2 + d] as i64 + pads[d].0 + pads[d].1;
        let k = ((kernel[d] - 1) * dil[d] + 1) as i64;
        let s = strides[d] as i64;
        let mut o = if ceil {
            (size - k + s - 1) / s + 1
        } else {
            (size - k) / s + 1
        };
        // A last window that starts in the right padding is dropped (as PyTorch does).
        if ceil && (o - 1) * s >= ty.dims()[2 + d] as i64 + pads[d].0 {
            o -= 1;
        }
        if o < 1 {
            return Err(x.attrs.err(format!("the window does not fit in {ty}")));
        }
        // Extra high padding so every window of the ceil mode is in range.
        let need = (o - 1) * s + k - size;
        if need > 0 {
            pads[d].1 += need;
        }
        out.push(o as u64);
    }
    let max = op == "MaxPool";
    let fill = if max { f64::from(f32::MIN) } else { 0.0 };
    let low: Vec<i64> = [0, 0].into_iter().chain(pads.iter().map(|p| p.0)).collect();
    let high: Vec<i64> = [0, 0].into_iter().chain(pads.iter().map(|p| p.1)).collect();
    let padded = if low.iter().chain(&high).all(|&p| p == 0) {
        v
    } else {
        cx.push(
            "pad",
            Op::Pad {
                low,
                high,
                interior: vec![0; ty.rank()],
                value: fill,
            },
            vec![v],
            None,
        )?
    };
    let mut acc: Option<ValueId> = None;
    let offsets: usize = kernel.iter().product::<u64>() as usize;
    for k in 0..offsets {
        let mut rem = k as u64;
        let mut start = vec![0, 0];
        let mut limit = ty.dims()[..2].to_vec();
        let mut stride = vec![1, 1];
        for d in (0..n).rev() {
            let off = (rem % kernel[d]) * dil[d];
            rem /= kernel[d];
            start.insert(2, off);
            limit.insert(2, off + (out[d] - 1) * strides[d] + 1);
            stride.insert(2, strides[d]);
        }
        let w = cx.push(
            "window",
            Op::Slice {
                start,
                limit,
                stride,
            },
            vec![padded],
            None,
        )?;
        acc = Some(match acc {
            None => w,
            Some(a) => cx.push(
                "pool",
                Op::Binary {
                    func: if max { BinaryFn::Max } else { BinaryFn::Add },
                },
                vec![a, w],
                None,
            )?,
        });
    }
    let acc = acc.ok_or_else(|| x.attrs.err("empty kernel"))?;
    if max {
        return Ok(acc);
    }
    let include_pad = x.attrs.int("count_include_pad", 0) != 0;
    let counts = window_counts(
        &ty.dims()[2..],
        &kernel,
        &strides,
        &dil,
        &pads,
        &out,
        include_pad,
    );
    let mut cdims = vec![1, 1];
    cdims.extend(&out);
    let c = cx.push(
        "count",
        Op::Constant {
            value: Literal::Dense(counts),
        },
        vec![],
        Some(TensorType::new(ty.dtype, cdims)),
    )?;
    cx.binary(BinaryFn::Div, acc, c)
}

/// How many elements each output window of an average pool divides by.
fn window_counts(
    input: &[u64],
    kernel: &[u64],
    strides: &[u64],
    dil: &[u64],
    pads: &[(i64, i64)],
    out: &[u64],
    include_pad: bool,
) -> Vec<f64> {
    let total: u64 = out.iter().product();
    (0..total)
        .map(|i| {
            let mut rem = i;
            let mut count = 1u64;
            for d in (0..out.len()).rev() {
                let o = (rem % out[d]) as i64;
                rem /= out[d];
                let first = o * strides[d] as i64 - pads[d].0;
                // With count_include_pad every window counts its whole kernel.
                let c = if include_pad {
                    kernel[d]
                } else {
                    (0..kernel[d] as i64)
                        .map(|k| first + k * dil[d] as i64)
                        .filter(|&p| p >= 0 && p < input[d] as i64)
                        .count() as u64
                };
                count *= c;
            }
            count as f64
        })
        .collect()
}

pub(crate) fn global_average_pool(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let ty = cx.g.ty(v).clone();
    let dims: Vec<usize> = (2..ty.rank()).collect();
    let n: u64 = dims.iter().map(|&d| ty.dims()[d]).product();
    let s = cx.reduce(ReduceFn::Sum, v, &dims, true)?;
    cx.binary_scalar(BinaryFn::Div, s, n as f64)
}
