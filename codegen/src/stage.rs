//! Cutting a training graph into pipeline stages: per stage a forward program (`F`), a full
//! backward (`B`), and its two halves, backward-input (`I`: the gradient sent to the previous
//! stage) and backward-weight (`W`: the parameter gradients), each one `ir::Graph` run per
//! micro-batch.
//!
//! A stage's backward is the gradient of the surrogate `Σ_k sum(y_k ⊙ dy_k)` over its boundary
//! outputs `y_k` and the gradients `dy_k` received for them (the loss itself on the last stage),
//! taken with the boundary inputs treated as parameters: its gradients are then exactly the
//! vector-Jacobian product a pipeline needs. The backward programs recompute the stage's forward
//! from the saved stage input (full recomputation at stage granularity), so only boundary tensors
//! travel or wait between actions.
//!
//! Inputs (data and parameters) sit on every stage that uses them, so a tied embedding has a
//! copy on the first and the last stage whose gradients add up; nodes computed from no input at
//! all (iotas, masks) are recomputed where used. Every other value crosses at most one stage
//! boundary, from stage `s` to `s + 1`.

use std::collections::BTreeMap;

use shardc_ir::{BinaryFn, Graph, Node, Op, ReduceFn, Role, ValueId};

use crate::error::{CodegenError, Result};

/// One stage's programs and how their inputs and outputs map onto the whole graph.
#[derive(Clone, Debug)]
pub struct StageProgram {
    /// Forward. Inputs: the stage's graph inputs (`inputs`), then its boundary inputs. Outputs:
    /// its boundary outputs, or the loss on the last stage.
    pub forward: Graph,
    /// Full backward. Inputs: the forward's, then one gradient per boundary output (none on the
    /// last stage). Outputs: one gradient per boundary input, then one per `parameters` entry.
    pub backward: Graph,
    /// The backward's gradients of the boundary inputs only (`I`).
    pub backward_input: Graph,
    /// The backward's parameter gradients only (`W`).
    pub backward_weight: Graph,
    /// The whole graph's inputs this stage reads, in its programs' input order.
    pub inputs: Vec<ValueId>,
    /// The parameters among `inputs`, in the order of the backward's parameter gradients.
    pub parameters: Vec<ValueId>,
    /// Whole-graph values this stage receives from the previous stage.
    pub boundary_in: Vec<ValueId>,
    /// Whole-graph values this stage sends to the next stage.
    pub boundary_out: Vec<ValueId>,
}

/// Cuts `forward` (a forward graph whose scalar `loss` is computed on the last stage) into
/// `stages` stages, `stage_of` giving each computed node's stage. Stages must be non-decreasing
/// along every edge, and a value may feed only its own stage and the next.
pub fn cut_stages(
    forward: &Graph,
    loss: ValueId,
    stages: usize,
    stage_of: &dyn Fn(&Node) -> usize,
) -> Result<Vec<StageProgram>> {
    let place = Placement::of(forward, loss, stages, stage_of)?;
    (0..stages)
        .map(|s| stage_program(forward, loss, &place, s))
        .collect()
}

/// Which stage each node runs on, `None` for replicated inputs and input-free nodes.
struct Placement {
    stage: Vec<Option<usize>>,
    stages: usize,
}

impl Placement {
    fn of(
        g: &Graph,
        loss: ValueId,
        stages: usize,
        stage_of: &dyn Fn(&Node) -> usize,
    ) -> Result<Placement> {
        if stages == 0 || loss.index() >= g.len() {
            return Err(CodegenError::Data(format!(
                "cannot cut into {stages} stages with loss {loss}"
            )));
        }
        let mut stage = vec![None; g.len()];
        let mut free = vec![false; g.len()];
        for (i, n) in g.nodes.iter().enumerate() {
            if matches!(n.op, Op::Input { .. }) {
                continue;
            }
            // A node computed from no input at all is recomputed on every stage that uses it.
            free[i] = n
                .operands
                .iter()
                .all(|o| free[o.index()] && !matches!(g.node(*o).op, Op::Input { .. }));
            if free[i] {
                continue;
            }
            let s = stage_of(n);
            if s >= stages {
                return Err(CodegenError::Data(format!(
                    "node `{}` placed on stage {s}; there are {stages}",
                    n.name
                )));
            }
            for o in &n.operands {
                if let Some(so) = stage[o.index()] {
                    if so > s || s > so + 1 {
                        return Err(CodegenError::Data(format!(
                            "node `{}` on stage {s} reads `{}` from stage {so}; a value may feed only its own stage and the next",
                            n.name,
                            g.node(*o).name
                        )));
                    }
                }
            }
            stage[i] = Some(s);
        }
        if stage[loss.index()] != Some(stages - 1) {
            return Err(CodegenError::Data(format!(
                "the loss `{}` must be computed on the last stage",
                g.node(loss).name
            )));
        }
        Ok(Placement { stage, stages })
    }

    /// Whether node `v` must be copied into stage `s`'s programs (computed there, or a
    /// replicated node used there directly or through another replicated node).
    fn members(&self, g: &Graph, s: usize) -> Vec<bool> {
        let mut used = vec![false; g.len()];
        for i in (0..g.len()).rev() {
            if self.stage[i] == Some(s) {
                used[i] = true;
            }
            if used[i] && self.stage[i].map_or(true, |x| x == s) {
                for o in &g.nodes[i].operands {
                    if self.stage[o.index()].is_none() {
                        used[o.index()] = true;
                    }
                }
            }
        }
        used
    }
}

