//! `dot_general` through cuBLAS: operands are brought to `[batch, m, k]` and `[batch, k, n]`
//! (or read transposed where their layout already is `[batch, k, m]` / `[batch, n, k]`), then
//! one `cublasGemmStridedBatchedEx`. bf16 and f16 multiply on tensor cores with f32
//! accumulation; f32 is exact f32 unless TF32 is asked for; f64 is f64.

use cudarc::cublas::{result::gemm_strided_batched_ex, sys};
use cudarc::driver::{DevicePtr, DevicePtrMut};
use shardc_ir::{DType, TensorType};

use super::codegen::Unsupported;
use super::device::{cuda_error, DeviceTensor, Gpu};
use super::layout::permute;
use crate::error::RuntimeError;

/// The dimension numbers of a `dot_general`.
pub(crate) struct DotDims<'a> {
    pub lhs_batch: &'a [usize],
    pub rhs_batch: &'a [usize],
    pub lhs_contract: &'a [usize],
    pub rhs_contract: &'a [usize],
}

fn free(rank: usize, batch: &[usize], contract: &[usize]) -> Vec<usize> {
    (0..rank)
        .filter(|d| !batch.contains(d) && !contract.contains(d))
        .collect()
}

fn cat(parts: &[&[usize]]) -> Vec<usize> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

fn is_identity(p: &[usize]) -> bool {
    p.iter().enumerate().all(|(i, &d)| i == d)
}

fn size(dims: &[u64], of: &[usize]) -> u64 {
    of.iter().map(|&d| dims[d]).product()
}

/// cuBLAS types of a dtype: (data type, compute type), or why it has no GEMM.
fn gemm_types(
    d: DType,
    tf32: bool,
) -> Result<(sys::cudaDataType, sys::cublasComputeType_t), Unsupported> {
    use sys::cublasComputeType_t as C;
    use sys::cudaDataType as T;
    Ok(match d {
        DType::BF16 => (T::CUDA_R_16BF, C::CUBLAS_COMPUTE_32F),
        DType::F16 => (T::CUDA_R_16F, C::CUBLAS_COMPUTE_32F),
        DType::F32 if tf32 => (T::CUDA_R_32F, C::CUBLAS_COMPUTE_32F_FAST_TF32),
        DType::F32 => (T::CUDA_R_32F, C::CUBLAS_COMPUTE_32F),
        DType::F64 => (T::CUDA_R_64F, C::CUBLAS_COMPUTE_64F),
        other => {
            return Err(Unsupported(format!(
                "dot_general of {other} has no cuBLAS kernel"
            )))
        }
    })
}

/// Whether cuBLAS can compute this `dot_general` (else the executor runs it on the host).
pub(crate) fn supported(d: DType, dims: [u64; 4]) -> Result<(), Unsupported> {
    gemm_types(d, false)?;
    if dims.iter().any(|&x| x > i32::MAX as u64) {
        return Err(Unsupported(format!(
            "dot_general sizes {dims:?} exceed cuBLAS's 32-bit dims"
        )));
    }
    Ok(())
}

/// Computes `dot_general(lhs, rhs)` into a new tensor of type `out_ty`.
pub(crate) fn dot_general(
    gpu: &mut Gpu,
    lhs: &DeviceTensor,
    rhs: &DeviceTensor,
    d: &DotDims,
    out_ty: &TensorType,
) -> Result<DeviceTensor, RuntimeError> {
    let (ls, rs) = (lhs.ty.dims().to_vec(), rhs.ty.dims().to_vec());
    let lfree = free(ls.len(), d.lhs_batch, d.lhs_contract);
    let rfree = free(rs.len(), d.rhs_batch, d.rhs_contract);
    let (b, m, k, n) = (
        size(&ls, d.lhs_batch),
        size(&ls, &lfree),
        size(&ls, d.lhs_contract),
        size(&rs, &rfree),
    );
    supported(out_ty.dtype, [b, m, k, n]).map_err(|u| cuda_error("dot_general", u.0))?;
    let mut out = gpu.alloc(out_ty)?;
    if b == 0 || m == 0 || n == 0 || k == 0 {
        return Ok(out);
    }
    // The lhs as [b, m, k] (read as is) or [b, k, m] (read transposed); anything else is
    // permuted to [b, m, k] first. Likewise the rhs as [b, k, n] or [b, n, k].
    let l_mk = cat(&[d.lhs_batch, &lfree, d.lhs_contract]);
    let l_km = cat(&[d.lhs_batch, d.lhs_contract, &lfree]);
    let (l_owned, l_t) = if is_identity(&l_mk) {
        (None, false)
    } else if is_identity(&l_km) {
        (None, true)
    } else {
        (Some(permute(gpu, lhs, &l_mk)?), false)
    };
    let r_kn = cat(&[d.rhs_batch, d.rhs_contract, &rfree]);
    let r_nk = cat(&[d.rhs_batch, &rfree, d.rhs_contract]);
    let (r_owned, r_t) = if is_identity(&r_kn) {
        (None, false)
    } else if is_identity(&r_nk) {
        (None, true)
    } else {
        (Some(permute(gpu, rhs, &r_kn)?), false)
    };
    let l = l_owned.as_ref().unwrap_or(lhs);
    let r = r_owned.as_ref().unwrap_or(rhs);
    let (dt, ct) =
        gemm_types(out_ty.dtype, gpu.options.tf32).map_err(|u| cuda_error("dot_general", u.0))?;
    // Row-major C[m, n] = A[m, k] B[k, n] is column-major C^T[n, m] = B^T[n, k] A^T[k, m]:
    // cuBLAS's first operand is our rhs, its second our lhs.
    let op = |t: bool| {
        if t {
            sys::cublasOperation_t::CUBLAS_OP_T
        } else {
            sys::cublasOperation_t::CUBLAS_OP_N
        }
    };
    let lda = if r_t { k } else { n };
    let ldb = if l_t { m } else { k };
    let (one32, zero32, one64, zero64) = (1.0f32, 0.0f32, 1.0f64, 0.0f64);
    let (alpha, beta) = if out_ty.dtype == DType::F64 {
        (
            &one64 as *const f64 as *const std::ffi::c_void,
            &zero64 as *const f64 as *const std::ffi::c_void,
        )
    } else {
        (
            &one32 as *const f32 as *const std::ffi::c_void,
            &zero32 as *const f32 as *const std::ffi::c_void,
        )
    };
    let stream = gpu.stream.clone();
    let (a_ptr, _a) = r.buf.device_ptr(&stream);
    let (b_ptr, _b) = l.buf.device_ptr(&stream);
    let (c_ptr, _c) = out.buf.device_ptr_mut(&stream);
    // SAFETY: the pointers are live device buffers on the handle's stream, sized for
    // b×(k×n), b×(m×k) and b×(m×n) elements of `dt` (checked by the node's verified types);
    // alpha and beta point to scalars of the compute type's scale type and outlive the call.
    unsafe {
        gemm_strided_batched_ex(
            *gpu.blas.handle(),
            op(r_t),
            op(l_t),
            n as i32,
            m as i32,
            k as i32,
            alpha,
            a_ptr as *const _,
            dt,
            lda as i32,
            (k * n) as i64,
            b_ptr as *const _,
            dt,
            ldb as i32,
            (m * k) as i64,
            beta,
            c_ptr as *mut _,
            dt,
            n as i32,
            (m * n) as i64,
            b as i32,
            ct,
            sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
    }
    .map_err(|e| cuda_error("cublasGemmStridedBatchedEx", e))?;
    drop((_a, _b, _c));
    Ok(out)
}
