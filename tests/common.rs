//! Running the `shardc` binary from tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `shardc` with `args` (stderr is not a terminal, so no progress bars).
pub fn shardc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardc"))
        .args(args)
        .output()
        .expect("the shardc binary runs")
}

/// Runs `shardc` and returns its stdout, failing the test with its stderr if it fails.
pub fn shardc_ok(args: &[&str]) -> String {
    let out = shardc(args);
    assert!(
        out.status.success(),
        "shardc {args:?} failed ({:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("shardc prints UTF-8")
}

/// A path for a test's scratch file, unique per test name.
pub fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Generates a zoo model (`args` after `zoo`) into a scratch file and returns its path.
pub fn zoo(file: &str, args: &[&str]) -> String {
    let path = scratch(file);
    let path = path.to_str().expect("scratch paths are UTF-8").to_string();
    let mut all = vec!["zoo"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", &path]);
    shardc_ok(&all);
    path
}

/// The tiny two-layer GPT the snapshots use.
pub const TINY_GPT: &[&str] = &[
    "gpt", "--layers", "2", "--hidden", "16", "--heads", "2", "--seq", "8", "--vocab", "32",
    "--batch", "2",
];

/// Plans a zoo MLP's SGD step data-parallel over 4 single-GPU nodes of the Vertex AI preset
/// (A100s, 100 Gb/s per node) with 2 reducer nodes (`--cluster
/// a2-highgpu-8g-reduction-server:4x1+2`), the batch split and every other sharding the
/// planner's (it weighs the Reduction Server's all-reduce against reduce-scattered gradients),
/// and returns the step's and the plan's paths and the report.
pub fn plan_with_reducers(name: &str) -> (String, String, String) {
    let fwd = zoo(
        &format!("{name}.json"),
        &["mlp", "--batch", "8", "--sizes", "256,512,256"],
    );
    let step = scratch(&format!("{name}_step.json"));
    let step = step.to_str().expect("UTF-8 scratch path").to_string();
    shardc_ok(&["grad", &fwd, "-o", &step, "--optimizer", "sgd"]);
    let plan = scratch(&format!("{name}.plan.json"));
    let plan = plan.to_str().expect("UTF-8 scratch path").to_string();
    let report = shardc_ok(&[
        "plan",
        &step,
        "--cluster",
        "a2-highgpu-8g-reduction-server:4x1+2",
        "--mesh",
        "dp=4",
        "--shard",
        "x=P('dp', None)",
        "--shard",
        "target=P('dp', None)",
        "-o",
        &plan,
    ]);
    (step, plan, report)
}
