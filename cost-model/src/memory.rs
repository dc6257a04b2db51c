//! Memory per device: model state (weights, gradients, optimizer state, under ZeRO), activations
//! held for the backward pass (under micro-batching, schedule and recomputation), and the largest
//! transient; with a breakdown people can read.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{CostError, Result};

/// What is recomputed in the backward pass instead of kept (Korthikanti et al. 2022).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Recompute {
    #[default]
    None,
    /// The attention core (QKᵀ, softmax, its dropout, attention over V) is recomputed.
    Selective,
    /// Each layer keeps only its input and reruns its forward pass.
    Full,
}

impl std::str::FromStr for Recompute {
    type Err = CostError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Recompute::None),
            "selective" => Ok(Recompute::Selective),
            "full" => Ok(Recompute::Full),
            _ => Err(CostError::parse(
                "recomputation",
                s,
                "expected none, selective or full",
            )),
        }
    }
}

/// Pipeline schedules as far as memory and bubbles are concerned.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// All forwards, then all backwards: holds every micro-batch's activations.
    Gpipe,
    /// PipeDream-Flush: at most `p` micro-batches in flight on the first stage.
    #[default]
    OneFOneB,
}

impl std::str::FromStr for Schedule {
    type Err = CostError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gpipe" => Ok(Schedule::Gpipe),
            "1f1b" => Ok(Schedule::OneFOneB),
            _ => Err(CostError::parse("schedule", s, "expected gpipe or 1f1b")),
        }
    }
}

/// Micro-batches whose activations one stage holds at its peak: GPipe keeps all `m`, 1F1B at
/// most `p` (REFERENCES.md, "Pipelining").
pub fn held_microbatches(schedule: Schedule, m: u64, p: u64) -> u64 {
    match schedule {
        Schedule::Gpipe => m,
        Schedule::OneFOneB => m.min(p),
    }
}

/// ZeRO stage (Rajbhandari et al., arXiv 1910.02054): which model state is sharded over the
/// data-parallel group.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Zero {
    #[default]
    None,
    /// Optimizer state sharded.
    Stage1,
    /// Also gradients.
    Stage2,
    /// Also weights (gathered before use).
    Stage3,
}

impl std::str::FromStr for Zero {
    type Err = CostError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "0" => Ok(Zero::None),
            "1" => Ok(Zero::Stage1),
            "2" => Ok(Zero::Stage2),
            "3" => Ok(Zero::Stage3),
            _ => Err(CostError::parse("ZeRO stage", s, "expected 0, 1, 2 or 3")),
        }
    }
}

/// Bytes per parameter of each kind of model state.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateBytes {
    pub weight: f64,
    pub gradient: f64,
    pub optimizer: f64,
}

/// Mixed-precision Adam: 2 bytes of fp16/bf16 weights, 2 of gradients, and 12 of fp32 master
/// weights, momentum and variance: 16 bytes per parameter (ZeRO, arXiv 1910.02054).
pub const ADAM_MIXED_PRECISION: StateBytes = StateBytes {
    weight: 2.0,
    gradient: 2.0,
    optimizer: 12.0,
};

/// Weights, gradients and optimizer state of `params` parameters on one device, with ZeRO over a
/// data-parallel group of `dp`.
pub fn model_state(params: f64, per: StateBytes, zero: Zero, dp: u64) -> (f64, f64, f64) {
    let d = dp.max(1) as f64;
    let shard = |on: bool| if on { d } else { 1.0 };
    (
        params * per.weight / shard(zero >= Zero::Stage3),
        params * per.gradient / shard(zero >= Zero::Stage2),
        params * per.optimizer / shard(zero >= Zero::Stage1),
    )
}

/// Memory of one device by category, in bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryBreakdown {
    pub weights: f64,
    pub gradients: f64,
    pub optimizer_state: f64,
    /// Activations held for the backward pass at the schedule's peak.
    pub activations: f64,
    /// The largest short-lived buffer on top (a recomputed layer, the logits).
    pub transient: f64,
    pub capacity: f64,
}

impl MemoryBreakdown {
    pub fn total(&self) -> f64 {
        self.weights + self.gradients + self.optimizer_state + self.activations + self.transient
    }

    pub fn fits(&self) -> bool {
        self.total() <= self.capacity
    }

    /// Capacity left (negative: by how much it does not fit).
    pub fn headroom(&self) -> f64 {
        self.capacity - self.total()
    }
}

/// Bytes in the largest decimal unit (as datasheets count memory) that keeps the number at
/// least 1.
pub(crate) fn human_bytes(b: f64) -> String {
    let (v, unit) = if b >= 1e9 {
        (b / 1e9, "GB")
    } else if b >= 1e6 {
        (b / 1e6, "MB")
    } else if b >= 1e3 {
        (b / 1e3, "kB")
    } else {
        (b, "B")
    };
    format!("{v:.2} {unit}")
}

impl fmt::Display for MemoryBreakdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "memory per device")?;
        for (name, v) in [
            ("weights", self.weights),
            ("gradients", self.gradients),
            ("optimizer state", self.optimizer_state),
            ("activations", self.activations),
            ("largest transient", self.transient),
            ("total", self.total()),
            ("capacity", self.capacity),
        ] {
            writeln!(f, "  {name:<22} {:>12}", human_bytes(v))?;
        }
        if self.fits() {
            write!(f, "  fits, {} free", human_bytes(self.headroom()))
        } else {
            write!(
                f,
                "  DOES NOT FIT: {} over capacity",
                human_bytes(-self.headroom())
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_mixed_precision_is_16_bytes_per_parameter_and_zero_shards_it() {
        let p = 1e9;
        let (w, g, o) = model_state(p, ADAM_MIXED_PRECISION, Zero::None, 64);
        assert_eq!(w + g + o, 16e9);
        // ZeRO-1: 4Ψ + 12Ψ/N; ZeRO-2: 2Ψ + 14Ψ/N; ZeRO-3: 16Ψ/N (ZeRO paper, Figure 1).
        let sum = |z| {
            let (w, g, o) = model_state(p, ADAM_MIXED_PRECISION, z, 64);
            w + g + o
        };
        assert_eq!(sum(Zero::Stage1), 4e9 + 12e9 / 64.0);
        assert_eq!(sum(Zero::Stage2), 2e9 + 14e9 / 64.0);
        assert_eq!(sum(Zero::Stage3), 16e9 / 64.0);
    }

    #[test]
    fn gpipe_holds_every_microbatch_and_1f1b_at_most_p() {
        assert_eq!(held_microbatches(Schedule::Gpipe, 32, 4), 32);
        assert_eq!(held_microbatches(Schedule::OneFOneB, 32, 4), 4);
        assert_eq!(held_microbatches(Schedule::OneFOneB, 2, 4), 2);
    }

    #[test]
    fn the_breakdown_says_by_how_much_it_does_not_fit() {
        let m = MemoryBreakdown {
            weights: 40e9,
            gradients: 40e9,
            optimizer_state: 0.0,
            activations: 5e9,
            transient: 0.0,
            capacity: 80e9,
        };
        assert!(!m.fits());
        assert!(
            m.to_string()
                .ends_with("DOES NOT FIT: 5.00 GB over capacity"),
            "{m}"
        );
    }
}
