//! The generators, one per schedule, each following torch.distributed.pipelining's
//! `schedules.py` (`_get_pipeline_order` of the single-stage schedules,
//! `_calculate_single_rank_operations` of the multi-stage ones, `_get_1f1b_rank_ops`,
//! `_get_warmup_ops`, `_add_bubbles_to_actions`), so the per-rank lists are torch's.
//!
//! A rank's list holds `None` where torch's does: an idle step that keeps the ranks' lists aligned
//! in time. Runtimes skip them; the dry run and the simulator do not need them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::action::{Action, ActionKind as K};

/// A rank's compute list: actions and idle steps.
pub(crate) type RankOps = Vec<Option<Action>>;

fn pad(ops: &mut RankOps, n: u32) {
    ops.extend((0..n).map(|_| None));
}

/// GPipe: all forwards, then all backwards (torch `ScheduleGPipe._get_pipeline_order`).
pub(crate) fn gpipe(p: u32, m: u32) -> Vec<RankOps> {
    (0..p)
        .map(|r| {
            let mut ops = RankOps::new();
            pad(&mut ops, r);
            ops.extend((0..m).map(|mb| Some(Action::new(r, K::Forward, mb))));
            pad(&mut ops, 3 * (p - 1 - r));
            ops.extend((0..m).map(|mb| Some(Action::new(r, K::FullBackward, mb))));
            ops
        })
        .collect()
}

/// Forward only (inference): every rank runs every micro-batch's forward in order.
pub(crate) fn forward_only(p: u32, m: u32) -> Vec<RankOps> {
    (0..p)
        .map(|r| {
            let mut ops = RankOps::new();
            pad(&mut ops, r);
            ops.extend((0..m).map(|mb| Some(Action::new(r, K::Forward, mb))));
            ops
        })
        .collect()
}

/// 1F1B (PipeDream-Flush): `p - 1 - r` warm-up forwards, then one forward and one backward in
/// turn, then the remaining backwards (torch `Schedule1F1B`). torch's `_get_pipeline_order`
/// numbers the last rank's first steady forward 1 instead of 0; this follows what its runtime
/// (`_step_microbatches`) executes, which is the correct order.
pub(crate) fn one_f_one_b(p: u32, m: u32) -> Vec<RankOps> {
    (0..p)
        .map(|r| {
            let mut ops = RankOps::new();
            pad(&mut ops, r);
            let warmup = (p - 1 - r).min(m);
            ops.extend((0..warmup).map(|mb| Some(Action::new(r, K::Forward, mb))));
            pad(&mut ops, 2 * (p - 1 - r));
            let (mut f, mut b) = (warmup, 0);
            while f < m {
                ops.push(Some(Action::new(r, K::Forward, f)));
                ops.push(Some(Action::new(r, K::FullBackward, b)));
                f += 1;
                b += 1;
            }
            while b < m {
                ops.push(None);
                ops.push(Some(Action::new(r, K::FullBackward, b)));
                b += 1;
            }
            ops
        })
        .collect()
}

/// Looped BFS (Lamy-Poirier 2022): every micro-batch through a rank's first local stage, then
/// its next, ...; backwards in reverse (torch `ScheduleLoopedBFS`).
pub(crate) fn looped_bfs(p: u32, v: u32, m: u32) -> Vec<RankOps> {
    (0..p)
        .map(|r| {
            let stages: Vec<u32> = (0..v).map(|l| l * p + r).collect();
            let mut ops = RankOps::new();
            pad(&mut ops, r);
            for &s in &stages {
                ops.extend((0..m).map(|mb| Some(Action::new(s, K::Forward, mb))));
            }
            pad(&mut ops, 2 * (p - 1 - r));
            for &s in stages.iter().rev() {
                ops.extend(
                    (0..m)
                        .rev()
                        .map(|mb| Some(Action::new(s, K::FullBackward, mb))),
                );
            }
            ops
        })
        .collect()
}

/// torch's `_get_warmup_ops`.
fn warmup_ops(r: u32, v: u32, per_round: u32, p: u32, m: u32, factor: u32) -> u32 {
    ((v - 1) * per_round + factor * (p - 1 - r)).min(m * v)
}

