//! `convolution`: N-d, strided, padded, dilated, with feature and batch groups (XLA semantics).

use super::{with_declared_dtype_check, TypeCtx};
use crate::autodiff::{GradCtx, Grads};
use crate::dtype::DType;
use crate::error::Result;
use crate::factors::{FactorKind, OpFactors};
use crate::graph::ValueId;
use crate::op::{Conv, ConvDims, Literal, Op};
use crate::types::TensorType;

/// Output extent of one spatial dim (XLA's formula).
pub(crate) fn output_extent(
    input: u64,
    kernel: u64,
    stride: u64,
    pad: (i64, i64),
    lhs_dil: u64,
    rhs_dil: u64,
) -> Option<u64> {
    // Checked: sizes and dilations near u64::MAX overflow even i128.
    let dilate = |n: u64, dil: u64| -> Option<i128> {
        if n == 0 {
            Some(0)
        } else {
            (n as i128 - 1).checked_mul(dil as i128)?.checked_add(1)
        }
    };
    let padded = dilate(input, lhs_dil)?.checked_add(pad.0 as i128 + pad.1 as i128)?;
    let dilated_k = dilate(kernel, rhs_dil)?;
    if padded < 0 || stride == 0 {
        return None;
    }
    if padded < dilated_k {
        return Some(0);
    }
    u64::try_from((padded - dilated_k) / stride as i128 + 1).ok()
}

pub(super) fn infer(c: &Conv, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
    cx.expect_operands(2)?;
    let (x, k) = (cx.operands[0], cx.operands[1]);
    let d = &c.dims;
    let n = d.input_spatial.len();
    if x.dtype != k.dtype {
        return Err(format!("input {x} and kernel {k} must have one dtype"));
    }
    if x.rank() != n + 2
        || k.rank() != n + 2
        || d.kernel_spatial.len() != n
        || d.output_spatial.len() != n
    {
        return Err(format!(
            "input, kernel and output need rank {} for {n} spatial dims",
            n + 2
        ));
    }
    for (what, v) in [
        ("window_strides", c.window_strides.len()),
        ("padding", c.padding.len()),
        ("lhs_dilation", c.lhs_dilation.len()),
        ("rhs_dilation", c.rhs_dilation.len()),
    ] {
        if v != n {
            return Err(format!("{what} needs {n} entries, got {v}"));
        }
    }
    let mut input_dims = vec![d.input_batch, d.input_feature];
    input_dims.extend(&d.input_spatial);
    super::check_dims("input", &input_dims, x.rank())?;
    let mut kernel_dims = vec![d.kernel_input_feature, d.kernel_output_feature];
    kernel_dims.extend(&d.kernel_spatial);
    super::check_dims("kernel", &kernel_dims, k.rank())?;
    let mut out_dims = vec![d.output_batch, d.output_feature];
    out_dims.extend(&d.output_spatial);
    super::check_dims("output", &out_dims, n + 2)?;
    let (g, gb) = (c.feature_group_count, c.batch_group_count);
    if g == 0 || gb == 0 || (g > 1 && gb > 1) {
        return Err(
            "feature_group_count and batch_group_count must be >= 1, and not both > 1".into(),
        );
    }
    if c.window_strides.contains(&0) || c.lhs_dilation.contains(&0) || c.rhs_dilation.contains(&0) {
        return Err("strides and dilations must be >= 1".into());
    }
    let cin = x.dims()[d.input_feature];
    let cout = k.dims()[d.kernel_output_feature];
    let batch = x.dims()[d.input_batch];
    if k.dims()[d.kernel_input_feature].checked_mul(g) != Some(cin) {
        return Err(format!(
            "input features ({cin}) must equal kernel input features ({}) x feature_group_count ({g})",
            k.dims()[d.kernel_input_feature]
        ));
    }
    if cout % g != 0 || cout % gb != 0 {
        return Err(format!(
            "kernel output features ({cout}) must divide by the group counts"
        ));
    }
    if batch % gb != 0 {
        return Err(format!(
            "batch ({batch}) must divide by batch_group_count ({gb})"
        ));
    }
    let mut out = vec![0u64; n + 2];
    out[d.output_batch] = batch / gb;
    out[d.output_feature] = cout;
    for s in 0..n {
        out[d.output_spatial[s]] = output_extent(
            x.dims()[d.input_spatial[s]],
            k.dims()[d.kernel_spatial[s]],
            c.window_strides[s],
            c.padding[s],
            c.lhs_dilation[s],
            c.rhs_dilation[s],
        )
        .ok_or_else(|| {
            format!("spatial dim {s} has a negative or overflowing size after padding and dilation")
        })?;
    }
    with_declared_dtype_check(cx, TensorType::new(x.dtype, out))
}

