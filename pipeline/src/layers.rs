//! Layer classes: a deep model's repeated layers priced from a few representatives.
//!
//! A 96-layer training step has ~55k nodes, but its layers are copies of one another (same
//! ops, types and roles, names differing only in the layer number). The planner therefore:
//! - propagates the Megatron-style shardings and derives the collectives once, on a *class
//!   graph* of four layers (the first two and the last two; every layer in between is a copy
//!   of layer 1, see [`LayerClasses::of`]), and gives every node of the full graph the
//!   sharding of its representative;
//! - prices each candidate mesh on a *reduced graph* that keeps only the layers of the stages
//!   that can be the busiest (the first and the last, and a middle one if it has more layers
//!   than the first), each on the stage it has in the whole pipeline ([`reduce`]). A stage's
//!   time, memory and sends only depend on what it holds, so the graph path's busiest stage is
//!   the whole graph's; the per-step FLOP totals (for TFLOP/s) are completed with the dropped
//!   layers' share.
//!
//! Where the layers are not copies of one another (a check on every node), the planner falls
//! back to the whole graph. `tests/planner.rs` compares both on small models.

use std::collections::HashMap;

use shardc_cost_model::{local_work, CommUse};
use shardc_ir::{Graph, Op, ShardingAssignment, ValueId};

use crate::error::{Error, Result};

const NONE: u32 = u32::MAX;

/// The graph's numbered layers (`layers.7`), in the order of their first forward node, and
/// the layer of each node.
pub(crate) struct LayerMap {
    /// Layer scopes, in order.
    pub names: Vec<String>,
    /// Per node: its layer's position in `names`, or `NONE`.
    pub of: Vec<u32>,
}

impl LayerMap {
    /// As [`shardc_cost_model::pipeline_stages`] numbers layers.
    pub fn of(g: &Graph) -> LayerMap {
        let mut index: HashMap<&str, u32> = HashMap::new();
        let mut names = Vec::new();
        for n in &g.nodes {
            if n.phase == shardc_ir::Phase::Forward && !n.recompute {
                if let Some(l) = n.layer() {
                    if !index.contains_key(l) {
                        index.insert(l, names.len() as u32);
                        names.push(l.to_string());
                    }
                }
            }
        }
        let of = g
            .nodes
            .iter()
            .map(|n| {
                n.layer()
                    .and_then(|l| index.get(l).copied())
                    .unwrap_or(NONE)
            })
            .collect();
        LayerMap { names, of }
    }

    /// Layer count.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// `name` (of a node of layer `from`) with its layer prefix replaced by layer `to`'s.
    fn rename(&self, name: &str, from: u32, to: u32) -> String {
        let prefix = &self.names[from as usize];
        format!("{}{}", self.names[to as usize], &name[prefix.len()..])
    }
}

/// Some of a graph's layers, rewired where a dropped layer sat.
pub(crate) struct Reduced {
    /// The graph (node names as in the full graph).
    pub graph: Graph,
    /// Per node: the full graph's node it copies.
    pub origin: Vec<ValueId>,
}

