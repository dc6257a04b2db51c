//! Running a pipeline schedule on the threads backend (MPMD): one thread per pipeline rank, each
//! performing its rank's actions in torch's `compute_comms` form in order. `F`, `B`, `I` and `W`
//! run the stage's programs on the micro-batch; `SEND_F`/`SEND_B` and `RECV_F`/`RECV_B` move
//! boundary activations and their gradients between ranks through the [`Communicator`]'s
//! point-to-point `send`/`recv`; stages on the same rank (V schedules) hand them over locally.
//! Parameter gradients are summed over micro-batches on each stage; the caller applies the
//! optimizer once with them (`REDUCE_GRAD` marks where they are final).
//!
//! Each stage runs on one device here; a stage on a tensor-parallel submesh is not built yet.

use std::collections::BTreeMap;

use shardc_ir::{Graph, Mesh, TensorType};
use shardc_pipeline::{Action, ActionKind as K, Schedule};

use crate::error::RuntimeError;
use crate::executor::execute;
use crate::mesh::{launch, Communicator, ThreadComm};
use crate::tensor::Tensor;

/// One stage's programs and data (the layout of `codegen::StageProgram`).
#[derive(Clone, Debug)]
pub struct PipelineStage<'a> {
    /// Forward: stage inputs, then boundary inputs → boundary outputs (the loss on the last).
    pub forward: &'a Graph,
    /// Full backward: the forward's inputs, then one gradient per boundary output (none on the
    /// last stage) → boundary-input gradients, then parameter gradients.
    pub backward: &'a Graph,
    /// Backward-input: the backward's inputs → boundary-input gradients.
    pub backward_input: &'a Graph,
    /// Backward-weight: the backward's inputs → parameter gradients.
    pub backward_weight: &'a Graph,
    /// Per micro-batch, the stage's own inputs (data slices and parameters), in program order.
    pub inputs: Vec<Vec<Tensor>>,
    /// Types of the boundary inputs (received from the previous stage).
    pub boundary_in: Vec<TensorType>,
    /// Types of the boundary outputs (sent to the next stage).
    pub boundary_out: Vec<TensorType>,
}

/// What a pipelined step gives back.
#[derive(Clone, Debug)]
pub struct PipelineResult {
    /// The last stage's forward output (the loss) per micro-batch.
    pub losses: Vec<Tensor>,
    /// Per stage, its parameter gradients summed over micro-batches.
    pub gradients: Vec<Vec<Tensor>>,
}

/// Per-rank state of a run: what arrived, what waits for a backward, what accumulates.
#[derive(Default)]
struct RankState {
    /// Boundary inputs of (stage, micro-batch), received or handed over.
    acts: BTreeMap<(u32, u32), Vec<Tensor>>,
    /// Forward outputs of (stage, micro-batch) waiting to be sent.
    outs: BTreeMap<(u32, u32), Vec<Tensor>>,
    /// Gradients of the boundary outputs of (stage, micro-batch), received or handed over.
    grads_in: BTreeMap<(u32, u32), Vec<Tensor>>,
    /// Boundary-input gradients of (stage, micro-batch) waiting to be sent.
    grads_out: BTreeMap<(u32, u32), Vec<Tensor>>,
    losses: BTreeMap<u32, Tensor>,
    /// Per stage, the gradient sums.
    sums: BTreeMap<u32, Vec<Vec<f64>>>,
}

