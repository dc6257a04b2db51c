//! Reverse-mode automatic differentiation: from a forward graph with a scalar loss, the graph
//! that also computes the gradient of the loss with respect to every parameter.
//!
//! The forward nodes are kept unchanged; backward nodes follow them, made by walking the forward
//! nodes in reverse topological order and applying each op's gradient rule (which sits with the
//! op's shape rule and factors in `ops/`). A value used several times gets the sum of its
//! users' contributions. Only values that both depend on a parameter (through floating-point
//! values) and feed the loss get an adjoint: integer and boolean values carry none.
//!
//! Every backward node is named after the forward node whose rule made it
//! (`layers.3.attn.qkv.grad_lhs`), so [`Node::layer`](crate::Node::layer) gives its layer, and
//! carries a phase:
//! - [`Phase::BackwardInput`] (zero-bubble's B): backward nodes that lie on a path to the adjoint
//!   of an activation, a value that depends on the data, which the backward of earlier layers
//!   consumes;
//! - [`Phase::BackwardWeight`] (W): the rest, needed only for parameter gradients (the `dot` that
//!   forms dW, the sums over the batch, the accumulation of a shared weight's gradient).
//!
//! Deferring every W node past every B node is what a zero-bubble schedule may do.

mod ctx;

use std::collections::HashMap;

pub(crate) use ctx::{argsort, Emitter, GradCtx, Grads, Names};

use crate::error::{IrError, Result};
use crate::graph::{Graph, Phase, Role, ValueId};
use crate::op::{Literal, Op};
use crate::ops;
use crate::verify::debug_verify;

/// The training-step graph of `forward` without the optimizer: `forward`'s nodes, then backward
/// nodes computing the gradient of the scalar `loss` with respect to every floating-point
/// parameter. `training.loss` and `training.gradients` are set, and the loss and the gradients
/// are added to the outputs.
///
/// Errors (naming the value and its op): `loss` is not a float scalar, the graph already has
/// backward nodes, or the loss depends on no parameter.
pub fn grad(forward: &Graph, loss: ValueId) -> Result<Graph> {
    check_loss(forward, loss)?;
    let needed = needed_values(forward, loss)?;
    let first_backward = forward.len();
    let mut g = forward.clone();
    let mut names = Names::of(&g);
    let mut em = Emitter {
        g: &mut g,
        names: &mut names,
        phase: Phase::BackwardInput,
    };
    let adjoints = backward(&mut em, loss, &needed)?;
    let gradients = parameter_gradients(&mut em, forward, &adjoints)?;
    classify_phases(&mut g, forward, first_backward, &adjoints);
    g.training.loss = Some(loss);
    if !g.outputs.contains(&loss) {
        g.outputs.push(loss);
    }
    for &(_, gv) in &gradients {
        g.nodes[gv.index()].role = Role::Gradient;
        g.outputs.push(gv);
    }
    g.training.gradients = gradients;
    debug_verify(&g);
    Ok(g)
}

/// The loss must exist, be a float scalar, and the graph must be forward-only.
fn check_loss(g: &Graph, loss: ValueId) -> Result<()> {
    if loss.index() >= g.len() {
        return Err(IrError::Graph(format!(
            "loss {loss} does not exist (the graph has {} nodes)",
            g.len()
        )));
    }
    let n = g.node(loss);
    if n.ty.rank() != 0 || !n.ty.dtype.is_float() {
        return Err(IrError::node(
            &n.name,
            n.op.name(),
            format!("the loss must be a floating-point scalar, got {}", n.ty),
        ));
    }
    if let Some(b) = g.nodes.iter().find(|n| n.phase != Phase::Forward) {
        return Err(IrError::node(
            &b.name,
            b.op.name(),
            format!(
                "the graph already has {} nodes: differentiate the forward graph",
                b.phase.name()
            ),
        ));
    }
    Ok(())
}

/// `needed[v]`: `v` gets an adjoint (a float value that depends on a parameter and feeds the loss).
fn needed_values(g: &Graph, loss: ValueId) -> Result<Vec<bool>> {
    let end = loss.index() + 1;
    let mut depends = vec![false; end];
    for i in 0..end {
        let n = &g.nodes[i];
        depends[i] = n.ty.dtype.is_float()
            && (n.role == Role::Parameter || n.operands.iter().any(|o| depends[o.index()]));
    }
    if !depends[loss.index()] {
        let n = g.node(loss);
        return Err(IrError::node(
            &n.name,
            n.op.name(),
            "the loss does not depend on any parameter (no floating-point path from a value \
             with role `parameter` reaches it)",
        ));
    }
    let mut live = vec![false; end];
    live[loss.index()] = true;
    for i in (0..end).rev() {
        if live[i] {
            for o in &g.nodes[i].operands {
                live[o.index()] = true;
            }
        }
    }
    Ok((0..end).map(|i| depends[i] && live[i]).collect())
}

/// The adjoint of every needed forward value (`None` where none reached it), and how many
/// times each backward value was handed out as a contribution.
struct Adjoints {
    of: Vec<Option<ValueId>>,
    handed_out: HashMap<ValueId, u32>,
}

