//! The planner end to end: known answers on the zoo models (asserted, and the reports
//! snapshotted), every plan run on thread devices against the reference executor, plans as
//! files through the CLI, and bad input.

use shardc::cost_model::{Catalog, Cluster};
use shardc::ir::zoo::{gpt, mlp, moe, resnet, GptConfig, MlpConfig, MoeConfig, ResNetConfig};

use shardc::ir::{DType, Graph};
use shardc::runtime::{execute, max_relative_error, random_inputs};
use shardc::{Plan, PlanOptions};

use crate::common::{scratch, shardc, shardc_ok};

fn cluster(spec: &str) -> Cluster {
    Cluster::parse(spec, &Catalog::builtin()).unwrap()
}

fn sharding_of<'a>(plan: &'a Plan, name: &str) -> &'a shardc::ir::Sharding {
    &plan
        .shardings
        .iter()
        .find(|v| v.value == name)
        .unwrap_or_else(|| panic!("no value `{name}` in the plan"))
        .sharding
}

/// Axes of dim `d` of a value.
fn dim_axes(plan: &Plan, name: &str, d: usize) -> Vec<String> {
    sharding_of(plan, name).dims[d].axes.clone()
}

/// Plans, compiles and runs on thread devices; every output within 1e-5 of the reference.
fn plan_runs(g: &Graph, spec: &str) -> Plan {
    let plan = shardc::plan(g, &cluster(spec), &PlanOptions::default()).unwrap();
    let program = shardc::compile(g, &plan).unwrap();
    let inputs = random_inputs(g, 1);
    let got = shardc::run(&program, &inputs).unwrap();
    let want = execute(g, &inputs).unwrap();
    for (k, (a, b)) in got.iter().zip(&want).enumerate() {
        let err = max_relative_error(a, b).unwrap();
        assert!(
            err <= 1e-5,
            "{}: output {k} off by {err:e} under {}",
            g.name,
            plan.strategy
        );
    }
    plan
}

#[test]
fn an_mlp_with_a_large_batch_gets_data_parallelism() {
    let g = mlp(&MlpConfig {
        batch: 65536,
        sizes: vec![256, 256, 256],
        loss: false,
        ..MlpConfig::default()
    })
    .unwrap();
    let plan = shardc::plan(&g, &cluster("a100-80gb:1x8"), &PlanOptions::default()).unwrap();
    assert!(
        plan.strategy.starts_with("data parallel"),
        "{}",
        plan.strategy
    );
    let rows = dim_axes(&plan, "layers.0.matmul", 0);
    let used: u64 = rows
        .iter()
        .map(|a| plan.mesh.axis_size(a).unwrap())
        .product();
    assert_eq!(used, 8, "the batch is split over all 8 devices: {rows:?}");
    for p in plan.shardings.iter().filter(|v| v.parameter) {
        assert!(
            p.sharding.is_replicated(),
            "{} is split: {:?}",
            p.value,
            p.sharding
        );
    }
    insta::assert_snapshot!(plan.report());
}

#[test]
fn a_gpt_block_on_one_node_gets_megatron_tensor_parallelism() {
    let fwd = gpt(&GptConfig {
        layers: 1,
        hidden: 4096,
        heads: 32,
        seq: 2048,
        vocab: 512,
        batch: 1,
        dtype: DType::BF16,
        shardings: Default::default(),
    })
    .unwrap();
    let g = shardc::ir::training_step(&fwd, &Default::default()).unwrap();
    let plan = shardc::plan(&g, &cluster("a100-80gb:1x8"), &PlanOptions::default()).unwrap();
    assert!(
        plan.strategy.contains("tensor parallel"),
        "{}",
        plan.strategy
    );
    // Column-parallel first MLP matmul, row-parallel second (Megatron-LM).
    let fc1 = dim_axes(&plan, "layers.0.mlp.fc1.weight", 1);
    let fc2 = dim_axes(&plan, "layers.0.mlp.fc2.weight", 0);
    assert!(!fc1.is_empty() && fc1 == fc2, "fc1 {fc1:?}, fc2 {fc2:?}");
    insta::assert_snapshot!(plan.report());
}

#[test]
fn every_plan_runs_on_thread_devices_and_matches_the_reference() {
    plan_runs(&mlp(&MlpConfig::default()).unwrap(), "a100-80gb:1x4");
    plan_runs(&gpt(&GptConfig::tiny()).unwrap(), "a100-80gb:1x4");
    plan_runs(&resnet(&ResNetConfig::default()).unwrap(), "a100-80gb:1x4");
    plan_runs(&moe(&MoeConfig::default()).unwrap(), "a100-80gb:1x4");
}

