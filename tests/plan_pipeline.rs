//! `shardc plan --mesh dp=D,tp=T,pp=P --schedule NAME --micro-batches M --timeline out.svg`: the
//! pipelined planner from the command line keeps what is fixed, writes the plan with its
//! pipeline part and draws the schedule.

use crate::common::{scratch, shardc, shardc_ok, zoo};

const GPT8: &[&str] = &[
    "gpt", "--layers", "8", "--hidden", "64", "--heads", "4", "--seq", "32", "--vocab", "128",
    "--batch", "16", "--train",
];

#[test]
fn plan_with_a_pp_axis_keeps_the_fixed_choices_writes_the_pipeline_and_draws_it() {
    let path = zoo("plan_pipeline_gpt8.json", GPT8);
    let svg = scratch("plan_pipeline_gpt8.svg");
    let out = scratch("plan_pipeline_gpt8.plan.json");
    let report = shardc_ok(&[
        "plan",
        &path,
        "--cluster",
        "a100-80gb:2x4",
        "--mesh",
        "dp=2,tp=2,pp=2",
        "--schedule",
        "1F1B",
        "--micro-batches",
        "4",
        "--timeline",
        svg.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(report.contains("mesh pp=2,dp=2,tp=2"), "{report}");
    assert!(
        report.contains("pipeline: 1F1B on 2 ranks, 2 stages, 4 micro-batches"),
        "{report}"
    );
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(plan["pipeline"]["format_version"], 1);
    // The stage-slicing DP's cuts: at this size the LM head, softmax and loss cost more than
    // the embedding, so the last stage takes fewer layers; the report shows the same cuts.
    assert_eq!(
        plan["pipeline"]["layers_per_stage"],
        serde_json::json!([5, 3])
    );
    assert!(report.contains("layers per stage [5, 3]"), "{report}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("1F1B"), "{svg}");
    // A degree that cannot be met is refused with the reason.
    let bad = shardc(&[
        "plan",
        &path,
        "--cluster",
        "a100-80gb:2x4",
        "--mesh",
        "dp=1,tp=1,pp=8,sp=1",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not `sp`"));
}
