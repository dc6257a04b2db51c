//! shardc: a parallelism planner and SPMD sharding compiler with its own small runtime.
//!
//! This facade re-exports the crates of the workspace and is what frameworks call as a library.

#![forbid(unsafe_code)]

pub use shardc_codegen as codegen;
pub use shardc_cost_model as cost_model;
pub use shardc_ir as ir;
pub use shardc_pipeline as pipeline;
pub use shardc_runtime as runtime;
pub use shardc_sharding as sharding;

mod error;

pub use error::CliError;
