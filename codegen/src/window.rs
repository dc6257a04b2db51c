//! Spatially partitioned convolutions: the one op whose window geometry (stride, padding,
//! dilation, kernel extent) decides the data movement, which factors alone cannot say.
//!
//! Where each device's input window is its own shard widened by a fixed halo on each side
//! (output shards times the stride equal input shards), the halos come from the neighbours by
//! `collective_permute` (the devices at the ends receive zeros, which are the convolution's zero
//! padding). Otherwise the input dim is gathered and each device slices its window at
//! `axis_index · out_shard · stride` from the padded whole.

use shardc_ir::{Conv, Op, OpFactors, Sharding, TensorType, ValueId};

use crate::builder::LocalBuilder;
use crate::error::Result;

/// The geometry of one spatial dim split over `n` devices.
struct Geometry {
    n: u64,
    /// Global input extent.
    input: u64,
    /// Local output and input shard extents.
    lo: u64,
    li: u64,
    /// The input window one device's outputs read (in padded coordinates).
    window: u64,
    stride: u64,
    pad_low: i64,
}

impl Geometry {
    fn new(c: &Conv, s: usize, n: u64, input: u64, output: u64, kernel: u64) -> Self {
        let lo = output.div_ceil(n);
        let st = c.window_strides[s];
        let span = (kernel.max(1) - 1) * c.rhs_dilation[s] + 1;
        Geometry {
            n,
            input,
            lo,
            li: input.div_ceil(n),
            window: (lo.max(1) - 1) * st + span,
            stride: st,
            pad_low: c.padding[s].0,
        }
    }

    /// `(left, right)` halo widths when the halo exchange applies: shards line up and the halos
    /// come from the immediate neighbours.
    fn halo(&self, single_axis: bool) -> Option<(u64, i64)> {
        if !single_axis || self.lo * self.stride != self.li || self.pad_low < 0 {
            return None;
        }
        let left = self.pad_low as u64;
        let right = self.window as i64 - self.pad_low - self.li as i64;
        (left <= self.li && right <= self.li as i64 && right > -(self.li as i64))
            .then_some((left, right))
    }
}

/// The spatial dim `s` whose output factor is `k`.
fn spatial_of(c: &Conv, f: &OpFactors, k: usize) -> Option<usize> {
    c.dims
        .output_spatial
        .iter()
        .position(|&d| f.result[d].contains(&k))
}

/// Whether the window factor `k` of convolution `c` can be split (no input dilation).
pub(crate) fn shardable(c: &Conv, f: &OpFactors, k: usize) -> bool {
    spatial_of(c, f, k).is_some_and(|s| c.lhs_dilation[s] == 1)
}

fn geometry(
    c: &Conv,
    f: &OpFactors,
    s: usize,
    axes: &[String],
    b: &LocalBuilder,
    input: &TensorType,
    kernel: &TensorType,
) -> Geometry {
    let k = f.result[c.dims.output_spatial[s]][0];
    Geometry::new(
        c,
        s,
        b.axes_size(axes),
        input.dims()[c.dims.input_spatial[s]],
        f.factors[k].size,
        kernel.dims()[c.dims.kernel_spatial[s]],
    )
}

/// Split spatial dims: `(s, axes)` for each spatial dim whose output factor has axes.
fn split_dims<'a>(c: &Conv, f: &OpFactors, fa: &'a [Vec<String>]) -> Vec<(usize, &'a [String])> {
    (0..c.dims.output_spatial.len())
        .filter_map(|s| {
            let k = *f.result[c.dims.output_spatial[s]].first()?;
            (!fa[k].is_empty()).then_some((s, fa[k].as_slice()))
        })
        .collect()
}

/// Adjusts the input's wanted sharding: a split spatial dim that needs the gather path is
/// wanted whole.
pub(crate) fn input_sharding(
    c: &Conv,
    f: &OpFactors,
    fa: &[Vec<String>],
    b: &LocalBuilder,
    want: &mut Sharding,
    input: &TensorType,
    kernel: &TensorType,
) {
    for (s, axes) in split_dims(c, f, fa) {
        if geometry(c, f, s, axes, b, input, kernel)
            .halo(axes.len() == 1)
            .is_none()
        {
            want.dims[c.dims.input_spatial[s]].axes.clear();
        }
    }
}