/// Interleaved 1F1B (Narayanan et al. 2021) and Interleaved Zero Bubble (ZB1P, Qi et al. 2024):
/// torch's `_calculate_single_rank_operations` of `ScheduleInterleaved1F1B` and
/// `ScheduleInterleavedZeroBubble`, both built by `_get_1f1b_rank_ops`.
pub(crate) fn interleaved(p: u32, v: u32, m: u32, zero_bubble: bool) -> Vec<RankOps> {
    let rounds = (m / p).max(1);
    let per_round = m / rounds;
    let factor = if zero_bubble { 1 } else { 2 };
    let ops: Vec<RankOps> = (0..p)
        .map(|r| {
            let warmup = warmup_ops(r, v, per_round, p, m, factor);
            let fwd_stage = |step: u32| ((step / per_round) % v) * p + r;
            let bwd_stage = |step: u32| (v - 1 - ((step - warmup) / per_round) % v) * p + r;
            let first_w = if zero_bubble { Some(r) } else { None };
            one_f_one_b_rank_ops(OneFOneBRank {
                v,
                p,
                m,
                warmup,
                rank: r,
                fwd_stage: &fwd_stage,
                bwd_stage: &bwd_stage,
                first_w,
            })
        })
        .collect();
    if zero_bubble {
        add_bubbles(&ops, p * v)
    } else {
        ops
    }
}

/// The inputs of torch's `_get_1f1b_rank_ops`.
struct OneFOneBRank<'a> {
    v: u32,
    p: u32,
    m: u32,
    warmup: u32,
    rank: u32,
    fwd_stage: &'a dyn Fn(u32) -> u32,
    bwd_stage: &'a dyn Fn(u32) -> u32,
    /// Zero bubble: W actions start after this many steady-state backwards.
    first_w: Option<u32>,
}

/// torch's `_get_1f1b_rank_ops`: warm-up forwards, steady forward+backward pairs, cool-down
/// backwards; with zero bubble the backward is `I` and each `W` follows, `first_w` pairs late.
fn one_f_one_b_rank_ops(a: OneFOneBRank<'_>) -> RankOps {
    let (p, r) = (a.p, a.rank);
    let microbatch_ops = a.v * a.m;
    let fwd_bwd = microbatch_ops - a.warmup;
    let total = a.warmup + fwd_bwd + a.warmup;
    let mut fwd_mb: BTreeMap<u32, u32> = BTreeMap::new();
    let mut bwd_mb: BTreeMap<u32, u32> = BTreeMap::new();
    let mut w_mb: BTreeMap<u32, u32> = BTreeMap::new();
    let next = |counters: &mut BTreeMap<u32, u32>, stage: u32| {
        let c = counters.entry(stage).or_insert(0);
        *c += 1;
        *c - 1
    };
    let mut ops = RankOps::new();
    pad(&mut ops, r);
    let post_warmup = match a.first_w {
        Some(_) => p - r - 1,
        None => (a.v * p + 2 * (p - 1 - r)).saturating_sub(a.warmup + r),
    };
    let backward = if a.first_w.is_some() {
        K::BackwardInput
    } else {
        K::FullBackward
    };
    let mut backward_steps: Vec<u32> = Vec::new();
    let mut w_count = 0usize;
    for op in 0..total {
        if op < a.warmup + fwd_bwd {
            let s = (a.fwd_stage)(op);
            let mb = next(&mut fwd_mb, s);
            ops.push(Some(Action::new(s, K::Forward, mb)));
            if op + 1 == a.warmup {
                pad(&mut ops, post_warmup);
            }
            if op < a.warmup {
                continue;
            }
        } else if a.first_w.is_none() {
            ops.push(None);
        }
        let s = (a.bwd_stage)(op);
        let mb = next(&mut bwd_mb, s);
        ops.push(Some(Action::new(s, backward, mb)));
        backward_steps.push(op);
        if let Some(first_w) = a.first_w {
            if op - a.warmup >= first_w {
                let ws = (a.bwd_stage)(backward_steps[w_count]);
                let wmb = next(&mut w_mb, ws);
                ops.push(Some(Action::new(ws, K::BackwardWeight, wmb)));
                w_count += 1;
            }
        }
    }
    while a.first_w.is_some() && w_count < backward_steps.len() {
        let ws = (a.bwd_stage)(backward_steps[w_count]);
        let wmb = next(&mut w_mb, ws);
        ops.push(Some(Action::new(ws, K::BackwardWeight, wmb)));
        w_count += 1;
    }
    ops
}

