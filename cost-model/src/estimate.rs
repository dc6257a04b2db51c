//! The step-time estimate: compute, exposed communication and pipeline bubble combined, with
//! FLOP rates, memory and the collectives behind it.
//!
//! Overlap assumption (documented in the report): collectives inside a stage's forward and
//! backward pass (tensor-parallel all-reduces, ZeRO-3 gathers) sit between dependent ops and are
//! fully exposed; pipeline sends are exposed; the data-parallel gradient reduction runs after the
//! last backward micro-batch (Megatron-LM as in Narayanan et al. 2021) and is exposed unless
//! `overlap_gradient_reduction` is set, in which case it hides behind the backward pass of the
//! last micro-batch and only what exceeds it is exposed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::collective::{Algorithm, CollectiveKind};
use crate::hardware::Precision;
use crate::memory::{human_bytes, MemoryBreakdown, Schedule};

/// Which communication may run under compute (each can be turned off: `--no-overlap`).
/// Tensor-parallel collectives are never overlapped: they sit between dependent ops.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlap {
    /// The data-parallel gradient reduction runs in buckets during the backward pass of the last
    /// micro-batch (PyTorch DDP, Megatron-LM's later overlapped reduction); otherwise it runs
    /// after the last backward pass (Megatron-LM as Narayanan et al. 2021 ran it).
    pub gradient_reduction: bool,
    /// ZeRO-3 weight all-gathers are prefetched during the previous layer's compute.
    pub zero3_gather: bool,
    /// Pipeline sends and receives run asynchronously beside compute.
    pub pipeline_send: bool,
}

impl Overlap {
    /// Everything that can overlap does.
    pub const ALL: Overlap = Overlap {
        gradient_reduction: true,
        zero3_gather: true,
        pipeline_send: true,
    };
    /// Nothing overlaps (`--no-overlap`).
    pub const NONE: Overlap = Overlap {
        gradient_reduction: false,
        zero3_gather: false,
        pipeline_send: false,
    };

    /// The assumptions in words, for the report.
    pub fn describe(&self) -> String {
        let on = |b: bool| if b { "overlapped" } else { "exposed" };
        format!(
            "tensor-parallel collectives exposed; data-parallel gradient reduction {}; ZeRO-3 \
             weight gathers {}; pipeline sends {}",
            if self.gradient_reduction {
                "bucketed under the last backward pass"
            } else {
                "after the last backward pass"
            },
            on(self.zero3_gather),
            on(self.pipeline_send)
        )
    }
}

impl Default for Overlap {
    /// [`Overlap::ALL`].
    fn default() -> Self {
        Overlap::ALL
    }
}

/// One op (or fusion region) of the step and its time on one device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpLine {
    /// The node's name, or the first node of a fusion region and how many ops it fuses.
    pub what: String,
    /// `matmul`, `fused` (a fusion region), `elementwise`, ...
    pub class: String,
    /// Seconds per step on one device (every micro-batch).
    pub seconds: f64,
}

/// One kind of collective in the step, with how often it runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CollectiveLine {
    /// Why it is there (`tensor-parallel all-reduce (forward)`).
    pub what: String,
    pub kind: CollectiveKind,
    pub algorithm: Algorithm,
    /// The mesh axes it runs over, comma-separated.
    pub axes: String,
    /// `S`, the full buffer of one call.
    pub bytes: f64,
    /// Seconds of one call.
    pub seconds: f64,
    /// Calls per step on one device.
    pub count: u64,
}

/// The work of one training (or inference) step on the busiest device, as the analytic and the
/// graph paths both produce it; [`estimate`] combines it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepWork {
    pub microbatches: u64,
    pub stages: u64,
    pub schedule: Schedule,
    /// Per micro-batch on the slowest stage: forward, backward and recomputation compute.
    pub forward_s: f64,
    pub backward_s: f64,
    pub recompute_s: f64,
    /// Per micro-batch: collectives inside the stage (exposed).
    pub stage_comm_s: f64,
    /// Per micro-batch: pipeline sends and receives (exposed).
    pub p2p_s: f64,
    /// Once per step: gradient reduction across data-parallel replicas.
    pub gradient_comm_s: f64,
    pub overlap_gradient_reduction: bool,
    /// Once per step: the optimizer update.
    pub optimizer_s: f64,
    /// FLOPs of the step per device without recomputation (what MFU counts).
    pub model_flops: f64,
    /// FLOPs that run per device, recomputation included.
    pub hardware_flops: f64,
    pub memory: MemoryBreakdown,
    pub collectives: Vec<CollectiveLine>,
    /// What was assumed to overlap.
    #[serde(default)]
    pub overlap: Overlap,
    /// Per micro-batch: communication hidden under compute (ZeRO-3 gathers, pipeline sends).
    pub hidden_comm_s: f64,
    /// The precision most matmul FLOPs run in.
    pub precision: Option<Precision>,
    /// The largest ops by time (at most five).
    pub top_ops: Vec<OpLine>,
    /// Things a reader should know about the estimate (an f32 graph on a bf16 device).
    pub warnings: Vec<String>,
    /// Every pipeline stage's figures (the graph path; empty from the analytic path), so a
    /// pipelined planner can price stage cuts other than the one priced.
    #[serde(default)]
    pub per_stage: Vec<StageWork>,
}

