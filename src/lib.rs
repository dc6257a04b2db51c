//! shardc: a parallelism planner and SPMD sharding compiler with its own small runtime.
//!
//! This facade reads as the pipeline: [`import`] a graph file, [`plan`] it on a cluster (the
//! cost model chooses the mesh shape and every value's sharding), [`compile`] the plan into the
//! SPMD program, and [`run`] that on the threads backend, one thread per device. Each step
//! verifies what it returns, and an [`Error`] names the step that failed with the crate's typed
//! error as its `source()`. The crates are re-exported for everything else.
//!
//! From a zoo model to a checked run:
//!
//! ```
//! use shardc::cost_model::{Catalog, Cluster};
//! use shardc::ir::zoo::{mlp, MlpConfig};
//! use shardc::runtime::{execute, max_relative_error, random_inputs};
//!
//! let g = mlp(&MlpConfig { batch: 64, sizes: vec![32, 64, 16], ..MlpConfig::default() }).unwrap();
//! let cluster = Cluster::parse("a100-80gb:1x4", &Catalog::builtin()).unwrap();
//! let plan = shardc::plan(&g, &cluster, &shardc::PlanOptions::default()).unwrap();
//! assert_eq!(plan.mesh.num_devices(), 4);
//! let program = shardc::compile(&g, &plan).unwrap();
//! let inputs = random_inputs(&g, 0);
//! let got = shardc::run(&program, &inputs).unwrap();
//! let want = execute(&g, &inputs).unwrap();
//! for (a, b) in got.iter().zip(&want) {
//!     assert!(max_relative_error(a, b).unwrap() < 1e-5);
//! }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use shardc_codegen as codegen;
pub use shardc_cost_model as cost_model;
pub use shardc_ir as ir;
pub use shardc_pipeline as pipeline;
pub use shardc_runtime as runtime;
pub use shardc_sharding as sharding;

mod error;
mod export;
mod facade;
mod pipelined;
mod reduction;

pub use error::{CliError, Error, Result, Step};
pub use export::{export, ExportFormat};
pub use facade::plan_pipeline;
pub use facade::{
    compile, compile_annotated, import, import_text, import_with, input_format, merge_annotations,
    plan, plan_with, propagate, run, run_with, Backend, Imported, InputFormat, Program, RunOptions,
};
pub use facade::{plan_allreduce, run_plan};
pub use pipelined::{compile_pipelined, is_pipelined, run_pipelined, PipelinedProgram};
pub use reduction::{allreduce_choice, allreduce_for, carry_seconds};
pub use shardc_sharding::auto::PlanAllReduce;
pub use shardc_sharding::auto::{Plan, PlanOptions, PlanProgress, PlanTimings};
