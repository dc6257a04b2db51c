//! One step of a pipeline schedule, in torch.distributed.pipelining's vocabulary and text form
//! (REFERENCES.md, "torch.distributed.pipelining"): stage, type, micro-batch, as in `2F0`, `1I0`,
//! `0W3`, `1B0`, `3SEND_F1`, `1RECV_B2`, `0REDUCE_GRAD`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// What an action does; the text after the stage number is torch's `_ComputationType` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKind {
    /// `F`: forward of one micro-batch through one stage.
    Forward,
    /// `I`: backward with respect to the stage's input (activation gradient).
    BackwardInput,
    /// `W`: backward with respect to the stage's weights, after its `I`.
    BackwardWeight,
    /// `B`: the full backward (`I` and `W` together).
    FullBackward,
    /// `SEND_F`: send the forward output of this stage to the next stage's rank.
    SendF,
    /// `RECV_F`: receive this stage's forward input from the previous stage's rank.
    RecvF,
    /// `SEND_B`: send this stage's input gradient to the previous stage's rank.
    SendB,
    /// `RECV_B`: receive this stage's output gradient from the next stage's rank.
    RecvB,
    /// `REDUCE_GRAD`: the stage's gradients are final (all micro-batches accumulated).
    ReduceGrad,
    /// `UNSHARD`: gather FSDP-sharded parameters of the stage (read, never generated).
    Unshard,
    /// `RESHARD`: release gathered parameters of the stage (read, never generated).
    Reshard,
}

/// Every kind with its text, in the order of torch's `_action_regex` alternation.
const KINDS: [(ActionKind, &str); 11] = [
    (ActionKind::Forward, "F"),
    (ActionKind::BackwardInput, "I"),
    (ActionKind::FullBackward, "B"),
    (ActionKind::BackwardWeight, "W"),
    (ActionKind::Unshard, "UNSHARD"),
    (ActionKind::Reshard, "RESHARD"),
    (ActionKind::ReduceGrad, "REDUCE_GRAD"),
    (ActionKind::SendF, "SEND_F"),
    (ActionKind::RecvF, "RECV_F"),
    (ActionKind::SendB, "SEND_B"),
    (ActionKind::RecvB, "RECV_B"),
];

impl ActionKind {
    /// torch's text for the kind (`F`, `SEND_B`, ...).
    pub fn code(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, s)| *s)
            .unwrap_or("?")
    }

    /// F, I, W or B: work on a device's compute stream.
    pub fn is_compute(self) -> bool {
        matches!(
            self,
            ActionKind::Forward
                | ActionKind::BackwardInput
                | ActionKind::BackwardWeight
                | ActionKind::FullBackward
        )
    }

    /// SEND_F, RECV_F, SEND_B or RECV_B.
    pub fn is_comm(self) -> bool {
        matches!(
            self,
            ActionKind::SendF | ActionKind::RecvF | ActionKind::SendB | ActionKind::RecvB
        )
    }

    /// Whether the kind carries a micro-batch number.
    pub fn has_microbatch(self) -> bool {
        self.is_compute() || self.is_comm()
    }
}

/// One action: `stage`, `kind`, and the micro-batch for compute and communication actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Action {
    /// Global stage index (0 is the first stage).
    pub stage: u32,
    /// What the action does.
    pub kind: ActionKind,
    /// The micro-batch (`None` for `REDUCE_GRAD`, `UNSHARD`, `RESHARD`).
    pub microbatch: Option<u32>,
}

impl Action {
    /// A compute or communication action on one micro-batch.
    pub fn new(stage: u32, kind: ActionKind, microbatch: u32) -> Action {
        Action {
            stage,
            kind,
            microbatch: Some(microbatch),
        }
    }

    /// The micro-batch, 0 for the stage-wide kinds.
    pub fn mb(&self) -> u32 {
        self.microbatch.unwrap_or(0)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.stage, self.kind.code())?;
        if let Some(mb) = self.microbatch {
            write!(f, "{mb}")?;
        }
        Ok(())
    }
}

impl FromStr for Action {
    type Err = Error;

    /// Parses torch's form `[stage][type][micro-batch]`; the whole string must match.
    fn from_str(s: &str) -> Result<Action> {
        let bad = |why: &str| Error::Parse {
            text: s.to_string(),
            reason: format!("{why}; expected [stage][type][micro-batch] such as 2F0 or 3SEND_F1"),
        };
        let t = s.trim();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("no stage number"));
        }
        let stage: u32 = t[..digits]
            .parse()
            .map_err(|_| bad("stage number out of range"))?;
        let rest = &t[digits..];
        // Longest code first so that `RESHARD` is not read as `R...`; the codes share no prefix
        // that would make a shorter match wrong, but longest-first keeps it obvious.
        let mut codes: Vec<&(ActionKind, &str)> = KINDS.iter().collect();
        codes.sort_by_key(|(_, c)| std::cmp::Reverse(c.len()));
        let (kind, code) = codes
            .into_iter()
            .find(|(_, c)| rest.starts_with(c))
            .ok_or_else(|| bad("unknown action type"))?;
        let tail = &rest[code.len()..];
        let microbatch = if tail.is_empty() {
            None
        } else if tail.bytes().all(|b| b.is_ascii_digit()) {
            Some(tail.parse().map_err(|_| bad("micro-batch out of range"))?)
        } else {
            return Err(bad("trailing text after the micro-batch"));
        };
        if kind.has_microbatch() && microbatch.is_none() {
            return Err(bad("this action type needs a micro-batch number"));
        }
        Ok(Action {
            stage,
            kind: *kind,
            microbatch,
        })
    }
}

/// Parses one CSV cell: empty is an idle slot, `(a;b)OVERLAP_F_B` (DualPipeV's overlapped pair)
/// becomes its sub-actions in order, which is how torch's runtime performs it.
pub fn parse_cell(cell: &str) -> Result<Vec<Action>> {
    let t = cell.trim();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(inner) = t.strip_prefix('(') {
        let (subs, kind) = inner.split_once(')').ok_or_else(|| Error::Parse {
            text: cell.to_string(),
            reason: "unclosed '(' of an overlapped action".into(),
        })?;
        if kind != "OVERLAP_F_B" {
            return Err(Error::Parse {
                text: cell.to_string(),
                reason: format!("a bracketed action must be OVERLAP_F_B, found `{kind}`"),
            });
        }
        return subs
            .split(';')
            .filter(|s| !s.trim().is_empty())
            .map(str::parse)
            .collect();
    }
    Ok(vec![t.parse()?])
}