/// One pipeline stage's work on one of its devices, per micro-batch unless said.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StageWork {
    pub forward_s: f64,
    pub backward_s: f64,
    pub recompute_s: f64,
    /// Collectives inside the stage, exposed.
    pub stage_comm_s: f64,
    /// Pipeline sends and receives, exposed.
    pub p2p_s: f64,
    /// Bytes held for the whole step.
    pub weights: f64,
    pub gradients: f64,
    pub optimizer_state: f64,
    /// Bytes saved for the backward pass per micro-batch in flight.
    pub activations_per_microbatch: f64,
    /// The largest short-lived buffer, bytes.
    pub transient: f64,
}

/// What a step costs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    pub step_time_s: f64,
    /// Compute of all micro-batches on the busiest device (no bubble).
    pub compute_s: f64,
    /// Communication that does not overlap with compute.
    pub exposed_comm_s: f64,
    /// Idle time of the pipeline fill and drain: `(p−1)` micro-batch times.
    pub bubble_s: f64,
    pub optimizer_s: f64,
    pub model_tflops_per_device: f64,
    pub hardware_tflops_per_device: f64,
    pub memory_per_device_bytes: f64,
    pub fits: bool,
    pub memory: MemoryBreakdown,
    pub collectives: Vec<CollectiveLine>,
    pub overlap: Overlap,
    /// Communication hidden under compute over the step (gradient reduction, ZeRO-3 gathers,
    /// pipeline sends).
    pub hidden_comm_s: f64,
    pub precision: Option<Precision>,
    pub top_ops: Vec<OpLine>,
    pub warnings: Vec<String>,
}

/// Combines a step's work into a step time:
/// `(m + p − 1) · (t_f + t_b + t_r + t_comm + t_p2p) + t_grad(exposed) + t_opt`; the bubble
/// fraction is `(p−1)/m` of the ideal time for GPipe and 1F1B alike.
pub fn estimate(w: &StepWork) -> Estimate {
    let m = w.microbatches.max(1) as f64;
    let p = w.stages.max(1) as f64;
    let compute_mb = w.forward_s + w.backward_s + w.recompute_s;
    let per_mb = compute_mb + w.stage_comm_s + w.p2p_s;
    let grad_exposed = if w.overlap_gradient_reduction || w.overlap.gradient_reduction {
        (w.gradient_comm_s - w.backward_s).max(0.0)
    } else {
        w.gradient_comm_s
    };
    let step = (m + p - 1.0) * per_mb + grad_exposed + w.optimizer_s;
    let tflops = |f: f64| if step > 0.0 { f / step / 1e12 } else { 0.0 };
    Estimate {
        step_time_s: step,
        compute_s: m * compute_mb,
        exposed_comm_s: m * (w.stage_comm_s + w.p2p_s) + grad_exposed,
        bubble_s: (p - 1.0) * per_mb,
        optimizer_s: w.optimizer_s,
        model_tflops_per_device: tflops(w.model_flops),
        hardware_tflops_per_device: tflops(w.hardware_flops),
        memory_per_device_bytes: w.memory.total(),
        fits: w.memory.fits(),
        memory: w.memory.clone(),
        collectives: w.collectives.clone(),
        overlap: w.overlap,
        hidden_comm_s: m * w.hidden_comm_s + (w.gradient_comm_s - grad_exposed),
        precision: w.precision,
        top_ops: w.top_ops.clone(),
        warnings: w.warnings.clone(),
    }
}

fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else {
        format!("{:.3} ms", s * 1e3)
    }
}