/// The graph `g` with only the layers `keep` marks. A kept node that reads a dropped layer's
/// value reads the same value of the kept layer as far away in the kept order instead (layer
/// 13's input comes from layer 5's output when 6–12 are dropped; layer 5's output gradient
/// from layer 13's backward). `None` when that is not possible: a node outside the layers
/// reads a dropped one, or the stand-in does not exist or has another type.
pub(crate) fn reduce(
    g: &Graph,
    layers: &LayerMap,
    names: &HashMap<&str, ValueId>,
    keep: &[bool],
) -> Option<Reduced> {
    let kept: Vec<u32> = (0..layers.len() as u32)
        .filter(|&l| keep[l as usize])
        .collect();
    let mut pos = vec![NONE; layers.len()];
    for (k, &l) in kept.iter().enumerate() {
        pos[l as usize] = k as u32;
    }
    let mut new_id = vec![NONE; g.len()];
    let mut out = Graph {
        name: g.name.clone(),
        mesh: g.mesh.clone(),
        ..Graph::default()
    };
    let mut origin = Vec::new();
    for (i, node) in g.nodes.iter().enumerate() {
        let l = layers.of[i];
        if l != NONE && !keep[l as usize] {
            continue;
        }
        let mut operands = Vec::with_capacity(node.operands.len());
        for &o in &node.operands {
            let id = new_id[o.index()];
            if id != NONE {
                operands.push(ValueId(id));
                continue;
            }
            // `o` is in a dropped layer `j`; only a layer reads across layers here.
            let j = layers.of[o.index()];
            if l == NONE || j == NONE {
                return None;
            }
            let k = pos[l as usize] as i64;
            let t = k + i64::from(j) - i64::from(l);
            let t = *kept.get(usize::try_from(t).ok()?)?;
            let stand_in = *names.get(layers.rename(&g.nodes[o.index()].name, j, t).as_str())?;
            let id = new_id[stand_in.index()];
            if id == NONE || g.ty(stand_in) != g.ty(o) {
                return None;
            }
            operands.push(ValueId(id));
        }
        new_id[i] = out.nodes.len() as u32;
        out.nodes.push(shardc_ir::Node {
            operands,
            ..node.clone()
        });
        origin.push(ValueId(i as u32));
    }
    let map = |v: ValueId| (new_id[v.index()] != NONE).then(|| ValueId(new_id[v.index()]));
    out.outputs = g.outputs.iter().filter_map(|&v| map(v)).collect();
    out.training.loss = g.training.loss.and_then(map);
    let pairs = |ps: &[(ValueId, ValueId)]| {
        ps.iter()
            .filter_map(|&(a, b)| Some((map(a)?, map(b)?)))
            .collect()
    };
    out.training.gradients = pairs(&g.training.gradients);
    out.training.updates = pairs(&g.training.updates);
    out.annotations = g
        .annotations
        .iter()
        .filter(|a| {
            names
                .get(a.value.as_str())
                .is_some_and(|&v| map(v).is_some())
        })
        .cloned()
        .collect();
    Some(Reduced { graph: out, origin })
}

/// The class graph, its Megatron-style shardings and collectives, and each full-graph node's
/// representative in it.
pub(crate) struct LayerClasses<'g> {
    pub layers: LayerMap,
    /// The class graph: layers 0, 1, L−2 and L−1.
    pub class: Reduced,
    /// Its shardings (on the `pp=2,dp=2,tp=2` propagation mesh).
    pub base: ShardingAssignment,
    /// Per node of the class graph: its collectives, each with the value it moves (0: the
    /// node, k: its operand k − 1).
    pub comms: Vec<Vec<(CommUse, usize)>>,
    /// Per node of the full graph: its representative in the class graph.
    pub rep: Vec<ValueId>,
    /// The full graph's nodes by name.
    pub names: HashMap<&'g str, ValueId>,
    /// Seconds spent propagating the shardings on the class graph.
    pub propagate_s: f64,
}

