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
    // In f64 the reference executor is the oracle; sums split over `tp` round differently at
    // ~1e-16, which a 1e-300 tolerance cannot hold. (In f32, an unreachable tolerance no longer
    // fails: the run is judged against the f64 oracle together with the f32 reference's own
    // error, see `an_f32_run_as_good_as_the_reference_passes_below_f32_precision`.)
    let g = zoo(
        "run_check_tol.json",
        &[
            "mlp", "--dtype", "f64", "--batch", "8", "--sizes", "64,64,8",
        ],
    );
    let out = shardc(&[
        "run",
        &g,
        "--mesh",
        "tp=2",
        "--shard",
        "layers.0.weight=P('tp', None)",
        "--check",
        "--tolerance",
        "1e-300",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("output `loss.value` differs from the reference executor"),
        "{err}"
    );
}

#[test]
fn an_f32_run_as_good_as_the_reference_passes_below_f32_precision() {
    // f32 sums in another order differ at ~1e-7, as the f32 reference does from the f64
    // oracle: every output is then ill-conditioned at a 1e-12 tolerance, and named so.
    let out = shardc_ok(&["run", HLO_MLP, "--check", "--tolerance", "1e-12"]);
    assert!(out.contains("check passed against the f64 oracle"), "{out}");
    assert!(out.contains("ill-conditioned"), "{out}");
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

#[test]
fn stablehlo_from_jax_runs_checked_on_its_shardy_mesh() {
    let mlir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/jax/moe_top2.mlir");
    let out = shardc_ok(&["run", mlir, "--check"]);
    assert!(out.contains("mesh dp=2,tp=4 (8 devices"), "{out}");
    assert!(out.contains("check passed"), "{out}");
}
