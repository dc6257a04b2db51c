//! One GPU as a device program sees it: its context and stream, a cuBLAS handle, the cache of
//! NVRTC-compiled kernels, and tensors in its memory ([`DeviceTensor`]).
//!
//! cudarc is built with `dynamic-loading`: it opens `libcuda`, `libnvrtc`, `libcublas` and
//! `libnccl` when first used, and panics if one is missing. [`probe`] checks each library with
//! cudarc's own `is_culib_present` first, so a machine without them gets an error, not a panic.

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::cublas::CudaBlas;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
use ndarray::{ArrayD, IxDyn};
use shardc_ir::{DType, TensorType};

use super::codegen::{storage_bytes, BLOCK, ENTRY};
use crate::error::RuntimeError;
use crate::tensor::{element_count, usize_dims, Data, Tensor};

/// An error of the CUDA backend, as the runtime's error type.
pub(crate) fn cuda_error(what: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Invalid(format!("cuda: {what}: {e}"))
}

/// The libraries the backend opens, by cudarc's name for them and what they are for.
fn library_present(name: &str) -> bool {
    // SAFETY: each `is_culib_present` only tries `dlopen` on the candidate file names and
    // closes what it opened; it runs no library code beyond the loader's initialisers.
    unsafe {
        match name {
            "cuda" => cudarc::driver::sys::is_culib_present(),
            "nvrtc" => cudarc::nvrtc::sys::is_culib_present(),
            "cublas" => cudarc::cublas::sys::is_culib_present(),
            "nccl" => cudarc::nccl::sys::is_culib_present(),
            _ => false,
        }
    }
}

fn missing(what: &str, lib: &str) -> RuntimeError {
    let mut names = cudarc::get_lib_name_candidates(lib);
    // cudarc's candidate list repeats some names.
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    RuntimeError::Invalid(format!(
        "no {what} found: none of {} could be opened (searched LD_LIBRARY_PATH and the \
         system's library paths)",
        names.join(", ")
    ))
}

/// Checks that the CUDA driver, NVRTC and cuBLAS can be opened and that there is a GPU.
/// Returns the number of GPUs.
pub fn probe() -> Result<usize, RuntimeError> {
    if !library_present("cuda") {
        return Err(missing("CUDA driver", "cuda"));
    }
    for (lib, what) in [("nvrtc", "NVRTC library"), ("cublas", "cuBLAS library")] {
        if !library_present(lib) {
            return Err(missing(what, lib));
        }
    }
    let n = CudaContext::device_count()
        .map_err(|e| RuntimeError::Invalid(format!("no CUDA device found: the driver says {e}")))?;
    if n <= 0 {
        return Err(RuntimeError::Invalid(
            "no CUDA device found: the driver reports 0 devices".into(),
        ));
    }
    Ok(n as usize)
}

/// Checks that NCCL can be opened (it is needed only by multi-process runs).
pub fn probe_nccl() -> Result<(), RuntimeError> {
    if library_present("nccl") {
        Ok(())
    } else {
        Err(missing("NCCL library", "nccl"))
    }
}

/// Options of a GPU run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CudaOptions {
    /// Run f32 matmuls on tensor cores with TF32 inputs (faster, ~1e-3 relative error).
    pub tf32: bool,
}

/// One GPU with its stream, cuBLAS handle and compiled kernels.
pub(crate) struct Gpu {
    pub ordinal: usize,
    pub stream: Arc<CudaStream>,
    pub blas: CudaBlas,
    pub options: CudaOptions,
    arch: String,
    kernels: HashMap<String, CudaFunction>,
    /// Nodes that ran on the host because they have no GPU kernel, by op name (for reports).
    pub host_fallbacks: std::collections::BTreeMap<String, usize>,
}

