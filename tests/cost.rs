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
        "precision priced                 bf16",
        "largest ops per step",
        "largest collectives per step",
        "overlap: tensor-parallel collectives exposed",
    ] {
        assert!(out.contains(needle), "{needle} missing:\n{out}");
    }
    assert!(!out.contains("warning:"), "{out}");
}

#[test]
fn cost_says_an_f32_graph_is_priced_at_the_fp32_rate() {
    let path = zoo(
        "cost_f32.json",
        &[
            "gpt", "--layers", "1", "--hidden", "256", "--heads", "4", "--seq", "128",
        ],
    );
    let out = shardc_ok(&[
        "cost",
        &path,
        "--cluster",
        "a100-80gb:1x1",
        "--mesh",
        "dp=1",
    ]);
    assert!(
        out.contains("precision priced                 fp32"),
        "{out}"
    );
    assert!(
        out.contains("warning: the graph's matmuls are f32"),
        "{out}"
    );
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

/// `shardc zoo gpt` in mixed precision with Megatron annotations on `mesh` (`--shardings` and
/// `--recompute` in `cost` go to the zoo: `megatron` and none unless given), then `shardc cost
/// --format json` with the rest of `cost`; returns the estimate.
pub(crate) fn zoo_gpt_cost(
    file: &str,
    shape: [u64; 5],
    batch: u64,
    mesh: &str,
    cost: &[&str],
) -> Value {
    let zoo_flag = |name: &str| cost.iter().position(|x| *x == name).map(|i| cost[i + 1]);
    let style = zoo_flag("--shardings").unwrap_or("megatron");
    let [l, h, a, s, v] = shape.map(|x| x.to_string());
    let batch = batch.to_string();
    // The zoo's Megatron annotations name the dp and tp axes only.
    let zoo_mesh: Vec<&str> = mesh.split(',').filter(|x| !x.starts_with("pp=")).collect();
    let zoo_mesh = zoo_mesh.join(",");
    let mut args = vec![
        "gpt",
        "--layers",
        &l,
        "--hidden",
        &h,
        "--heads",
        &a,
        "--seq",
        &s,
        "--vocab",
        &v,
        "--batch",
        &batch,
        "--train",
        "--mixed-precision",
        "--shardings",
        style,
        "--mesh",
        &zoo_mesh,
    ];
    if let Some(r) = zoo_flag("--recompute").filter(|r| *r != "none") {
        args.extend_from_slice(&["--recompute", r]);
    }
    if let Some(p) = zoo_flag("--dropout") {
        args.extend_from_slice(&["--dropout", p]);
    }
    let path = zoo(file, &args);
    let mut all = vec!["cost", &path, "--mesh", mesh, "--format", "json"];
    let mut rest = cost.iter();
    while let Some(x) = rest.next() {
        if *x == "--recompute" || *x == "--shardings" || *x == "--dropout" {
            rest.next();
        } else {
            all.push(x);
        }
    }
    let out = shardc_ok(&all);
    serde_json::from_str(&out).expect("cost --format json prints JSON")
}

#[test]
fn the_graph_path_and_the_gpt_shape_path_agree_within_3_percent() {
    use shardc::cost_model::{
        estimate_gpt, Catalog, Cluster, GptShape, GptTraining, Recompute, Schedule, Zero,
    };
    let mut worst = 0.0f64;
    // (l, h, a, s, t, p, dp, micro-batches, recomputation)
    for (i, (l, h, a, s, t, p, dp, m, rc)) in [
        (
            4u64, 4096u64, 32u64, 2048u64, 1u64, 1u64, 1u64, 8u64, "none",
        ),
        (4, 4096, 32, 2048, 2, 1, 2, 8, "full"),
        (4, 6144, 48, 2048, 8, 1, 1, 8, "selective"),
        (8, 6144, 48, 2048, 4, 2, 1, 16, "full"),
        (8, 4096, 32, 2048, 2, 2, 2, 8, "none"),
        (4, 12288, 96, 2048, 8, 1, 2, 4, "full"),
    ]
    .into_iter()
    .enumerate()
    {
        let v = 51200;
        let mesh = if p > 1 {
            format!("pp={p},dp={dp},tp={t}")
        } else {
            format!("dp={dp},tp={t}")
        };
        let nodes = (p * dp * t).div_ceil(8);
        let per_node = (p * dp * t).min(8);
        let cluster = format!("a100-80gb:{nodes}x{per_node}");
        let m_s = m.to_string();
        let mut cost = vec![
            "--cluster",
            &cluster,
            "--micro-batches",
            &m_s,
            "--no-overlap",
        ];
        cost.extend_from_slice(&["--recompute", rc]);
        let e = zoo_gpt_cost(
            &format!("agree_{i}.json"),
            [l, h, a, s, v],
            m * dp,
            &mesh,
            &cost,
        );
        let graph = e["step_time_s"].as_f64().expect("step time");
        let run = GptTraining {
            shape: GptShape {
                layers: l,
                hidden: h,
                heads: a,
                seq: s,
                vocab: v,
            },
            global_batch: m * dp,
            micro_batch: 1,
            dp,
            tp: t,
            pp: p,
            sequence_parallel: false,
            recompute: rc.parse::<Recompute>().expect("recompute"),
            schedule: Schedule::OneFOneB,
            zero: Zero::None,
            overlap_gradient_reduction: false,
        };
        let c = Cluster::parse(&cluster, &Catalog::builtin()).expect("cluster");
        let ae = estimate_gpt(&run, &c).expect("estimate");
        let analytic = ae.step_time_s;
        println!(
            "graph compute {} comm {} opt {} bubble {}; shape compute {} comm {} opt {} bubble {}",
            e["compute_s"],
            e["exposed_comm_s"],
            e["optimizer_s"],
            e["bubble_s"],
            ae.compute_s,
            ae.exposed_comm_s,
            ae.optimizer_s,
            ae.bubble_s
        );
        let diff = graph / analytic - 1.0;
        println!("l={l} h={h} t={t} p={p} m={m} {rc}: graph {graph:.4} s, shape {analytic:.4} s, {:+.2}%", 100.0 * diff);
        worst = worst.max(diff.abs());
        let _ = i;
    }
    assert!(worst < 0.03, "worst {worst}");
}

/// Korthikanti et al. 2022 (REFERENCES.md, their Table 2), bytes of activations per layer at
/// micro-batch `b = 1` and 16-bit activations: `sbh(10 + 24/t + 5as/(ht))` with tensor
/// parallelism (`34 + 5as/h` at t = 1), `sbh(34/t + 5as/(ht))` with sequence parallelism as
/// well; selective recomputation drops the `5as/(ht)` term; full recomputation keeps the
/// layer's input, `2sbh` (`/t` when it is sequence-parallel).
fn korthikanti(s: f64, h: f64, a: f64, t: f64, sp: bool, rc: &str) -> f64 {
    let sbh = s * h;
    let attention = 5.0 * a * s * s / t;
    match (rc, sp) {
        ("full", false) => 2.0 * sbh,
        ("full", true) => 2.0 * sbh / t,
        ("selective", false) => sbh * (10.0 + 24.0 / t),
        ("selective", true) => sbh * 34.0 / t,
        ("none", false) => sbh * (10.0 + 24.0 / t) + attention,
        ("none", true) => sbh * 34.0 / t + attention,
        _ => unreachable!("recompute mode {rc}"),
    }
}

/// Exactly the dropout terms of [`korthikanti`]: the 1-byte masks of the two residual dropouts
/// (`2sbh`, `/t` under sequence parallelism) and, without recomputation, the attention
/// dropout's 1-byte mask and 2-byte output (`3as²b/t`). Full recomputation keeps none.
fn dropout_terms(s: f64, h: f64, a: f64, t: f64, sp: bool, rc: &str) -> f64 {
    let masks = 2.0 * s * h / if sp { t } else { 1.0 };
    match rc {
        "full" => 0.0,
        "selective" => masks,
        _ => masks + 3.0 * a * s * s / t,
    }
}

#[test]
fn graph_liveness_activation_memory_per_layer_matches_korthikanti() {
    // With `--dropout 0.1` (Megatron's default) the graph is held to Korthikanti's formulas as
    // written, masks included (1-byte bool inputs, kept unless a recomputed node draws them
    // again); without dropout, to the formulas minus exactly their dropout terms. GPT-3's layer
    // shape; the per-layer figure is the difference between 3 and 2 layers.
    let (s, h, a) = (2048.0, 12288.0, 96.0);
    for dropout in [true, false] {
        for t in [1u64, 8] {
            for style in ["megatron", "megatron-sp"] {
                for rc in ["none", "selective", "full"] {
                    korthikanti_case(dropout, t, style, rc, (s, h, a));
                }
            }
        }
    }
}

/// One case of [`graph_liveness_activation_memory_per_layer_matches_korthikanti`].
fn korthikanti_case(dropout: bool, t: u64, style: &str, rc: &str, (s, h, a): (f64, f64, f64)) {
    let mesh = format!("dp=1,tp={t}");
    let cluster = format!("a100-80gb:1x{t}");
    let sp = style == "megatron-sp";
    let act = |l: u64| {
        let mut cost = vec![
            "--cluster",
            &cluster,
            "--recompute",
            rc,
            "--shardings",
            style,
        ];
        if dropout {
            cost.extend_from_slice(&["--dropout", "0.1"]);
        }
        let e = zoo_gpt_cost(
            &format!("korthikanti_{dropout}_{t}_{style}_{rc}_{l}.json"),
            [l, 12288, 96, 2048, 51200],
            1,
            &mesh,
            &cost,
        );
        e["memory"]["activations"].as_f64().expect("activations")
    };
    let ours = act(3) - act(2);
    let tf = t as f64;
    let paper = korthikanti(s, h, a, tf, sp, rc);
    let want = if dropout {
        paper
    } else {
        paper - dropout_terms(s, h, a, tf, sp, rc)
    };
    println!(
        "dropout {dropout} t={t} {style} {rc}: graph {:.3} sbh per layer, Korthikanti {:.3} sbh, \
         held to {:.3} sbh, {:+.2}%",
        ours / (s * h),
        paper / (s * h),
        want / (s * h),
        100.0 * (ours / want - 1.0)
    );
    assert!(
        (ours / want - 1.0).abs() < 0.05,
        "dropout {dropout} t={t} {style} {rc}: {ours} vs {want}"
    );
}
