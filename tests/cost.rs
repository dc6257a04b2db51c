//! `shardc cost`: a sharded graph's step estimate on a cluster.

use serde_json::Value;

use crate::common::{shardc, shardc_ok, zoo};

/// A small Megatron-annotated GPT in a scratch file of its own per test (tests run in parallel).
fn megatron_gpt(file: &str) -> String {
    zoo(
        file,
        &[
            "gpt",
            "--layers",
            "2",
            "--hidden",
            "256",
            "--heads",
            "4",
            "--seq",
            "128",
            "--vocab",
            "512",
            "--batch",
            "16",
            "--dtype",
            "bf16",
            "--shardings",
            "megatron",
            "--mesh",
            "dp=2,tp=4",
        ],
    )
}

#[test]
fn cost_prints_the_step_estimate_as_json() {
    let path = megatron_gpt("cost_json.json");
    let out = shardc_ok(&[
        "cost",
        &path,
        "--cluster",
        "a100-80gb:1x8",
        "--micro-batches",
        "2",
        "--train",
        "--format",
        "json",
    ]);
    let e: Value = serde_json::from_str(&out).expect("cost --format json prints JSON");
    for key in [
        "step_time_s",
        "model_tflops_per_device",
        "hardware_tflops_per_device",
        "memory_per_device_bytes",
    ] {
        assert!(e[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {out}");
    }
    // Megatron's layout needs tensor-parallel all-reduces and data-parallel gradient reductions.
    let axes: Vec<&str> = e["collectives"]
        .as_array()
        .expect("collectives")
        .iter()
        .filter_map(|c| c["axes"].as_str())
        .collect();
    assert!(axes.contains(&"tp") && axes.contains(&"dp"), "{axes:?}");
    assert!(e["fits"].as_bool().expect("fits"));
}

#[test]
fn cost_reports_the_time_split_and_memory_as_tables() {
    let path = megatron_gpt("cost_text.json");
    let out = shardc_ok(&[
        "cost",
        &path,
        "--cluster",
        "dgx-a100-80gb:1",
        "--shard",
        "tokens=P('dp', None)",
    ]);
    for needle in [
        "step time",
        "exposed communication",
        "pipeline bubble",
        "memory per device",
        "collectives per step",
    ] {
        assert!(out.contains(needle), "{needle} missing:\n{out}");
    }
}

#[test]
fn cost_rejects_a_cluster_smaller_than_the_mesh_and_unknown_devices() {
    let path = megatron_gpt("cost_bad.json");
    let out = shardc(&["cost", &path, "--cluster", "a100-80gb:1x4"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs 8 devices"), "{err}");
    let out = shardc(&["cost", &path, "--cluster", "b300:1x8"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a device nor a cluster preset"));
}

#[test]
fn profile_measures_this_machine_and_cost_calibrates_with_it() {
    let prof = crate::common::scratch("profile.json");
    let prof = prof.to_str().expect("UTF-8 path");
    shardc_ok(&["profile", "--repeat", "1", "-o", prof]);
    let p: Value =
        serde_json::from_str(&std::fs::read_to_string(prof).expect("written")).expect("JSON");
    assert_eq!(p["device"], "cpu-xeon-8380");
    let ops = p["ops"].as_array().expect("ops");
    assert!(ops
        .iter()
        .all(|o| o["seconds"].as_f64().is_some_and(|s| s > 0.0)));
    assert_eq!(p["collectives"].as_array().expect("collectives").len(), 6);
    let path = megatron_gpt("cost_calibrated.json");
    let out = shardc_ok(&[
        "cost",
        &path,
        "--cluster",
        "cpu-xeon-8380:8x1",
        "--calibration",
        prof,
        "--format",
        "json",
    ]);
    let e: Value = serde_json::from_str(&out).expect("JSON");
    assert!(e["step_time_s"].as_f64().is_some_and(|t| t > 0.0));
    // A profile from another device does not calibrate this one.
    let out = shardc(&[
        "cost",
        &path,
        "--cluster",
        "a100-80gb:1x8",
        "--calibration",
        prof,
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("measured on `cpu-xeon-8380`"));
}