impl Gpu {
    /// Opens GPU `ordinal` (after [`probe`]).
    pub fn open(ordinal: usize, options: &CudaOptions) -> Result<Gpu, RuntimeError> {
        probe()?;
        let ctx =
            CudaContext::new(ordinal).map_err(|e| cuda_error(&format!("open GPU {ordinal}"), e))?;
        // SAFETY: every buffer of this Gpu is used only on its one stream, in order, so
        // cudarc's cross-stream events are not needed.
        unsafe { ctx.disable_event_tracking() };
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| cuda_error("compute capability", e))?;
        let stream = ctx.new_stream().map_err(|e| cuda_error("new stream", e))?;
        let blas = CudaBlas::new(stream.clone()).map_err(|e| cuda_error("cuBLAS handle", e))?;
        Ok(Gpu {
            ordinal,
            stream,
            blas,
            options: options.clone(),
            arch: format!("--gpu-architecture=compute_{major}{minor}"),
            kernels: HashMap::new(),
            host_fallbacks: Default::default(),
        })
    }

    /// The GPU's name as the driver reports it, with its ordinal.
    pub fn name(&self) -> String {
        let name = self
            .stream
            .context()
            .name()
            .unwrap_or_else(|_| "unknown GPU".into());
        format!("{name} (GPU {})", self.ordinal)
    }

    /// The kernel of a generated module, compiled on first use and cached by its source.
    pub fn function(&mut self, source: &str) -> Result<CudaFunction, RuntimeError> {
        if let Some(f) = self.kernels.get(source) {
            return Ok(f.clone());
        }
        let opts = CompileOptions {
            options: vec![self.arch.clone()],
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(source, opts)
            .map_err(|e| cuda_error(&format!("NVRTC compile of\n{source}\n"), e))?;
        let module = self
            .stream
            .context()
            .load_module(ptx)
            .map_err(|e| cuda_error("load module", e))?;
        let f = module
            .load_function(ENTRY)
            .map_err(|e| cuda_error("load function", e))?;
        self.kernels.insert(source.to_string(), f.clone());
        Ok(f)
    }

    /// Zero-filled memory for a tensor of type `ty`.
    pub fn alloc(&self, ty: &TensorType) -> Result<DeviceTensor, RuntimeError> {
        let bytes = element_count(ty)? * storage_bytes(ty.dtype);
        let buf = self
            .stream
            // At least one byte, so that empty tensors have an address too.
            .alloc_zeros::<u8>(bytes.max(1))
            .map_err(|e| cuda_error(&format!("allocate {ty}"), e))?;
        Ok(DeviceTensor {
            ty: ty.clone(),
            buf,
        })
    }

    /// Launches a generated kernel over `n` items (elements, or outputs of a reduction) with
    /// the buffers `inputs` then `outputs` as its pointer parameters, then `n` itself.
    pub fn launch(
        &mut self,
        source: &str,
        n: u64,
        per_block: bool,
        inputs: &[&CudaSlice<u8>],
        outputs: &mut [&mut CudaSlice<u8>],
    ) -> Result<(), RuntimeError> {
        if n == 0 {
            return Ok(());
        }
        let f = self.function(source)?;
        // Grid-stride loops: cap the grid, each thread (or block) loops over the rest.
        let blocks = if per_block {
            n
        } else {
            n.div_ceil(BLOCK as u64)
        };
        let cfg = LaunchConfig {
            grid_dim: (blocks.min(65_535 * 8) as u32, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = self.stream.launch_builder(&f);
        for &x in inputs {
            b.arg(x);
        }
        for x in outputs.iter_mut() {
            b.arg(&mut **x);
        }
        b.arg(&n);
        // SAFETY: the generated kernel's parameters are exactly these pointers (buffers sized
        // for the kernel's index space by the caller) and `n` as u64, in that order.
        unsafe { b.launch(cfg) }.map_err(|e| cuda_error("kernel launch", e))?;
        Ok(())
    }

    /// Copies a host tensor to the GPU (bf16/f16 as their 16-bit patterns, bool as bytes).
    pub fn upload(&self, t: &Tensor) -> Result<DeviceTensor, RuntimeError> {
        let ty = t.ty();
        let mut d = self.alloc(&ty)?;
        let n = t.len();
        if n == 0 {
            return Ok(d);
        }
        macro_rules! put {
            ($T:ty, $v:expr) => {{
                let v: Vec<$T> = $v;
                // SAFETY: the buffer holds `n` elements of this plain-old-data type (alloc
                // sized it by `storage_bytes`), and any bit pattern is valid for it.
                let mut view = unsafe { d.buf.transmute_mut::<$T>(n) }
                    .ok_or_else(|| cuda_error("upload", "buffer too small (invariant)"))?;
                self.stream
                    .memcpy_htod(&v, &mut view)
                    .map_err(|e| cuda_error(&format!("upload {ty}"), e))?;
            }};
        }
        match (t.dtype(), t.data()) {
            (DType::BF16, Data::F32(a)) => put!(
                u16,
                a.iter()
                    .map(|&x| half::bf16::from_f32(x).to_bits())
                    .collect()
            ),
            (DType::F16, Data::F32(a)) => put!(
                u16,
                a.iter()
                    .map(|&x| half::f16::from_f32(x).to_bits())
                    .collect()
            ),
            (_, Data::F32(a)) => put!(f32, a.iter().copied().collect()),
            (_, Data::F64(a)) => put!(f64, a.iter().copied().collect()),
            (_, Data::I32(a)) => put!(i32, a.iter().copied().collect()),
            (_, Data::I64(a)) => put!(i64, a.iter().copied().collect()),
            (_, Data::Bool(a)) => put!(u8, a.iter().map(|&b| b as u8).collect()),
        }
        Ok(d)
    }

    /// Copies a GPU tensor back to the host.
    pub fn download(&self, d: &DeviceTensor) -> Result<Tensor, RuntimeError> {
        let ty = &d.ty;
        let n = element_count(ty)?;
        let dims = usize_dims(ty)?;
        macro_rules! get {
            ($T:ty) => {{
                if n == 0 {
                    Vec::<$T>::new()
                } else {
                    // SAFETY: as in `upload`: `n` plain-old-data elements fit the buffer.
                    let view = unsafe { d.buf.transmute::<$T>(n) }
                        .ok_or_else(|| cuda_error("download", "buffer too small (invariant)"))?;
                    self.stream
                        .clone_dtoh(&view)
                        .map_err(|e| cuda_error(&format!("download {ty}"), e))?
                }
            }};
        }
        let shape = |v| ArrayD::from_shape_vec(IxDyn(&dims), v);
        let bad = |e: ndarray::ShapeError| cuda_error("download", e);
        let data = match ty.dtype {
            DType::F32 => Data::F32(shape(get!(f32)).map_err(bad)?),
            DType::BF16 => Data::F32(
                ArrayD::from_shape_vec(
                    IxDyn(&dims),
                    get!(u16)
                        .into_iter()
                        .map(|b| half::bf16::from_bits(b).to_f32())
                        .collect(),
                )
                .map_err(bad)?,
            ),
            DType::F16 => Data::F32(
                ArrayD::from_shape_vec(
                    IxDyn(&dims),
                    get!(u16)
                        .into_iter()
                        .map(|b| half::f16::from_bits(b).to_f32())
                        .collect(),
                )
                .map_err(bad)?,
            ),
            DType::F64 => Data::F64(ArrayD::from_shape_vec(IxDyn(&dims), get!(f64)).map_err(bad)?),
            DType::I32 => Data::I32(ArrayD::from_shape_vec(IxDyn(&dims), get!(i32)).map_err(bad)?),
            DType::I64 | DType::U32 | DType::U64 => {
                Data::I64(ArrayD::from_shape_vec(IxDyn(&dims), get!(i64)).map_err(bad)?)
            }
            DType::Bool => Data::Bool(
                ArrayD::from_shape_vec(
                    IxDyn(&dims),
                    get!(u8).into_iter().map(|b| b != 0).collect(),
                )
                .map_err(bad)?,
            ),
        };
        Ok(Tensor::from_data(ty.dtype, data))
    }

    /// A copy of `d` with another type of the same byte size (reshape), or the same type.
    pub fn clone_as(
        &self,
        d: &DeviceTensor,
        ty: &TensorType,
    ) -> Result<DeviceTensor, RuntimeError> {
        let mut out = self.alloc(ty)?;
        self.stream
            .memcpy_dtod(&d.buf, &mut out.buf)
            .map_err(|e| cuda_error("device copy", e))?;
        Ok(out)
    }

    /// Waits for everything queued on the stream.
    pub fn synchronize(&self) -> Result<(), RuntimeError> {
        self.stream
            .synchronize()
            .map_err(|e| cuda_error("synchronize", e))
    }
}

/// A tensor in a GPU's memory: its type and its bytes (bf16/f16 as 16-bit patterns).
pub(crate) struct DeviceTensor {
    pub ty: TensorType,
    pub buf: CudaSlice<u8>,
}

impl DeviceTensor {
    /// The number of elements.
    pub fn len(&self) -> u64 {
        self.ty.shape.elements()
    }
}
