//! `shardc run --allreduce reduction-server:R`: the data-parallel training step with reducer
//! threads beside the devices gives the ring's outputs exactly.

use crate::common::{scratch, shardc_ok, zoo};

#[test]
fn data_parallel_step_with_4_workers_and_2_reducers_equals_the_ring() {
    let fwd = zoo("rs_mlp.json", &["mlp", "--batch", "8"]);
    let step = scratch("rs_mlp_step.json");
    let step = step.to_str().expect("UTF-8 scratch path").to_string();
    shardc_ok(&["grad", &fwd, "-o", &step, "--optimizer", "sgd"]);
    let run = |allreduce: &str| {
        shardc_ok(&[
            "run",
            &step,
            "--mesh",
            "dp=4",
            "--shard",
            "x=P('dp', None)",
            "--shard",
            "target=P('dp', None)",
            "--check",
            "--allreduce",
            allreduce,
        ])
    };
    let ring = run("ring");
    let server = run("reduction-server:2");
    assert!(
        server.contains("reduction server with 2 reducers"),
        "{server}"
    );
    assert!(server.contains("check passed"), "{server}");
    // Every output's error against the reference (printed to 4 digits) and summary are equal:
    // the reducers sum each chunk in the ring's order.
    let body = |s: &str| s.lines().skip(1).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(body(&ring), body(&server));
}

#[test]
fn an_unknown_all_reduce_algorithm_is_bad_input() {
    let fwd = zoo("rs_bad.json", &["mlp"]);
    let out = crate::common::shardc(&["run", &fwd, "--mesh", "dp=2", "--allreduce", "tree"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown all-reduce algorithm `tree`"), "{err}");
}
