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

/// `shardc zoo gpt` as Megatron trained it (mixed precision, full recomputation, Megatron
/// annotations on `mesh`), then `shardc cost --format json`; returns the estimate.
fn zoo_gpt_cost(file: &str, shape: [u64; 5], batch: u64, mesh: &str, cost: &[&str]) -> Value {
    let [l, h, a, s, v] = shape.map(|x| x.to_string());
    let batch = batch.to_string();
    // The zoo's Megatron annotations name the dp and tp axes only.
    let zoo_mesh: Vec<&str> = mesh.split(',').filter(|x| !x.starts_with("pp=")).collect();
    let zoo_mesh = zoo_mesh.join(",");
    let mut args = vec![
        "gpt", "--layers", &l, "--hidden", &h, "--heads", &a, "--seq", &s, "--vocab", &v,
        "--batch", &batch, "--train", "--mixed-precision", "--shardings", "megatron", "--mesh",
        &zoo_mesh,
    ];
    args.extend_from_slice(&cost[..0]);
    let recompute = cost
        .iter()
        .position(|x| *x == "--recompute")
        .map(|i| cost[i + 1]);
    if let Some(r) = recompute {
        args.extend_from_slice(&["--recompute", r]);
    }
    let path = zoo(file, &args);
    let mut all = vec!["cost", &path, "--mesh", mesh, "--format", "json"];
    let mut rest = cost.iter();
    while let Some(x) = rest.next() {
        if *x == "--recompute" {
            rest.next();
        } else {
            all.push(x);
        }
    }
    let out = shardc_ok(&all);
    serde_json::from_str(&out).expect("cost --format json prints JSON")
}

#[test]
fn published_megatron_throughput_is_predicted_through_the_graph_path_within_10_percent() {
    // Narayanan et al. SC21, Table 1 (REFERENCES.md): hardware TFLOP/s per GPU with full
    // recomputation, micro-batch 1, on DGX A100-80GB nodes. Megatron-LM 2021 reduced gradients
    // after the pipeline flush and sent between stages blocking: `--no-overlap` is how it ran.
    for (name, shape, batch, mesh, cluster, mb, published) in [
        ("18.4B", [40, 6144, 48, 2048, 51200], 1024, "dp=32,tp=8", "a100-80gb:32x8", "32", 135.0),
        (
            "145.6B",
            [80, 12288, 96, 2048, 51200],
            2304,
            "pp=8,dp=24,tp=8",
            "a100-80gb:192x8",
            "96",
            148.0,
        ),
    ] {
        let e = zoo_gpt_cost(
            &format!("published_{name}.json"),
            shape,
            batch,
            mesh,
            &[
                "--cluster", cluster, "--micro-batches", mb, "--recompute", "full", "--no-overlap",
            ],
        );
        let tflops = e["hardware_tflops_per_device"].as_f64().expect("tflops");
        let err = tflops / published - 1.0;
        println!("{name}: graph path {tflops:.1} TFLOP/s, published {published}, {:+.1}%", 100.0 * err);
        assert!(err.abs() < 0.10, "{name}: {tflops} vs {published}: {e}");
        assert_eq!(e["precision"], "bf16");
        assert!(e["fits"].as_bool().expect("fits"), "{e}");
    }
}
