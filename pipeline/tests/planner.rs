//! The pipelined planner: degrees, micro-batches and schedule chosen together and priced by the
//! cost model's graph path; fixed choices kept; the quality bar of Megatron's 145.6B run.

use shardc_cost_model::{estimate, Catalog, Cluster, GraphOptions, Overlap};
use shardc_ir::zoo::{gpt, GptConfig};
use shardc_ir::{training_step, DType, Graph, RecomputeMode, TrainOptions};
use shardc_pipeline::{
    megatron_collectives, plan_pipeline, step_work_both_ways, PipelineOptions, ScheduleKind,
};

/// A GPT training step as Megatron trains it: bf16 with f32 master weights, Adam, full
/// recomputation.
fn megatron_step(cfg: &GptConfig) -> Graph {
    let fwd = gpt(cfg).unwrap();
    training_step(
        &fwd,
        &TrainOptions {
            recompute: Some(RecomputeMode::Full),
            mixed_precision: true,
            ..TrainOptions::default()
        },
    )
    .unwrap()
}

fn cluster(spec: &str) -> Cluster {
    Cluster::parse(spec, &Catalog::builtin()).unwrap()
}

fn gpt8() -> Graph {
    megatron_step(&GptConfig {
        layers: 8,
        hidden: 256,
        heads: 4,
        seq: 128,
        vocab: 1024,
        batch: 32,
        dtype: DType::F32,
        ..GptConfig::tiny()
    })
}

#[test]
fn collectives_derived_from_the_base_mesh_equal_those_found_on_each_mesh() {
    let g = gpt8();
    for mesh in [
        "pp=2,dp=2,tp=4",
        "pp=4,dp=1,tp=2",
        "pp=1,dp=8,tp=1",
        "pp=2,dp=4,tp=2",
    ] {
        let (mut derived, mut exact) = megatron_collectives(&g, &mesh.parse().unwrap()).unwrap();
        let key =
            |c: &shardc_cost_model::CommUse| format!("{} {:?} {}", c.node, c.op, c.local_operand);
        derived.sort_by_key(key);
        exact.sort_by_key(key);
        assert!(!exact.is_empty() || mesh.contains("dp=1,tp=1"));
        assert_eq!(derived, exact, "{mesh}");
    }
}

#[test]
fn fixed_degrees_micro_batches_and_schedule_are_kept_and_the_plan_carries_the_pipeline() {
    let g = gpt8();
    let c = cluster("a100-80gb:2x4");
    let fixed = PipelineOptions {
        dp: Some(2),
        tp: Some(2),
        pp: Some(2),
        schedule: Some(ScheduleKind::Interleaved1F1B),
        micro_batches: Some(8),
        ..PipelineOptions::default()
    };
    let p = plan_pipeline(&g, &c, &fixed).unwrap();
    let ch = &p.chosen;
    assert_eq!((ch.dp, ch.tp, ch.pp, ch.micro_batches), (2, 2, 2, 8));
    assert_eq!((ch.kind, ch.stages), (ScheduleKind::Interleaved1F1B, 4));
    assert_eq!(p.plan.mesh.to_string(), "pp=2,dp=2,tp=2");
    let pipe = p.plan.pipeline.as_ref().unwrap();
    assert_eq!(pipe["format_version"], 1);
    assert_eq!(pipe["schedule"], "Interleaved1F1B");
    assert_eq!(pipe["layers_per_stage"], serde_json::json!([2, 2, 2, 2]));
    // The weights are split Megatron's way: column-parallel qkv, row-parallel out.
    let sharding = |name: &str| {
        p.plan
            .shardings
            .iter()
            .find(|v| v.value == name)
            .unwrap()
            .sharding
            .clone()
    };
    assert_eq!(sharding("layers.0.attn.qkv.weight").dims[1].axes, ["tp"]);
    assert_eq!(sharding("layers.0.attn.out.weight").dims[0].axes, ["tp"]);
    // The plan's JSON reads back with its pipeline part.
    let back = shardc_sharding::auto::Plan::from_json("plan", &p.plan.to_json()).unwrap();
    assert_eq!(back.pipeline, p.plan.pipeline);
    // Left free, the planner prices more than one candidate and takes the fastest that fits.
    let free = plan_pipeline(&g, &c, &PipelineOptions::default()).unwrap();
    // (Those whose lower bound is slower than the six best that fit are not simulated.)
    let considered = free.candidates.len() + free.timings.pruned;
    assert!(
        considered > 10 && free.candidates.len() >= 6,
        "{considered}"
    );
    assert!(free.timings.by_layer_classes);
    assert!(free
        .candidates
        .iter()
        .filter(|x| x.fits)
        .all(|x| x.step_time_s >= free.chosen.step_time_s));
    // GPipe holds every micro-batch, 1F1B at most p: same time, less memory.
    let with = |kind| PipelineOptions {
        schedule: Some(kind),
        ..fixed.clone()
    };
    let gpipe = plan_pipeline(&g, &c, &with(ScheduleKind::GPipe)).unwrap();
    let ofob = plan_pipeline(&g, &c, &with(ScheduleKind::OneFOneB)).unwrap();
    assert!(gpipe.chosen.memory_bytes > ofob.chosen.memory_bytes);
}

