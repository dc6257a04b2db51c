//! Control flow: `call` (inlined) and `while` (unrolled).
//!
//! A `while` whose trip count the module fixes (jax's `lax.scan` and `fori_loop` over static
//! bounds, threefry's rounds) is unrolled: the body is inlined once per iteration, its nodes
//! named `WHILE/ITER/INST`, each iteration's parameter the tuple the previous one gave. The
//! condition is evaluated at import time on the loop state's scalar constants (and scalars
//! computed from them by adds and the like); a condition that reads anything else has a
//! data-dependent trip count and is a clear error.

use std::collections::BTreeMap;

use crate::graph::ValueId;
use crate::op::{BinaryFn, Literal, Op};

use super::super::text::{Computation, Instruction};
use super::{Lowered, Lowering};

/// Iterations a `while` may unroll to (a guard against a huge graph).
const MAX_TRIP_COUNT: usize = 4096;

/// A value while evaluating a condition: a tuple of them or a known scalar.
#[derive(Clone, Debug)]
enum Known {
    Scalar(f64),
    Tuple(Vec<Option<Known>>),
}

impl Lowering<'_> {
    /// `while(init), condition=COND, body=BODY`, unrolled.
    pub(super) fn while_loop(
        &mut self,
        inst: &Instruction,
        operand_names: &[String],
    ) -> Result<Lowered, String> {
        let [init] = operand_names else {
            return Err("a while takes one operand (its state)".into());
        };
        let module = self.module;
        let comp = |key: &str| -> Result<&Computation, String> {
            let name = inst.attr(key).ok_or_else(|| format!("expected {key}="))?;
            module
                .computation(name)
                .filter(|c| !c.entry)
                .ok_or_else(|| format!("{key} computation `{name}` is not in the module"))
        };
        let (cond, body) = (comp("condition")?, comp("body")?);
        let mut state = self
            .values
            .get(init)
            .cloned()
            .ok_or_else(|| format!("operand `{init}` is not defined"))?;
        if self.depth >= super::MAX_CALL_DEPTH {
            return Err(format!(
                "calls and loops nest deeper than {}",
                super::MAX_CALL_DEPTH
            ));
        }
        let mut trips = 0usize;
        while self.condition_holds(cond, &state)? {
            if trips == MAX_TRIP_COUNT {
                return Err(format!(
                    "the loop runs more than {MAX_TRIP_COUNT} iterations; too many to unroll"
                ));
            }
            state = self.inline_scoped(&format!("{}/{trips}", inst.name), body, &[state])?;
            trips += 1;
        }
        Ok(state)
    }

    /// Inlines `callee` on `args` with node names under `PREFIX/` (the caller's values hidden
    /// meanwhile).
    pub(super) fn inline_scoped(
        &mut self,
        prefix: &str,
        callee: &Computation,
        args: &[Lowered],
    ) -> Result<Lowered, String> {
        let outer_values = std::mem::take(&mut self.values);
        let outer_prefix = self.prefix.clone();
        self.prefix = format!("{}{prefix}/", self.prefix);
        self.depth += 1;
        let result = self.inline_body(callee, args);
        self.depth -= 1;
        self.prefix = outer_prefix;
        self.values = outer_values;
        result
    }

    /// Evaluates a loop condition on what is known of the state.
    fn condition_holds(&self, cond: &Computation, state: &Lowered) -> Result<bool, String> {
        let dependent = |why: String| {
            format!(
                "the loop's trip count is data-dependent (condition `{}`: {why}); only loops whose condition follows from constants are unrolled",
                cond.name
            )
        };
        let mut env: BTreeMap<&str, Option<Known>> = BTreeMap::new();
        for i in &cond.instructions {
            let get = |n: &str| env.get(n).cloned().flatten();
            let scalar = |n: &str| match get(n) {
                Some(Known::Scalar(x)) => Some(x),
                _ => None,
            };
            let ops = i.operands();
            let v = match i.opcode.as_str() {
                "parameter" => self.known(state),
                "constant" => super::super::attrs::literal(&i.args)
                    .ok()
                    .filter(|v| v.len() == 1)
                    .map(|v| Known::Scalar(v[0])),
                "get-tuple-element" => {
                    let k: Option<usize> = i.attr("index").and_then(|k| k.trim().parse().ok());
                    match (ops.first().and_then(|o| get(o)), k) {
                        (Some(Known::Tuple(t)), Some(k)) => t.get(k).cloned().flatten(),
                        _ => None,
                    }
                }
                "copy" | "convert" | "reshape" | "bitcast" => ops.first().and_then(|o| get(o)),
                "compare" => match (&ops[..], i.attr("direction").map(str::trim)) {
                    ([a, b], Some(d)) => match (scalar(a), scalar(b)) {
                        (Some(x), Some(y)) => {
                            let t = match d {
                                "LT" => x < y,
                                "LE" => x <= y,
                                "GT" => x > y,
                                "GE" => x >= y,
                                "EQ" => x == y,
                                "NE" => x != y,
                                _ => return Err(dependent(format!("direction `{d}`"))),
                            };
                            Some(Known::Scalar(f64::from(u8::from(t))))
                        }
                        _ => None,
                    },
                    _ => None,
                },
                o => match (super::binary(o), &ops[..]) {
                    (Some(f), [a, b]) => match (scalar(a), scalar(b)) {
                        (Some(x), Some(y)) => scalar_binary(f, x, y).map(Known::Scalar),
                        _ => None,
                    },
                    _ => None,
                },
            };
            env.insert(i.name.as_str(), v);
        }
        let root = cond.root().ok_or("the condition computation is empty")?;
        match env.get(root.name.as_str()).cloned().flatten() {
            Some(Known::Scalar(x)) => Ok(x != 0.0),
            _ => Err(dependent(format!(
                "its ROOT `{}` does not follow from constants",
                root.name
            ))),
        }
    }

    /// What is known of a lowered value: scalars that constants (and adds of them) fix.
    fn known(&self, l: &Lowered) -> Option<Known> {
        match l {
            Lowered::Node(v) => self.scalars.get(v).copied().map(Known::Scalar),
            Lowered::Tuple(es) => Some(Known::Tuple(es.iter().map(|e| self.known(e)).collect())),
        }
    }

    /// Records the value of a scalar node that constants fix (a loop counter is
    /// `add(counter, 1)` of the previous iteration's), so conditions can read it.
    pub(super) fn note_scalar(&mut self, v: ValueId) {
        let n = self.graph.node(v);
        if n.ty.rank() != 0 {
            return;
        }
        let get = |i: usize| n.operands.get(i).and_then(|o| self.scalars.get(o)).copied();
        let x = match &n.op {
            Op::Constant {
                value: Literal::Splat(x),
            } => Some(*x),
            Op::Copy => get(0),
            Op::Convert if n.ty.dtype.is_int() => get(0).map(f64::trunc),
            Op::Convert => get(0),
            Op::Binary { func } => match (get(0), get(1)) {
                (Some(x), Some(y)) => scalar_binary(*func, x, y),
                _ => None,
            },
            _ => None,
        };
        if let Some(x) = x {
            self.scalars.insert(v, x);
        }
    }
}

/// Integer-valued arithmetic on loop counters (the only arithmetic a static condition needs).
fn scalar_binary(f: BinaryFn, x: f64, y: f64) -> Option<f64> {
    Some(match f {
        BinaryFn::Add => x + y,
        BinaryFn::Sub => x - y,
        BinaryFn::Mul => x * y,
        BinaryFn::Max => x.max(y),
        BinaryFn::Min => x.min(y),
        _ => return None,
    })
}
