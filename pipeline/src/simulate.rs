//! The simulator: an event-driven timeline of a schedule. Each rank runs its actions in order;
//! an action starts when its rank is free and what it needs has finished (plus a point-to-point
//! transfer when that ran on another rank). Gives the step time, the bubble, and the activation
//! memory each stage holds.

use crate::action::{Action, ActionKind as K};
use crate::comms::requirements;
use crate::error::{Error, Result};
use crate::schedule::Schedule;

/// Per-stage costs of one micro-batch, in seconds and bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct StageTimes {
    /// Forward time per stage.
    pub forward: Vec<f64>,
    /// Backward-input (`I`) time per stage; a full backward `B` takes `I + W`.
    pub backward_input: Vec<f64>,
    /// Backward-weight (`W`) time per stage.
    pub backward_weight: Vec<f64>,
    /// Time of one activation or gradient transfer between ranks.
    pub p2p: f64,
    /// Activation bytes a stage holds per micro-batch from its F until its last backward (B or W).
    pub activation_bytes: Vec<f64>,
}

impl StageTimes {
    /// The same times and activation size on every stage.
    pub fn uniform(
        stages: u32,
        forward: f64,
        backward_input: f64,
        backward_weight: f64,
        p2p: f64,
    ) -> StageTimes {
        let n = stages as usize;
        StageTimes {
            forward: vec![forward; n],
            backward_input: vec![backward_input; n],
            backward_weight: vec![backward_weight; n],
            p2p,
            activation_bytes: vec![1.0; n],
        }
    }

    fn duration(&self, a: &Action) -> f64 {
        let s = a.stage as usize;
        match a.kind {
            K::Forward => self.forward[s],
            K::BackwardInput => self.backward_input[s],
            K::BackwardWeight => self.backward_weight[s],
            K::FullBackward => self.backward_input[s] + self.backward_weight[s],
            _ => 0.0,
        }
    }
}

/// One action placed in time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// The rank that runs it.
    pub rank: u32,
    /// The action.
    pub action: Action,
    /// Start, seconds from the step's start.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// A simulated step.
#[derive(Clone, Debug, PartialEq)]
pub struct Simulation {
    /// The schedule's name.
    pub name: String,
    /// Number of stages.
    pub stages: u32,
    /// Number of ranks.
    pub ranks: u32,
    /// Number of micro-batches.
    pub microbatches: u32,
    /// When the last action ends.
    pub step_time: f64,
    /// Compute time per rank.
    pub busy: Vec<f64>,
    /// Idle share of all ranks' time: `1 − Σ busy / (ranks · step)`.
    pub bubble_fraction: f64,
    /// Bubble relative to the ideal (the busiest rank's compute): `(step − ideal) / ideal`, the
    /// quantity REFERENCES.md's `(p−1)/m` formulas give.
    pub bubble_over_ideal: f64,
    /// Per stage, the most micro-batches whose activations it held at once.
    pub peak_in_flight: Vec<u32>,
    /// Per rank, the most activation bytes its stages held at once.
    pub peak_activation_bytes: Vec<f64>,
    /// Every compute action in time, rank by rank.
    pub intervals: Vec<Interval>,
}