#[test]
fn an_impossible_mesh_is_refused_with_the_reason() {
    let g = megatron_step(&GptConfig {
        layers: 2,
        batch: 4,
        ..GptConfig::tiny()
    });
    let e = plan_pipeline(
        &g,
        &cluster("a100-80gb:1x8"),
        &PipelineOptions {
            pp: Some(8),
            ..PipelineOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("pp up to 2 layers"), "{e}");
}

// An 80-layer training step; its layers priced by representatives, about 6 s
// at the test profile's opt-level 1 (both plans).
#[test]
fn the_145b_plan_on_1536_a100s_is_at_least_as_fast_as_megatrons_and_fits() {
    // Narayanan et al. SC21, Table 1 (REFERENCES.md): 145.6B, a=96, h=12288, l=80, s=2048,
    // V=51200, batch 2304 on 1536 A100-80GB; Megatron ran t=8, p=8 (d=24), micro-batch 1 with
    // 1F1B, communication not overlapped.
    let g = megatron_step(&GptConfig {
        layers: 80,
        hidden: 12288,
        heads: 96,
        seq: 2048,
        vocab: 51200,
        batch: 2304,
        dtype: DType::F32,
        ..GptConfig::tiny()
    });
    let c = cluster("a100-80gb:192x8");
    let base = PipelineOptions {
        no_overlap: true,
        ..PipelineOptions::default()
    };
    let ours = plan_pipeline(&g, &c, &base).unwrap();
    let megatron = plan_pipeline(
        &g,
        &c,
        &PipelineOptions {
            dp: Some(24),
            tp: Some(8),
            pp: Some(8),
            micro_batches: Some(96),
            schedule: Some(ScheduleKind::OneFOneB),
            ..base.clone()
        },
    )
    .unwrap();
    println!(
        "145.6B: chosen {:?}, {:.2} s, {:.1} GB; Megatron t=8,p=8: {:.2} s, {:.1} GB; {} candidates in {:.2} s",
        ours.chosen,
        ours.chosen.step_time_s,
        ours.chosen.memory_bytes / 1e9,
        megatron.chosen.step_time_s,
        megatron.chosen.memory_bytes / 1e9,
        ours.candidates.len(),
        ours.timings.total_s
    );
    assert!(ours.chosen.fits && megatron.chosen.fits);
    assert!(ours.chosen.step_time_s <= megatron.chosen.step_time_s);
    assert!(ours.chosen.memory_bytes <= 80e9);
}

/// GPT-3 175B (REFERENCES.md: l=96, h=12288, a=96, s=2048, V=51200) at GPT-3's batch of 1536
/// sequences, trained as Megatron trains it.
pub fn gpt3_175b_step() -> Graph {
    megatron_step(&GptConfig {
        dtype: DType::F32,
        ..GptConfig::gpt3_175b(1536)
    })
}

/// The full automatic plan of GPT-3 175B on 1024 A100s (a ~55k-node training step; its layers
/// priced by representatives, so a few seconds at the test profile): the report, pipeline part
/// and runners-up included, is a snapshot. `SHARDC_TIMELINE=out.svg` writes its timeline.
#[test]
fn the_gpt3_175b_plan_on_1024_a100s_report() {
    let g = gpt3_175b_step();
    let p = plan_pipeline(&g, &cluster("a100-80gb:128x8"), &PipelineOptions::default()).unwrap();
    println!("{:?}\n{:?}", p.chosen, p.timings);
    assert!(p.timings.by_layer_classes);
    let ch = &p.chosen;
    assert_eq!(
        (ch.dp, ch.tp, ch.pp, ch.micro_batches, ch.kind),
        (16, 4, 16, 96, ScheduleKind::ZbVZeroBubble)
    );
    let svg = p.timeline_svg();
    assert!(svg.contains("dp=16 tp=4 pp=16") && svg.contains("bubble"));
    if let Ok(path) = std::env::var("SHARDC_TIMELINE") {
        std::fs::write(path, svg).unwrap();
    }
    insta::assert_snapshot!("gpt3_175b_1024_a100", p.report());
}

/// A model whose layers the planner prices by representatives: the whole graph's shardings
/// derived from layer 1 equal one propagation over the whole graph.
#[test]
fn shardings_derived_from_representative_layers_equal_the_whole_graphs() {
    let g = gpt8();
    let (fast, exact) = shardc_pipeline::megatron_assignment_both_ways(&g).unwrap();
    let fast = fast.expect("the GPT's layers are copies of one another");
    assert_eq!(fast.shardings.len(), exact.shardings.len());
    for (v, (f, e)) in fast.shardings.iter().zip(&exact.shardings).enumerate() {
        assert_eq!(f, e, "{}", g.nodes[v].name);
    }
}

/// The graph path on representative layers (a reduced graph of the first and last stages'
/// layers, the dropped layers' FLOPs added back) against the whole graph, on meshes where
/// layers are dropped (pp=4, pp=8 of 8 layers; 10 layers unevenly on 4 stages) and not (pp=2),
/// several micro-batch counts, overlapped or not (both on one mesh).
#[test]
fn pricing_by_representative_layers_equals_the_whole_graph() {
    let g8 = gpt8();
    let g10 = megatron_step(&GptConfig {
        layers: 10,
        hidden: 256,
        heads: 4,
        seq: 128,
        vocab: 1024,
        batch: 32,
        dtype: DType::F32,
        ..GptConfig::tiny()
    });
    let c = cluster("a100-80gb:2x4");
    let close = |a: f64, b: f64, what: &str, case: &str| {
        let tol = 1e-9 * a.abs().max(b.abs()).max(1e-30);
        assert!((a - b).abs() <= tol, "{case}: {what}: {a} vs {b}");
    };
    let cases = [
        (&g8, "pp=2,dp=2,tp=2", 4),
        (&g8, "pp=4,dp=1,tp=2", 8),
        (&g8, "pp=4,dp=2,tp=1", 4),
        (&g8, "pp=8,dp=1,tp=1", 16),
        (&g10, "pp=4,dp=1,tp=2", 8),
    ];
    for (k, (g, mesh, m)) in cases.into_iter().enumerate() {
        // Both overlap settings on one mesh (the test's time is in the whole-graph pricing).
        let overlaps: &[Overlap] = if k == 1 {
            &[Overlap::ALL, Overlap::NONE]
        } else {
            &[Overlap::ALL]
        };
        for &overlap in overlaps {
            let go = GraphOptions {
                micro_batches: m,
                pipeline_axis: Some("pp".into()),
                data_axis: Some("dp".into()),
                overlap,
                ..GraphOptions::default()
            };
            let (fast, exact) = step_work_both_ways(g, &mesh.parse().unwrap(), &c, &go).unwrap();
            let fast = fast.expect("priced by representatives");
            let case = format!("{} layers, {mesh}, m={m}, {overlap:?}", g.nodes.len());
            let pairs = [
                ("forward", fast.forward_s, exact.forward_s),
                ("backward", fast.backward_s, exact.backward_s),
                ("recompute", fast.recompute_s, exact.recompute_s),
                ("stage comm", fast.stage_comm_s, exact.stage_comm_s),
                ("p2p", fast.p2p_s, exact.p2p_s),
                ("gradient comm", fast.gradient_comm_s, exact.gradient_comm_s),
                ("optimizer", fast.optimizer_s, exact.optimizer_s),
                ("hidden comm", fast.hidden_comm_s, exact.hidden_comm_s),
                ("model flops", fast.model_flops, exact.model_flops),
                ("hardware flops", fast.hardware_flops, exact.hardware_flops),
                ("weights", fast.memory.weights, exact.memory.weights),
                ("gradients", fast.memory.gradients, exact.memory.gradients),
                (
                    "optimizer state",
                    fast.memory.optimizer_state,
                    exact.memory.optimizer_state,
                ),
                (
                    "activations",
                    fast.memory.activations,
                    exact.memory.activations,
                ),
                ("transient", fast.memory.transient, exact.memory.transient),
            ];
            for (what, a, b) in pairs {
                close(a, b, what, &case);
            }
            let e = (estimate(&fast), estimate(&exact));
            close(e.0.step_time_s, e.1.step_time_s, "step", &case);
            let lines = |w: &shardc_cost_model::StepWork| {
                w.collectives
                    .iter()
                    .map(|l| (l.kind, l.axes.clone(), l.bytes, l.count))
                    .collect::<Vec<_>>()
            };
            assert_eq!(lines(&fast), lines(&exact), "{case}");
        }
    }
}

// About 10 s at the test profile's opt-level 1 on the shared 2-core machine (the whole 55k-node
// graph propagated, its collectives found and priced), too slow for CI: run with `--ignored`.
#[test]
#[ignore = "10 s: whole-graph pricing of GPT-3 175B; cargo test -p shardc-pipeline --test planner -- --ignored"]
fn the_gpt3_175b_chosen_mesh_priced_by_layers_equals_the_whole_graph() {
    let g = gpt3_175b_step();
    let go = GraphOptions {
        micro_batches: 96,
        pipeline_axis: Some("pp".into()),
        data_axis: Some("dp".into()),
        ..GraphOptions::default()
    };
    let c = cluster("a100-80gb:128x8");
    let mesh = "pp=16,dp=16,tp=4".parse().unwrap();
    let (fast, exact) = step_work_both_ways(&g, &mesh, &c, &go).unwrap();
    let fast = fast.unwrap();
    let (ef, ee) = (estimate(&fast), estimate(&exact));
    println!("by layers {ef:?}\nwhole {ee:?}");
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-30);
    assert!(rel(ef.step_time_s, ee.step_time_s) < 1e-9);
    assert!(rel(fast.memory.total(), exact.memory.total()) < 1e-9);
    assert!(rel(fast.hardware_flops, exact.hardware_flops) < 1e-9);
}

