//! The Reduction Server on the threads backend: reducer threads that hold no device sum each
//! chunk over the group in rank order, so every all-reduce equals the ring's bit for bit.

use std::time::Duration;

use shardc_ir::{Mesh, ReduceFn};
use shardc_runtime::{launch_with, AllReduceAlgorithm, Communicator, Tensor};

/// Device `d`'s contribution of `len` elements: values whose f32 sums depend on the order.
fn contribution(d: usize, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919 + d * 104_729) % 1000) as f32 * 1.37e-3 + (d as f32 + 1.0) * 1e7)
        .collect()
}

/// Every device's results of a sequence of all-reduces (several lengths, sums and maxes, over
/// the whole 2x2 mesh and along one axis) under `algorithm`.
fn run(algorithm: AllReduceAlgorithm) -> Vec<Vec<Vec<f32>>> {
    let mesh: Mesh = "dp=2,x=2".parse().unwrap();
    let both = vec!["dp".to_string(), "x".to_string()];
    let dp = vec!["dp".to_string()];
    let results = launch_with(
        &[(mesh, (0..4).collect())],
        Duration::from_secs(60),
        algorithm,
        |comm| {
            let d = comm.position();
            let mut outs = Vec::new();
            for (len, func, axes) in [
                (1, ReduceFn::Sum, &both),
                (7, ReduceFn::Sum, &both),
                (1000, ReduceFn::Sum, &both),
                (1000, ReduceFn::Max, &both),
                (33, ReduceFn::Sum, &dp),
            ] {
                let x = Tensor::from_f32_vec(&[len as u64], contribution(d, len))?;
                let y = comm.all_reduce(x, axes, func)?;
                outs.push(y.as_f32().unwrap().iter().copied().collect::<Vec<f32>>());
            }
            Ok(outs)
        },
    )
    .unwrap();
    results.into_iter().map(Result::unwrap).collect()
}

#[test]
fn four_workers_and_two_reducers_equal_the_ring_bit_for_bit() {
    let ring = run(AllReduceAlgorithm::Ring);
    let server = run(AllReduceAlgorithm::ReductionServer { reducers: 2 });
    assert_eq!(ring, server);
    // And both are the sums: element 3 of the 7-element sum over all four devices.
    let want: f32 = (0..4)
        .map(|d| contribution(d, 7)[3])
        .fold(0.0, |a, b| a + b);
    assert_eq!(server[2][1][3], want);
}

#[test]
fn more_reducers_than_elements_still_reduce_every_element() {
    let server = run(AllReduceAlgorithm::ReductionServer { reducers: 3 });
    assert_eq!(server, run(AllReduceAlgorithm::Ring));
}

#[test]
fn zero_reducers_is_refused() {
    let mesh: Mesh = "x=2".parse().unwrap();
    let e = launch_with(
        &[(mesh, vec![0, 1])],
        Duration::from_secs(5),
        AllReduceAlgorithm::ReductionServer { reducers: 0 },
        |_| Ok(()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("at least one reducer"), "{e}");
}
