//! Uneven stage cuts for the pipelined planner: per-layer costs derived from the graph path's
//! per-stage figures of one mesh and micro-batch count, and Alpa's inter-operator DP
//! ([`crate::slice_fixed`]; Zheng et al. 2022, REFERENCES.md "Automatic planners") choosing
//! how many layers each stage takes, the embedding priced on the first stage and the LM head
//! on the last (the stages that run out of memory first), every stage at least one layer.
//!
//! The per-layer figures: the even split prices stage 0 as `E + n₀·A` (the embedding and
//! `n₀` layers) and the last stage as `H + n_last·A`; the same pricing with stage 0's last
//! layer moved to stage 1 gives `E + (n₀ − 1)·A`, hence `A`, `E` and `H`, for every figure
//! (forward, backward, recomputation and collective seconds, weight, gradient, optimizer and
//! activation bytes). A stage's pipeline sends are the first stage's (outbound), the last's
//! (inbound), or both in between.

use shardc_cost_model::{Cluster, GraphOptions, MemoryBreakdown, StageWork, StepWork};

use crate::error::Result;
use crate::slicing::{slice_fixed, StageEstimate};

/// The additive figures of a stage, in [`StageWork`]'s order.
type Figures = [f64; 8];

fn figures(s: &StageWork) -> Figures {
    [
        s.forward_s,
        s.backward_s,
        s.recompute_s,
        s.stage_comm_s,
        s.weights,
        s.gradients,
        s.optimizer_state,
        s.activations_per_microbatch,
    ]
}

/// Per-layer costs of one (mesh, micro-batch count).
#[derive(Clone, Debug)]
pub(crate) struct LayerCosts {
    layer: Figures,
    embedding: Figures,
    head: Figures,
    p2p_first: f64,
    p2p_last: f64,
    transient: f64,
    stages: usize,
    microbatches: u64,
}

impl LayerCosts {
    /// From the even split's step `even` (cuts `even_cuts`) and the step `shifted` with one
    /// layer moved from stage 0 to stage 1. `None` when the figures are missing.
    pub fn derive(even: &StepWork, shifted: &StepWork, even_cuts: &[u64]) -> Option<LayerCosts> {
        let p = even_cuts.len();
        if p < 2 || even.per_stage.len() != p || shifted.per_stage.len() != p || even_cuts[0] == 0 {
            return None;
        }
        let (e0, el, s0) = (
            figures(&even.per_stage[0]),
            figures(&even.per_stage[p - 1]),
            figures(&shifted.per_stage[0]),
        );
        let (n0, nl) = (even_cuts[0] as f64, even_cuts[p - 1] as f64);
        let layer: Figures = std::array::from_fn(|i| e0[i] - s0[i]);
        let embedding = std::array::from_fn(|i| s0[i] - (n0 - 1.0) * layer[i]);
        let head = std::array::from_fn(|i| el[i] - nl * layer[i]);
        let transient = even
            .per_stage
            .iter()
            .map(|s| s.transient)
            .fold(0.0, f64::max);
        Some(LayerCosts {
            layer,
            embedding,
            head,
            p2p_first: even.per_stage[0].p2p_s,
            p2p_last: even.per_stage[p - 1].p2p_s,
            transient,
            stages: p,
            microbatches: even.microbatches,
        })
    }

    /// Stage `s`'s figures holding layers `k..end` of `layers`.
    fn stage(&self, k: usize, end: usize, layers: usize) -> (Figures, f64) {
        let n = (end - k) as f64;
        let mut f: Figures = std::array::from_fn(|i| n * self.layer[i]);
        let (first, last) = (k == 0, end == layers);
        for i in 0..f.len() {
            f[i] +=
                if first { self.embedding[i] } else { 0.0 } + if last { self.head[i] } else { 0.0 };
        }
        let p2p = match (first, last) {
            (true, false) => self.p2p_first,
            (false, true) => self.p2p_last,
            _ => self.p2p_first + self.p2p_last,
        };
        (f, p2p)
    }

    /// A stage's seconds per micro-batch.
    fn time(f: &Figures, p2p: f64) -> f64 {
        f[0] + f[1] + f[2] + f[3] + p2p
    }

    /// Seconds per micro-batch of each stage under `cuts`.
    pub fn stage_times(&self, cuts: &[u64]) -> Vec<f64> {
        let layers = cuts.iter().sum::<u64>() as usize;
        let mut k = 0;
        cuts.iter()
            .map(|&n| {
                let (f, p2p) = self.stage(k, k + n as usize, layers);
                k += n as usize;
                Self::time(&f, p2p)
            })
            .collect()
    }