/// Runs `schedule` with `stages[s]` on rank `schedule.stage_to_rank[s]`, one thread each.
pub fn run_pipeline(
    schedule: &Schedule,
    stages: &[PipelineStage<'_>],
    timeout: std::time::Duration,
) -> Result<PipelineResult, RuntimeError> {
    if stages.len() != schedule.stages as usize {
        return Err(RuntimeError::Invalid(format!(
            "{} stage programs for a schedule of {} stages",
            stages.len(),
            schedule.stages
        )));
    }
    if let Some((s, st)) = stages
        .iter()
        .enumerate()
        .find(|(_, st)| st.inputs.len() != schedule.microbatches as usize)
    {
        return Err(RuntimeError::Invalid(format!(
            "stage {s} has inputs for {} micro-batches, the schedule runs {}",
            st.inputs.len(),
            schedule.microbatches
        )));
    }
    let comms = schedule
        .with_comms()
        .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    let one = Mesh::new(&[("pp", 1)]).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    let layout: Vec<(Mesh, Vec<usize>)> = (0..schedule.ranks as usize)
        .map(|r| (one.clone(), vec![r]))
        .collect();
    let results = launch(&layout, timeout, |comm| {
        let rank = comm.device();
        let mut st = RankState::default();
        for a in &comms[rank] {
            perform(a, schedule, stages, comm, &mut st).map_err(|e| RuntimeError::Device {
                device: rank,
                message: format!("{a}: {e}"),
            })?;
        }
        Ok(st)
    })?;
    let mut losses = BTreeMap::new();
    let mut sums = BTreeMap::new();
    for r in results {
        let st = r?;
        losses.extend(st.losses);
        sums.extend(st.sums);
    }
    let gradients = (0..schedule.stages)
        .map(|s| {
            let g = stages[s as usize].backward_weight;
            let types: Vec<TensorType> = g.outputs.iter().map(|&v| g.ty(v).clone()).collect();
            let sum = sums.remove(&s).unwrap_or_default();
            types
                .iter()
                .zip(sum)
                .map(|(ty, v)| Tensor::from_f64(ty.clone(), &v))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    Ok(PipelineResult {
        losses: losses.into_values().collect(),
        gradients,
    })
}

fn take(
    map: &mut BTreeMap<(u32, u32), Vec<Tensor>>,
    key: (u32, u32),
    what: &str,
) -> Result<Vec<Tensor>, RuntimeError> {
    map.remove(&key).ok_or_else(|| {
        RuntimeError::Invalid(format!(
            "no {what} for stage {}, micro-batch {} yet",
            key.0, key.1
        ))
    })
}

fn perform(
    a: &Action,
    schedule: &Schedule,
    stages: &[PipelineStage<'_>],
    comm: &mut ThreadComm<'_>,
    st: &mut RankState,
) -> Result<(), RuntimeError> {
    let (s, mb) = (a.stage, a.mb());
    let stage = &stages[s as usize];
    let last = s + 1 == schedule.stages;
    let rank_of = |x: u32| schedule.stage_to_rank[x as usize] as usize;
    let local_next = !last && rank_of(s + 1) == rank_of(s);
    let local_prev = s > 0 && rank_of(s - 1) == rank_of(s);
    let tag = |dir: &str, to: u32, k: usize| format!("{dir}{to}.{mb}.{k}");
    // The backward's inputs: the forward's, then the boundary-output gradients.
    let backward_inputs = |st: &mut RankState| -> Result<Vec<Tensor>, RuntimeError> {
        let mut ins = stage.inputs[mb as usize].clone();
        ins.extend(st.acts.get(&(s, mb)).cloned().unwrap_or_default());
        if !last {
            ins.extend(take(&mut st.grads_in, (s, mb), "output gradient")?);
        }
        Ok(ins)
    };
    match a.kind {
        K::Forward => {
            let mut ins = stage.inputs[mb as usize].clone();
            ins.extend(st.acts.get(&(s, mb)).cloned().unwrap_or_default());
            let outs = execute(stage.forward, &ins)?;
            if last {
                st.losses.insert(
                    mb,
                    outs.into_iter().next().ok_or_else(|| {
                        RuntimeError::Invalid("the last stage gives no loss".into())
                    })?,
                );
            } else if local_next {
                st.acts.insert((s + 1, mb), outs);
            } else {
                st.outs.insert((s, mb), outs);
            }
        }
        K::SendF => {
            for (k, t) in take(&mut st.outs, (s, mb), "forward output")?
                .into_iter()
                .enumerate()
            {
                comm.send(t, rank_of(s + 1), &tag("F", s + 1, k))?;
            }
        }
        K::RecvF => {
            let ins = (0..stage.boundary_in.len())
                .map(|k| comm.recv(rank_of(s - 1), &tag("F", s, k), &stage.boundary_in[k]))
                .collect::<Result<Vec<_>, _>>()?;
            st.acts.insert((s, mb), ins);
        }
        K::FullBackward | K::BackwardInput => {
            let full = a.kind == K::FullBackward;
            let ins = backward_inputs(st)?;
            if full {
                st.acts.remove(&(s, mb));
            } else {
                // W needs the same inputs; keep the output gradient with the saved input.
                let dy = ins[stage.inputs[mb as usize].len() + stage.boundary_in.len()..].to_vec();
                st.grads_in.insert((s, mb), dy);
            }
            let program = if full {
                stage.backward
            } else {
                stage.backward_input
            };
            let mut outs = execute(program, &ins)?;
            let grads = outs.split_off(stage.boundary_in.len());
            if full {
                accumulate(st, s, grads);
            }
            if s > 0 {
                if local_prev {
                    st.grads_in.insert((s - 1, mb), outs);
                } else {
                    st.grads_out.insert((s, mb), outs);
                }
            }
        }
        K::BackwardWeight => {
            let ins = backward_inputs(st)?;
            st.acts.remove(&(s, mb));
            let grads = execute(stage.backward_weight, &ins)?;
            accumulate(st, s, grads);
        }
        K::SendB => {
            for (k, t) in take(&mut st.grads_out, (s, mb), "input gradient")?
                .into_iter()
                .enumerate()
            {
                comm.send(t, rank_of(s - 1), &tag("B", s - 1, k))?;
            }
        }
        K::RecvB => {
            let grads = (0..stage.boundary_out.len())
                .map(|k| comm.recv(rank_of(s + 1), &tag("B", s, k), &stage.boundary_out[k]))
                .collect::<Result<Vec<_>, _>>()?;
            st.grads_in.insert((s, mb), grads);
        }
        K::ReduceGrad | K::Unshard | K::Reshard => {}
    }
    Ok(())
}

fn accumulate(st: &mut RankState, stage: u32, grads: Vec<Tensor>) {
    let sums = st
        .sums
        .entry(stage)
        .or_insert_with(|| grads.iter().map(|g| vec![0.0; g.len()]).collect());
    for (sum, g) in sums.iter_mut().zip(grads) {
        for (x, v) in sum.iter_mut().zip(g.to_f64_vec()) {
            *x += v;
        }
    }
}
