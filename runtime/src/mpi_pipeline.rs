//! Running a pipeline schedule on the MPI backend: one process per device, world rank
//! `r·n + p` the device at position `p` of pipeline rank `r`'s submesh of `n` devices (the
//! threads runner's numbering, `pipeline.rs`). Each pipeline rank's processes share one
//! sub-communicator, split once per axis list their stage programs' collectives use; the
//! stages' activations and gradients travel point-to-point between world ranks through
//! buffered sends (`MPI_Bsend`, a buffer sized to every send of the rank attached first), so
//! a send never waits for its receive and a schedule that is deadlock-free on the threads
//! backend is on MPI too. At the end every device sends its gradient sums, and the last
//! stage's first device its losses, to world rank 0, which returns them.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mpi::topology::Color;
use mpi::traits::*;
use shardc_ir::{Mesh, TensorType};
use shardc_pipeline::{ActionKind as K, Schedule};

use crate::error::RuntimeError;
use crate::mpi_backend::{axis_lists, MpiComm, MpiWorld};
use crate::pipeline::{check_stages, perform, RankState, SpmdPipelineResult, SpmdPipelineStage};
use crate::tensor::{element_count, Tensor};

/// The tag of the results sent to rank 0 (below the pipeline's own tags, `USER_TAG_BASE`).
const RESULT_TAG: i32 = 11;
/// Bytes MPI may add to each buffered message (`MPI_BSEND_OVERHEAD` is under 100 in Open MPI
/// and MPICH; this leaves room).
const BSEND_OVERHEAD: usize = 1024;

