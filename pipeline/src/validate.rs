//! The validator: every F/I/W/B of every micro-batch exactly once, each stage on one rank, F
//! before its backward, I before W, each send matched by one receive, and a dry run that finds
//! deadlocks and names the stuck action (torch's "Schedule is not progressing" with
//! `<-- ERROR HERE`).

use std::collections::{BTreeMap, BTreeSet};

use crate::action::{Action, ActionKind as K};
use crate::comms::requirements;
use crate::error::{Error, Result};
use crate::schedule::{format_table, Schedule};

impl Schedule {
    /// Checks the compute schedule, lowers it with [`Schedule::with_comms`] and dry-runs that.
    pub fn validate(&self) -> Result<()> {
        self.check_shape()?;
        for (r, ops) in self.compute.iter().enumerate() {
            self.check_rank(r as u32, ops.iter().flatten())?;
        }
        self.check_counts()?;
        let comms = self.with_comms()?;
        self.validate_comms(&comms)
    }

    /// Checks a schedule with communication (read from torch's `compute_comms` CSV, say): the
    /// per-rank order rules, a dry run, then that every send met exactly one receive.
    pub fn validate_comms(&self, comms: &[Vec<Action>]) -> Result<()> {
        if comms.len() != self.ranks as usize {
            return Err(Error::Invalid(format!(
                "{} ranks in the communication schedule, expected {}",
                comms.len(),
                self.ranks
            )));
        }
        for (r, ops) in comms.iter().enumerate() {
            self.check_rank(r as u32, ops.iter())?;
        }
        dry_run(comms, &self.stage_to_rank)?;
        let mut balance: BTreeMap<(u32, u32, bool), i64> = BTreeMap::new();
        for a in comms.iter().flatten() {
            let (key, d) = match a.kind {
                K::SendF => ((a.stage + 1, a.mb(), true), 1),
                K::SendB if a.stage > 0 => ((a.stage - 1, a.mb(), false), 1),
                K::RecvF => ((a.stage, a.mb(), true), -1),
                K::RecvB => ((a.stage, a.mb(), false), -1),
                _ => continue,
            };
            *balance.entry(key).or_insert(0) += d;
        }
        if let Some(((stage, mb, fwd), n)) = balance.into_iter().find(|(_, n)| *n != 0) {
            let (what, from) = if fwd {
                ("RECV_F", stage.wrapping_sub(1))
            } else {
                ("RECV_B", stage + 1)
            };
            return Err(Error::Invalid(format!(
                "{}{what}{mb}: {} the matching send from stage {from}",
                stage,
                if n > 0 {
                    "no receive for"
                } else {
                    "more receives than"
                }
            )));
        }
        Ok(())
    }

    fn check_shape(&self) -> Result<()> {
        if self.compute.len() != self.ranks as usize {
            return Err(Error::Invalid(format!(
                "{} rank lists, expected {}",
                self.compute.len(),
                self.ranks
            )));
        }
        if self.stage_to_rank.len() != self.stages as usize || self.stages == 0 {
            return Err(Error::Invalid(format!(
                "stage-to-rank map has {} entries for {} stages",
                self.stage_to_rank.len(),
                self.stages
            )));
        }
        if let Some(s) = self.stage_to_rank.iter().position(|&r| r >= self.ranks) {
            return Err(Error::Invalid(format!(
                "stage {s} is placed on rank {}, but there are {} ranks",
                self.stage_to_rank[s], self.ranks
            )));
        }
        Ok(())
    }

