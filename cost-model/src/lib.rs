//! The cost model (to come): a hardware catalog shipped as data files, cluster topology and the
//! mapping of mesh axes onto links, roofline op costs from op factors, alpha-beta collective costs
//! per algorithm, memory per device, and calibration from measured profiles.
//!
//! The cost model estimates; it never decides a plan and never runs one.

#![forbid(unsafe_code)]

mod comm;

pub use comm::CommUse;