/// Runs `schedule` with `stages[s]` on pipeline rank `schedule.stage_to_rank[s]`, one MPI
/// process per device of its `mesh`-shaped submesh: the job has `ranks · n` processes. At world
/// rank 0 the result (losses per micro-batch, every device's gradient sums), `None` elsewhere.
/// On any error or panic this rank prints it, with its rank and the action, and aborts the job.
pub fn run_pipeline_mpi(
    world: &mut MpiWorld,
    schedule: &Schedule,
    mesh: &Mesh,
    stages: &[SpmdPipelineStage<'_>],
) -> Option<SpmdPipelineResult> {
    let r = catch_unwind(AssertUnwindSafe(|| run_rank(world, schedule, mesh, stages)));
    match r {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => world.abort(&e.to_string()),
        Err(p) => world.abort(&format!("panicked: {}", crate::mesh::panic_message(p))),
    }
}

/// Bytes this rank's sends of `actions` need in the attached buffer.
fn send_bytes(
    stages: &[SpmdPipelineStage<'_>],
    actions: &[shardc_pipeline::Action],
) -> Result<usize, RuntimeError> {
    let mut bytes = 0usize;
    for a in actions {
        let types: &[TensorType] = match a.kind {
            K::SendF => &stages[a.stage as usize].boundary_out,
            K::SendB => &stages[a.stage as usize].boundary_in,
            _ => continue,
        };
        for ty in types {
            // Elements travel as the tensor's element type, at most 8 bytes each.
            bytes = bytes
                .saturating_add(element_count(ty)?.saturating_mul(8))
                .saturating_add(BSEND_OVERHEAD);
        }
    }
    Ok(bytes)
}

fn run_rank(
    world: &mut MpiWorld,
    schedule: &Schedule,
    mesh: &Mesh,
    stages: &[SpmdPipelineStage<'_>],
) -> Result<Option<SpmdPipelineResult>, RuntimeError> {
    check_stages(schedule, mesh, stages)?;
    let comms = schedule
        .with_comms()
        .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    let n = mesh.devices.len();
    let ranks = schedule.ranks as usize;
    let (rank, size) = (world.rank(), world.size());
    if size != ranks * n {
        return Err(RuntimeError::Invalid(format!(
            "the pipeline has {ranks} ranks of {n} devices (submesh `{mesh}`), but mpirun \
             started {size} processes (use -n {})",
            ranks * n
        )));
    }
    let (prank, pos) = (rank / n, rank % n);
    // Every stage program's axis lists, so that each submesh builds the same communicators.
    let mut lists: Vec<Vec<String>> = stages
        .iter()
        .flat_map(|s| {
            [s.forward, s.backward, s.backward_input, s.backward_weight]
                .into_iter()
                .flat_map(axis_lists)
        })
        .collect();
    lists.sort();
    lists.dedup();
    let wc = world.universe().world();
    let sub = wc
        .split_by_color_with_key(Color::with_value(prank as i32), pos as i32)
        .ok_or_else(|| RuntimeError::Invalid("MPI split into submeshes failed".into()))?;
    let mut comm = MpiComm::new(&sub, mesh, &lists, None)?;
    comm.buffered = true;
    let buffer = send_bytes(stages, &comms[prank])?;
    if buffer > i32::MAX as usize {
        return Err(RuntimeError::Invalid(format!(
            "pipeline rank {prank}'s sends need a {buffer}-byte buffer, over MPI's limit of \
             {} bytes for buffered sends",
            i32::MAX
        )));
    }
    world.universe().set_buffer_size(buffer.max(BSEND_OVERHEAD));
    let mut st = RankState::default();
    for a in &comms[prank] {
        perform(a, schedule, stages, &mut comm, &mut st).map_err(|e| RuntimeError::Device {
            device: rank,
            message: format!("{a}: {e}"),
        })?;
    }
    // Every buffered send delivered before the buffer goes.
    world.universe().detach_buffer();
    collect(world, schedule, n, stages, st)
}

/// Sends this device's results to world rank 0; at rank 0, receives everyone's.
fn collect(
    world: &mut MpiWorld,
    schedule: &Schedule,
    n: usize,
    stages: &[SpmdPipelineStage<'_>],
    mut st: RankState,
) -> Result<Option<SpmdPipelineResult>, RuntimeError> {
    let wc = world.universe().world();
    let rank = wc.rank() as usize;
    let last = schedule.stages - 1;
    let device_of = |s: u32, p: usize| schedule.stage_to_rank[s as usize] as usize * n + p;
    let m = schedule.microbatches as usize;
    let grad_types = |s: u32| -> Vec<TensorType> {
        let g = stages[s as usize].backward_weight;
        g.outputs.iter().map(|&v| g.ty(v).clone()).collect()
    };
    if rank != 0 {
        let root = wc.process_at_rank(0);
        for s in 0..schedule.stages {
            if device_of(s, rank % n) != rank {
                continue;
            }
            let sums = st.sums.remove(&s).unwrap_or_default();
            for (k, ty) in grad_types(s).iter().enumerate() {
                let v = sums
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| vec![0.0; element_count(ty).unwrap_or(0)]);
                root.send_with_tag(&v[..], RESULT_TAG);
            }
        }
        if device_of(last, 0) == rank {
            let losses = (0..m as u32)
                .map(|mb| st.losses.get(&mb).map_or(Ok(f64::NAN), Tensor::scalar_f64))
                .collect::<Result<Vec<f64>, _>>()?;
            root.send_with_tag(&losses[..], RESULT_TAG);
        }
        return Ok(None);
    }
    let mut gradients = Vec::with_capacity(stages.len());
    for s in 0..schedule.stages {
        let types = grad_types(s);
        let mut per_device = Vec::with_capacity(n);
        for p in 0..n {
            let d = device_of(s, p);
            let mine = if d == 0 {
                st.sums.remove(&s).unwrap_or_default()
            } else {
                Vec::new()
            };
            let mut grads = Vec::with_capacity(types.len());
            for (k, ty) in types.iter().enumerate() {
                let len = element_count(ty)?;
                let v = if d == 0 {
                    mine.get(k).cloned().unwrap_or_else(|| vec![0.0; len])
                } else {
                    let mut v = vec![0.0f64; len];
                    wc.process_at_rank(d as i32)
                        .receive_into_with_tag(&mut v[..], RESULT_TAG);
                    v
                };
                grads.push(Tensor::from_f64(ty.clone(), &v)?);
            }
            per_device.push(grads);
        }
        gradients.push(per_device);
    }
    let loss_ty = {
        let f = stages[last as usize].forward;
        f.ty(f.outputs[0]).clone()
    };
    let losses: Vec<f64> = if device_of(last, 0) == 0 {
        (0..m as u32)
            .map(|mb| st.losses.get(&mb).map_or(Ok(f64::NAN), Tensor::scalar_f64))
            .collect::<Result<_, _>>()?
    } else {
        let mut v = vec![0.0f64; m];
        wc.process_at_rank(device_of(last, 0) as i32)
            .receive_into_with_tag(&mut v[..], RESULT_TAG);
        v
    };
    let losses = losses
        .iter()
        .map(|&l| Tensor::from_f64(loss_ty.clone(), &[l]))
        .collect::<Result<_, _>>()?;
    Ok(Some(SpmdPipelineResult { losses, gradients }))
}