/// Simulates `schedule` with `times`; fails if the schedule deadlocks or the times do not cover
/// every stage.
pub fn simulate(schedule: &Schedule, times: &StageTimes) -> Result<Simulation> {
    let n = schedule.stages as usize;
    let lens = [
        times.forward.len(),
        times.backward_input.len(),
        times.backward_weight.len(),
        times.activation_bytes.len(),
    ];
    if lens.iter().any(|&l| l != n) {
        return Err(Error::Input(format!(
            "stage times give {lens:?} entries (F, I, W, activations); the schedule has {n} stages"
        )));
    }
    let all = times
        .forward
        .iter()
        .chain(&times.backward_input)
        .chain(&times.backward_weight)
        .chain(&times.activation_bytes);
    if all.chain([&times.p2p]).any(|t| !t.is_finite() || *t < 0.0) {
        return Err(Error::Input(
            "stage times and sizes must be finite and non-negative".into(),
        ));
    }
    let s2r = &schedule.stage_to_rank;
    let lists: Vec<Vec<Action>> = schedule
        .compute
        .iter()
        .map(|ops| {
            ops.iter()
                .flatten()
                .filter(|a| a.kind.is_compute())
                .copied()
                .collect()
        })
        .collect();
    let mut finish: std::collections::BTreeMap<Action, f64> = Default::default();
    let mut next = vec![0usize; lists.len()];
    let mut free = vec![0.0f64; lists.len()];
    let mut intervals = Vec::new();
    loop {
        let mut progress = false;
        for (r, ops) in lists.iter().enumerate() {
            while let Some(a) = ops.get(next[r]) {
                let req = requirements(a, s2r, false);
                let ready = req.iter().filter_map(|x| {
                    let cross = s2r[x.stage as usize] != s2r[a.stage as usize];
                    finish
                        .get(x)
                        .map(|t| t + if cross { times.p2p } else { 0.0 })
                });
                let dep = match (
                    req.is_empty(),
                    ready.fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.min(t)))),
                ) {
                    (true, _) => 0.0,
                    (false, Some(t)) => t,
                    (false, None) => break,
                };
                let start = free[r].max(dep);
                let end = start + times.duration(a);
                finish.insert(*a, end);
                free[r] = end;
                intervals.push(Interval {
                    rank: r as u32,
                    action: *a,
                    start,
                    end,
                });
                next[r] += 1;
                progress = true;
            }
        }
        if next.iter().zip(&lists).all(|(&i, ops)| i == ops.len()) {
            break;
        }
        if !progress {
            let stuck: Vec<String> = lists
                .iter()
                .enumerate()
                .filter_map(|(r, ops)| ops.get(next[r]).map(|a| format!("rank {r} at {a}")))
                .collect();
            return Err(Error::Invalid(format!(
                "the schedule deadlocks: {}",
                stuck.join(", ")
            )));
        }
    }
    intervals.sort_by(|a, b| {
        (a.rank, a.start)
            .partial_cmp(&(b.rank, b.start))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(summarise(schedule, times, intervals))
}

fn summarise(schedule: &Schedule, times: &StageTimes, intervals: Vec<Interval>) -> Simulation {
    let ranks = schedule.ranks as usize;
    let step_time = intervals.iter().map(|i| i.end).fold(0.0, f64::max);
    let mut busy = vec![0.0; ranks];
    for i in &intervals {
        busy[i.rank as usize] += i.end - i.start;
    }
    let ideal = busy.iter().copied().fold(0.0, f64::max);
    let total: f64 = busy.iter().sum();
    let (peak_in_flight, peak_activation_bytes) = activation_peaks(schedule, times, &intervals);
    Simulation {
        name: schedule.name(),
        stages: schedule.stages,
        ranks: schedule.ranks,
        microbatches: schedule.microbatches,
        step_time,
        bubble_fraction: if step_time > 0.0 {
            1.0 - total / (ranks as f64 * step_time)
        } else {
            0.0
        },
        bubble_over_ideal: if ideal > 0.0 {
            (step_time - ideal) / ideal
        } else {
            0.0
        },
        busy,
        peak_in_flight,
        peak_activation_bytes,
        intervals,
    }
}

/// Walks each rank's actions in time order: a forward takes its stage's activation bytes, the
/// last backward piece (B, or W after I) gives them back.
fn activation_peaks(
    schedule: &Schedule,
    times: &StageTimes,
    intervals: &[Interval],
) -> (Vec<u32>, Vec<f64>) {
    let mut held = vec![0u32; schedule.stages as usize];
    let mut peak = held.clone();
    let mut bytes = vec![0.0f64; schedule.ranks as usize];
    let mut peak_bytes = bytes.clone();
    // Inference keeps a micro-batch's activations only while its forward runs.
    let training = schedule.has_backward();
    for i in intervals {
        let (s, r) = (i.action.stage as usize, i.rank as usize);
        match i.action.kind {
            K::Forward => {
                held[s] += 1;
                bytes[r] += times.activation_bytes[s];
            }
            K::FullBackward | K::BackwardWeight => {
                held[s] = held[s].saturating_sub(1);
                bytes[r] -= times.activation_bytes[s];
            }
            _ => {}
        }
        peak[s] = peak[s].max(held[s]);
        peak_bytes[r] = peak_bytes[r].max(bytes[r]);
        if !training {
            held[s] = held[s].saturating_sub(1);
            bytes[r] -= times.activation_bytes[s];
        }
    }
    (peak, peak_bytes)
}