/// The planner maps each node's stage with one stage per layer to its stage among `p` rather
/// than splitting the whole graph again for every pipeline size: the same stages.
#[test]
fn stages_for_any_pipeline_size_follow_from_one_stage_per_layer() {
    use shardc_cost_model::pipeline_stages;
    let g = megatron_step(&GptConfig {
        layers: 12,
        ..GptConfig::tiny()
    });
    let per_layer = pipeline_stages(&g, 12);
    for p in [1, 2, 3, 4, 5, 6, 8, 12] {
        let mapped: Vec<u32> = per_layer
            .iter()
            .map(|&i| shardc_pipeline::of_layer(u64::from(i), p, 12))
            .collect();
        assert_eq!(mapped, pipeline_stages(&g, p), "p={p}");
    }
}

/// Stages given to the graph path must cover every node and stay below the pipeline's size.
#[test]
fn graph_step_staged_refuses_stages_that_do_not_fit_the_graph() {
    let g = gpt8();
    let a = shardc_pipeline::megatron_assignment(&g).unwrap();
    let go = GraphOptions {
        pipeline_axis: Some("pp".into()),
        ..GraphOptions::default()
    };
    let c = cluster("a100-80gb:1x8");
    let short = vec![0u32; g.len() - 1];
    let e = shardc_cost_model::graph_step_staged(&g, &a, &[], &c, &go, &short).unwrap_err();
    assert!(
        e.to_string().contains(&format!("for {} nodes", g.len())),
        "{e}"
    );
    let beyond = vec![2u32; g.len()];
    let e = shardc_cost_model::graph_step_staged(&g, &a, &[], &c, &go, &beyond).unwrap_err();
    assert!(e.to_string().contains("below the 2 stages"), "{e}");
}
