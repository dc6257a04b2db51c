//! `shardc run --check` judged against the f64 oracle, and the memory guard from liveness.

use crate::common::{shardc, shardc_ok, zoo};

#[test]
fn adam_gpt_training_step_passes_the_check_and_names_the_ill_conditioned_outputs() {
    // Failed before the f64 oracle: the key bias's update differed from the f32 reference by
    // ~1e-3 (Adam normalises rounding noise of a gradient that is zero in exact arithmetic).
    let g = zoo(
        "run_oracle_gpt.json",
        &[
            "gpt",
            "--layers",
            "1",
            "--hidden",
            "16",
            "--heads",
            "4",
            "--seq",
            "8",
            "--vocab",
            "32",
            "--batch",
            "2",
            "--train",
            "--shardings",
            "megatron",
            "--mesh",
            "dp=2,tp=4",
        ],
    );
    let out = shardc_ok(&["run", &g, "--check", "--seed", "3"]);
    assert!(out.contains("check passed"), "{out}");
    assert!(
        out.contains("ill-conditioned") && out.contains("layers.0.attn.qkv.bias.update.new"),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn memory_guard_refuses_a_graph_whose_intermediates_alone_exceed_the_limit() {
    // Inputs and parameters: 1024×16 + 16×4096 + 4096×16 + 1024×16 f32 and biases (under 1 MiB);
    // the hidden activations 1024×4096 f32 (16 MiB each). The limit, 0.01 GiB (10.7 MB), holds
    // the inputs but not the intermediates.
    let path = zoo(
        "run_guard_mlp.json",
        &["mlp", "--batch", "1024", "--sizes", "16,4096,16"],
    );
    let g = shardc::ir::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let limit = 0.01 * (1u64 << 30) as f64;
    let inputs = shardc::runtime::memory::input_bytes(&g);
    let peak = shardc::runtime::memory::peak_bytes(&g);
    assert!(
        (inputs as f64) < limit && peak as f64 > limit,
        "{inputs} {peak}"
    );
    let out = shardc(&["run", &path, "--max-memory", "0.01"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let figure = format!("({} bytes)", inputs + peak);
    assert!(
        stderr.contains("the reference executor needs an estimated")
            && stderr.contains(&figure)
            && stderr.contains("--max-memory 0.01 GiB"),
        "{stderr} (expected {figure})"
    );
    // The same graph runs under a limit that holds its peak.
    shardc_ok(&["run", &path, "--max-memory", "1"]);
}