/// torch's `ScheduleInterleavedZeroBubble._add_bubbles_to_actions`: walks the ranks in lockstep
/// and inserts an idle step wherever a forward's input (or a full backward's gradient) has not
/// been produced in an earlier step.
fn add_bubbles(actions: &[RankOps], num_stages: u32) -> Vec<RankOps> {
    let need_bubble = |a: &Action, seen: &BTreeSet<(u32, K, u32)>| match a.kind {
        K::Forward => a.stage != 0 && !seen.contains(&(a.stage - 1, K::Forward, a.mb())),
        K::FullBackward if a.stage == num_stages - 1 => {
            !seen.contains(&(a.stage, K::Forward, a.mb()))
        }
        K::FullBackward => !seen.contains(&(a.stage + 1, K::FullBackward, a.mb())),
        _ => false,
    };
    let mut seen = BTreeSet::new();
    let mut result: Vec<RankOps> = vec![RankOps::new(); actions.len()];
    let mut next = vec![0usize; actions.len()];
    loop {
        let mut stop = true;
        let mut step_seen = Vec::new();
        for (r, ops) in actions.iter().enumerate() {
            let Some(slot) = ops.get(next[r]) else {
                continue;
            };
            stop = false;
            match slot {
                Some(a) if need_bubble(a, &seen) => result[r].push(None),
                Some(a) => {
                    result[r].push(Some(*a));
                    step_seen.push((a.stage, a.kind, a.mb()));
                    next[r] += 1;
                }
                None => {
                    result[r].push(None);
                    next[r] += 1;
                }
            }
        }
        seen.extend(step_seen);
        if stop {
            return result;
        }
    }
}

/// ZB-V (Qi et al. 2024, section 6; torch `ScheduleZBVZeroBubble`): two stages per rank in a V,
/// rank `r` holding stages `r` and `2p - 1 - r`.
pub(crate) fn zbv(p: u32, m: u32) -> Vec<RankOps> {
    (0..p).map(|r| zbv_rank(p, m, r)).collect()
}

fn zbv_rank(p: u32, m: u32, r: u32) -> RankOps {
    // torch pads the count up to what fills the pipeline and drops the extra micro-batches after.
    let n = m.max(2 * p - 1);
    let (s0, s1) = (r, 2 * p - 1 - r);
    let mut ops = RankOps::new();
    pad(&mut ops, r);
    let (mut f0, mut f1, mut b0, mut b1) = (0, 0, 0, 0);
    let push = |ops: &mut RankOps, s: u32, k: K, mb: u32| ops.push(Some(Action::new(s, k, mb)));
    for _ in 0..2 * (p - r) - 1 {
        push(&mut ops, s0, K::Forward, f0);
        f0 += 1;
    }
    for _ in 0..r {
        push(&mut ops, s1, K::Forward, f1);
        f1 += 1;
        push(&mut ops, s0, K::Forward, f0);
        f0 += 1;
    }
    for _ in 0..p - r {
        push(&mut ops, s1, K::Forward, f1);
        f1 += 1;
        push(&mut ops, s1, K::BackwardInput, b1);
        push(&mut ops, s1, K::BackwardWeight, b1);
        b1 += 1;
    }
    while f1 < f0 || f0 < n {
        if f0 < n {
            push(&mut ops, s0, K::Forward, f0);
            f0 += 1;
        }
        push(&mut ops, s0, K::BackwardInput, b0);
        push(&mut ops, s0, K::BackwardWeight, b0);
        b0 += 1;
        push(&mut ops, s1, K::Forward, f1);
        f1 += 1;
        push(&mut ops, s1, K::BackwardInput, b1);
        push(&mut ops, s1, K::BackwardWeight, b1);
        b1 += 1;
    }
    let (mut w0, mut w1) = (b0, b1);
    for _ in 0..r {
        push(&mut ops, s0, K::BackwardInput, b0);
        b0 += 1;
        push(&mut ops, s1, K::BackwardInput, b1);
        b1 += 1;
    }
    for _ in 0..p - r {
        push(&mut ops, s0, K::BackwardInput, b0);
        b0 += 1;
        push(&mut ops, s0, K::BackwardWeight, w0);
        w0 += 1;
    }
    while w1 < b1 {
        push(&mut ops, s1, K::BackwardWeight, w1);
        w1 += 1;
    }
    while w0 < b0 {
        push(&mut ops, s0, K::BackwardWeight, w0);
        w0 += 1;
    }
    ops.into_iter().map(|a| a.filter(|a| a.mb() < m)).collect()
}

