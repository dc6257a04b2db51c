//! Pipeline parallelism (to come): slicing a graph into stages and assigning submeshes (a DP as
//! in Alpa), schedules (GPipe, 1F1B, interleaved 1F1B, zero-bubble) written as
//! torch.distributed.pipelining actions (`1F0`, `1B0`, `1W0`), schedule simulation and timeline
//! export (SVG).
//!
//! This crate plans stages and schedules; it neither partitions within a stage nor runs anything.

#![forbid(unsafe_code)]