/// Walks the forward nodes from the loss down, applying each op's gradient rule.
fn backward(em: &mut Emitter, loss: ValueId, needed: &[bool]) -> Result<Adjoints> {
    let mut parts: Vec<Vec<ValueId>> = vec![Vec::new(); needed.len()];
    let mut adj = Adjoints {
        of: vec![None; needed.len()],
        handed_out: HashMap::new(),
    };
    let (loss_name, loss_ty) = (em.g.node(loss).name.clone(), em.g.ty(loss).clone());
    let seed = em.emit(
        format!("{loss_name}.grad"),
        Op::Constant {
            value: Literal::Splat(1.0),
        },
        vec![],
        Some(loss_ty),
    )?;
    parts[loss.index()].push(seed);
    adj.handed_out.insert(seed, 1);
    for i in (0..needed.len()).rev() {
        if !needed[i] || parts[i].is_empty() {
            continue;
        }
        let v = ValueId(i as u32);
        let dy = accumulate(em, v, std::mem::take(&mut parts[i]))?;
        adj.of[i] = Some(dy);
        let node = em.g.node(v);
        let (op, operands) = (node.op.clone(), node.operands.clone());
        let wants: Vec<bool> = operands.iter().map(|o| needed[o.index()]).collect();
        if !wants.contains(&true) {
            continue;
        }
        let mut cx = GradCtx {
            em: &mut *em,
            node: v,
            wants: wants.clone(),
            dy,
        };
        let grads = ops::op_grad(&op, &mut cx)?;
        for (k, (gv, &o)) in grads.iter().zip(&operands).enumerate() {
            let Some(gv) = *gv else { continue };
            if !wants[k] {
                continue;
            }
            if em.g.ty(gv) != em.g.ty(o) {
                let n = em.g.node(v);
                return Err(IrError::node(
                    &n.name,
                    op.name(),
                    format!(
                        "gradient rule gave {} for operand {k}, which is {}",
                        em.g.ty(gv),
                        em.g.ty(o)
                    ),
                ));
            }
            parts[o.index()].push(gv);
            *adj.handed_out.entry(gv).or_insert(0) += 1;
        }
    }
    Ok(adj)
}

/// Sums the contributions to `v`'s adjoint; the sum is named `<v>.grad`.
fn accumulate(em: &mut Emitter, v: ValueId, parts: Vec<ValueId>) -> Result<ValueId> {
    let name = em.g.node(v).name.clone();
    let mut acc = parts[0];
    for (k, &p) in parts.iter().enumerate().skip(1) {
        let n = if k + 1 == parts.len() {
            format!("{name}.grad")
        } else {
            format!("{name}.grad_acc{k}")
        };
        acc = em.emit(
            n,
            Op::Binary {
                func: crate::op::BinaryFn::Add,
            },
            vec![acc, p],
            None,
        )?;
    }
    Ok(acc)
}

/// `(parameter, gradient)` for every float parameter, in node order. A gradient node of its own
/// is named `<parameter>.grad`; where the adjoint is shared with another value (an identity rule
/// passed it through) a copy is made, and a parameter the loss does not reach gets zeros.
fn parameter_gradients(
    em: &mut Emitter,
    forward: &Graph,
    adj: &Adjoints,
) -> Result<Vec<(ValueId, ValueId)>> {
    let mut out = Vec::new();
    for p in forward.ids() {
        let n = forward.node(p);
        if n.role != Role::Parameter || !n.ty.dtype.is_float() {
            continue;
        }
        let name = format!("{}.grad", n.name);
        let a = adj.of.get(p.index()).copied().flatten();
        let gv = match a {
            Some(a) if adj.handed_out.get(&a).copied().unwrap_or(0) <= 1 => {
                if em.g.node(a).name != name {
                    em.g.nodes[a.index()].name = em.names.fresh(name);
                }
                a
            }
            Some(a) => em.emit(name, Op::Copy, vec![a], None)?,
            None => em.emit(
                name,
                Op::Constant {
                    value: Literal::Splat(0.0),
                },
                vec![],
                Some(n.ty.clone()),
            )?,
        };
        out.push((p, gv));
    }
    Ok(out)
}

/// Marks each backward node B or W (see the module docs).
fn classify_phases(g: &mut Graph, forward: &Graph, first: usize, adj: &Adjoints) {
    let mut data = vec![false; forward.len()];
    for (i, n) in forward.nodes.iter().enumerate() {
        let is_data_source = matches!(n.op, Op::Input { .. } | Op::Recv { .. })
            && matches!(n.role, Role::Input | Role::Activation);
        data[i] = is_data_source || n.operands.iter().any(|o| data[o.index()]);
    }
    let mut input_side = vec![false; g.len()];
    for (i, a) in adj.of.iter().enumerate() {
        if let Some(a) = a {
            if data[i] && forward.nodes[i].role != Role::Parameter && a.index() >= first {
                input_side[a.index()] = true;
            }
        }
    }
    for i in (first..g.len()).rev() {
        if input_side[i] {
            for o in g.nodes[i].operands.clone() {
                input_side[o.index()] = true;
            }
        }
        g.nodes[i].phase = if input_side[i] {
            Phase::BackwardInput
        } else {
            Phase::BackwardWeight
        };
    }
}

#[cfg(test)]
mod tests;