#[test]
fn the_same_inputs_give_the_same_plan_bytes() {
    let g = mlp(&MlpConfig::default()).unwrap();
    let c = cluster("a100-80gb:1x4");
    let a = shardc::plan(&g, &c, &PlanOptions::default())
        .unwrap()
        .to_json();
    let b = shardc::plan(&g, &c, &PlanOptions::default())
        .unwrap()
        .to_json();
    assert_eq!(a, b);
    let back = Plan::from_json("plan", &a).unwrap();
    assert_eq!(back.to_json(), a);
}

#[test]
fn cli_plan_then_run_with_the_plan_checks_against_the_reference() {
    let g = crate::common::zoo("plan_mlp.json", &["mlp"]);
    let out = scratch("plan_mlp.plan.json");
    let out = out.to_str().unwrap();
    let report = shardc_ok(&["plan", &g, "--cluster", "a100-80gb:1x4", "-o", out]);
    assert!(report.starts_with("plan for"), "{report}");
    let run = shardc_ok(&["run", &g, "--plan", out, "--check"]);
    assert!(run.contains("check passed"), "{run}");
    shardc_ok(&[
        "compile",
        &g,
        "--plan",
        out,
        "-o",
        scratch("plan_mlp_prog").to_str().unwrap(),
    ]);
    let cost = shardc_ok(&["cost", &g, "--cluster", "a100-80gb:1x4", "--plan", out]);
    assert!(!cost.is_empty());
}

#[test]
fn an_infeasible_memory_limit_names_the_least_memory_and_what_dominates() {
    let g = crate::common::zoo("plan_mlp_small.json", &["mlp"]);
    let out = shardc(&[
        "plan",
        &g,
        "--cluster",
        "a100-80gb:1x4",
        "--memory-limit",
        "1e-9",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the smallest any plan needs is"), "{err}");
    assert!(err.contains("dominated by"), "{err}");
}

#[test]
fn a_plan_of_another_graph_is_refused() {
    let g = crate::common::zoo("plan_other_a.json", &["mlp"]);
    let h = crate::common::zoo("plan_other_b.json", &["moe"]);
    let out = scratch("plan_other.plan.json");
    let out = out.to_str().unwrap();
    shardc_ok(&["plan", &g, "--cluster", "a100-80gb:1x4", "-o", out]);
    let run = shardc(&["run", &h, "--plan", out, "--check"]);
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("a plan for another graph"), "{err}");
}

#[test]
fn a_conv_net_at_batch_1_with_large_images_shards_a_spatial_dim() {
    let g = resnet(&ResNetConfig {
        batch: 1,
        in_channels: 3,
        image: 1024,
        width: 64,
        stages: vec![1],
        classes: 10,
        dtype: DType::BF16,
    })
    .unwrap();
    let plan = shardc::plan(&g, &cluster("a100-80gb:1x4"), &PlanOptions::default()).unwrap();
    assert!(plan.strategy.contains("spatial"), "{}", plan.strategy);
    insta::assert_snapshot!(plan.report());
}

#[test]
fn a_model_that_cannot_fit_without_it_gets_zero_3() {
    let fwd = mlp(&MlpConfig {
        batch: 16384,
        sizes: vec![4096, 4096, 4096],
        ..MlpConfig::default()
    })
    .unwrap();
    let g = shardc::ir::training_step(&fwd, &Default::default()).unwrap();
    let c = cluster("a100-80gb:1x4");
    let mut opts = PlanOptions {
        mesh: Some(vec![("dp".into(), 4)]),
        micro_batches: Some(1),
        ..PlanOptions::default()
    };
    let free = shardc::plan(&g, &c, &opts).unwrap();
    assert_eq!(
        free.zero,
        shardc::cost_model::Zero::None,
        "{}",
        free.report()
    );
    let m = &free.memory;
    // The plan without a limit already splits the gradients and optimizer state over the 4
    // replicas (reduce-scattered: as fast as all-reduced, and ties go to less memory), so
    // ZeRO-1 and ZeRO-2 save nothing more; ZeRO-3 saves three quarters of the weights: a limit
    // half of that below fits only ZeRO-3.
    assert!(
        m.optimizer_state < m.weights,
        "optimizer state not split:\n{}",
        free.report()
    );
    opts.memory_limit_bytes = Some(m.total() - m.weights * 0.75 * 0.5);
    let plan = shardc::plan(&g, &c, &opts)
        .unwrap_or_else(|e| panic!("{e}\nwithout a limit:\n{}", free.report()));
    assert_eq!(
        plan.zero,
        shardc::cost_model::Zero::Stage3,
        "{}",
        plan.report()
    );
    insta::assert_snapshot!(plan.report());
}

const HLO_MLP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/jax/megatron_mlp.hlo"
);

