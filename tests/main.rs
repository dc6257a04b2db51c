//! End-to-end tests of the `shardc` package: the CLI binary and the facade, as a user runs them.

mod bad_input;
mod cli;
mod common;
mod cost;
mod graph_format_doc;
mod megatron;
mod onnx_cli;
mod onnx_plan;
mod plan;
mod plan_format_doc;
mod plan_pipeline;
mod propagate;
mod reduction_server;
mod run;
mod run_check;
mod run_oracle;
mod run_pipelined;
mod summaries;
