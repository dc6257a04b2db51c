//! MPI all-reduce of 64 MiB of f32 over 2 and 4 ranks (feature `mpi`), beside the threads
//! backend's `allreduce` bench. Run under mpirun:
//!
//! ```sh
//! cargo bench -p shardc-runtime --features mpi --bench mpi_allreduce --no-run
//! mpirun --oversubscribe -n 2 target/release/deps/mpi_allreduce-*[^d]   # and -n 4
//! ```
//!
//! Rank 0 prints the median of 10 timed all-reduces (after one untimed), algbw = S/t and
//! busbw = algbw·2(n−1)/n (nccl-tests' convention, REFERENCES.md): first through the backend's
//! `Communicator` (what a program's all-reduce costs: the result is a fresh tensor), then
//! `MPI_Allreduce` alone between two buffers allocated once, which is Open MPI's own figure
//! for the transport it picked (run with `--mca btl self,vader` or `--mca btl self,tcp`, with
//! and without `--oversubscribe`, to tell the transport from the scheduling).

use std::time::Instant;

use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use shardc_ir::{Mesh, ReduceFn};
use shardc_runtime::{Communicator, MpiComm, MpiWorld, Tensor};

const BYTES: usize = 64 << 20;
const ELEMS: usize = BYTES / 4;

fn main() {
    let world = MpiWorld::init().expect("MPI initialises");
    let n = world.size();
    let mesh: Mesh = format!("x={n}").parse().expect("a valid mesh");
    let axes = vec!["x".to_string()];
    let mut comm = MpiComm::connect(&world, &mesh, &[axes.clone()]).expect("one rank per device");
    let mut x = Tensor::from_f32_vec(&[ELEMS as u64], vec![0.0; ELEMS]).expect("a valid tensor");
    x = comm
        .all_reduce(x, &axes, ReduceFn::Sum)
        .expect("all-reduce");
    let mut x = Some(x);
    let ours = median_of_10(|| {
        let y = comm.all_reduce(x.take().expect("the buffer"), &axes, ReduceFn::Sum);
        x = Some(y.expect("all-reduce"));
    });
    // Open MPI alone: the same bytes between buffers that live across calls.
    let wc = SimpleCommunicator::world();
    let src = vec![0.0f32; ELEMS];
    let mut dst = vec![0.0f32; ELEMS];
    wc.all_reduce_into(&src[..], &mut dst[..], SystemOperation::sum());
    let raw = median_of_10(|| wc.all_reduce_into(&src[..], &mut dst[..], SystemOperation::sum()));
    if world.rank() == 0 {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let load = load
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        for (what, times) in [("communicator", ours), ("MPI_Allreduce alone", raw)] {
            let t = times[times.len() / 2];
            let algbw = BYTES as f64 / t / 1e9;
            let busbw = algbw * 2.0 * (n as f64 - 1.0) / n as f64;
            println!(
                "mpi all_reduce 64MiB {n} ranks, {what}: median {:.1} ms (min {:.1}, max {:.1}), algbw {algbw:.3} GB/s, busbw {busbw:.3} GB/s; load {load}",
                t * 1e3,
                times[0] * 1e3,
                times[times.len() - 1] * 1e3,
            );
        }
    }
}

/// Ten timed calls of `f` (after the caller's untimed one), sorted.
fn median_of_10(mut f: impl FnMut()) -> Vec<f64> {
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times
}
