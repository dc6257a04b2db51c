//! The CUDA backend (cargo feature `cuda`): the per-device programs the threads backend runs,
//! with every value in GPU memory.
//!
//! - Kernels: `dot_general` through cuBLAS ([`blas`]); elementwise chains fused into one
//!   NVRTC-compiled kernel each, reductions, layout ops, gather and scatter-add generated as
//!   CUDA C from the op table ([`codegen`]); softmax and layer norm are the IR's reductions and
//!   elementwise ops, so they run on those kernels. Ops with no GPU kernel (convolution, sort,
//!   XLA's general gather/scatter, integer matmuls) run their CPU kernel on a host copy; the
//!   count per op is reported.
//! - Meshes: [`run_spmd_cuda`] runs every rank in this process, one thread per rank, rank `r`
//!   on GPU `r % gpus`, collectives staged through the host by the threads backend's
//!   rendezvous. That is how a mesh of several ranks runs on one GPU: NCCL refuses two ranks of
//!   one communicator on the same GPU (`ncclInvalidUsage`, "duplicate GPU"), in one process or
//!   several. With one process per GPU, [`run_spmd_cuda_rank`] runs one rank with its
//!   collectives in NCCL ([`NcclMesh`]), unique ids shared through files ([`FileIds`]) or
//!   whatever implements [`NcclIds`] (the MPI backend's hook).
//! - Libraries are opened at run time (cudarc's `dynamic-loading`), so this builds with no
//!   CUDA toolkit; [`probe`] turns a missing driver or library into an error.

mod blas;
mod codegen;
mod device;
mod exec;
mod layout;
mod nccl;
mod staged;

use std::sync::Mutex;

use shardc_ir::{Graph, Mesh};

pub use device::{probe, probe_nccl, CudaOptions};
pub use nccl::{FileIds, NcclIds, NcclMesh};

use crate::error::RuntimeError;
use crate::mesh::launch;
use crate::tensor::Tensor;
use device::{DeviceTensor, Gpu};
use exec::{run_graph_gpu, NoMesh};
use staged::HostStaged;

/// What a GPU run reports besides its outputs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CudaReport {
    /// The GPU's name (of the first rank's GPU).
    pub device: String,
    /// Nodes that ran on the host because they have no GPU kernel, per op name (all ranks).
    pub host_fallbacks: std::collections::BTreeMap<String, usize>,
}

fn check_inputs(g: &Graph, inputs: &[Tensor]) -> Result<(), RuntimeError> {
    // The reference executor's checks, without running it.
    let want: Vec<_> = g.inputs().collect();
    if want.len() != inputs.len() {
        return Err(RuntimeError::Invalid(format!(
            "graph `{}` has {} inputs, {} tensors were given",
            g.name,
            want.len(),
            inputs.len()
        )));
    }
    for (i, (&v, t)) in want.iter().zip(inputs).enumerate() {
        if &t.ty() != g.ty(v) {
            return Err(RuntimeError::Input {
                index: i,
                name: g.node(v).name.clone(),
                message: format!("expected {}, got {}", g.ty(v), t.ty()),
            });
        }
    }
    Ok(())
}

fn upload_all(gpu: &Gpu, inputs: &[Tensor]) -> Result<Vec<DeviceTensor>, RuntimeError> {
    inputs.iter().map(|t| gpu.upload(t)).collect()
}

fn download_all(gpu: &Gpu, values: &[DeviceTensor]) -> Result<Vec<Tensor>, RuntimeError> {
    let out = values.iter().map(|t| gpu.download(t)).collect();
    gpu.synchronize()?;
    out
}

/// Wall-clock times of repeated GPU runs of one graph.
#[derive(Clone, Debug, PartialEq)]
pub struct CudaTiming {
    /// The outputs of the last run.
    pub outputs: Vec<Tensor>,
    /// Seconds per run, in order: the first includes compiling the kernels (NVRTC).
    pub seconds: Vec<f64>,
    /// The GPU and the host fallbacks of one run.
    pub report: CudaReport,
}