/// Widens the local input by halos (or cuts its window from the gathered whole) for every split
/// spatial dim and sets that dim's padding in the local convolution `lc` to zero.
pub(crate) fn lower_conv_windows(
    b: &mut LocalBuilder,
    c: &Conv,
    lc: &mut Conv,
    f: &OpFactors,
    fa: &[Vec<String>],
    operands: &mut [ValueId],
    input: &TensorType,
    kernel: &TensorType,
) -> Result<()> {
    for (s, axes) in split_dims(c, f, fa) {
        let geo = geometry(c, f, s, axes, b, input, kernel);
        let d = c.dims.input_spatial[s];
        let x = operands[0];
        // The same decision `input_sharding` made for the operand.
        operands[0] = match geo.halo(axes.len() == 1) {
            Some((left, right)) => halo(b, x, d, axes, &geo, left, right)?,
            None => window_of_whole(b, x, d, axes, &geo)?,
        };
        lc.padding[s] = (0, 0);
    }
    Ok(())
}

fn slice_dim(b: &mut LocalBuilder, x: ValueId, d: usize, lo: u64, hi: u64) -> Result<ValueId> {
    let dims = b.ty(x).dims().to_vec();
    let mut start = vec![0; dims.len()];
    let mut limit = dims.clone();
    start[d] = lo;
    limit[d] = hi;
    b.push(
        "halo_part",
        Op::Slice {
            start,
            limit,
            stride: vec![1; dims.len()],
        },
        vec![x],
        None,
    )
}

fn halo(
    b: &mut LocalBuilder,
    x: ValueId,
    d: usize,
    axes: &[String],
    geo: &Geometry,
    left: u64,
    right: i64,
) -> Result<ValueId> {
    let axis = axes[0].clone();
    // The padding of an uneven last shard stands where the convolution's zero padding is.
    let x = if geo.input % geo.n != 0 {
        b.mask_padding(x, d, axes, geo.input, 0.0)?
    } else {
        x
    };
    let mut parts = Vec::new();
    if left > 0 {
        let edge = slice_dim(b, x, d, geo.li - left, geo.li)?;
        let pairs = (0..geo.n - 1).map(|j| (j, j + 1)).collect();
        parts.push(b.push(
            "halo_left",
            Op::CollectivePermute {
                axes: vec![axis.clone()],
                pairs,
            },
            vec![edge],
            None,
        )?);
    }
    parts.push(x);
    if right > 0 {
        let edge = slice_dim(b, x, d, 0, right as u64)?;
        let pairs = (0..geo.n - 1).map(|j| (j + 1, j)).collect();
        parts.push(b.push(
            "halo_right",
            Op::CollectivePermute {
                axes: vec![axis],
                pairs,
            },
            vec![edge],
            None,
        )?);
    }
    let mut ext = if parts.len() == 1 {
        x
    } else {
        b.push("with_halo", Op::Concatenate { dim: d }, parts, None)?
    };
    if right < 0 {
        ext = slice_dim(b, ext, d, 0, geo.window)?;
    }
    Ok(ext)
}

fn window_of_whole(
    b: &mut LocalBuilder,
    x: ValueId,
    d: usize,
    axes: &[String],
    geo: &Geometry,
) -> Result<ValueId> {
    let dims = b.ty(x).dims().to_vec();
    let rank = dims.len();
    // Every device's window must exist in the padded whole, the last one included.
    let need = (geo.n - 1) * geo.lo * geo.stride + geo.window;
    let high = need as i64 - geo.pad_low - geo.input as i64;
    let mut low_v = vec![0i64; rank];
    let mut high_v = vec![0i64; rank];
    low_v[d] = geo.pad_low;
    high_v[d] = high.max(0);
    let padded = b.push(
        "window_pad",
        Op::Pad {
            low: low_v,
            high: high_v,
            interior: vec![0; rank],
            value: 0.0,
        },
        vec![x],
        None,
    )?;
    let mut starts = Vec::with_capacity(rank);
    let mut sizes = b.ty(padded).dims().to_vec();
    for k in 0..rank {
        starts.push(if k == d {
            b.shard_offset(axes, geo.lo * geo.stride)?
        } else {
            b.i32_const(0)?
        });
    }
    sizes[d] = geo.window;
    b.dynamic_slice(padded, starts, sizes)
}