impl fmt::Display for Estimate {
    /// The report `shardc cost` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = |x: f64| 100.0 * x / self.step_time_s.max(f64::MIN_POSITIVE);
        writeln!(f, "step time                {:>12}", secs(self.step_time_s))?;
        for (name, v) in [
            ("compute", self.compute_s),
            ("exposed communication", self.exposed_comm_s),
            ("pipeline bubble", self.bubble_s),
            ("optimizer", self.optimizer_s),
        ] {
            writeln!(f, "  {name:<22} {:>12}  {:>5.1}%", secs(v), share(v))?;
        }
        writeln!(
            f,
            "model TFLOP/s per device     {:>8.1}  (no recomputation: MFU)",
            self.model_tflops_per_device
        )?;
        writeln!(
            f,
            "hardware TFLOP/s per device  {:>8.1}  (recomputation included)",
            self.hardware_tflops_per_device
        )?;
        if let Some(p) = self.precision {
            writeln!(
                f,
                "precision priced             {:>8}  (of most matmul FLOPs)",
                p.name()
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        writeln!(f, "{}", self.memory)?;
        if !self.top_ops.is_empty() {
            writeln!(f, "largest ops per step (one device)")?;
            for o in &self.top_ops {
                writeln!(f, "  {:>12}  {:<11}  {}", secs(o.seconds), o.class, o.what)?;
            }
        }
        let mut top: Vec<&CollectiveLine> = self.collectives.iter().collect();
        top.sort_by(|a, b| {
            (b.seconds * b.count as f64)
                .total_cmp(&(a.seconds * a.count as f64))
                .then(a.what.cmp(&b.what))
        });
        if !top.is_empty() {
            writeln!(f, "largest collectives per step (one device)")?;
            for c in top.iter().take(5) {
                writeln!(
                    f,
                    "  {:>12}  {:<4} {} x{}  {}",
                    secs(c.seconds * c.count as f64),
                    c.axes,
                    c.kind.name(),
                    c.count,
                    c.what
                )?;
            }
        }
        if !self.collectives.is_empty() {
            writeln!(f, "collectives per step (one device)")?;
            writeln!(
                f,
                "  {:<8} {:<14} {:<16} {:>12} {:>12} {:>8}  why",
                "axes", "collective", "algorithm", "bytes", "each", "count"
            )?;
            for c in &self.collectives {
                writeln!(
                    f,
                    "  {:<8} {:<14} {:<16} {:>12} {:>12} {:>8}  {}",
                    c.axes,
                    c.kind.name(),
                    c.algorithm.name(),
                    human_bytes(c.bytes),
                    secs(c.seconds),
                    c.count,
                    c.what
                )?;
            }
        }
        write!(
            f,
            "overlap: {} ({} hidden)",
            self.overlap.describe(),
            secs(self.hidden_comm_s)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work() -> StepWork {
        StepWork {
            microbatches: 8,
            stages: 4,
            schedule: Schedule::OneFOneB,
            forward_s: 1.0,
            backward_s: 2.0,
            recompute_s: 0.0,
            stage_comm_s: 0.5,
            p2p_s: 0.5,
            gradient_comm_s: 3.0,
            overlap_gradient_reduction: false,
            optimizer_s: 1.0,
            model_flops: 44e12,
            hardware_flops: 44e12,
            memory: MemoryBreakdown {
                weights: 1.0,
                gradients: 1.0,
                optimizer_state: 1.0,
                activations: 1.0,
                transient: 1.0,
                capacity: 10.0,
            },
            collectives: vec![],
            overlap: Overlap::NONE,
            hidden_comm_s: 0.0,
            precision: None,
            top_ops: vec![],
            warnings: vec![],
            per_stage: vec![],
        }
    }

    #[test]
    fn step_time_is_pipelined_microbatches_plus_gradient_reduction_and_update() {
        let e = estimate(&work());
        // (8 + 3) · 4 s + 3 s + 1 s.
        assert_eq!(e.step_time_s, 48.0);
        assert_eq!(e.bubble_s, 12.0);
        assert_eq!(e.compute_s, 24.0);
        assert_eq!(e.exposed_comm_s, 8.0 + 3.0);
        assert_eq!(e.model_tflops_per_device, 44.0 / 48.0);
        // The bubble is (p−1)/m of the ideal time m · t_mb.
        assert_eq!(e.bubble_s / (8.0 * 4.0), 3.0 / 8.0);
    }

    #[test]
    fn overlapped_gradient_reduction_exposes_only_what_outlasts_the_backward_pass() {
        let mut w = work();
        w.overlap_gradient_reduction = true;
        assert_eq!(estimate(&w).step_time_s, 44.0 + 1.0 + 1.0);
    }
}