/// Runs `g` on GPU 0 `1 + repeats` times with its inputs uploaded once, and times each run
/// from its first kernel to the end of its last (inputs copied on the GPU before the clock
/// starts; outputs left on the GPU until after it stops).
pub fn time_cuda(
    g: &Graph,
    inputs: &[Tensor],
    repeats: usize,
    options: &CudaOptions,
) -> Result<CudaTiming, RuntimeError> {
    shardc_ir::verify(g)?;
    check_inputs(g, inputs)?;
    let mut gpu = Gpu::open(0, options)?;
    let resident = upload_all(&gpu, inputs)?;
    let mut seconds = Vec::with_capacity(repeats + 1);
    let mut last = Vec::new();
    for run in 0..=repeats {
        let fed = resident
            .iter()
            .map(|t| gpu.clone_as(t, &t.ty))
            .collect::<Result<Vec<_>, _>>()?;
        if run == 1 {
            // Fallback counts of one run, not of all.
            gpu.host_fallbacks.clear();
        }
        gpu.synchronize()?;
        let start = std::time::Instant::now();
        let out = run_graph_gpu(g, fed, &g.outputs, &mut gpu, &mut NoMesh)?;
        gpu.synchronize()?;
        seconds.push(start.elapsed().as_secs_f64());
        last = out;
    }
    Ok(CudaTiming {
        outputs: download_all(&gpu, &last)?,
        seconds,
        report: CudaReport {
            device: gpu.name(),
            host_fallbacks: gpu.host_fallbacks.clone(),
        },
    })
}

/// Runs `g` on GPU 0: `inputs` in the order of `g.inputs()`; returns `g.outputs`' values.
pub fn execute_cuda(
    g: &Graph,
    inputs: &[Tensor],
    options: &CudaOptions,
) -> Result<(Vec<Tensor>, CudaReport), RuntimeError> {
    shardc_ir::verify(g)?;
    check_inputs(g, inputs)?;
    let mut gpu = Gpu::open(0, options)?;
    let fed = upload_all(&gpu, inputs)?;
    let out = run_graph_gpu(g, fed, &g.outputs, &mut gpu, &mut NoMesh)?;
    Ok((
        download_all(&gpu, &out)?,
        CudaReport {
            device: gpu.name(),
            host_fallbacks: gpu.host_fallbacks.clone(),
        },
    ))
}

/// Runs `program` on every position of `mesh`, all in this process (one thread per rank, rank
/// `r` on GPU `r % gpus`, collectives through the host). `inputs[d]` and the result's `[d]`
/// belong to position `d`. On failure, returns the first failing device's error.
pub fn run_spmd_cuda(
    program: &Graph,
    mesh: &Mesh,
    inputs: Vec<Vec<Tensor>>,
    options: &CudaOptions,
) -> Result<(Vec<Vec<Tensor>>, CudaReport), RuntimeError> {
    let gpus = probe()?;
    shardc_ir::verify(program)?;
    let n = mesh.devices.len();
    if inputs.len() != n {
        return Err(RuntimeError::Invalid(format!(
            "{n} devices need {n} input lists, got {}",
            inputs.len()
        )));
    }
    for i in &inputs {
        check_inputs(program, i)?;
    }
    let stages = vec![(0..n).collect::<Vec<usize>>()];
    let slots: Vec<Mutex<Option<Vec<Tensor>>>> =
        inputs.into_iter().map(|i| Mutex::new(Some(i))).collect();
    let report = Mutex::new(CudaReport::default());
    let timeout = crate::mesh::MeshOptions::default().timeout;
    let results = launch(&[(mesh.clone(), stages[0].clone())], timeout, |comm| {
        let d = comm.device();
        let mine = slots[d]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| RuntimeError::Device {
                device: d,
                message: "inputs already taken (invariant)".into(),
            })?;
        let as_device = |e: RuntimeError| match e {
            RuntimeError::Aborted { .. }
            | RuntimeError::Timeout { .. }
            | RuntimeError::Device { .. } => e,
            other => RuntimeError::Device {
                device: d,
                message: other.to_string(),
            },
        };
        let mut gpu = Gpu::open(d % gpus, options).map_err(as_device)?;
        let mut staged = HostStaged {
            comm,
            stages: &stages,
        };
        let fed = upload_all(&gpu, &mine).map_err(as_device)?;
        let out = run_graph_gpu(program, fed, &program.outputs, &mut gpu, &mut staged)
            .and_then(|out| download_all(&gpu, &out))
            .map_err(as_device)?;
        let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
        if d == 0 {
            r.device = gpu.name();
        }
        for (k, v) in &gpu.host_fallbacks {
            *r.host_fallbacks.entry(k.clone()).or_insert(0) += v;
        }
        Ok(out)
    })?;
    let report = report.into_inner().unwrap_or_else(|e| e.into_inner());
    if results.iter().all(Result::is_ok) {
        return Ok((results.into_iter().flatten().collect(), report));
    }
    let errors: Vec<RuntimeError> = results.into_iter().filter_map(Result::err).collect();
    let root = errors
        .iter()
        .position(|e| !matches!(e, RuntimeError::Aborted { .. }))
        .unwrap_or(0);
    Err(errors
        .into_iter()
        .nth(root)
        .unwrap_or_else(|| RuntimeError::Invalid("no device ran (invariant)".into())))
}