fn stage_program(g: &Graph, loss: ValueId, place: &Placement, s: usize) -> Result<StageProgram> {
    let members = place.members(g, s);
    let on = |v: ValueId, t: usize| place.stage[v.index()] == Some(t);
    let boundary_in: Vec<ValueId> = g
        .ids()
        .filter(|&v| {
            s > 0
                && on(v, s - 1)
                && g.nodes
                    .iter()
                    .enumerate()
                    .any(|(i, n)| place.stage[i] == Some(s) && n.operands.contains(&v))
        })
        .collect();
    let boundary_out: Vec<ValueId> = if s + 1 == place.stages {
        vec![loss]
    } else {
        g.ids()
            .filter(|&v| {
                on(v, s)
                    && g.nodes
                        .iter()
                        .enumerate()
                        .any(|(i, n)| place.stage[i] == Some(s + 1) && n.operands.contains(&v))
            })
            .collect()
    };
    let inputs: Vec<ValueId> = g
        .ids()
        .filter(|&v| members[v.index()] && matches!(g.node(v).op, Op::Input { .. }))
        .collect();
    let parameters: Vec<ValueId> = inputs
        .iter()
        .copied()
        .filter(|&v| g.node(v).role == Role::Parameter && g.node(v).ty.dtype.is_float())
        .collect();
    let build = |boundary_role: Role| -> Result<(Graph, BTreeMap<ValueId, ValueId>)> {
        let mut out = Graph::new(format!("{}.stage{s}", g.name));
        let mut map = BTreeMap::new();
        for &v in &inputs {
            let n = g.node(v);
            let id = out.push(n.name.clone(), n.op.clone(), vec![], Some(n.ty.clone()))?;
            out.nodes[id.index()].role = n.role;
            map.insert(v, id);
        }
        for &v in &boundary_in {
            let n = g.node(v);
            let id = out.push(
                format!("{}.recv", n.name),
                Op::Input { init: None },
                vec![],
                Some(n.ty.clone()),
            )?;
            out.nodes[id.index()].role = boundary_role;
            map.insert(v, id);
        }
        for (i, n) in g.nodes.iter().enumerate() {
            let v = ValueId(i as u32);
            if !members[i] || map.contains_key(&v) || matches!(n.op, Op::Input { .. }) {
                continue;
            }
            let ops: Vec<ValueId> = n.operands.iter().map(|o| map[o]).collect();
            let id = out.push(n.name.clone(), n.op.clone(), ops, Some(n.ty.clone()))?;
            map.insert(v, id);
        }
        Ok((out, map))
    };
    let (mut fwd, map) = build(Role::Input)?;
    fwd.outputs = boundary_out.iter().map(|v| map[v]).collect();
    // The backward: boundary inputs as parameters, so the gradient reaches them.
    let (mut bwd, map) = build(Role::Parameter)?;
    let surrogate = if s + 1 == place.stages {
        map[&loss]
    } else {
        surrogate(
            &mut bwd,
            &boundary_out.iter().map(|v| map[v]).collect::<Vec<_>>(),
        )?
    };
    let grads = shardc_ir::grad(&bwd, surrogate)?;
    let grad_of = |v: ValueId| -> Result<ValueId> {
        grads
            .training
            .gradients
            .iter()
            .find(|(p, _)| *p == v)
            .map(|(_, gv)| *gv)
            .ok_or_else(|| {
                CodegenError::Data(format!(
                    "stage {s}: no gradient for `{}`",
                    grads.node(v).name
                ))
            })
    };
    let dx: Vec<ValueId> = boundary_in
        .iter()
        .map(|v| grad_of(map[v]))
        .collect::<Result<_>>()?;
    let dw: Vec<ValueId> = parameters
        .iter()
        .map(|v| grad_of(map[v]))
        .collect::<Result<_>>()?;
    let with_outputs = |outs: Vec<ValueId>| {
        let mut g2 = grads.clone();
        g2.outputs = outs;
        g2.training = Default::default();
        g2
    };
    Ok(StageProgram {
        forward: fwd,
        backward: with_outputs(dx.iter().chain(&dw).copied().collect()),
        backward_input: with_outputs(dx),
        backward_weight: with_outputs(dw),
        inputs,
        parameters,
        boundary_in,
        boundary_out,
    })
}

/// `Σ_k sum(y_k ⊙ dy_k)` with a new input `dy_k` per output, appended after the forward.
fn surrogate(g: &mut Graph, outs: &[ValueId]) -> Result<ValueId> {
    let mut total: Option<ValueId> = None;
    for &y in outs {
        let n = g.node(y).clone();
        let dy = g.push(
            format!("{}.grad_in", n.name),
            Op::Input { init: None },
            vec![],
            Some(n.ty.clone()),
        )?;
        g.nodes[dy.index()].role = Role::Input;
        let prod = g.push(
            format!("{}.vjp", n.name),
            Op::Binary {
                func: BinaryFn::Mul,
            },
            vec![y, dy],
            None,
        )?;
        let dims = (0..n.ty.rank()).collect();
        let sum = g.push(
            format!("{}.vjp_sum", n.name),
            Op::Reduce {
                func: ReduceFn::Sum,
                dims,
            },
            vec![prod],
            None,
        )?;
        total = Some(match total {
            None => sum,
            Some(t) => g.push(
                format!("{}.vjp_total", n.name),
                Op::Binary {
                    func: BinaryFn::Add,
                },
                vec![t, sum],
                None,
            )?,
        });
    }
    total.ok_or_else(|| {
        CodegenError::Data("a stage before the last sends nothing to the next stage".into())
    })
}
