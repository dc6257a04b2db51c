//! The CLI's behaviour: generating, checking and showing graphs, help, and errors.

use serde_json::Value;
use shardc::ir::{from_json, GraphStats};

use crate::common::{scratch, shardc, shardc_ok, zoo, TINY_GPT};

fn check_json(path: &str) -> Value {
    serde_json::from_str(&shardc_ok(&["check", path, "--format", "json"]))
        .expect("check --format json prints JSON")
}

#[test]
fn gpt3_from_the_zoo_checks_to_175b_parameters_and_the_reference_flops() {
    let path = zoo(
        "gpt3.json",
        &[
            "gpt", "--layers", "96", "--hidden", "12288", "--heads", "96", "--seq", "2048",
            "--vocab", "51200", "--batch", "8", "--dtype", "bf16",
        ],
    );
    let report = check_json(&path);
    let params = report["parameters"].as_u64().expect("parameters") as f64;
    assert!((174e9..=176e9).contains(&params), "{params}");
    // REFERENCES.md: 24·B·s·l·h²·(1 + s/(6h) + V/(12·l·h)).
    let (b, s, l, h, v) = (8.0, 2048.0, 96.0, 12288.0, 51200.0);
    let expected = 24.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * l * h));
    let matmul = report["matmul_flops"].as_f64().expect("matmul_flops");
    assert!(
        (matmul / expected - 1.0).abs() < 0.01,
        "{matmul} vs {expected}"
    );
    assert!(report["flops"].as_f64().expect("flops") > matmul);
    assert!(report["nodes"].as_u64().expect("nodes") > 96 * 50);
}

#[test]
fn every_zoo_model_is_generated_and_checks() {
    for (file, args) in [
        (
            "mlp.json",
            &["mlp", "--sizes", "4,8,8,2", "--activation", "gelu"][..],
        ),
        ("gpt.json", TINY_GPT),
        ("resnet.json", &["resnet", "--stages", "1,2"][..]),
        ("moe.json", &["moe", "--experts", "8"][..]),
    ] {
        let path = zoo(file, args);
        let g = from_json(&std::fs::read_to_string(&path).expect("written")).expect("valid");
        let report = check_json(&path);
        let stats = GraphStats::of(&g);
        assert_eq!(report["nodes"].as_u64(), Some(stats.nodes as u64), "{file}");
        assert_eq!(
            report["parameters"].as_u64(),
            Some(stats.parameters),
            "{file}"
        );
        assert_eq!(report["flops"].as_u64(), Some(stats.flops as u64), "{file}");
        assert_eq!(report["loss"].as_str(), Some("loss.value"), "{file}");
    }
}

#[test]
fn zoo_without_an_output_file_writes_the_graph_to_stdout() {
    let text = shardc_ok(&["zoo", "moe"]);
    let path = zoo("moe_default.json", &["moe"]);
    assert_eq!(text, std::fs::read_to_string(path).expect("written"));
    from_json(&text).expect("stdout holds a valid graph");
}

#[test]
fn megatron_shardings_put_the_mesh_and_annotations_in_the_file() {
    let mut args = TINY_GPT.to_vec();
    args.extend_from_slice(&["--shardings", "megatron", "--mesh", "dp=2,tp=4"]);
    let path = zoo("gpt_megatron.json", &args);
    let report = check_json(&path);
    assert_eq!(report["mesh"].as_str(), Some("dp=2,tp=4"));
    // tokens and labels, the vocabulary-parallel embedding, then six weights and biases per
    // layer.
    assert_eq!(report["annotations"].as_u64(), Some(2 + 1 + 6 * 2));
    let show = shardc_ok(&["show", &path]);
    assert!(show.starts_with("graph gpt mesh(dp=2,tp=4)\n"), "{show}");
}

