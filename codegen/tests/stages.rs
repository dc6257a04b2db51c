//! A GPT training step cut into pipeline stages and run under pipeline schedules on the threads
//! backend (a thread per device, activations and gradients sent between stages) gives the loss
//! and gradients of the unpartitioned full-batch step: with one device per stage, and with each
//! stage's programs partitioned over a 2-way tensor-parallel submesh (Megatron's shardings).

use std::time::Duration;

use shardc_codegen::{cut_stages, partition_stages, shard_array, unshard_array, StageProgram};
use shardc_ir::zoo::{gpt, GptConfig, GptShardings};
use shardc_ir::{DType, Graph, Mesh, Node, ValueId};
use shardc_pipeline::{Schedule, ScheduleKind as S};
use shardc_runtime::{
    execute, max_relative_error, random_inputs, run_pipeline, run_pipeline_spmd, PipelineStage,
    SpmdPipelineStage, Tensor,
};

const MICRO: u64 = 8;

fn config(batch: u64) -> GptConfig {
    GptConfig {
        layers: 8,
        hidden: 8,
        heads: 2,
        seq: 4,
        vocab: 16,
        batch,
        dtype: DType::F32,
        ..GptConfig::tiny()
    }
}

/// `layers.N` on stage `N · stages / layers`; the embedding on the first, the rest on the last.
fn stage_of(stages: usize, layers: usize) -> impl Fn(&Node) -> usize {
    move |n: &Node| match n
        .layer()
        .and_then(|l| l.strip_prefix("layers."))
        .and_then(|i| i.parse::<usize>().ok())
    {
        Some(i) => i * stages / layers,
        None if n.name.starts_with("embed") => 0,
        None => stages - 1,
    }
}

/// Rows `[mb·b, (mb+1)·b)` of a `[B, ...]` tensor.
fn rows(t: &Tensor, mb: u64, parts: u64) -> Tensor {
    let ty = t.ty();
    let mut dims = ty.shape.dims().to_vec();
    let per = dims[0] / parts;
    let stride = t.len() / dims[0] as usize;
    dims[0] = per;
    let v = t.to_f64_vec();
    let start = (mb * per) as usize * stride;
    let part = &v[start..start + per as usize * stride];
    Tensor::from_f64(shardc_ir::TensorType::new(ty.dtype, dims), part).unwrap()
}

fn name_of(g: &Graph, v: ValueId) -> &str {
    &g.node(v).name
}

/// The full-batch reference: loss and every parameter's gradient, by name.
fn reference(full: &Graph, inputs: &[Tensor]) -> (f64, Vec<(String, Tensor)>) {
    let loss = full
        .training
        .loss
        .or(full.outputs.first().copied())
        .unwrap();
    let step = shardc_ir::grad(full, loss).unwrap();
    let outs = execute(&step, inputs).unwrap();
    let by_value: Vec<(ValueId, Tensor)> = step.outputs.iter().copied().zip(outs).collect();
    let value = |v: ValueId| by_value.iter().find(|(x, _)| *x == v).unwrap().1.clone();
    let grads = step
        .training
        .gradients
        .iter()
        .map(|&(p, g)| (name_of(&step, p).to_string(), value(g)))
        .collect();
    (value(loss).scalar_f64().unwrap(), grads)
}