pub(super) fn factors(c: &Conv, operands: &[&TensorType], result: &TensorType) -> OpFactors {
    let (x, k) = (operands[0], operands[1]);
    let d = &c.dims;
    let mut f = OpFactors {
        flops_per_point: 2,
        ..Default::default()
    };
    let mut xs = vec![Vec::new(); x.rank()];
    let mut ks = vec![Vec::new(); k.rank()];
    let mut rs = vec![Vec::new(); result.rank()];
    let (g, gb) = (c.feature_group_count, c.batch_group_count);
    let cin_per = k.dims()[d.kernel_input_feature];
    let cout = k.dims()[d.kernel_output_feature];
    if g > 1 {
        let gi = f.add(g, FactorKind::PassThrough);
        xs[d.input_feature].push(gi);
        ks[d.kernel_output_feature].push(gi);
        rs[d.output_feature].push(gi);
    }
    if gb > 1 {
        let gi = f.add(gb, FactorKind::PassThrough);
        xs[d.input_batch].push(gi);
        ks[d.kernel_output_feature].push(gi);
        rs[d.output_feature].push(gi);
    }
    let b = f.add(result.dims()[d.output_batch], FactorKind::PassThrough);
    xs[d.input_batch].push(b);
    rs[d.output_batch].push(b);
    let ci = f.add(cin_per, FactorKind::Reduction);
    xs[d.input_feature].push(ci);
    ks[d.kernel_input_feature].push(ci);
    let co = f.add(cout / (g * gb), FactorKind::PassThrough);
    ks[d.kernel_output_feature].push(co);
    rs[d.output_feature].push(co);
    for s in 0..d.input_spatial.len() {
        let kernel = k.dims()[d.kernel_spatial[s]];
        let pointwise = kernel == 1
            && c.window_strides[s] == 1
            && c.padding[s] == (0, 0)
            && c.lhs_dilation[s] == 1
            && c.rhs_dilation[s] == 1;
        let kind = if pointwise {
            FactorKind::PassThrough
        } else {
            FactorKind::Window
        };
        let sp = f.add(result.dims()[d.output_spatial[s]], kind);
        xs[d.input_spatial[s]].push(sp);
        rs[d.output_spatial[s]].push(sp);
        ks[d.kernel_spatial[s]].push(f.add(kernel, FactorKind::NeedReplication));
    }
    f.operands = vec![xs, ks];
    f.result = rs;
    f
}

/// Gradients of `convolution`, following JAX's `_conv_general_dilated_transpose_lhs/rhs`: the
/// input gradient is a convolution of the adjoint with the spatially reversed kernel (strides
/// become lhs dilation); the kernel gradient is a convolution of the input with the adjoint
/// (strides become rhs dilation, feature groups become batch groups and back).
pub(super) fn grad(c: &Conv, cx: &mut GradCtx) -> Result<Grads> {
    let dy = cx.dy;
    if cx.ty(dy).shape.elements() == 0 {
        let gx = if cx.wants(0) {
            Some(cx.zeros_like("grad_input", cx.x(0))?)
        } else {
            None
        };
        let gk = if cx.wants(1) {
            Some(cx.zeros_like("grad_kernel", cx.x(1))?)
        } else {
            None
        };
        return Ok(vec![gx, gk]);
    }
    let gx = if cx.wants(0) {
        Some(grad_input(c, cx)?)
    } else {
        None
    };
    let gk = if cx.wants(1) {
        Some(grad_kernel(c, cx)?)
    } else {
        None
    };
    Ok(vec![gx, gk])
}

