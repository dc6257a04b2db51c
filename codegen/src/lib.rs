//! The SPMD partitioner (to come): from a graph where every value has a sharding to one program
//! per pipeline stage, the same on every device of the stage's submesh and parameterised by the
//! device's mesh coordinates, with local shapes, collectives, halo exchanges and send/recv; and
//! collective simplification with egg.
//!
//! Codegen follows the plan it is given; it never chooses a sharding.

#![forbid(unsafe_code)]
