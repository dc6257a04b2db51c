//! The runtime: CPU kernels for every op, the reference executor (one device, the oracle every
//! partitioned run is checked against) and the device-mesh executor with its communicator
//! backends.
//!
//! The runtime executes what it is given; it never decides a sharding.
//!
//! ```
//! use shardc_ir::{Graph, Op, TensorType, DType, BinaryFn};
//! use shardc_runtime::{execute, Tensor};
//! let mut g = Graph::new("double");
//! let ty = TensorType::new(DType::F32, vec![3]);
//! let x = g.push("x", Op::Input { init: None }, vec![], Some(ty.clone())).unwrap();
//! let y = g.push("y", Op::Binary { func: BinaryFn::Add }, vec![x, x], None).unwrap();
//! g.outputs.push(y);
//! let out = execute(&g, &[Tensor::from_f64(ty, &[1.0, 2.0, 3.0]).unwrap()]).unwrap();
//! assert_eq!(out[0].to_f64_vec(), vec![2.0, 4.0, 6.0]);
//! ```

// No unsafe code, except in the CUDA backend's FFI (DESIGN.md: the FFI backends are the one
// exception), which allows it for its own module only; `forbid` could not be relaxed there.
#![cfg_attr(not(feature = "cuda"), forbid(unsafe_code))]
#![cfg_attr(feature = "cuda", deny(unsafe_code))]

pub mod check;
#[cfg(feature = "cuda")]
#[allow(unsafe_code)]
pub mod cuda;
mod error;
mod executor;
mod executor_plan;
mod kernels;
pub mod memory;
mod mesh;
#[cfg(feature = "mpi")]
mod mpi_backend;
#[cfg(feature = "mpi")]
mod mpi_pipeline;
#[cfg(feature = "mpi")]
mod mpi_reducer;
mod npz;
mod pipeline;
mod random;
mod tensor;

pub use check::{check_outputs, CheckReport, OutputCheck, Verdict};
pub use error::RuntimeError;
pub use executor::{execute, execute_values, Prepared};
pub use memory::{device_peak_bytes, peak_bytes};
pub use mesh::{
    launch, launch_with, run_mpmd, run_mpmd_with, run_spmd, run_spmd_per_device, run_spmd_with,
    AllReduceAlgorithm, Communicator, InjectedFailure, MeshOptions, Stage, ThreadComm,
};
#[cfg(feature = "mpi")]
pub use mpi_backend::{run_spmd_mpi, MpiComm, MpiWorld};
#[cfg(feature = "mpi")]
pub use mpi_pipeline::run_pipeline_mpi;
pub use npz::{
    bind_inputs, npy_bytes, npz_bytes, param_tensor, read_npy, read_npz, read_npz_bytes, write_npz,
};
pub use pipeline::{
    run_pipeline, run_pipeline_spmd, PipelineResult, PipelineStage, SpmdPipelineResult,
    SpmdPipelineStage,
};
pub use random::random_inputs;
pub use tensor::{max_relative_error, Summary, Tensor};
