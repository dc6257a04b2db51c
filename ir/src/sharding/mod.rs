//! Sharding types (part of the input) and the notations users write them in.
//!
//! A [`Sharding`] is axis-based: per tensor dim the mesh axes that split it (major first), the axes
//! over which the value is a pending partial sum, and every other axis replicated. The notations
//! (JAX `PartitionSpec`, PyTorch DTensor placements, XLA's HLO sharding text) parse into and print
//! from it.

mod spec;

pub use spec::{Annotation, DimSharding, Sharding, ShardingAssignment};
