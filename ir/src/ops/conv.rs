//! `convolution`: N-d, strided, padded, dilated, with feature and batch groups (XLA semantics).

use super::{with_declared_dtype_check, TypeCtx};
use crate::factors::{FactorKind, OpFactors};
use crate::op::Conv;
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

pub(super) fn infer(c: &Conv, cx: &TypeCtx) -> Result<TensorType, String> {
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
