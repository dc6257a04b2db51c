//! `shardc run --check`: the partitioned program on the threads backend against the reference
//! executor, from the command line.

use crate::common::{shardc, shardc_ok, zoo};

const HLO_MLP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/jax/megatron_mlp.hlo"
);

#[test]
fn megatron_gpt_training_step_matches_the_reference_on_a_2x2_mesh() {
    let g = zoo(
        "run_check_gpt.json",
        &[
            "gpt",
            "--layers",
            "1",
            "--hidden",
            "32",
            "--heads",
            "4",
            "--seq",
            "8",
            "--vocab",
            "64",
            "--batch",
            "4",
            "--shardings",
            "megatron",
            "--mesh",
            "dp=2,tp=2",
            "--train",
            "--optimizer",
            "sgd",
        ],
    );
    let out = shardc_ok(&["run", &g, "--check"]);
    assert!(
        out.contains("mesh dp=2,tp=2 (4 devices, threads backend)"),
        "{out}"
    );
    // Every gradient and updated weight is an output, each with its own verdict.
    assert!(
        out.contains("layers.0.mlp.fc1.weight.grad: max relative error"),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("check passed"), "{out}");
}

#[test]
fn hlo_from_jax_runs_on_the_mesh_its_shardings_name() {
    let out = shardc_ok(&["run", HLO_MLP, "--check"]);
    assert!(out.contains("mesh x0=2,x1=4 (8 devices"), "{out}");
    assert!(out.contains("check passed"), "{out}");
}

#[test]
fn an_error_above_the_tolerance_exits_1_and_names_the_output() {
    // f32 sums in another order differ at ~1e-7; a 1e-12 tolerance cannot hold.
    let out = shardc(&["run", HLO_MLP, "--check", "--tolerance", "1e-12"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("output `dot_general.3` differs from the reference executor"),
        "{err}"
    );
}

#[test]
fn a_shard_on_a_missing_value_is_bad_input() {
    let g = zoo("run_check_mlp.json", &["mlp"]);
    let out = shardc(&[
        "run",
        &g,
        "--mesh",
        "dp=2",
        "--shard",
        "nope=P('dp')",
        "--check",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no value `nope`"));
}
