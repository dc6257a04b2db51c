//! Collective simplification over a partitioned program.
//!
//! The program is loaded into an e-graph (egg): every node an e-node keyed by its op, so the
//! rewrites below add equivalent forms next to the original and extraction picks the cheapest,
//! weighing collectives by the bytes they move:
//! - `all_reduce` then this device's slice of the result → `reduce_scatter`;
//! - `all_gather` then the slice this device contributed → the value itself;
//! - `copy(x)` → `x` (so the patterns see through copies);
//! - `all_reduce` of an `all_reduce` (or `all_gather` of an `all_gather` along one dim) → one
//!   collective over both axis sets.
//!
//! Bucketing of small all-reduces (independent all-reduces over the same axes merged into one
//! over their concatenation) runs on the extracted graph (`bucket`), since it joins unrelated
//! values rather than rewriting one.

mod bucket;
mod egraph;

use shardc_ir::verify;

use crate::error::Result;
use crate::program::SpmdProgram;

pub use bucket::DEFAULT_BUCKET_BYTES;

/// Simplifies the collectives of `program` (the rewrites above, then bucketing all-reduces whose
/// local operand is under `bucket_bytes`); the result computes the same outputs.
pub fn simplify(program: &SpmdProgram, bucket_bytes: u64) -> Result<SpmdProgram> {
    let mut p = egraph::rewrite(program)?;
    bucket::bucket_all_reduces(&mut p, bucket_bytes)?;
    verify(&p.graph)?;
    Ok(p)
}
