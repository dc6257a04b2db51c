//! Schedules: which rank runs which action in which order.

use std::fmt;
use std::str::FromStr;

use crate::action::{Action, ActionKind as K};
use crate::error::{Error, Result};
use crate::generate::{self, RankOps};

/// The schedules shardc generates, named as torch.distributed.pipelining names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScheduleKind {
    /// Fill and drain (Huang et al. 2018); one stage per rank.
    GPipe,
    /// PipeDream-Flush; one stage per rank.
    OneFOneB,
    /// Megatron's interleaved 1F1B: `stages / ranks` stages per rank, looped.
    Interleaved1F1B,
    /// Breadth-first: all micro-batches through a local stage before the next.
    LoopedBfs,
    /// Zero bubble with split backward (ZB1P; ZB-H1 at one stage per rank).
    InterleavedZeroBubble,
    /// ZB-V: two stages per rank in a V.
    ZbVZeroBubble,
    /// DeepSeek's DualPipeV: two stages per rank in a V, overlapped forward/backward pairs.
    DualPipeV,
    /// Inference: forwards only.
    ForwardOnly,
}

impl ScheduleKind {
    /// Every kind, in a fixed order (for listings and selection loops).
    pub const ALL: [ScheduleKind; 8] = [
        ScheduleKind::GPipe,
        ScheduleKind::OneFOneB,
        ScheduleKind::Interleaved1F1B,
        ScheduleKind::LoopedBfs,
        ScheduleKind::InterleavedZeroBubble,
        ScheduleKind::ZbVZeroBubble,
        ScheduleKind::DualPipeV,
        ScheduleKind::ForwardOnly,
    ];

    /// torch's class-name key (`get_schedule_class`), or `ForwardOnly`.
    pub fn name(self) -> &'static str {
        match self {
            ScheduleKind::GPipe => "GPipe",
            ScheduleKind::OneFOneB => "1F1B",
            ScheduleKind::Interleaved1F1B => "Interleaved1F1B",
            ScheduleKind::LoopedBfs => "LoopedBFS",
            ScheduleKind::InterleavedZeroBubble => "InterleavedZeroBubble",
            ScheduleKind::ZbVZeroBubble => "ZBVZeroBubble",
            ScheduleKind::DualPipeV => "DualPipeV",
            ScheduleKind::ForwardOnly => "ForwardOnly",
        }
    }

    /// Whether stages sit on ranks in a V (`r` and `2p-1-r`) rather than looped (`s mod p`).
    pub fn v_shape(self) -> bool {
        matches!(self, ScheduleKind::ZbVZeroBubble | ScheduleKind::DualPipeV)
    }

    /// Whether the schedule runs backwards (every kind except `ForwardOnly`).
    pub fn has_backward(self) -> bool {
        self != ScheduleKind::ForwardOnly
    }
}

impl fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScheduleKind {
    type Err = Error;

    /// torch's names, case-insensitive, plus `zb-h1`/`zb1p`, `zbv`/`zb-v`, `interleaved`,
    /// `inference`.
    fn from_str(s: &str) -> Result<ScheduleKind> {
        let key = s.to_ascii_lowercase().replace(['-', '_'], "");
        let alias = match key.as_str() {
            "zbh1" | "zb1p" | "zerobubble" => Some(ScheduleKind::InterleavedZeroBubble),
            "zbv" => Some(ScheduleKind::ZbVZeroBubble),
            "interleaved" => Some(ScheduleKind::Interleaved1F1B),
            "inference" => Some(ScheduleKind::ForwardOnly),
            _ => None,
        };
        alias
            .or_else(|| {
                ScheduleKind::ALL
                    .into_iter()
                    .find(|k| k.name().to_ascii_lowercase() == key)
            })
            .ok_or_else(|| Error::Parse {
                text: s.to_string(),
                reason: format!(
                    "unknown schedule; expected one of {}",
                    ScheduleKind::ALL.map(ScheduleKind::name).join(", ")
                ),
            })
    }
}

/// A pipeline schedule: per rank, the compute actions in order (torch's `pipeline_order`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The generator, or `None` for a schedule read from a file.
    pub kind: Option<ScheduleKind>,
    /// Number of stages.
    pub stages: u32,
    /// Number of pipeline ranks.
    pub ranks: u32,
    /// Number of micro-batches.
    pub microbatches: u32,
    /// The rank that holds each stage.
    pub stage_to_rank: Vec<u32>,
    /// Per rank: compute actions, `None` for an idle step that keeps ranks aligned in time.
    pub compute: Vec<Vec<Option<Action>>>,
}