    /// Per rank, in order: stages live here, micro-batches in range, no action twice, F before
    /// I/B, I before W, a send after the compute it sends.
    fn check_rank<'a>(&self, rank: u32, ops: impl Iterator<Item = &'a Action>) -> Result<()> {
        let mut done: BTreeSet<Action> = BTreeSet::new();
        for (step, a) in ops.enumerate() {
            let at = || format!("rank {rank}, step {step}, {a}");
            if a.stage >= self.stages {
                return Err(Error::Invalid(format!(
                    "{}: stage out of range (there are {} stages)",
                    at(),
                    self.stages
                )));
            }
            let home = self.stage_to_rank[a.stage as usize];
            if home != rank {
                return Err(Error::Invalid(format!(
                    "{}: stage {} is assigned to rank {home}",
                    at(),
                    a.stage
                )));
            }
            if a.kind.has_microbatch() && a.mb() >= self.microbatches {
                return Err(Error::Invalid(format!(
                    "{}: micro-batch out of range (there are {})",
                    at(),
                    self.microbatches
                )));
            }
            if !done.insert(*a) {
                return Err(Error::Invalid(format!("{}: runs twice", at())));
            }
            let needs = |k: K| Action::new(a.stage, k, a.mb());
            let missing = match a.kind {
                K::BackwardInput | K::FullBackward if !done.contains(&needs(K::Forward)) => {
                    Some("Forward")
                }
                K::BackwardWeight if !done.contains(&needs(K::BackwardInput)) => {
                    Some("Backward Input")
                }
                K::SendF if !done.contains(&needs(K::Forward)) => Some("Forward"),
                K::SendB
                    if !done.contains(&needs(K::BackwardInput))
                        && !done.contains(&needs(K::FullBackward)) =>
                {
                    Some("Backward")
                }
                _ => None,
            };
            if let Some(first) = missing {
                return Err(Error::Invalid(format!(
                    "{}: runs without first running {first} for stage {}, micro-batch {}",
                    at(),
                    a.stage,
                    a.mb()
                )));
            }
        }
        Ok(())
    }

    /// Every stage runs F for every micro-batch, and (when training) exactly one of B or I+W.
    fn check_counts(&self) -> Result<()> {
        let mut seen: BTreeSet<(u32, K, u32)> = BTreeSet::new();
        for (_, a) in self.actions() {
            seen.insert((a.stage, a.kind, a.mb()));
        }
        let training = self
            .kind
            .map_or_else(|| self.has_backward(), |k| k.has_backward());
        for s in 0..self.stages {
            for mb in 0..self.microbatches {
                let has = |k: K| seen.contains(&(s, k, mb));
                if !has(K::Forward) {
                    return Err(Error::Invalid(format!(
                        "stage {s} never runs the forward of micro-batch {mb} ({s}F{mb})"
                    )));
                }
                let (b, i, w) = (
                    has(K::FullBackward),
                    has(K::BackwardInput),
                    has(K::BackwardWeight),
                );
                if !training {
                    if b || i || w {
                        return Err(Error::Invalid(format!(
                            "forward-only schedule runs a backward of stage {s}, micro-batch {mb}"
                        )));
                    }
                    continue;
                }
                if i != w {
                    return Err(Error::Invalid(format!("stage {s}, micro-batch {mb}: I and W must come together ({s}I{mb} {}, {s}W{mb} {})", i, w)));
                }
                if b == i {
                    return Err(Error::Invalid(format!(
                        "stage {s}, micro-batch {mb}: expected one backward (B, or I and W), found {}",
                        if b { "both B and I/W" } else { "none" }
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Runs the ranks' lists in lockstep rounds; each rank takes its next action when what it needs
/// has run. When a round makes no progress, names every stuck rank's action and what it waits
/// for, and prints the steps so far with the stuck step marked.
pub fn dry_run(comms: &[Vec<Action>], stage_to_rank: &[u32]) -> Result<Vec<Vec<Option<Action>>>> {
    let mut next = vec![0usize; comms.len()];
    let mut done: BTreeSet<Action> = BTreeSet::new();
    let mut timeline: Vec<Vec<Option<Action>>> = vec![Vec::new(); comms.len()];
    while next.iter().zip(comms).any(|(&i, ops)| i < ops.len()) {
        let mut progress = false;
        for (r, ops) in comms.iter().enumerate() {
            let Some(a) = ops.get(next[r]) else { continue };
            let req = requirements(a, stage_to_rank, true);
            if req.is_empty() || req.iter().any(|x| done.contains(x)) {
                done.insert(*a);
                timeline[r].push(Some(*a));
                next[r] += 1;
                progress = true;
            } else {
                timeline[r].push(None);
            }
        }
        if !progress {
            let stuck: Vec<String> = comms
                .iter()
                .enumerate()
                .filter_map(|(r, ops)| {
                    let a = ops.get(next[r])?;
                    let waits = requirements(a, stage_to_rank, true)
                        .iter()
                        .map(|x| {
                            format!(
                                "{x} on rank {}",
                                stage_to_rank.get(x.stage as usize).copied().unwrap_or(0)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" or ");
                    Some(format!(
                        "rank {r} step {} action {a} waits for {waits}",
                        next[r]
                    ))
                })
                .collect();
            // Show the stuck actions as the last row, the one marked.
            for (r, row) in timeline.iter_mut().enumerate() {
                if let Some(a) = comms[r].get(next[r]) {
                    row.pop();
                    row.push(Some(*a));
                }
            }
            let last = timeline.iter().map(Vec::len).max().unwrap_or(1) - 1;
            return Err(Error::Deadlock {
                stuck: stuck.join("; "),
                table: format_table(&timeline, Some(last)),
            });
        }
    }
    Ok(timeline)
}