#[test]
fn a_shard_on_a_value_the_hlo_file_annotates_replaces_it_in_every_subcommand() {
    // The file makes `w1.1` column-parallel; `--shard` replaces that in every subcommand
    // (`compile` and `run` used to refuse it as annotated twice).
    let shard = "w1.1=P(None, None)";
    let json = shardc_ok(&["propagate", HLO_MLP, "--shard", shard, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let w1 = doc["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "w1.1")
        .unwrap();
    let s: shardc::ir::Sharding = serde_json::from_value(w1["sharding"].clone()).unwrap();
    assert!(s.is_replicated(), "{s:?}");
    let dir = scratch("hlo_shard_compile");
    shardc_ok(&[
        "compile",
        HLO_MLP,
        "--shard",
        shard,
        "-o",
        dir.to_str().unwrap(),
    ]);
    let run = shardc_ok(&["run", HLO_MLP, "--shard", shard, "--check"]);
    assert!(run.contains("check passed"), "{run}");
}

#[test]
fn the_moe_layer_gets_expert_parallelism() {
    // A training step of 4096 tokens through 8 experts of 1024→4096→1024 on 8 GPUs: data
    // parallelism would all-reduce 8·2·1024·4096 expert weights' gradients every step; with one
    // expert per device only the combined tokens' [4096, 1024] partial sums cross devices.
    let fwd = moe(&MoeConfig {
        tokens: 4096,
        hidden: 1024,
        ffn: 4096,
        experts: 8,
        dtype: DType::BF16,
    })
    .unwrap();
    let g = shardc::ir::training_step(&fwd, &Default::default()).unwrap();
    let plan = shardc::plan(&g, &cluster("a100-80gb:1x8"), &PlanOptions::default()).unwrap();
    assert!(
        plan.strategy.contains("expert parallel"),
        "{}",
        plan.strategy
    );
    // The experts' matmuls run expert-parallel (each device its experts' share of the
    // dispatched tokens), and the expert weights are stored split by expert where it pays: a
    // replicated weight is sliced locally for free, so with memory to spare the ILP may leave
    // one whole.
    let split = |name: &str| -> u64 {
        dim_axes(&plan, name, 0)
            .iter()
            .map(|a| plan.mesh.axis_size(a).unwrap())
            .product()
    };
    for op in ["experts.fc1", "experts.fc2"] {
        assert!(
            split(op) > 1,
            "{op} is not split by expert:\n{}",
            plan.report()
        );
    }
    assert!(
        split("experts.w1").max(split("experts.w2")) > 1,
        "no expert weight is split by expert:\n{}",
        plan.report()
    );
    insta::assert_snapshot!(plan.report());
}

/// `shardc plan` then `shardc run --plan --check` on thread devices.
fn cli_plan_runs_checked(file: &str, zoo_args: &[&str], shard: &[&str]) -> String {
    let g = crate::common::zoo(file, zoo_args);
    let out = scratch(&format!("{file}.plan.json"));
    let out = out.to_str().unwrap();
    let mut args = vec!["plan", g.as_str(), "--cluster", "a100-80gb:1x4", "-o", out];
    for s in shard {
        args.extend_from_slice(&["--shard", s]);
    }
    let report = shardc_ok(&args);
    let run = shardc_ok(&["run", &g, "--plan", out, "--check"]);
    assert!(run.contains("check passed"), "{file}: {run}");
    report
}

#[test]
fn cli_plans_of_the_gpt_block_the_conv_net_and_the_moe_layer_run_checked() {
    // Small shapes of the known-answer models (the MLP's is above); the MoE layer with its
    // experts split by annotation, so that the expert-parallel plan is the one that runs.
    cli_plan_runs_checked(
        "plan_run_gpt.json",
        &[
            "gpt", "--layers", "1", "--hidden", "16", "--heads", "2", "--seq", "8", "--vocab",
            "32", "--train",
        ],
        &[],
    );
    cli_plan_runs_checked("plan_run_resnet.json", &["resnet", "--batch", "1"], &[]);
    let report = cli_plan_runs_checked(
        "plan_run_moe.json",
        &["moe"],
        &["experts.w1=P('dp', None, None)"],
    );
    assert!(report.contains("expert parallel"), "{report}");
}