#[test]
fn show_prints_one_line_per_node_then_outputs_and_loss() {
    let path = zoo("mlp_show.json", &["mlp"]);
    let g = from_json(&std::fs::read_to_string(&path).expect("written")).expect("valid");
    let text = shardc_ok(&["show", &path]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "graph mlp");
    assert_eq!(lines.len(), 1 + g.len() + 2);
    assert!(
        lines[1].starts_with("  %0 x : f32[8,16] = input()"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[lines.len() - 1], format!("loss: %{}", g.len() - 1));
}

#[test]
fn every_command_has_help() {
    for cmd in [
        &[][..],
        &["zoo"],
        &["zoo", "gpt"],
        &["zoo", "mlp"],
        &["zoo", "resnet"],
        &["zoo", "moe"],
        &["check"],
        &["show"],
        &["run"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let text = shardc_ok(&args);
        assert!(text.contains("Usage: shardc"), "{cmd:?}: {text}");
    }
    let gpt = shardc_ok(&["zoo", "gpt", "--help"]);
    for flag in [
        "--layers", "--hidden", "--heads", "--seq", "--vocab", "--batch", "--dtype",
    ] {
        assert!(gpt.contains(flag), "zoo gpt --help lacks {flag}");
    }
    assert!(gpt.contains("--shardings") && gpt.contains("--mesh") && gpt.contains("--output"));
}

fn fails_with(args: &[&str], fragments: &[&str]) {
    let out = shardc(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    for f in fragments {
        assert!(stderr.contains(f), "{args:?}: `{f}` not in {stderr}");
    }
}

#[test]
fn a_missing_file_is_an_input_error_naming_the_file() {
    fails_with(
        &["check", "no/such/graph.json"],
        &["no/such/graph.json", "No such file"],
    );
    fails_with(&["show", "no/such/graph.json"], &["no/such/graph.json"]);
}

#[test]
fn bad_zoo_options_are_input_errors_naming_the_option() {
    fails_with(
        &["zoo", "gpt", "--heads", "3"],
        &["`heads`", "must divide hidden (64)"],
    );
    fails_with(
        &["zoo", "gpt", "--layers", "0"],
        &["`layers` must be at least 1"],
    );
    fails_with(
        &["zoo", "gpt", "--dtype", "q8"],
        &["--dtype", "expected one of f32"],
    );
    fails_with(
        &["zoo", "gpt", "--dtype", "i32"],
        &["`dtype`", "floating-point"],
    );
    fails_with(
        &["zoo", "gpt", "--shardings", "megatron"],
        &["needs --mesh"],
    );
    fails_with(&["zoo", "gpt", "--mesh", "dp=2"], &["--shardings"]);
    fails_with(
        &["zoo", "gpt", "--shardings", "megatron", "--mesh", "dp=two"],
        &["--mesh", "size of axis `dp` must be a positive integer"],
    );
    fails_with(
        &["zoo", "gpt", "--shardings", "megatron", "--mesh", "x=2"],
        &["`mesh`", "needs an axis `dp` or `tp`"],
    );
    fails_with(
        &["zoo", "mlp", "--sizes", "4"],
        &["`sizes`", "at least two entries"],
    );
    fails_with(&["zoo", "resnet", "--stages", "1,0"], &["`stages`"]);
    fails_with(
        &["zoo", "moe", "--experts", "0"],
        &["`experts` must be at least 1"],
    );
    fails_with(
        &[
            "zoo",
            "gpt",
            "--batch",
            "1099511627776",
            "--seq",
            "1048576",
            "--vocab",
            "1048576",
        ],
        &["overflows u64"],
    );
    fails_with(&["zoo", "llama"], &["llama"]);
}

#[test]
fn an_unwritable_output_is_an_input_error_naming_the_path() {
    fails_with(
        &["zoo", "mlp", "-o", "/no/such/dir/mlp.json"],
        &["/no/such/dir/mlp.json"],
    );
}

#[test]
fn check_sums_enormous_valid_graphs_without_overflowing() {
    // Two parameters of 2^61 f32 elements: each fits in u64 bytes, their sum does not.
    let text = r#"{"format": "shardc-graph", "version": 1, "name": "huge", "nodes": [
        {"id": 0, "name": "a", "op": "input", "type": "f32[2305843009213693952]", "role": "parameter"},
        {"id": 1, "name": "b", "op": "input", "type": "f32[2305843009213693952]", "role": "parameter"},
        {"id": 2, "name": "c", "op": "binary", "func": "mul", "operands": [0, 1], "type": "f32[2305843009213693952]"}
    ], "outputs": [2]}"#;
    let path = scratch("huge.json");
    std::fs::write(&path, text).expect("scratch is writable");
    let report = check_json(path.to_str().expect("UTF-8 path"));
    assert_eq!(report["parameters"].as_u64(), Some(1 << 62));
    assert_eq!(
        report["parameter_bytes"].as_u64(),
        Some(u64::MAX),
        "saturates"
    );
}