/// DualPipeV (DeepSeek; torch `ScheduleDualPipeV`): two stages per rank in a V. torch's
/// `OVERLAP_F_B` pair (a forward and a full backward of different micro-batches run together) is
/// written as its two sub-actions in order, as torch's runtime performs it.
pub(crate) fn dualpipe_v(p: u32, m: u32) -> Vec<RankOps> {
    (0..p).map(|r| DualPipeRank::new(p, r).build(m)).collect()
}

struct DualPipeRank {
    p: u32,
    r: u32,
    s0: u32,
    s1: u32,
    ops: RankOps,
    /// (stage, F | I | W) -> next micro-batch.
    counters: BTreeMap<(u32, K), u32>,
    weights: VecDeque<(u32, u32)>,
}

impl DualPipeRank {
    fn new(p: u32, r: u32) -> Self {
        let counters = BTreeMap::new();
        DualPipeRank {
            p,
            r,
            s0: r,
            s1: 2 * p - 1 - r,
            ops: RankOps::new(),
            counters,
            weights: VecDeque::new(),
        }
    }

    fn count(&mut self, s: u32, k: K) -> u32 {
        let c = self.counters.entry((s, k)).or_insert(0);
        *c += 1;
        *c - 1
    }

    /// torch's `add_action`: a full backward takes the `I` counter and advances `W` with it.
    fn add(&mut self, s: u32, k: K) {
        let key = if k == K::FullBackward {
            K::BackwardInput
        } else {
            k
        };
        let mb = self.count(s, key);
        if k == K::FullBackward {
            self.count(s, K::BackwardWeight);
        } else if k == K::BackwardInput {
            self.weights.push_back((s, mb));
        }
        self.ops.push(Some(Action::new(s, k, mb)));
    }

    fn overlap(&mut self, fwd: u32, bwd: u32) {
        self.add(fwd, K::Forward);
        self.add(bwd, K::FullBackward);
    }

    fn pending_weight(&mut self) {
        if let Some((s, mb)) = self.weights.pop_front() {
            self.count(s, K::BackwardWeight);
            self.ops.push(Some(Action::new(s, K::BackwardWeight, mb)));
        }
    }

    fn build(mut self, m: u32) -> RankOps {
        let (p, r, s0, s1) = (self.p, self.r, self.s0, self.s1);
        for _ in 0..(p - r - 1) * 2 {
            self.add(s0, K::Forward);
        }
        for _ in 0..r + 1 {
            self.add(s0, K::Forward);
            self.add(s1, K::Forward);
        }
        for _ in 0..p - r - 1 {
            self.add(s1, K::BackwardInput);
            self.pending_weight();
            self.add(s1, K::Forward);
        }
        for i in 0..(m + r + 1 - 2 * p) {
            if i == 0 && r == p - 1 {
                self.add(s0, K::Forward);
                self.add(s1, K::FullBackward);
            } else {
                self.overlap(s0, s1);
            }
            self.overlap(s1, s0);
        }
        for _ in 0..p - r - 1 {
            self.add(s1, K::FullBackward);
            self.overlap(s1, s0);
        }
        let mut zb = false;
        let step6 = r + 1;
        for i in 0..step6 {
            if i == step6 / 2 && r % 2 == 1 {
                zb = true;
            }
            self.add(
                s1,
                if zb {
                    K::BackwardInput
                } else {
                    K::FullBackward
                },
            );
            if i == step6 / 2 && r % 2 == 0 {
                zb = true;
            }
            self.add(
                s0,
                if zb {
                    K::BackwardInput
                } else {
                    K::FullBackward
                },
            );
        }
        for _ in 0..p - r - 1 {
            self.pending_weight();
            self.add(
                s0,
                if zb {
                    K::BackwardInput
                } else {
                    K::FullBackward
                },
            );
        }
        for _ in 0..r + 1 {
            self.pending_weight();
        }
        self.ops
    }
}
