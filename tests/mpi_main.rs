//! The MPI end-to-end tests (feature `mpi`; `cargo test -p shardc --features mpi --test mpi`):
//! a test binary of their own, beside the `e2e` suite of `tests/main.rs`, sharing its helpers.

#[allow(dead_code)]
mod common;
mod mpi;