#[test]
fn gpt_step_under_gpipe_1f1b_interleaved_and_zero_bubble_matches_the_full_batch_step() {
    let full = gpt(&config(MICRO)).unwrap();
    let full_inputs = random_inputs(&full, 7);
    let (want_loss, want_grads) = reference(&full, &full_inputs);
    // Embeddings, final norm, and every layer's weights: dozens of gradients to compare.
    assert!(want_grads.len() > 8 * 4, "{} gradients", want_grads.len());
    let micro = gpt(&config(1)).unwrap();
    let loss = micro.outputs[0];
    let by_name = |name: &str| -> Tensor {
        let v = full.inputs().find(|&v| name_of(&full, v) == name).unwrap();
        full_inputs[full.inputs().position(|x| x == v).unwrap()].clone()
    };
    let cases = [
        (S::GPipe, 4),
        (S::OneFOneB, 4),
        (S::Interleaved1F1B, 8),
        (S::InterleavedZeroBubble, 4),
        (S::ZbVZeroBubble, 8),
    ];
    for (kind, stages) in cases {
        let programs: Vec<StageProgram> =
            cut_stages(&micro, loss, stages, &stage_of(stages, 8)).unwrap();
        let stage_inputs = |p: &StageProgram| -> Vec<Vec<Tensor>> {
            (0..MICRO)
                .map(|mb| {
                    p.inputs
                        .iter()
                        .map(|&v| {
                            let t = by_name(name_of(&micro, v));
                            let data = matches!(name_of(&micro, v), "tokens" | "labels");
                            if data {
                                rows(&t, mb, MICRO)
                            } else {
                                t
                            }
                        })
                        .collect()
                })
                .collect()
        };
        let run: Vec<PipelineStage> = programs
            .iter()
            .map(|p| PipelineStage {
                forward: &p.forward,
                backward: &p.backward,
                backward_input: &p.backward_input,
                backward_weight: &p.backward_weight,
                inputs: stage_inputs(p),
                boundary_in: p.boundary_in.iter().map(|&v| micro.ty(v).clone()).collect(),
                boundary_out: p
                    .boundary_out
                    .iter()
                    .map(|&v| micro.ty(v).clone())
                    .collect(),
            })
            .collect();
        let schedule = Schedule::generate(kind, stages as u32, 4, MICRO as u32).unwrap();
        let result = run_pipeline(&schedule, &run, Duration::from_secs(60)).unwrap();
        let losses: Vec<f64> = result
            .losses
            .iter()
            .map(|l| l.scalar_f64().unwrap())
            .collect();
        // A parameter's gradient is the sum over the stages that use it (the tied embedding
        // sits on the first and the last).
        let grads: Vec<(String, Vec<f64>)> = programs
            .iter()
            .zip(&result.gradients)
            .flat_map(|(p, gs)| {
                p.parameters
                    .iter()
                    .zip(gs)
                    .map(|(&v, g)| (name_of(&micro, v).to_string(), g.to_f64_vec()))
            })
            .collect();
        assert_matches_full_batch(&kind.to_string(), &losses, &grads, want_loss, &want_grads);
    }
}

