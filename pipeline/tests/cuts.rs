//! Uneven stage cuts: the planner's stage-slicing DP against pricing the whole graph with its
//! cuts and with the even split.

use shardc_cost_model::{Catalog, Cluster, GraphOptions, StepWork};
use shardc_ir::zoo::{gpt, GptConfig};
use shardc_ir::{training_step, DType, RecomputeMode, TrainOptions};
use shardc_pipeline::{plan_pipeline, step_work_with_cuts, PipelineOptions, ScheduleKind};

fn stage_time(s: &shardc_cost_model::StageWork) -> f64 {
    s.forward_s + s.backward_s + s.recompute_s + s.stage_comm_s + s.p2p_s
}

fn busiest(w: &StepWork) -> f64 {
    w.per_stage.iter().map(stage_time).fold(0.0, f64::max)
}

/// A GPT whose LM head costs about ten blocks (vocabulary 32768 against hidden 256): the DP
/// gives the last stage fewer layers than the even split, predicted per stage as the whole
/// graph prices those cuts (to 1e-3), and faster than the even split under the cost model.
#[test]
fn a_large_vocabulary_moves_layers_off_the_lm_head_stage() {
    let fwd = gpt(&GptConfig {
        layers: 8,
        hidden: 256,
        heads: 4,
        seq: 128,
        vocab: 32768,
        batch: 32,
        dtype: DType::F32,
        ..GptConfig::tiny()
    })
    .unwrap();
    let g = training_step(
        &fwd,
        &TrainOptions {
            recompute: Some(RecomputeMode::Full),
            mixed_precision: true,
            ..TrainOptions::default()
        },
    )
    .unwrap();
    let c = Cluster::parse("a100-80gb:2x4", &Catalog::builtin()).unwrap();
    let opts = PipelineOptions {
        dp: Some(1),
        tp: Some(2),
        pp: Some(4),
        micro_batches: Some(8),
        schedule: Some(ScheduleKind::OneFOneB),
        ..PipelineOptions::default()
    };
    let p = plan_pipeline(&g, &c, &opts).unwrap();
    let cuts = p.chosen.layers_per_stage.clone();
    assert_eq!(cuts.iter().sum::<u64>(), 8);
    assert!(cuts.iter().all(|&n| n >= 1), "{cuts:?}");
    assert!(
        cuts[3] < 2,
        "the LM head's stage keeps fewer layers: {cuts:?}"
    );
    let json = serde_json::to_value(&p.plan).unwrap();
    assert_eq!(
        json["pipeline"]["layers_per_stage"],
        serde_json::json!(cuts),
        "the plan records the cuts"
    );
    let predicted = p
        .stage_times_s
        .clone()
        .expect("uneven cuts carry their stage times");
    let go = GraphOptions {
        micro_batches: 8,
        pipeline_axis: Some("pp".into()),
        data_axis: Some("dp".into()),
        ..GraphOptions::default()
    };
    let mesh = "pp=4,dp=1,tp=2".parse().unwrap();
    let whole = step_work_with_cuts(&g, &mesh, &c, &go, &cuts).unwrap();
    for (s, (w, t)) in whole.per_stage.iter().zip(&predicted).enumerate() {
        // The per-layer costs are linear in the layers; the whole graph differs by the ops at
        // a stage's boundary (measured 5.7e-4 on a middle stage here).
        let rel = (stage_time(w) - t).abs() / t;
        assert!(
            rel < 1e-3,
            "stage {s} of {cuts:?}: whole graph {} s, DP {t} s",
            stage_time(w)
        );
    }
    let even = step_work_with_cuts(&g, &mesh, &c, &go, &[2, 2, 2, 2]).unwrap();
    let (dp_t, even_t) = (busiest(&whole), busiest(&even));
    eprintln!(
        "cuts {cuts:?}: busiest stage {dp_t:.4e} s, even split {even_t:.4e} s; step {:.4e} s",
        p.chosen.step_time_s
    );
    assert!(
        dp_t < 0.97 * even_t,
        "the DP's busiest stage {dp_t} s against the even split's {even_t} s"
    );
    let even_plan = plan_pipeline(
        &g,
        &c,
        &PipelineOptions {
            schedule: Some(ScheduleKind::Interleaved1F1B),
            pp: Some(2),
            ..opts.clone()
        },
    );
    // Interleaved schedules keep the even split (the DP cuts per rank, one stage each).
    if let Ok(q) = even_plan {
        assert_eq!(q.chosen.layers_per_stage, vec![2, 2, 2, 2]);
        assert!(q.stage_times_s.is_none());
    }
}