    /// The DP's cuts of `layers` layers within `limit` bytes per device, and their latency
    /// `Σ t_i + (B − 1)·max t_j`.
    pub fn slice(&self, layers: usize, limit: f64) -> Result<(Vec<u64>, f64)> {
        let cost = |r: std::ops::Range<usize>, held: usize| {
            let (f, p2p) = self.stage(r.start, r.end, layers);
            Some(StageEstimate {
                time: Self::time(&f, p2p),
                static_bytes: f[4] + f[5] + f[6] + self.transient,
                activation_bytes: held as f64 * f[7],
            })
        };
        let (cuts, lat) = slice_fixed(&cost, layers, self.stages, self.microbatches as u32, limit)?;
        Ok((cuts.into_iter().map(|n| n as u64).collect(), lat))
    }

    /// `Σ t_i + (B − 1)·max t_j` of `cuts`.
    pub fn latency(&self, cuts: &[u64]) -> f64 {
        let t = self.stage_times(cuts);
        let b = self.microbatches.max(1) as f64 - 1.0;
        t.iter().sum::<f64>() + b * t.iter().copied().fold(0.0, f64::max)
    }

    /// `even` with the busiest stage's times and the fullest stage's memory under `cuts` (the
    /// fullest by the cost model's 1F1B count, `min(m, p − s)` micro-batches on stage `s`; its
    /// activations per micro-batch stated for stage 0's `min(m, p)`, which `price_schedule`
    /// divides by and the simulator's peak multiplies: conservative for a later stage).
    pub fn step(&self, even: &StepWork, cuts: &[u64]) -> StepWork {
        let layers = cuts.iter().sum::<u64>() as usize;
        let p = cuts.len();
        let m = self.microbatches.max(1) as usize;
        let mut w = even.clone();
        let (mut k, mut busiest, mut fullest) = (0, f64::NEG_INFINITY, f64::NEG_INFINITY);
        for (s, &n) in cuts.iter().enumerate() {
            let (f, p2p) = self.stage(k, k + n as usize, layers);
            k += n as usize;
            let t = Self::time(&f, p2p);
            if t > busiest {
                busiest = t;
                w.forward_s = f[0];
                w.backward_s = f[1];
                w.recompute_s = f[2];
                w.stage_comm_s = f[3];
                w.p2p_s = p2p;
            }
            let held = m.min(p - s) as f64;
            let total = f[4] + f[5] + f[6] + held * f[7];
            if total > fullest {
                fullest = total;
                w.memory = MemoryBreakdown {
                    weights: f[4],
                    gradients: f[5],
                    optimizer_state: f[6],
                    activations: m.min(p) as f64 * f[7],
                    transient: self.transient,
                    capacity: even.memory.capacity,
                };
            }
        }
        w
    }
}

/// `l` layers split evenly over `stages`, as [`shardc_cost_model::pipeline_stages`] does.
pub(crate) fn even_cuts(l: u64, stages: u64) -> Vec<u64> {
    (0..stages)
        .map(|s| (s + 1) * l / stages - s * l / stages)
        .collect()
}

/// The stage-slicing DP's cuts for `w`'s mesh and micro-batches and their step, where the
/// DP's latency is below the even split's under the same per-layer costs; `None` otherwise
/// (one stage, or per-stage figures missing). One more graph-path pricing: the even split
/// with stage 0's last layer on stage 1 (`crate::cuts`).
pub(crate) fn uneven_cuts(
    on: &crate::pricing::MeshPricing,
    cluster: &Cluster,
    go: &GraphOptions,
    w: &StepWork,
    layers: u64,
    limit: f64,
) -> Result<Option<(Vec<u64>, StepWork, Vec<f64>)>> {
    let p = w.stages;
    if p < 2 || layers < p {
        return Ok(None);
    }
    let even = even_cuts(layers, p);
    let mut shifted = even.clone();
    shifted[0] -= 1;
    shifted[1] += 1;
    let ws = on.step_cut(cluster, go, &shifted)?;
    let Some(costs) = LayerCosts::derive(w, &ws, &even) else {
        return Ok(None);
    };
    let Ok((cuts, latency)) = costs.slice(layers as usize, limit) else {
        return Ok(None);
    };
    if cuts == even || latency >= costs.latency(&even) * (1.0 - 1e-9) {
        return Ok(None);
    }
    let step = costs.step(w, &cuts);
    let times = costs.stage_times(&cuts);
    Ok(Some((cuts, step, times)))
}
