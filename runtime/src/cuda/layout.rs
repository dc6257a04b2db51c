//! Layout ops on the GPU, each one or two strided copies ([`StridedCopy`]) or a fill:
//! broadcast, transpose, reverse, slice, concatenate, pad, dynamic (update) slice; and the
//! take-form gather / scatter-add.

use shardc_ir::{DType, TensorType};

use super::codegen::{
    fill_source, gather_source, scatter_add_source, storage_bytes, strided_copy_source, strides,
    StridedCopy, Unsupported,
};
use super::device::{cuda_error, DeviceTensor, Gpu};
use crate::error::RuntimeError;

/// Runs one strided copy from `src` into `dst`.
pub(crate) fn copy(
    gpu: &mut Gpu,
    c: &StridedCopy,
    src: &DeviceTensor,
    dst: &mut DeviceTensor,
) -> Result<(), RuntimeError> {
    let n: u64 = c.dims.iter().product();
    let source = strided_copy_source(c);
    gpu.launch(&source, n, false, &[&src.buf], &mut [&mut dst.buf])
}

/// A new tensor of `ty` with every element `value`.
pub(crate) fn fill(
    gpu: &mut Gpu,
    ty: &TensorType,
    value: f64,
) -> Result<DeviceTensor, RuntimeError> {
    let mut out = gpu.alloc(ty)?;
    if value != 0.0 {
        let n = out.len();
        gpu.launch(
            &fill_source(ty.dtype, value),
            n,
            false,
            &[],
            &mut [&mut out.buf],
        )?;
    }
    Ok(out)
}

/// The copy that reads `x` through `src_strides` (and `src_base`) into a fresh row-major
/// tensor of type `ty`.
fn gather_to(
    gpu: &mut Gpu,
    x: &DeviceTensor,
    ty: &TensorType,
    src_base: i64,
    src_strides: Vec<i64>,
) -> Result<DeviceTensor, RuntimeError> {
    let mut out = gpu.alloc(ty)?;
    let c = StridedCopy {
        dims: ty.dims().to_vec(),
        src_base,
        src_strides,
        dst_base: 0,
        dst_strides: strides(ty.dims()),
        elem_bytes: storage_bytes(ty.dtype),
    };
    copy(gpu, &c, x, &mut out)?;
    Ok(out)
}

/// Result dim `i` is operand dim `perm[i]`.
pub(crate) fn permute(
    gpu: &mut Gpu,
    x: &DeviceTensor,
    perm: &[usize],
) -> Result<DeviceTensor, RuntimeError> {
    let xs = strides(x.ty.dims());
    let dims: Vec<u64> = perm.iter().map(|&p| x.ty.dims()[p]).collect();
    let ty = TensorType::new(x.ty.dtype, dims);
    gather_to(gpu, x, &ty, 0, perm.iter().map(|&p| xs[p]).collect())
}

/// Operand dim `i` becomes result dim `dims[i]` (size-1 operand dims repeat).
pub(crate) fn broadcast(
    gpu: &mut Gpu,
    x: &DeviceTensor,
    dims: &[usize],
    ty: &TensorType,
) -> Result<DeviceTensor, RuntimeError> {
    let xs = strides(x.ty.dims());
    let mut s = vec![0i64; ty.rank()];
    for (i, &d) in dims.iter().enumerate() {
        if d < s.len() && x.ty.dims()[i] != 1 {
            s[d] = xs[i];
        }
    }
    gather_to(gpu, x, ty, 0, s)
}

/// Reverses the elements along `dims`.
pub(crate) fn reverse(
    gpu: &mut Gpu,
    x: &DeviceTensor,
    dims: &[usize],
) -> Result<DeviceTensor, RuntimeError> {
    let mut s = strides(x.ty.dims());
    let mut base = 0i64;
    for &d in dims {
        let size = x.ty.dims()[d] as i64;
        base += (size - 1).max(0) * s[d];
        s[d] = -s[d];
    }
    let ty = x.ty.clone();
    gather_to(gpu, x, &ty, base, s)
}

/// `start..limit` by `stride` along every dim.
pub(crate) fn slice(
    gpu: &mut Gpu,
    x: &DeviceTensor,
    start: &[u64],
    stride: &[u64],
    ty: &TensorType,
) -> Result<DeviceTensor, RuntimeError> {
    let xs = strides(x.ty.dims());
    let base = start.iter().zip(&xs).map(|(&a, &s)| a as i64 * s).sum();
    let s = stride
        .iter()
        .zip(&xs)
        .map(|(&k, &s)| k as i64 * s)
        .collect();
    gather_to(gpu, x, ty, base, s)
}

/// Writes `x` into `out` at element offsets `at` (one per dim), each dim of `x` spread by
/// `spread` (1: contiguous; pad's interior adds to it).
fn place(
    gpu: &mut Gpu,
    x: &DeviceTensor,
    out: &mut DeviceTensor,
    at: &[i64],
    spread: &[u64],
) -> Result<(), RuntimeError> {
    let os = strides(out.ty.dims());
    let c = StridedCopy {
        dims: x.ty.dims().to_vec(),
        src_base: 0,
        src_strides: strides(x.ty.dims()),
        dst_base: at.iter().zip(&os).map(|(&a, &s)| a * s).sum(),
        dst_strides: os.iter().zip(spread).map(|(&s, &k)| s * k as i64).collect(),
        elem_bytes: storage_bytes(x.ty.dtype),
    };
    copy(gpu, &c, x, out)
}