fn dilate(size: u64, d: u64) -> i64 {
    if size == 0 {
        0
    } else {
        1 + d as i64 * (size as i64 - 1)
    }
}

/// Spatial sizes of the input, kernel and output of the forward convolution.
fn spatial(c: &Conv, cx: &GradCtx) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
    let (xt, kt, yt) = (cx.ty(cx.x(0)), cx.ty(cx.x(1)), cx.ty(cx.y()));
    let d = &c.dims;
    (
        d.input_spatial.iter().map(|&i| xt.dims()[i]).collect(),
        d.kernel_spatial.iter().map(|&i| kt.dims()[i]).collect(),
        d.output_spatial.iter().map(|&i| yt.dims()[i]).collect(),
    )
}

fn grad_input(c: &Conv, cx: &mut GradCtx) -> Result<ValueId> {
    let d = &c.dims;
    let (g, gb) = (c.feature_group_count, c.batch_group_count);
    let mut k = cx.x(1);
    let groups = g.max(gb);
    if groups > 1 {
        // Move the group factor of the kernel's output features into its input features.
        k = reshape_axis_out_of(
            cx,
            "grad_input.kernel_split",
            d.kernel_output_feature,
            groups,
            k,
        )?;
        k = reshape_axis_into(
            cx,
            "grad_input.kernel_regroup",
            d.kernel_output_feature,
            d.kernel_input_feature,
            k,
        )?;
    }
    let (xs, ks, ys) = spatial(c, cx);
    let padding: Vec<(i64, i64)> = (0..xs.len())
        .map(|s| {
            let lhs_d = dilate(xs[s], c.lhs_dilation[s]);
            let rhs_d = dilate(ks[s], c.rhs_dilation[s]);
            let out_d = dilate(ys[s], c.window_strides[s]);
            let before = rhs_d - c.padding[s].0 - 1;
            (before, lhs_d + rhs_d - 1 - out_d - before)
        })
        .collect();
    let k = reverse_spatial(cx, k, &d.kernel_spatial)?;
    let conv = Conv {
        dims: ConvDims {
            input_batch: d.output_batch,
            input_feature: d.output_feature,
            input_spatial: d.output_spatial.clone(),
            kernel_input_feature: d.kernel_output_feature,
            kernel_output_feature: d.kernel_input_feature,
            kernel_spatial: d.kernel_spatial.clone(),
            output_batch: d.input_batch,
            output_feature: d.input_feature,
            output_spatial: d.input_spatial.clone(),
        },
        window_strides: c.lhs_dilation.clone(),
        padding,
        lhs_dilation: c.window_strides.clone(),
        rhs_dilation: c.rhs_dilation.clone(),
        feature_group_count: groups,
        batch_group_count: 1,
    };
    let dy = cx.dy;
    if gb > 1 {
        let out = cx.emit("grad_input.conv", Op::Convolution(conv), vec![dy, k], None)?;
        // Batch groups: the result's features hold the groups; move them back into the batch.
        let out = reshape_axis_out_of(cx, "grad_input.split", d.input_feature, gb, out)?;
        reshape_axis_into(cx, "grad_input", d.input_feature, d.input_batch, out)
    } else {
        cx.emit("grad_input", Op::Convolution(conv), vec![dy, k], None)
    }
}

