//! `shardc run --plan plan.json --check` on pipelined plans (`shardc plan --mesh ..,pp=P
//! --schedule NAME --micro-batches M`): the plan's stages run under its schedule on one
//! submesh per pipeline rank (threads backend), and the whole training step's outputs (loss,
//! every gradient, Adam's update) pass the check against the f64 oracle; the same through the
//! library facade (`shardc::run_plan`).

use shardc::cost_model::{Catalog, Cluster};
use shardc::ir::zoo::{gpt, GptConfig};
use shardc::ir::DType;
use shardc::pipeline::{PipelineOptions, ScheduleKind};
use shardc::runtime::{check_outputs, random_inputs};

use crate::common::{scratch, shardc, shardc_ok, zoo};

/// A 4-layer GPT training step (Adam), small enough for a second per run.
const GPT4: &[&str] = &[
    "gpt", "--layers", "4", "--hidden", "16", "--heads", "2", "--seq", "8", "--vocab", "32",
    "--batch", "8", "--train",
];

/// Plans the step with everything fixed and returns the plan's path.
fn plan(step: &str, name: &str, cluster: &str, mesh: &str, schedule: &str, m: &str) -> String {
    let out = scratch(name);
    let out = out.to_str().expect("UTF-8 scratch path").to_string();
    shardc_ok(&[
        "plan",
        step,
        "--cluster",
        cluster,
        "--mesh",
        mesh,
        "--schedule",
        schedule,
        "--micro-batches",
        m,
        "-o",
        &out,
    ]);
    out
}

#[test]
fn pipelined_plans_run_checked_under_gpipe_1f1b_interleaved_and_zero_bubble() {
    let step = zoo("run_pipelined_gpt4.json", GPT4);
    let cases = [
        // 4 stages of 2-way tensor parallelism: 8 thread devices.
        ("a100-80gb:1x8", "dp=1,tp=2,pp=4", "GPipe", "4"),
        // Data parallel within each stage: the micro-batch is split again over dp.
        ("a100-80gb:1x4", "dp=2,tp=1,pp=2", "1F1B", "2"),
        // Two stages per rank.
        ("a100-80gb:1x4", "dp=1,tp=2,pp=2", "Interleaved1F1B", "4"),
        ("a100-80gb:1x4", "dp=1,tp=1,pp=4", "ZB-H1", "4"),
    ];
    for (k, (cluster, mesh, schedule, m)) in cases.into_iter().enumerate() {
        let plan = plan(
            &step,
            &format!("run_pipelined_{k}.plan.json"),
            cluster,
            mesh,
            schedule,
            m,
        );
        let out = shardc_ok(&["run", &step, "--plan", &plan, "--check"]);
        assert!(out.contains("pipelined"), "{schedule}: {out}");
        assert!(
            out.contains(&format!("{m} micro-batches")),
            "{schedule}: {out}"
        );
        assert!(out.contains("check passed"), "{schedule}: {out}");
        // Every gradient and updated value is judged, not just the loss.
        assert!(out.matches(".grad").count() > 10, "{schedule}: {out}");
    }
}

#[test]
fn the_facade_runs_a_pipelined_plan_to_the_unpipelined_steps_outputs() {
    let fwd = gpt(&GptConfig {
        layers: 2,
        hidden: 8,
        heads: 2,
        seq: 4,
        vocab: 16,
        batch: 4,
        dtype: DType::F32,
        ..GptConfig::tiny()
    })
    .unwrap();
    let step = shardc::ir::training_step(&fwd, &Default::default()).unwrap();
    let cluster = Cluster::parse("a100-80gb:1x2", &Catalog::builtin()).unwrap();
    let opts = PipelineOptions {
        dp: Some(1),
        tp: Some(1),
        pp: Some(2),
        schedule: Some(ScheduleKind::OneFOneB),
        micro_batches: Some(2),
        ..PipelineOptions::default()
    };
    let planned = shardc::plan_pipeline(&step, &cluster, &opts).unwrap();
    assert!(shardc::is_pipelined(&planned.plan));
    // The plan file carries what the run needs: read back, it runs the same.
    let plan = shardc::Plan::from_json("plan", &planned.plan.to_json()).unwrap();
    let inputs = random_inputs(&step, 3);
    let got = shardc::run_plan(&step, &plan, &inputs, &shardc::RunOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), step.outputs.len());
    let report = check_outputs(&step, &inputs, &got, 1e-5).unwrap();
    assert!(report.conclusion().is_ok(), "{:?}", report.conclusion());
}

#[test]
fn a_pipelined_plan_with_an_unknown_schedule_is_refused_with_the_name() {
    let step = zoo("run_pipelined_bad.json", GPT4);
    let path = plan(
        &step,
        "run_pipelined_bad.plan.json",
        "a100-80gb:1x2",
        "dp=1,tp=1,pp=2",
        "GPipe",
        "2",
    );
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"GPipe\"", "\"NoSuchSchedule\"")).unwrap();
    let out = shardc(&["run", &step, "--plan", &path, "--check"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NoSuchSchedule"), "{err}");
}

/// A vocabulary large enough that the LM head costs many blocks: the planner's stage-slicing
/// DP gives the last stage fewer layers (uneven cuts in the plan), and that plan runs checked.
#[test]
fn a_pipelined_plan_with_uneven_stage_cuts_runs_checked() {
    let step = zoo(
        "run_pipelined_gpt4_vocab.json",
        &[
            "gpt", "--layers", "4", "--hidden", "16", "--heads", "2", "--seq", "8", "--vocab",
            "4096", "--batch", "8", "--train",
        ],
    );
    let plan = plan(
        &step,
        "run_pipelined_uneven.plan.json",
        "a100-80gb:1x2",
        "dp=1,tp=1,pp=2",
        "1F1B",
        "2",
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let cuts = json["pipeline"]["layers_per_stage"].clone();
    assert_eq!(cuts, serde_json::json!([3, 1]), "{json}");
    let out = shardc_ok(&["run", &step, "--plan", &plan, "--check"]);
    assert!(out.contains("pipelined"), "{out}");
    assert!(out.contains("check passed"), "{out}");
    assert!(out.matches(".grad").count() > 10, "{out}");
}
