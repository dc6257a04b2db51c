//! Sharding propagation and choice (to come): per-op sharding rules derived from `ir`'s op
//! factors, propagation of user annotations through an e-graph (egg) to a fixpoint, resharding
//! (any sharding to any other as a sequence of collectives with byte counts), and the automatic
//! choice of shardings as an ILP over e-nodes (good_lp).
//!
//! This crate decides shardings; it never executes anything.

#![forbid(unsafe_code)]