impl Schedule {
    /// Generates `kind` for `stages` stages on `ranks` ranks with `microbatches` micro-batches,
    /// or says why that combination is not supported.
    pub fn generate(
        kind: ScheduleKind,
        stages: u32,
        ranks: u32,
        microbatches: u32,
    ) -> Result<Schedule> {
        let refuse = |reason: String| Error::Unsupported {
            schedule: kind.name().to_string(),
            stages,
            ranks,
            microbatches,
            reason,
        };
        if stages == 0 || ranks == 0 || microbatches == 0 {
            return Err(refuse(
                "stages, ranks and micro-batches must each be at least 1".into(),
            ));
        }
        // Bound the lists (a few actions per micro-batch per stage) before building them.
        if u64::from(stages) * u64::from(microbatches) > 1 << 22 {
            return Err(refuse(
                "more than 4M stage micro-batches; the lists would not fit in memory".into(),
            ));
        }
        // Idle steps grow with the square of the ranks (each rank waits for the others).
        if ranks > 4096 {
            return Err(refuse("at most 4096 pipeline ranks".into()));
        }
        let (p, m) = (ranks, microbatches);
        let v = stages / ranks;
        let single = || {
            if stages != ranks {
                return Err(refuse(format!(
                    "{kind} runs one stage per rank; give {ranks} stages"
                )));
            }
            Ok(())
        };
        let looped = || {
            if stages % ranks != 0 {
                return Err(refuse(
                    "stages must be a multiple of ranks (the same number of stages on every rank)"
                        .into(),
                ));
            }
            Ok(())
        };
        let v_shape = || {
            if u64::from(stages) != 2 * u64::from(ranks) {
                return Err(refuse(format!(
                    "{kind} places exactly two stages on every rank; give {} stages",
                    2 * u64::from(ranks)
                )));
            }
            Ok(())
        };
        let compute: Vec<RankOps> = match kind {
            ScheduleKind::GPipe => {
                single()?;
                generate::gpipe(p, m)
            }
            ScheduleKind::ForwardOnly => {
                single()?;
                generate::forward_only(p, m)
            }
            ScheduleKind::OneFOneB => {
                single()?;
                if m < stages {
                    return Err(refuse(format!(
                        "1F1B needs at least as many micro-batches as stages ({stages})"
                    )));
                }
                generate::one_f_one_b(p, m)
            }
            ScheduleKind::LoopedBfs => {
                looped()?;
                generate::looped_bfs(p, v, m)
            }
            ScheduleKind::Interleaved1F1B | ScheduleKind::InterleavedZeroBubble => {
                looped()?;
                let rounds = (m / p).max(1);
                if m % rounds != 0 {
                    return Err(refuse(format!(
                        "micro-batches must be a multiple of the number of rounds max(1, m / ranks) = {rounds}"
                    )));
                }
                generate::interleaved(p, v, m, kind == ScheduleKind::InterleavedZeroBubble)
            }
            ScheduleKind::ZbVZeroBubble => {
                v_shape()?;
                generate::zbv(p, m)
            }
            ScheduleKind::DualPipeV => {
                v_shape()?;
                if m < stages {
                    return Err(refuse(format!(
                        "DualPipeV needs at least as many micro-batches as stages ({stages})"
                    )));
                }
                generate::dualpipe_v(p, m)
            }
        };
        Ok(Schedule {
            kind: Some(kind),
            stages,
            ranks,
            microbatches,
            stage_to_rank: stage_to_rank(stages, ranks, kind.v_shape()),
            compute,
        })
    }

    /// The schedule's display name.
    pub fn name(&self) -> String {
        self.kind
            .map_or_else(|| "custom".to_string(), |k| k.name().to_string())
    }

    /// Whether any rank runs a backward action.
    pub fn has_backward(&self) -> bool {
        self.actions()
            .any(|(_, a)| a.kind != K::Forward && a.kind.is_compute())
    }

    /// Every compute action with its rank, idle steps skipped, rank by rank.
    pub fn actions(&self) -> impl Iterator<Item = (u32, Action)> + '_ {
        self.compute
            .iter()
            .enumerate()
            .flat_map(|(r, ops)| ops.iter().flatten().map(move |a| (r as u32, *a)))
    }

    /// The stages a rank holds, ascending.
    pub fn stages_of(&self, rank: u32) -> Vec<u32> {
        (0..self.stages)
            .filter(|&s| self.stage_to_rank[s as usize] == rank)
            .collect()
    }

    /// torch's `_format_pipeline_order`: one row per step, one column per rank.
    pub fn format_table(&self) -> String {
        format_table(&self.compute, None)
    }
}

/// Stage `s` on rank `s mod ranks` (looped), or in a V: `s` and `2·ranks − 1 − s` on rank `s`.
pub fn stage_to_rank(stages: u32, ranks: u32, v_shape: bool) -> Vec<u32> {
    (0..stages)
        .map(|s| {
            if v_shape && s >= ranks {
                2 * ranks - 1 - s
            } else {
                s % ranks.max(1)
            }
        })
        .collect()
}

/// torch's `_format_pipeline_order`: `Step NN: a b c`, one column per rank, and
/// ` <-- ERROR HERE` on `error_step`.
pub fn format_table(ranks: &[Vec<Option<Action>>], error_step: Option<usize>) -> String {
    let steps = ranks.iter().map(Vec::len).max().unwrap_or(0);
    let digits = steps.saturating_sub(1).to_string().len();
    let cell = |r: usize, t: usize| {
        ranks[r]
            .get(t)
            .copied()
            .flatten()
            .map(|a| a.to_string())
            .unwrap_or_default()
    };
    let widths: Vec<usize> = (0..ranks.len())
        .map(|r| {
            (0..steps)
                .map(|t| cell(r, t).len())
                .max()
                .unwrap_or(0)
                .max(format!("Rank {r}").len())
        })
        .collect();
    let mut out = " ".repeat(digits + 7);
    let header: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(r, w)| format!("{:<w$}", format!("Rank {r}")))
        .collect();
    out.push_str(header.join(" ").trim_end());
    out.push('\n');
    for t in 0..steps {
        let row: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(r, w)| format!("{:<w$}", cell(r, t)))
            .collect();
        out.push_str(format!("Step {t:0digits$}: {}", row.join(" ")).trim_end());
        if error_step == Some(t) {
            out.push_str(" <-- ERROR HERE");
        }
        out.push('\n');
    }
    out
}
