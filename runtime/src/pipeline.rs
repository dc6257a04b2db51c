//! Running a pipeline schedule on the threads backend (MPMD): one group of thread devices per
//! pipeline rank (the rank's submesh, one thread per device), every device of the group
//! performing its rank's actions in torch's `compute_comms` form in order. `F`, `B`, `I` and `W`
//! run the stage's SPMD programs on the micro-batch, their collectives within the submesh;
//! `SEND_F`/`SEND_B` and `RECV_F`/`RECV_B` move boundary activations and their gradients
//! between ranks through the [`Communicator`]'s point-to-point `send`/`recv`, device `p` of one
//! submesh to device `p` of the next (the programs agree on the boundary shardings,
//! `codegen::partition_stages`, so local shards travel as they are); stages on the same rank
//! (V schedules) hand them over locally. Parameter gradients are summed over micro-batches on
//! each device; the caller applies the optimizer once with them (`REDUCE_GRAD` marks where
//! they are final). [`run_pipeline`] is the case of one device per stage.

use std::collections::BTreeMap;

use shardc_ir::{Graph, Mesh, TensorType};
use shardc_pipeline::{Action, ActionKind as K, Schedule};

use crate::error::RuntimeError;
use crate::executor::run_graph;
use crate::mesh::{launch, Endpoint, MeshDevice};
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

/// One stage's SPMD programs (the local programs of `codegen::SpmdStage`, one per program
/// kind, each run by every device of the stage's submesh) and each device's local inputs.
#[derive(Clone, Debug)]
pub struct SpmdPipelineStage<'a> {
    /// Forward (local program): stage inputs, then boundary inputs → boundary outputs.
    pub forward: &'a Graph,
    /// Full backward (local program), inputs and outputs as in [`PipelineStage::backward`].
    pub backward: &'a Graph,
    /// Backward-input (local program).
    pub backward_input: &'a Graph,
    /// Backward-weight (local program).
    pub backward_weight: &'a Graph,
    /// `inputs[p][mb]`: the local shards of the stage's own inputs fed to the device at mesh
    /// position `p` for micro-batch `mb`, in program order.
    pub inputs: Vec<Vec<Vec<Tensor>>>,
    /// Local types of the boundary inputs (what one device receives).
    pub boundary_in: Vec<TensorType>,
    /// Local types of the boundary outputs (what one device sends).
    pub boundary_out: Vec<TensorType>,
}

