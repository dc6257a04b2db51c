//! `shardc cost`: a sharded graph's step estimate on a cluster.

use serde_json::Value;

use crate::common::{shardc, shardc_ok, zoo};
use shardc::ir::zoo::{annotate_megatron_training, gpt, GptConfig, GptShardings};
use shardc::ir::{training_step, DType, Mesh, RecomputeMode, TrainOptions};
use shardc::sharding::{propagate, required_collectives};

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
    // (l, h, a, s, t, p, dp, micro-batches, recomputation, sequence parallel)
    for (i, (l, h, a, s, t, p, dp, m, rc, sp)) in [
        (
            4u64, 4096u64, 32u64, 2048u64, 1u64, 1u64, 1u64, 8u64, "none", false,
        ),
        (4, 4096, 32, 2048, 2, 1, 2, 8, "full", false),
        (4, 6144, 48, 2048, 8, 1, 1, 8, "selective", false),
        (8, 6144, 48, 2048, 4, 2, 1, 16, "full", false),
        (8, 4096, 32, 2048, 2, 2, 2, 8, "none", false),
        (4, 12288, 96, 2048, 8, 1, 2, 4, "full", false),
        // Sequence parallelism (Korthikanti et al. 2022): the zoo's `megatron-sp` annotations.
        (4, 6144, 48, 2048, 8, 1, 1, 8, "full", true),
        (4, 4096, 32, 2048, 4, 1, 2, 8, "selective", true),
        (8, 4096, 32, 2048, 2, 2, 1, 8, "none", true),
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
        if sp {
            cost.extend_from_slice(&["--shardings", "megatron-sp"]);
        }
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
            sequence_parallel: sp,
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
        println!("l={l} h={h} t={t} p={p} m={m} {rc} sp={sp}: graph {graph:.4} s, shape {analytic:.4} s, {:+.2}%", 100.0 * diff);
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

/// The tensor-parallel collectives of a sequence-parallel GPT training step (library path, as
/// `shardc zoo gpt --train --shardings megatron-sp` builds it), one line per collective:
/// (layer or `-`, kind, value moved, local operand bytes, node).
fn sequence_parallel_collectives(
    recompute: Option<RecomputeMode>,
    batch: u64,
) -> Vec<(String, String, String, u64, String)> {
    let mesh: Mesh = "dp=2,tp=4".parse().expect("mesh");
    let cfg = GptConfig {
        layers: 2,
        hidden: 64,
        heads: 4,
        seq: 32,
        vocab: 256,
        batch,
        dtype: DType::BF16,
        shardings: GptShardings::MegatronSequenceParallel(mesh.clone()),
    };
    let fwd = gpt(&cfg).expect("gpt");
    let opts = TrainOptions {
        recompute,
        ..TrainOptions::default()
    };
    let mut g = training_step(&fwd, &opts).expect("training step");
    annotate_megatron_training(&mut g);
    let sharded = propagate(&g, &mesh, &g.annotations).expect("propagate");
    let comms = required_collectives(&g, &sharded.assignment).expect("collectives");
    comms
        .iter()
        .filter(|c| c.op.collective_axes() == ["tp"])
        .map(|c| {
            let node = g.node(c.node).name.clone();
            let layer = node
                .strip_prefix("layers.")
                .and_then(|r| r.split('.').next())
                .map_or("-".to_string(), str::to_string);
            // The value moved: the first backquoted name of the reason.
            let value = c.reason.split('`').nth(1).unwrap_or("").to_string();
            (
                layer,
                c.op.name().to_string(),
                value,
                c.local_operand.size_bytes(),
                node,
            )
        })
        .collect()
}

#[test]
fn sequence_parallel_steps_have_exactly_megatrons_collectives_per_layer() {
    // Korthikanti et al. 2022 §4.2.2 (Figure 5): per layer, forward `g` (all-gather over tp on
    // the sequence) before qkv and fc1 and `ḡ` (reduce-scatter onto the sequence) after the
    // attention projection and fc2; backward, `ḡ`'s all-gather of the residual gradient (once
    // for both of the row-parallel matmul's gradients), the re-gather of each column-parallel
    // matmul's input for its weight gradient, and `g`'s reduce-scatter of its input gradient.
    // Full recomputation runs the forward's two of each again. No weight is gathered.
    // A batch of 4 (2 per dp rank), and one of 64 whose activations outweigh the weights (the
    // layouts must not depend on which is bigger).
    let (s, h, t) = (32u64, 64u64, 4u64);
    for (batch, recompute, extra) in [
        (4u64, None, 0usize),
        (4, Some(RecomputeMode::Full), 2),
        (64, None, 0),
    ] {
        let b = batch / 2;
        let gathered = b * (s / t) * h * 2; // bf16 [b, s/t, h] per device
        let pending = b * s * h * 2; // bf16 [b, s, h] pending sum per device
        let all = sequence_parallel_collectives(recompute, batch);
        for line in &all {
            println!("{recompute:?} {line:?}");
        }
        for layer in ["0", "1"] {
            let of = |kind: &str| -> Vec<&(String, String, String, u64, String)> {
                all.iter().filter(|c| c.0 == layer && c.1 == kind).collect()
            };
            let (ag, rs) = (of("all_gather"), of("reduce_scatter"));
            let ag_values: Vec<&str> = ag.iter().map(|c| c.2.as_str()).collect();
            let rs_values: Vec<&str> = rs.iter().map(|c| c.2.as_str()).collect();
            let p = format!("layers.{layer}");
            assert_eq!(
                ag.len(),
                6 + extra,
                "layer {layer} all-gathers: {ag_values:?}"
            );
            assert_eq!(
                rs.len(),
                4 + extra,
                "layer {layer} reduce-scatters: {rs_values:?}"
            );
            assert!(ag.iter().all(|c| c.3 == gathered), "{ag:?}");
            assert!(rs.iter().all(|c| c.3 == pending), "{rs:?}");
            let count = |vals: &[&str], want: &str| {
                vals.iter()
                    .filter(|v| v.trim_end_matches(".recompute") == want)
                    .count()
            };
            for v in ["ln1.out", "ln2.out"] {
                assert_eq!(
                    count(&ag_values, &format!("{p}.{v}")),
                    2 + extra / 2,
                    "{v}: {ag_values:?}"
                );
            }
            for v in ["attn_residual.grad", "mlp_residual.grad"] {
                assert_eq!(
                    count(&ag_values, &format!("{p}.{v}")),
                    1,
                    "{v}: {ag_values:?}"
                );
            }
            for v in ["attn.out.matmul", "mlp.fc2.matmul"] {
                assert_eq!(
                    count(&rs_values, &format!("{p}.{v}")),
                    1 + extra / 2,
                    "{v}: {rs_values:?}"
                );
            }
            for v in ["attn.qkv.matmul.grad_lhs", "mlp.fc1.matmul.grad_lhs"] {
                assert_eq!(
                    count(&rs_values, &format!("{p}.{v}")),
                    1,
                    "{v}: {rs_values:?}"
                );
            }
            let other: Vec<_> = all
                .iter()
                .filter(|c| c.0 == layer && c.1 != "all_gather" && c.1 != "reduce_scatter")
                .collect();
            assert!(other.is_empty(), "layer {layer}: {other:?}");
        }
    }
}