/// Joins `xs` along `dim`.
pub(crate) fn concatenate(
    gpu: &mut Gpu,
    xs: &[&DeviceTensor],
    dim: usize,
    ty: &TensorType,
) -> Result<DeviceTensor, RuntimeError> {
    let mut out = gpu.alloc(ty)?;
    let ones = vec![1u64; ty.rank()];
    let mut at = vec![0i64; ty.rank()];
    for x in xs {
        place(gpu, x, &mut out, &at, &ones)?;
        at[dim] += x.ty.dims()[dim] as i64;
    }
    Ok(out)
}

/// Pad with non-negative `low` (negative padding crops: the executor runs that on the host).
pub(crate) fn pad(
    gpu: &mut Gpu,
    x: &DeviceTensor,
    low: &[i64],
    interior: &[u64],
    value: f64,
    ty: &TensorType,
) -> Result<DeviceTensor, RuntimeError> {
    let mut out = fill(gpu, ty, value)?;
    let spread: Vec<u64> = interior.iter().map(|&k| k + 1).collect();
    place(gpu, x, &mut out, low, &spread)?;
    Ok(out)
}

/// Whether `pad` can run on the GPU.
pub(crate) fn pad_supported(low: &[i64], high: &[i64]) -> Result<(), Unsupported> {
    if low.iter().chain(high).any(|&p| p < 0) {
        return Err(Unsupported(
            "pad with negative padding (cropping) has no kernel".into(),
        ));
    }
    Ok(())
}

/// Start indices read from the GPU and clamped as XLA does: `clamp(s, 0, n - size)`.
pub(crate) fn clamped_starts(
    gpu: &Gpu,
    dims: &[u64],
    sizes: &[u64],
    starts: &[&DeviceTensor],
) -> Result<Vec<i64>, RuntimeError> {
    if starts.len() != dims.len() || sizes.len() != dims.len() {
        return Err(cuda_error(
            "dynamic slice",
            format!(
                "need one start index per dim ({}), got {}",
                dims.len(),
                starts.len()
            ),
        ));
    }
    let mut at = Vec::with_capacity(dims.len());
    for ((s, &n), &size) in starts.iter().zip(dims).zip(sizes) {
        let v = gpu.download(s)?.scalar_f64()? as i64;
        at.push(v.clamp(0, n.saturating_sub(size) as i64));
    }
    Ok(at)
}

/// The `sizes` window of `x` at the (clamped) dynamic start indices.
pub(crate) fn dynamic_slice(
    gpu: &mut Gpu,
    x: &DeviceTensor,
    starts: &[&DeviceTensor],
    ty: &TensorType,
) -> Result<DeviceTensor, RuntimeError> {
    let at = clamped_starts(gpu, x.ty.dims(), ty.dims(), starts)?;
    let xs = strides(x.ty.dims());
    let base = at.iter().zip(&xs).map(|(&a, &s)| a * s).sum();
    gather_to(gpu, x, ty, base, xs)
}

/// `x` with `update` written at the (clamped) dynamic start indices.
pub(crate) fn dynamic_update_slice(
    gpu: &mut Gpu,
    x: &DeviceTensor,
    update: &DeviceTensor,
    starts: &[&DeviceTensor],
) -> Result<DeviceTensor, RuntimeError> {
    let at = clamped_starts(gpu, x.ty.dims(), update.ty.dims(), starts)?;
    let mut out = gpu.clone_as(x, &x.ty)?;
    let ones = vec![1u64; x.ty.rank()];
    place(gpu, update, &mut out, &at, &ones)?;
    Ok(out)
}

/// `x` as `[pre, axis, post]` sizes.
fn around(dims: &[u64], axis: usize) -> (u64, u64, u64) {
    (
        dims[..axis].iter().product(),
        dims[axis],
        dims[axis + 1..].iter().product(),
    )
}

fn index_dtype(idx: &DeviceTensor) -> Result<DType, RuntimeError> {
    match idx.ty.dtype {
        d @ (DType::I32 | DType::I64) => Ok(d),
        d => Err(cuda_error(
            "gather",
            format!("indices must be integers, got {d}"),
        )),
    }
}

/// Take along `axis`, indices clamped.
pub(crate) fn gather(
    gpu: &mut Gpu,
    x: &DeviceTensor,
    idx: &DeviceTensor,
    axis: usize,
    ty: &TensorType,
) -> Result<DeviceTensor, RuntimeError> {
    let (_, a, post) = around(x.ty.dims(), axis);
    let source = gather_source(
        storage_bytes(x.ty.dtype),
        index_dtype(idx)?,
        a,
        idx.len(),
        post,
    );
    let mut out = gpu.alloc(ty)?;
    let n = out.len();
    gpu.launch(&source, n, false, &[&x.buf, &idx.buf], &mut [&mut out.buf])?;
    Ok(out)
}

/// Adds `upd` into `x` at the clamped `idx` along `axis`.
pub(crate) fn scatter_add(
    gpu: &mut Gpu,
    x: &DeviceTensor,
    idx: &DeviceTensor,
    upd: &DeviceTensor,
    axis: usize,
) -> Result<DeviceTensor, RuntimeError> {
    let (_, a, post) = around(x.ty.dims(), axis);
    let source = scatter_add_source(x.ty.dtype, index_dtype(idx)?, a, idx.len(), post)
        .map_err(|u| cuda_error("scatter_add", u.0))?;
    let mut out = gpu.alloc(&x.ty)?;
    let n = out.len();
    gpu.launch(
        &source,
        n,
        false,
        &[&x.buf, &idx.buf, &upd.buf],
        &mut [&mut out.buf],
    )?;
    Ok(out)
}