fn grad_kernel(c: &Conv, cx: &mut GradCtx) -> Result<ValueId> {
    let d = &c.dims;
    let (xs, ks, ys) = spatial(c, cx);
    let padding: Vec<(i64, i64)> = (0..xs.len())
        .map(|s| {
            let lhs_d = dilate(xs[s], c.lhs_dilation[s]);
            let rhs_d = dilate(ks[s], c.rhs_dilation[s]);
            let out_d = dilate(ys[s], c.window_strides[s]);
            let lo = c.padding[s].0;
            (lo, (out_d - lhs_d) + (rhs_d - lo - 1))
        })
        .collect();
    let conv = Conv {
        dims: ConvDims {
            input_batch: d.input_feature,
            input_feature: d.input_batch,
            input_spatial: d.input_spatial.clone(),
            kernel_input_feature: d.output_batch,
            kernel_output_feature: d.output_feature,
            kernel_spatial: d.output_spatial.clone(),
            output_batch: d.kernel_input_feature,
            output_feature: d.kernel_output_feature,
            output_spatial: d.kernel_spatial.clone(),
        },
        window_strides: c.rhs_dilation.clone(),
        padding,
        lhs_dilation: c.lhs_dilation.clone(),
        rhs_dilation: c.window_strides.clone(),
        feature_group_count: c.batch_group_count,
        batch_group_count: c.feature_group_count,
    };
    let (x, dy) = (cx.x(0), cx.dy);
    cx.emit("grad_kernel", Op::Convolution(conv), vec![x, dy], None)
}

/// Splits dim `src` of `x` into `(size1, rest)` (JAX's `_reshape_axis_out_of`).
fn reshape_axis_out_of(
    cx: &mut GradCtx,
    suffix: &str,
    src: usize,
    size1: u64,
    x: ValueId,
) -> Result<ValueId> {
    let mut dims = cx.ty(x).dims().to_vec();
    if size1 == 0 || !dims[src].is_multiple_of(size1) {
        return Err(cx.err(format!(
            "cannot split dim {src} (size {}) into {size1} groups",
            dims[src]
        )));
    }
    let rest = dims[src] / size1;
    dims.splice(src..=src, [size1, rest]);
    cx.reshape(suffix, x, dims)
}

/// Merges dim `src` of `x` into dim `dst` (numbered after removing `src`) as its major part
/// (JAX's `_reshape_axis_into`).
fn reshape_axis_into(
    cx: &mut GradCtx,
    suffix: &str,
    src: usize,
    dst: usize,
    x: ValueId,
) -> Result<ValueId> {
    let dims = cx.ty(x).dims().to_vec();
    let mut perm: Vec<usize> = (0..dims.len()).filter(|&i| i != src).collect();
    perm.insert(dst, src);
    let t = cx.transpose(&format!("{suffix}.t"), x, perm)?;
    let mut new: Vec<u64> = dims
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != src)
        .map(|(_, &s)| s)
        .collect();
    new[dst] *= dims[src];
    cx.reshape(suffix, t, new)
}

/// Reverses `x` along each of `dims` (a gather with descending indices: the op set has no
/// reverse op).
fn reverse_spatial(cx: &mut GradCtx, mut x: ValueId, dims: &[usize]) -> Result<ValueId> {
    for (s, &axis) in dims.iter().enumerate() {
        let n = cx.ty(x).dims()[axis];
        if n <= 1 {
            continue;
        }
        let idx_ty = TensorType::new(DType::I32, vec![n]);
        let rev: Vec<f64> = (0..n).rev().map(|i| i as f64).collect();
        let idx = cx.emit(
            &format!("grad_input.rev{s}.index"),
            Op::Constant {
                value: Literal::Dense(rev),
            },
            vec![],
            Some(idx_ty),
        )?;
        x = cx.emit(
            &format!("grad_input.rev{s}"),
            Op::Gather { axis },
            vec![x, idx],
            None,
        )?;
    }
    Ok(x)
}
