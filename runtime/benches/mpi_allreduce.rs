//! MPI all-reduce of 64 MiB of f32 over 2 and 4 ranks (feature `mpi`), beside the threads
//! backend's `allreduce` bench. Run under mpirun:
//!
//! ```sh
//! cargo bench -p shardc-runtime --features mpi --bench mpi_allreduce --no-run
//! mpirun --oversubscribe -n 2 target/release/deps/mpi_allreduce-*[^d]   # and -n 4
//! ```
//!
//! Rank 0 prints the median of 10 timed all-reduces (after one untimed), algbw = S/t and
//! busbw = algbw·2(n−1)/n (nccl-tests' convention, REFERENCES.md).

use std::time::Instant;

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
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        x = comm
            .all_reduce(x, &axes, ReduceFn::Sum)
            .expect("all-reduce");
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    if world.rank() == 0 {
        let t = times[times.len() / 2];
        let algbw = BYTES as f64 / t / 1e9;
        let busbw = algbw * 2.0 * (n as f64 - 1.0) / n as f64;
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "mpi all_reduce 64MiB {n} ranks: median {:.1} ms (min {:.1}, max {:.1}), algbw {algbw:.3} GB/s, busbw {busbw:.3} GB/s; load {}",
            t * 1e3,
            times[0] * 1e3,
            times[times.len() - 1] * 1e3,
            load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
    }
}
