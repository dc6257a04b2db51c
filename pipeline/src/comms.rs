//! Lowering a compute schedule to one with sends and receives (torch's `_add_send_recv` and
//! `_add_reduce_grad`), and the dependency rules the dry run and the simulator share.

use std::collections::BTreeSet;

use crate::action::{Action, ActionKind as K};
use crate::error::{Error, Result};
use crate::schedule::{format_table, Schedule};

/// What must have run before `a` may run, as alternatives (any one suffices); empty when nothing.
/// `stage_to_rank` says where each stage lives; with `with_comms` a value from another rank
/// arrives by a receive, otherwise the producing action itself is the requirement.
pub(crate) fn requirements(a: &Action, stage_to_rank: &[u32], with_comms: bool) -> Vec<Action> {
    let last = stage_to_rank.len() as u32 - 1;
    let same_rank = |x: u32, y: u32| stage_to_rank.get(x as usize) == stage_to_rank.get(y as usize);
    let (s, mb) = (a.stage, a.mb());
    match a.kind {
        K::Forward if s == 0 => vec![],
        K::Forward if with_comms && !same_rank(s - 1, s) => vec![Action::new(s, K::RecvF, mb)],
        K::Forward => vec![Action::new(s - 1, K::Forward, mb)],
        K::BackwardInput | K::FullBackward if s == last => vec![Action::new(s, K::Forward, mb)],
        K::BackwardInput | K::FullBackward if with_comms && !same_rank(s + 1, s) => {
            vec![Action::new(s, K::RecvB, mb)]
        }
        K::BackwardInput | K::FullBackward => {
            vec![
                Action::new(s + 1, K::BackwardInput, mb),
                Action::new(s + 1, K::FullBackward, mb),
            ]
        }
        K::BackwardWeight => vec![Action::new(s, K::BackwardInput, mb)],
        K::SendF => vec![Action::new(s, K::Forward, mb)],
        K::SendB => vec![
            Action::new(s, K::BackwardInput, mb),
            Action::new(s, K::FullBackward, mb),
        ],
        K::RecvF if s > 0 => vec![Action::new(s - 1, K::SendF, mb)],
        K::RecvB => vec![Action::new(s + 1, K::SendB, mb)],
        _ => vec![],
    }
}

/// The send and the receive that follow a compute action whose result crosses ranks.
fn comms_after(a: &Action, stage_to_rank: &[u32]) -> Option<(Action, Action)> {
    let last = stage_to_rank.len() as u32 - 1;
    let rank = |s: u32| stage_to_rank[s as usize];
    let (s, mb) = (a.stage, a.mb());
    match a.kind {
        K::Forward if s != last && rank(s + 1) != rank(s) => Some((
            Action::new(s, K::SendF, mb),
            Action::new(s + 1, K::RecvF, mb),
        )),
        K::BackwardInput | K::FullBackward if s != 0 && rank(s - 1) != rank(s) => Some((
            Action::new(s, K::SendB, mb),
            Action::new(s - 1, K::RecvB, mb),
        )),
        _ => None,
    }
}

/// torch's `_add_reduce_grad`: idle steps dropped, `REDUCE_GRAD` after a stage's last `B` or `W`.
fn with_reduce_grad(ops: &[Option<Action>], microbatches: u32) -> Vec<Action> {
    let mut out = Vec::with_capacity(ops.len() + 2);
    let mut done: std::collections::BTreeMap<u32, u32> = Default::default();
    for a in ops.iter().flatten() {
        out.push(*a);
        if matches!(a.kind, K::FullBackward | K::BackwardWeight) {
            let c = done.entry(a.stage).or_insert(0);
            *c += 1;
            if *c == microbatches {
                out.push(Action {
                    stage: a.stage,
                    kind: K::ReduceGrad,
                    microbatch: None,
                });
            }
        }
    }
    out
}

impl Schedule {
    /// The schedule with communication (torch's `compute_comms` form): per rank, each compute
    /// action followed by its send, the receive placed on the peer rank by the sender (so sends
    /// and receives are ordered the same way on both sides), and `REDUCE_GRAD` after each stage's
    /// last backward. Fails, naming the stuck actions, if the compute order cannot be lowered.
    pub fn with_comms(&self) -> Result<Vec<Vec<Action>>> {
        let s2r = &self.stage_to_rank;
        let mut pending: Vec<std::collections::VecDeque<Action>> = self
            .compute
            .iter()
            .map(|ops| with_reduce_grad(ops, self.microbatches).into())
            .collect();
        let mut out: Vec<Vec<Action>> = vec![Vec::new(); pending.len()];
        let mut seen: Vec<BTreeSet<Action>> = vec![BTreeSet::new(); pending.len()];
        while pending.iter().any(|q| !q.is_empty()) {
            let mut progress = false;
            for r in 0..pending.len() {
                let Some(a) = pending[r].front().copied() else {
                    continue;
                };
                let req = requirements(&a, s2r, true);
                if !req.is_empty() && !req.iter().any(|x| seen[r].contains(x)) {
                    continue;
                }
                pending[r].pop_front();
                out[r].push(a);
                seen[r].insert(a);
                if let Some((send, recv)) = comms_after(&a, s2r) {
                    out[r].push(send);
                    seen[r].insert(send);
                    let peer = s2r[recv.stage as usize] as usize;
                    out[peer].push(recv);
                    seen[peer].insert(recv);
                }
                progress = true;
            }
            if !progress {
                let stuck = pending
                    .iter()
                    .enumerate()
                    .filter_map(|(r, q)| q.front().map(|a| format!("rank {r} next action {a}")))
                    .collect::<Vec<_>>()
                    .join("; ");
                let table: Vec<Vec<Option<Action>>> = out
                    .iter()
                    .map(|ops| ops.iter().copied().map(Some).collect())
                    .collect();
                return Err(Error::Deadlock {
                    stuck,
                    table: format_table(&table, None),
                });
            }
        }
        Ok(out)
    }
}
