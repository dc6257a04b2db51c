//! Pipeline parallelism: schedules as per-rank action lists in torch.distributed.pipelining's
//! vocabulary (`2F0`, `1I0`, `0W3`, `1B0`, `3SEND_F1`, `1RECV_B2`), their validator and CSV form,
//! an event-driven simulator, SVG and Chrome-trace pictures, Alpa's stage-slicing DP, and the
//! pipelined planner ([`plan_pipeline`]): (data, tensor, pipeline) degrees, micro-batches and
//! schedule chosen together, each candidate priced by the cost model's graph path with
//! Megatron-style shardings within a stage and its schedule simulated.
//!
//! ```
//! use shardc_pipeline::{simulate, Schedule, ScheduleKind, StageTimes};
//! let s = Schedule::generate(ScheduleKind::OneFOneB, 4, 4, 8).unwrap();
//! s.validate().unwrap();
//! let sim = simulate(&s, &StageTimes::uniform(4, 1.0, 1.0, 1.0, 0.0)).unwrap();
//! assert!((sim.bubble_over_ideal - 3.0 / 8.0).abs() < 1e-12);
//! ```
//!
//! This crate plans stages and schedules; it neither partitions within a stage nor runs anything
//! (`codegen::cut_stages` and `codegen::partition_stages` build each stage's SPMD programs,
//! `runtime::run_pipeline_spmd` runs them on a submesh per rank).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod action;
mod comms;
mod csv;
mod cuts;
mod error;
mod generate;
mod layers;
mod planner;
mod pricing;
mod render;
mod schedule;
mod select;
mod simulate;
mod slicing;
mod validate;

pub use action::{parse_cell, Action, ActionKind};
pub use csv::CsvFormat;
pub use error::{Error, Result};
pub use planner::{
    megatron_annotations, megatron_assignment, plan_pipeline, PipelineCandidate, PipelineOptions,
    PipelinePlan, PipelineTimings, PIPELINE_FORMAT_VERSION,
};
pub use pricing::{
    megatron_assignment_both_ways, megatron_collectives, of_layer, step_work_both_ways,
    step_work_with_cuts,
};
pub use render::{chrome_trace, format_seconds, render_svg, render_svg_titled};
pub use schedule::{format_table, stage_to_rank, Schedule, ScheduleKind};
pub use select::{choose_schedule, Candidate, RankWork};
pub use simulate::{simulate, Interval, Simulation, StageTimes};
pub use slicing::{
    slice_fixed, slice_stages, submesh_shapes, GptStageCost, SliceOptions, SlicePlan, StageCost,
    StageEstimate, StagePlan, Submesh,
};
pub use validate::dry_run;