#[test]
fn a_value_skipping_a_stage_is_refused() {
    let g = gpt(&config(1)).unwrap();
    let loss = g.outputs[0];
    // The embedding on stage 0, every layer on stage 2: the residual skips stage 1.
    let e = cut_stages(&g, loss, 3, &|n: &Node| {
        if n.name.starts_with("embed") {
            0
        } else {
            2
        }
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("may feed only its own stage and the next"),
        "{e}"
    );
}

/// The loss (the loss is a mean over the batch: the full batch's is the mean of the
/// micro-batches') and every gradient (the sum over the stages that
/// hold the parameter, averaged over micro-batches) against the full-batch step's.
fn assert_matches_full_batch(
    what: &str,
    losses: &[f64],
    grads: &[(String, Vec<f64>)],
    want_loss: f64,
    want_grads: &[(String, Tensor)],
) {
    let got_loss = losses.iter().sum::<f64>() / MICRO as f64;
    assert!(
        (got_loss - want_loss).abs() <= 1e-5 * want_loss.abs(),
        "{what}: loss {got_loss} vs {want_loss}"
    );
    for (name, want) in want_grads {
        let mut sum = vec![0.0; want.len()];
        let mut found = 0;
        for (_, g) in grads.iter().filter(|(n, _)| n == name) {
            found += 1;
            for (s, x) in sum.iter_mut().zip(g) {
                *s += x / MICRO as f64;
            }
        }
        assert!(found >= 1, "{what}: no stage holds `{name}`");
        let got = Tensor::from_f64(want.ty(), &sum).unwrap();
        let err = max_relative_error(&got, want).unwrap();
        assert!(err <= 1e-5, "{what}: gradient of `{name}` off by {err:.2e}");
    }
}

#[test]
fn gpt_step_on_4_stages_of_2_way_tensor_parallelism_matches_the_full_batch_step() {
    let tp: Mesh = "tp=2".parse().unwrap();
    let full = gpt(&config(MICRO)).unwrap();
    let full_inputs = random_inputs(&full, 11);
    let (want_loss, want_grads) = reference(&full, &full_inputs);
    let micro = gpt(&GptConfig {
        shardings: GptShardings::Megatron(tp.clone()),
        ..config(1)
    })
    .unwrap();
    assert!(!micro.annotations.is_empty());
    let loss = micro.outputs[0];
    let global = |name: &str, mb: u64| -> Vec<f64> {
        let k = full
            .inputs()
            .position(|v| name_of(&full, v) == name)
            .unwrap();
        let t = &full_inputs[k];
        if matches!(name, "tokens" | "labels") {
            rows(t, mb, MICRO).to_f64_vec()
        } else {
            t.to_f64_vec()
        }
    };
    // Four ranks of two devices: 8 thread devices. Interleaved 1F1B runs two stages per rank.
    let cases = [
        (S::GPipe, 4),
        (S::OneFOneB, 4),
        (S::Interleaved1F1B, 8),
        (S::InterleavedZeroBubble, 4),
    ];
    for (kind, stages) in cases {
        let programs = cut_stages(&micro, loss, stages, &stage_of(stages, 8)).unwrap();
        let spmd = partition_stages(&programs, &tp, &micro.annotations).unwrap();
        // The weights really are split: some stage programs run tensor-parallel collectives.
        assert!(spmd
            .iter()
            .any(|s| !s.forward.collective_counts().is_empty()));
        let run: Vec<SpmdPipelineStage> = programs
            .iter()
            .zip(&spmd)
            .map(|(p, sp)| {
                let f = &sp.forward;
                let own = &f.inputs[..p.inputs.len()];
                let inputs = (0..2)
                    .map(|dev| {
                        (0..MICRO)
                            .map(|mb| {
                                own.iter()
                                    .map(|i| {
                                        let data = global(&i.name, mb);
                                        let local = shard_array(
                                            &data,
                                            i.global.dims(),
                                            &i.sharding,
                                            &tp,
                                            dev,
                                        )
                                        .unwrap();
                                        Tensor::from_f64(f.graph.ty(i.local).clone(), &local)
                                            .unwrap()
                                    })
                                    .collect()
                            })
                            .collect()
                    })
                    .collect();
                SpmdPipelineStage {
                    forward: &f.graph,
                    backward: &sp.backward.graph,
                    backward_input: &sp.backward_input.graph,
                    backward_weight: &sp.backward_weight.graph,
                    inputs,
                    boundary_in: f.inputs[p.inputs.len()..]
                        .iter()
                        .map(|i| f.graph.ty(i.local).clone())
                        .collect(),
                    boundary_out: f
                        .outputs
                        .iter()
                        .map(|o| f.graph.ty(o.local).clone())
                        .collect(),
                }
            })
            .collect();
        let schedule = Schedule::generate(kind, stages as u32, 4, MICRO as u32).unwrap();
        let result = run_pipeline_spmd(&schedule, &tp, &run, Duration::from_secs(60)).unwrap();
        let losses: Vec<f64> = result
            .losses
            .iter()
            .map(|l| l.scalar_f64().unwrap())
            .collect();
        assert_eq!(losses.len(), MICRO as usize);
        // Each device's summed gradient shards, reassembled by the backward-weight outputs'
        // shardings.
        let mut grads = Vec::new();
        for (s, (p, sp)) in programs.iter().zip(&spmd).enumerate() {
            for (k, o) in sp.backward_weight.outputs.iter().enumerate() {
                let shards: Vec<Vec<f64>> = result.gradients[s]
                    .iter()
                    .map(|per| per[k].to_f64_vec())
                    .collect();
                let g = unshard_array(&shards, o.global.dims(), &o.sharding, &tp).unwrap();
                grads.push((name_of(&micro, p.parameters[k]).to_string(), g));
            }
        }
        assert_matches_full_batch(
            &format!("{kind} on 4x tp=2"),
            &losses,
            &grads,
            want_loss,
            &want_grads,
        );
    }
}