/// What a pipelined step on submeshes gives back.
#[derive(Clone, Debug)]
pub struct SpmdPipelineResult {
    /// The last stage's forward output (the loss) per micro-batch, as its first device has it.
    pub losses: Vec<Tensor>,
    /// `gradients[s][p]`: stage `s`'s parameter gradients on the device at mesh position `p`
    /// (local shards, as the backward-weight program outputs them), summed over micro-batches.
    pub gradients: Vec<Vec<Vec<Tensor>>>,
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
pub(crate) struct RankState {
    /// Boundary inputs of (stage, micro-batch), received or handed over.
    pub(crate) acts: BTreeMap<(u32, u32), Vec<Tensor>>,
    /// Forward outputs of (stage, micro-batch) waiting to be sent.
    outs: BTreeMap<(u32, u32), Vec<Tensor>>,
    /// Gradients of the boundary outputs of (stage, micro-batch), received or handed over.
    grads_in: BTreeMap<(u32, u32), Vec<Tensor>>,
    /// Boundary-input gradients of (stage, micro-batch) waiting to be sent.
    grads_out: BTreeMap<(u32, u32), Vec<Tensor>>,
    pub(crate) losses: BTreeMap<u32, Tensor>,
    /// Per stage, the gradient sums.
    pub(crate) sums: BTreeMap<u32, Vec<Vec<f64>>>,
}

/// Runs `schedule` with `stages[s]` on rank `schedule.stage_to_rank[s]`, one thread each.
pub fn run_pipeline(
    schedule: &Schedule,
    stages: &[PipelineStage<'_>],
    timeout: std::time::Duration,
) -> Result<PipelineResult, RuntimeError> {
    let one = Mesh::new(&[("pp", 1)]).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    let spmd: Vec<SpmdPipelineStage> = stages
        .iter()
        .map(|s| SpmdPipelineStage {
            forward: s.forward,
            backward: s.backward,
            backward_input: s.backward_input,
            backward_weight: s.backward_weight,
            inputs: vec![s.inputs.clone()],
            boundary_in: s.boundary_in.clone(),
            boundary_out: s.boundary_out.clone(),
        })
        .collect();
    let r = run_pipeline_spmd(schedule, &one, &spmd, timeout)?;
    Ok(PipelineResult {
        losses: r.losses,
        gradients: r
            .gradients
            .into_iter()
            .map(|per_device| per_device.into_iter().next().unwrap_or_default())
            .collect(),
    })
}

/// Runs `schedule` with `stages[s]` on the submesh of rank `schedule.stage_to_rank[s]`: rank
/// `r` is global devices `r·n .. (r+1)·n` for a `mesh` of `n` devices, one thread each.
pub fn run_pipeline_spmd(
    schedule: &Schedule,
    mesh: &Mesh,
    stages: &[SpmdPipelineStage<'_>],
    timeout: std::time::Duration,
) -> Result<SpmdPipelineResult, RuntimeError> {
    check_stages(schedule, mesh, stages)?;
    let comms = schedule
        .with_comms()
        .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    let n = mesh.devices.len();
    let layout: Vec<(Mesh, Vec<usize>)> = (0..schedule.ranks as usize)
        .map(|r| (mesh.clone(), (r * n..(r + 1) * n).collect()))
        .collect();
    let results = launch(&layout, timeout, |comm| {
        let device = comm.device();
        let mut st = RankState::default();
        for a in &comms[device / n] {
            perform(a, schedule, stages, comm, &mut st).map_err(|e| RuntimeError::Device {
                device,
                message: format!("{a}: {e}"),
            })?;
        }
        Ok(st)
    })?;
    let mut losses = BTreeMap::new();
    // sums[(stage, position)]
    let mut sums = BTreeMap::new();
    for (device, r) in results.into_iter().enumerate() {
        let st = r?;
        if device % n == 0 {
            losses.extend(st.losses);
        }
        for (s, sum) in st.sums {
            sums.insert((s, device % n), sum);
        }
    }
    let gradients = (0..schedule.stages)
        .map(|s| {
            let g = stages[s as usize].backward_weight;
            let types: Vec<TensorType> = g.outputs.iter().map(|&v| g.ty(v).clone()).collect();
            (0..n)
                .map(|p| {
                    let sum = sums.remove(&(s, p)).unwrap_or_default();
                    types
                        .iter()
                        .zip(sum)
                        .map(|(ty, v)| Tensor::from_f64(ty.clone(), &v))
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    Ok(SpmdPipelineResult {
        losses: losses.into_values().collect(),
        gradients,
    })
}

/// The stages fit the schedule and the submesh: one per schedule stage, inputs for every
/// device and micro-batch, programs verified and written for the submesh's axes.
pub(crate) fn check_stages(
    schedule: &Schedule,
    mesh: &Mesh,
    stages: &[SpmdPipelineStage<'_>],
) -> Result<(), RuntimeError> {
    if stages.len() != schedule.stages as usize {
        return Err(RuntimeError::Invalid(format!(
            "{} stage programs for a schedule of {} stages",
            stages.len(),
            schedule.stages
        )));
    }
    for (s, st) in stages.iter().enumerate() {
        if st.inputs.len() != mesh.devices.len() {
            return Err(RuntimeError::Invalid(format!(
                "stage {s} has inputs for {} devices, its submesh `{mesh}` has {}",
                st.inputs.len(),
                mesh.devices.len()
            )));
        }
        if let Some(per_mb) = st
            .inputs
            .iter()
            .find(|i| i.len() != schedule.microbatches as usize)
        {
            return Err(RuntimeError::Invalid(format!(
                "stage {s} has inputs for {} micro-batches, the schedule runs {}",
                per_mb.len(),
                schedule.microbatches
            )));
        }
        for g in [
            st.forward,
            st.backward,
            st.backward_input,
            st.backward_weight,
        ] {
            shardc_ir::verify(g)?;
            if let Some(m) = &g.mesh {
                if m.axes != mesh.axes {
                    return Err(RuntimeError::Invalid(format!(
                        "stage {s}: program `{}` is written for mesh `{m}`, the submesh is `{mesh}`",
                        g.name
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Runs one local program on this device, its collectives within the device's submesh.
fn execute_on<C: Endpoint>(
    program: &Graph,
    inputs: Vec<Tensor>,
    comm: &mut C,
) -> Result<Vec<Tensor>, RuntimeError> {
    let mut dev = MeshDevice {
        comm,
        stages: &[],
        fail: None,
    };
    run_graph(
        program,
        crate::executor::owned(inputs),
        &program.outputs,
        &mut dev,
    )
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

pub(crate) fn perform<C: Endpoint>(
    a: &Action,
    schedule: &Schedule,
    stages: &[SpmdPipelineStage<'_>],
    comm: &mut C,
    st: &mut RankState,
) -> Result<(), RuntimeError> {
    let (s, mb) = (a.stage, a.mb());
    let stage = &stages[s as usize];
    let last = s + 1 == schedule.stages;
    let (pos, n) = (comm.position(), comm.mesh().devices.len());
    let own = &stage.inputs[pos][mb as usize];
    let rank_of = |x: u32| schedule.stage_to_rank[x as usize] as usize;
    // The device at this device's position in stage `x`'s submesh.
    let peer = |x: u32| rank_of(x) * n + pos;
    let local_next = !last && rank_of(s + 1) == rank_of(s);
    let local_prev = s > 0 && rank_of(s - 1) == rank_of(s);
    let tag = |dir: &str, to: u32, k: usize| format!("{dir}{to}.{mb}.{k}");
    // The backward's inputs: the forward's, then the boundary-output gradients.
    let backward_inputs = |st: &mut RankState| -> Result<Vec<Tensor>, RuntimeError> {
        let mut ins = own.clone();
        ins.extend(st.acts.get(&(s, mb)).cloned().unwrap_or_default());
        if !last {
            ins.extend(take(&mut st.grads_in, (s, mb), "output gradient")?);
        }
        Ok(ins)
    };
    match a.kind {
        K::Forward => {
            let mut ins = own.clone();
            ins.extend(st.acts.get(&(s, mb)).cloned().unwrap_or_default());
            let outs = execute_on(stage.forward, ins, comm)?;
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
                comm.send(t, peer(s + 1), &tag("F", s + 1, k))?;
            }
        }
        K::RecvF => {
            let ins = (0..stage.boundary_in.len())
                .map(|k| comm.recv(peer(s - 1), &tag("F", s, k), &stage.boundary_in[k]))
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
                let dy = ins[own.len() + stage.boundary_in.len()..].to_vec();
                st.grads_in.insert((s, mb), dy);
            }
            let program = if full {
                stage.backward
            } else {
                stage.backward_input
            };
            let mut outs = execute_on(program, ins, comm)?;
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
            let grads = execute_on(stage.backward_weight, ins, comm)?;
            accumulate(st, s, grads);
        }
        K::SendB => {
            for (k, t) in take(&mut st.grads_out, (s, mb), "input gradient")?
                .into_iter()
                .enumerate()
            {
                comm.send(t, peer(s - 1), &tag("B", s - 1, k))?;
            }
        }
        K::RecvB => {
            let grads = (0..stage.boundary_out.len())
                .map(|k| comm.recv(peer(s + 1), &tag("B", s, k), &stage.boundary_out[k]))
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
