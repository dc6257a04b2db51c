//! Choosing a schedule and a micro-batch count by simulation.

use crate::error::{Error, Result};
use crate::schedule::{Schedule, ScheduleKind};
use crate::simulate::{simulate, Simulation, StageTimes};

/// One rank's share of the whole mini-batch's work, split evenly into micro-batches and local
/// stages (time scales as `1 / (m · v)`), and the transfer time of one micro-batch's activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RankWork {
    /// Forward of the rank's layers over the whole mini-batch, seconds.
    pub forward: f64,
    /// Backward-input of the same.
    pub backward_input: f64,
    /// Backward-weight of the same.
    pub backward_weight: f64,
    /// One micro-batch's activation transfer between ranks at `m = 1`, seconds (scales as `1/m`).
    pub p2p: f64,
}

/// A simulated candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The schedule.
    pub kind: ScheduleKind,
    /// Its stage count (`ranks`, or `v · ranks` for interleaved and V schedules).
    pub stages: u32,
    /// Its micro-batch count.
    pub microbatches: u32,
    /// The simulated step.
    pub simulation: Simulation,
}

/// Simulates every applicable (kind, stage count, micro-batch count) and returns them fastest
/// first (ties: fewer micro-batches of activations on the busiest stage, then the listed order).
/// Training kinds only unless `ForwardOnly` is among `kinds`.
pub fn choose_schedule(
    ranks: u32,
    microbatches: &[u32],
    kinds: &[ScheduleKind],
    work: &RankWork,
) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    for &kind in kinds {
        let vs: &[u32] = match kind {
            ScheduleKind::GPipe | ScheduleKind::OneFOneB | ScheduleKind::ForwardOnly => &[1],
            ScheduleKind::ZbVZeroBubble | ScheduleKind::DualPipeV => &[2],
            _ => &[1, 2, 4],
        };
        for &v in vs {
            for &m in microbatches {
                let Ok(schedule) = Schedule::generate(kind, v * ranks, ranks, m) else {
                    continue;
                };
                let per = f64::from(m) * f64::from(v);
                let times = StageTimes::uniform(
                    v * ranks,
                    work.forward / per,
                    work.backward_input / per,
                    work.backward_weight / per,
                    work.p2p / f64::from(m),
                );
                let simulation = simulate(&schedule, &times)?;
                out.push(Candidate {
                    kind,
                    stages: v * ranks,
                    microbatches: m,
                    simulation,
                });
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Input(format!("no schedule among {kinds:?} applies to {ranks} ranks with micro-batches {microbatches:?}")));
    }
    out.sort_by(|a, b| {
        let peak = |c: &Candidate| {
            c.simulation
                .peak_in_flight
                .iter()
                .copied()
                .max()
                .unwrap_or(0)
        };
        a.simulation
            .step_time
            .total_cmp(&b.simulation.step_time)
            .then(peak(a).cmp(&peak(b)))
    });
    Ok(out)
}
