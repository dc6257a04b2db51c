//! A small ResNet-style convolutional classifier (He et al. 2016, arXiv 1512.03385), NCHW.

use super::builder::Builder;
use super::{config_err, require_positive};
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::{Graph, ValueId};
use crate::op::{BinaryFn, Conv, Init, Op, ReduceFn, UnaryFn};
use crate::types::TensorType;

/// The shape of a ResNet-style network.
#[derive(Clone, Debug, PartialEq)]
pub struct ResNetConfig {
    /// Images per step (`N`).
    pub batch: u64,
    /// Channels of the input images (3 for RGB).
    pub in_channels: u64,
    /// Height and width of the (square) input images.
    pub image: u64,
    /// Channels of the first stage; each later stage doubles them and halves the image.
    pub width: u64,
    /// Residual blocks per stage.
    pub stages: Vec<u64>,
    /// Classes of the classifier.
    pub classes: u64,
    /// Dtype of parameters, inputs and activations (labels are i32).
    pub dtype: DType,
}

impl Default for ResNetConfig {
    /// 2 images of 3×16×16, width 8, stages [1, 1], 10 classes, f32.
    fn default() -> Self {
        ResNetConfig {
            batch: 2,
            in_channels: 3,
            image: 16,
            width: 8,
            stages: vec![1, 1],
            classes: 10,
            dtype: DType::F32,
        }
    }
}

/// Builds the network: a 3×3 stem convolution, then per stage `k` its residual blocks
/// `stages.{k}.blocks.{j}` (two 3×3 convolutions with ReLU; the first block of every stage but
/// the first has stride 2 and a 1×1 stride-2 projection shortcut), a global average pool (a
/// reduce over H and W), a linear classifier `head` and mean cross-entropy against `labels`.
///
/// Batch normalisation is left out (it is a per-channel affine map at inference and adds no
/// op kind the planner does not already see); each convolution has a per-channel bias instead.
pub fn resnet(cfg: &ResNetConfig) -> Result<Graph> {
    require_positive(
        "resnet",
        &[
            ("batch", cfg.batch),
            ("in_channels", cfg.in_channels),
            ("image", cfg.image),
            ("width", cfg.width),
            ("classes", cfg.classes),
        ],
    )?;
    if cfg.stages.is_empty() || cfg.stages.contains(&0) {
        return Err(config_err(
            "resnet",
            "stages",
            "needs at least one stage, each with at least one block",
        ));
    }
    if !cfg.dtype.is_float() {
        return Err(config_err(
            "resnet",
            "dtype",
            format!("must be a floating-point type, got {}", cfg.dtype),
        ));
    }
    if cfg.classes > i32::MAX as u64 {
        return Err(config_err("resnet", "classes", "must fit in i32"));
    }
    let widest = u32::try_from(cfg.stages.len() - 1)
        .ok()
        .and_then(|k| cfg.width.checked_mul(1u64.checked_shl(k)?))
        .ok_or_else(|| config_err("resnet", "width", "doubled per stage overflows u64"))?;
    let mut b = Builder::new("resnet", cfg.dtype);
    let images = b.input(
        "images",
        TensorType::new(
            cfg.dtype,
            vec![cfg.batch, cfg.in_channels, cfg.image, cfg.image],
        ),
        Init::Normal { std: 1.0 },
    )?;
    let labels = b.input(
        "labels",
        TensorType::new(DType::I32, vec![cfg.batch]),
        Init::Index { high: cfg.classes },
    )?;
    let mut x = b.scoped("stem", |b| {
        let c = conv(b, "conv", images, cfg.width, 3, 1)?;
        b.unary("relu", UnaryFn::Relu, c)
    })?;
    let mut channels = cfg.width;
    for (k, &blocks) in cfg.stages.iter().enumerate() {
        let out_channels = if k == 0 { channels } else { channels * 2 };
        for j in 0..blocks {
            let stride = if k > 0 && j == 0 { 2 } else { 1 };
            x = b.scoped(format!("stages.{k}.blocks.{j}"), |b| {
                block(b, x, out_channels, stride)
            })?;
        }
        channels = out_channels;
    }
    debug_assert_eq!(channels, widest);
    let logits = b.scoped("head", |b| {
        let dims = b.dims(x);
        let pooled = b.reduce("pool.sum", ReduceFn::Sum, x, &[2, 3])?;
        let pooled = b.scale("pool", pooled, 1.0 / (dims[2] * dims[3]) as f64)?;
        let w = b.weight("weight", &[channels, cfg.classes])?;
        let bias = b.bias("bias", &[cfg.classes])?;
        let y = b.linear("matmul", pooled, w)?;
        b.add_bias("logits", y, bias)
    })?;
    let loss = b.cross_entropy(logits, labels)?;
    Ok(b.finish_with_loss(loss))
}

/// A `k×k` convolution to `out` channels with stride `stride` and "same" padding, plus a
/// per-channel bias: `{local}.weight`, `{local}.bias`, `{local}.raw`, `{local}`.
fn conv(
    b: &mut Builder,
    local: &str,
    x: ValueId,
    out: u64,
    k: u64,
    stride: u64,
) -> Result<ValueId> {
    let cin = b.dims(x)[1];
    let w = b.weight(&format!("{local}.weight"), &[out, cin, k, k])?;
    let bias = b.bias(&format!("{local}.bias"), &[out])?;
    let pad = (k / 2) as i64;
    let y = b.push(
        &format!("{local}.raw"),
        Op::Convolution(Conv::simple(2, stride, pad)),
        vec![x, w],
        None,
    )?;
    b.binary_bcast(local, BinaryFn::Add, y, bias, &[1])
}

fn block(b: &mut Builder, x: ValueId, out: u64, stride: u64) -> Result<ValueId> {
    let c1 = conv(b, "conv1", x, out, 3, stride)?;
    let r1 = b.unary("relu1", UnaryFn::Relu, c1)?;
    let c2 = conv(b, "conv2", r1, out, 3, 1)?;
    let shortcut = if stride != 1 || b.dims(x)[1] != out {
        conv(b, "shortcut", x, out, 1, stride)?
    } else {
        x
    };
    let sum = b.binary("residual", BinaryFn::Add, c2, shortcut)?;
    b.unary("relu2", UnaryFn::Relu, sum)
}