/// Runs this process's rank (`nccl`'s position) of an SPMD `program` on GPU `ordinal`, with
/// collectives in NCCL: one process per GPU, launched by `mpirun` or any launcher that gives
/// each process its position.
pub fn run_spmd_cuda_rank(
    program: &Graph,
    nccl: &mut NcclMesh,
    ordinal: usize,
    inputs: Vec<Tensor>,
    options: &CudaOptions,
) -> Result<(Vec<Tensor>, CudaReport), RuntimeError> {
    shardc_ir::verify(program)?;
    check_inputs(program, &inputs)?;
    let mut gpu = Gpu::open(ordinal, options)?;
    let fed = upload_all(&gpu, &inputs)?;
    let out = run_graph_gpu(program, fed, &program.outputs, &mut gpu, nccl)?;
    Ok((
        download_all(&gpu, &out)?,
        CudaReport {
            device: gpu.name(),
            host_fallbacks: gpu.host_fallbacks.clone(),
        },
    ))
}

/// Generated CUDA C, exposed for tests and `--emit`-style inspection: the source of the fused
/// kernel rooted at each elementwise node of `g` that is not fused into another, in node order
/// (what the executor compiles), or the reason a node has none.
pub fn elementwise_kernels(g: &Graph) -> Vec<(String, Result<String, String>)> {
    let n = g.nodes.len();
    let needed = vec![true; n];
    let mut wanted = vec![false; n];
    for o in &g.outputs {
        wanted[o.index()] = true;
    }
    let targets = codegen::fusion_targets(g, &needed, &wanted);
    (0..n)
        .filter(|&i| targets[i].is_none() && codegen::is_elementwise(&g.nodes[i].op))
        .map(|i| {
            let f = codegen::fused_at(g, shardc_ir::ValueId(i as u32), &targets);
            (
                g.nodes[i].name.clone(),
                codegen::elementwise_source(g, &f).map_err(|u| u.0),
            )
        })
        .collect()
}

/// Whether each node of `g` runs on the GPU (`Ok`) or on the host, and why (`Err`).
pub fn gpu_support(g: &Graph) -> Vec<(String, Result<(), String>)> {
    g.nodes
        .iter()
        .map(|node| {
            let types: Vec<_> = node.operands.iter().map(|&o| g.ty(o)).collect();
            (
                node.name.clone(),
                exec::gpu_support(node, &types).map_err(|u| u.0),
            )
        })
        .collect()
}
