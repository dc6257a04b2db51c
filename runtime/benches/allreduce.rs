//! Threads-backend all-reduce of 64 MiB of f32 over 2 and 4 devices, next to a plain memcpy of
//! the same 64 MiB (the machine's physical limit for moving those bytes).
//!
//! Bus bandwidth follows nccl-tests (REFERENCES.md): algbw = S / t, busbw = algbw · 2(n−1)/n.
//! Criterion reports the time per all-reduce; throughput is set to S so that its "thrpt" line
//! is algbw.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shardc_ir::{Mesh, ReduceFn};
use shardc_runtime::{launch, Communicator, Tensor};

const BYTES: usize = 64 << 20;
const ELEMS: usize = BYTES / 4;

fn memcpy(c: &mut Criterion) {
    let src = vec![1.0f32; ELEMS];
    let mut dst = vec![0.0f32; ELEMS];
    let mut group = c.benchmark_group("memcpy");
    group.throughput(Throughput::Bytes(BYTES as u64));
    group.bench_function("64MiB", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    // The same copy into a fresh allocation: what any collective that allocates its result
    // pays on top (page faults; glibc maps 64 MiB blocks fresh from the OS every time).
    group.bench_function("64MiB_fresh_allocation", |b| {
        b.iter(|| black_box(black_box(&src).clone()))
    });
    group.finish();
}

fn all_reduce(c: &mut Criterion) {
    let mut group = c.benchmark_group("all_reduce_threads");
    group.throughput(Throughput::Bytes(BYTES as u64));
    for n in [2usize, 4] {
        let mesh: Mesh = format!("x={n}").parse().expect("a valid mesh");
        let axes = vec!["x".to_string()];
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{n}dev")),
            &n,
            |b, _| {
                // One launch per timed batch: the threads start once, then run `iters` all-reduces,
                // each feeding the next (zeros, so the values stay finite), as a training loop's
                // gradient buffers would. The batch's time is the slowest device's.
                b.iter_custom(|iters| {
                    let times = launch(
                        &[(mesh.clone(), (0..n).collect())],
                        Duration::from_secs(600),
                        |comm| {
                            let mut x = Tensor::from_f32_vec(&[ELEMS as u64], vec![0.0; ELEMS])?;
                            // One untimed call first: it faults in the fresh pages of the result
                            // and chunk buffers, which later calls reuse (a training loop's
                            // steady state).
                            x = comm.all_reduce(x, &axes, ReduceFn::Sum)?;
                            let start = std::time::Instant::now();
                            for _ in 0..iters {
                                x = comm.all_reduce(x, &axes, ReduceFn::Sum)?;
                            }
                            black_box(&x);
                            Ok(start.elapsed())
                        },
                    )
                    .expect("the mesh is valid");
                    times
                        .into_iter()
                        .map(|t| t.expect("all-reduce succeeds"))
                        .max()
                        .unwrap_or_default()
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = memcpy, all_reduce
}
criterion_main!(benches);