impl<'g> LayerClasses<'g> {
    /// `None` when the graph has fewer than five layers or its layers are not copies of one
    /// another (then the whole graph is priced).
    pub fn of(g: &'g Graph) -> Result<Option<LayerClasses<'g>>> {
        let layers = LayerMap::of(g);
        let l = layers.len() as u32;
        if l < 5 {
            return Ok(None);
        }
        let index = g.name_index();
        let mut keep = vec![false; l as usize];
        for k in [0, 1, l - 2, l - 1] {
            keep[k as usize] = true;
        }
        let Some(class) = reduce(g, &layers, &index, &keep) else {
            return Ok(None);
        };
        let mut class_id = vec![NONE; g.len()];
        for (k, o) in class.origin.iter().enumerate() {
            class_id[o.index()] = k as u32;
        }
        // Every node's representative: itself if kept, else the node of layer 1 of its name,
        // which must do the same thing.
        let mut rep = Vec::with_capacity(g.len());
        for (i, node) in g.nodes.iter().enumerate() {
            let id = class_id[i];
            if id != NONE {
                rep.push(ValueId(id));
                continue;
            }
            let j = layers.of[i];
            let Some(&r) = index.get(layers.rename(&node.name, j, 1).as_str()) else {
                return Ok(None);
            };
            let rn = g.node(r);
            let same = rn.ty == node.ty
                && rn.role == node.role
                && rn.phase == node.phase
                && rn.recompute == node.recompute
                && rn.operands.len() == node.operands.len()
                && std::mem::discriminant(&rn.op) == std::mem::discriminant(&node.op)
                && same_op(&rn.op, &node.op);
            if !same || class_id[r.index()] == NONE {
                return Ok(None);
            }
            rep.push(ValueId(class_id[r.index()]));
        }
        let clock = std::time::Instant::now();
        let base = crate::planner::megatron_assignment(&class.graph)?;
        let propagate_s = clock.elapsed().as_secs_f64();
        let cg = &class.graph;
        let found = shardc_sharding::required_collectives(cg, &base).map_err(|e| {
            Error::Input(format!("collectives of the Megatron-style sharding: {e}"))
        })?;
        let mut comms = vec![Vec::new(); cg.len()];
        for c in found {
            let node = cg.node(c.node);
            let Some(k) = std::iter::once(c.node)
                .chain(node.operands.iter().copied())
                .position(|v| crate::pricing::local_type(cg, &base, v) == c.local_operand)
            else {
                return Ok(None);
            };
            comms[c.node.index()].push((c, k));
        }
        Ok(Some(LayerClasses {
            layers,
            class,
            base,
            comms,
            rep,
            names: index,
            propagate_s,
        }))
    }

    /// The full graph's shardings on `mesh`, each node's its representative's.
    pub fn full_assignment(&self, mesh: &shardc_ir::Mesh) -> ShardingAssignment {
        ShardingAssignment {
            mesh: mesh.clone(),
            shardings: self
                .rep
                .iter()
                .map(|r| self.base.shardings[r.index()].clone())
                .collect(),
        }
    }

    /// The shardings of a reduced graph `r` on `mesh`, and its collectives.
    pub fn on(&self, r: &Reduced, mesh: &shardc_ir::Mesh) -> (ShardingAssignment, Vec<CommUse>) {
        let a = ShardingAssignment {
            mesh: mesh.clone(),
            shardings: r
                .origin
                .iter()
                .map(|o| self.base.shardings[self.rep[o.index()].index()].clone())
                .collect(),
        };
        let mut comms = Vec::new();
        for (x, o) in r.origin.iter().enumerate() {
            let rep = self.rep[o.index()];
            for (c, k) in &self.comms[rep.index()] {
                let node = ValueId(x as u32);
                let value = if *k == 0 {
                    node
                } else {
                    r.graph.node(node).operands[k - 1]
                };
                let mut reason = c.reason.clone();
                let (j, rl) = (
                    self.layers.of[o.index()],
                    self.layers.of[self.class.origin[rep.index()].index()],
                );
                if j != rl && j != NONE && rl != NONE {
                    let from = format!("{}.", self.layers.names[rl as usize]);
                    let to = format!("{}.", self.layers.names[j as usize]);
                    reason = reason.replace(&from, &to);
                }
                comms.push(CommUse {
                    node,
                    local_operand: crate::pricing::local_type(&r.graph, &a, value),
                    reason,
                    ..c.clone()
                });
            }
        }
        (a, comms)
    }

    /// FLOPs of one middle layer (layer 1 of the class graph) on `mesh`: (per device as run,
    /// of the model without recomputation).
    pub fn layer_flops(&self, mesh: &shardc_ir::Mesh) -> Result<(f64, f64)> {
        let cg = &self.class.graph;
        let a = ShardingAssignment {
            mesh: mesh.clone(),
            shardings: self.base.shardings.clone(),
        };
        let whole = ShardingAssignment {
            mesh: mesh.clone(),
            shardings: cg
                .nodes
                .iter()
                .map(|n| shardc_ir::Sharding::replicated(n.ty.rank()))
                .collect(),
        };
        let (mut hw, mut model) = (0.0, 0.0);
        for (x, o) in self.class.origin.iter().enumerate() {
            if self.layers.of[o.index()] != 1 {
                continue;
            }
            let v = ValueId(x as u32);
            let err = |e: shardc_cost_model::CostError| Error::Input(e.to_string());
            hw += local_work(cg, v, &a).map_err(err)?.flops;
            if !cg.node(v).recompute {
                model += local_work(cg, v, &whole).map_err(err)?.flops;
            }
        }
        Ok((hw, model))
    }
}

/// Whether two ops of the same kind do the same thing (their attributes are equal; inputs and
/// parameters differ only in their names).
fn same_op(a: &Op, b: &Op) -> bool {
    match (a, b) {
        (Op::Input { .. }, Op::Input { .. }) => true,
        _ => a == b,
    }
}
