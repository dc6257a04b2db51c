//! `shardc run --allreduce reduction-server:R`: the data-parallel training step with reducer
//! threads beside the devices gives the ring's outputs exactly.

use crate::common::{plan_with_reducers, scratch, shardc_ok, zoo};

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

#[test]
fn a_plan_on_a_cluster_with_reducers_picks_the_reduction_server_and_the_run_uses_it() {
    let (step, plan, report) = plan_with_reducers("rs_plan_mlp");
    assert!(
        report.contains("gradient all-reduce: Reduction Server on 2 reducer nodes, predicted +"),
        "{report}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(json["allreduce"]["algorithm"], "reduction-server");
    assert_eq!(json["allreduce"]["reducers"], 2);
    assert!(json["allreduce"]["predicted_gain"].as_f64().unwrap() > 0.0);
    let server = shardc_ok(&["run", &step, "--plan", &plan, "--check"]);
    assert!(
        server.contains("reduction server with 2 reducers"),
        "{server}"
    );
    assert!(server.contains("check passed"), "{server}");
    // The ring on the same plan gives the same numbers.
    let ring = shardc_ok(&[
        "run",
        &step,
        "--plan",
        &plan,
        "--check",
        "--allreduce",
        "ring",
    ]);
    assert!(!ring.contains("reduction server"), "{ring}");
    let body = |s: &str| s.lines().skip(1).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(body(&ring), body(&server));
    // Without reducer nodes the plan keeps the ring and writes nothing for it.
    let plain = shardc_ok(&[
        "plan",
        &step,
        "--cluster",
        "a100-80gb:4x1",
        "--mesh",
        "dp=4",
        "--shard",
        "x=P('dp', None)",
        "-o",
        &plan,
    ]);
    assert!(!plain.contains("Reduction Server"), "{plain}");
    let text = std::fs::read_to_string(&plan).unwrap();
    assert!(!text.contains("\"allreduce\""), "{text}");
}

/// BERT-large fine-tuning (REFERENCES.md, Vertex AI Reduction Server: 24 layers, h=1024, 16
/// heads, s=512, WordPiece vocabulary 30522) data-parallel over 8 nodes of 8 A100s, with 20
/// reducer nodes: the plan's all-reduce choice, priced by the graph path on the step's own
/// graph, is the Reduction Server with a gain of the order Google reports (up to +75%).
#[test]
fn bert_large_on_8x8_a100s_with_20_reducers_plans_the_reduction_server() {
    use shardc::cost_model::{Catalog, Cluster, Zero};
    use shardc::ir::zoo::{gpt, GptConfig};
    use shardc::ir::{DType, Mesh, ShardingAssignment};
    let catalog = Catalog::builtin();
    let cluster = Cluster::parse("a2-highgpu-8g-reduction-server", &catalog).unwrap();
    assert_eq!(cluster.reducers.as_ref().map(|r| r.nodes), Some(20));
    assert_eq!(cluster.num_devices(), 64);
    // 2 sequences per GPU: fine-tuning's small batches, where the gradient traffic weighs most.
    let fwd = gpt(&GptConfig {
        layers: 24,
        hidden: 1024,
        heads: 16,
        seq: 512,
        vocab: 30522,
        batch: 128,
        dtype: DType::F32,
        ..GptConfig::tiny()
    })
    .unwrap();
    let step = shardc::ir::training_step(&fwd, &Default::default()).unwrap();
    // Data parallel 64, as Google ran it: the batch split, every weight replicated.
    let base = shardc::pipeline::megatron_assignment(&step).unwrap();
    let mesh: Mesh = "pp=1,dp=64,tp=1".parse().unwrap();
    let a = ShardingAssignment {
        mesh,
        shardings: base.shardings,
    };
    let choice = shardc::allreduce_for(&step, &a, 1, Zero::None, &cluster).unwrap();
    let shardc::PlanAllReduce::ReductionServer {
        reducers,
        predicted_gain,
    } = choice
    else {
        panic!("the ring was chosen: {choice:?}")
    };
    assert_eq!(reducers, 20);
    println!(
        "BERT-large on 8x8 A100s, 20 reducers: predicted {:+.0}%",
        predicted_gain * 100.0
    );
    // Of the order Google reports (+75% at most): between +20% and +150%.
    assert!((0.2..1.5).contains(&predicted_gain), "{predicted_gain}");
}

/// The same case through the planner (`shardc::plan_with` on the Vertex AI preset with its 20
/// reducers, nothing fixed): it must choose data parallelism with the gradients all-reduced on
/// the Reduction Server, and predict a gain of the order Google reports.
#[test]
#[ignore = "plans 24 layers: MEASURED at the test profile; run with --ignored"]
fn bert_large_on_8x8_a100s_with_20_reducers_the_planner_picks_the_reduction_server() {
    use shardc::cost_model::{Catalog, Cluster};
    use shardc::ir::zoo::{gpt, GptConfig};
    use shardc::ir::DType;
    let catalog = Catalog::builtin();
    let cluster = Cluster::parse("a2-highgpu-8g-reduction-server", &catalog).unwrap();
    let fwd = gpt(&GptConfig {
        layers: 24,
        hidden: 1024,
        heads: 16,
        seq: 512,
        vocab: 30522,
        batch: 128,
        dtype: DType::F32,
        ..GptConfig::tiny()
    })
    .unwrap();
    let step = shardc::ir::training_step(&fwd, &Default::default()).unwrap();
    let start = std::time::Instant::now();
    let mut progress = |p: shardc::PlanProgress| {
        eprintln!(
            "{:7.1} s: mesh {}/{} {}",
            start.elapsed().as_secs_f64(),
            p.done,
            p.total,
            p.mesh
        )
    };
    let (plan, t) =
        shardc::plan_with(&step, &cluster, &Default::default(), &mut progress).unwrap();
    println!(
        "planned in {:.1} s (enumeration {:.1} s, solve {:.1} s in {} solves, estimate {:.1} s, \
         {} meshes): {} on {}, step {:.1} ms, {:?}",
        t.total_s,
        t.enumerate_s,
        t.solve_s,
        t.solves,
        t.estimate_s,
        t.meshes,
        plan.strategy,
        plan.mesh,
        plan.step_time_s * 1e3,
        plan.allreduce
    );
    let shardc::PlanAllReduce::ReductionServer {
        reducers,
        predicted_gain,
    } = plan.allreduce
    else {
        panic!("the ring was chosen: {}", plan.strategy)
    };
    assert_eq!(reducers, 20);
    // Of the order Google reports (+75% at most): between +20% and +150%.
    assert!((0.2..1.5).contains(&predicted_gain), "{predicted_gain}");
}
