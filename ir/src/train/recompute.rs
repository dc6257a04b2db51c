//! Activation recomputation (checkpointing) as a graph transform: the backward of a marked layer
//! uses copies of the layer's forward nodes, recomputed from the layer's input, instead of the
//! activations the forward pass stored.

use std::collections::{BTreeMap, BTreeSet};

use crate::autodiff::Names;
use crate::error::{IrError, Result};
use crate::graph::{Graph, Node, Phase, ValueId};
use crate::op::Op;
use crate::verify::debug_verify;

/// What to recompute in a marked layer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RecomputeMode {
    /// The layer's whole forward pass runs again in its backward (as `torch.utils.checkpoint` and
    /// Megatron's full recomputation do): every computed forward node of the layer gets a
    /// recomputed copy, and only the layer's input is kept.
    Full,
    /// Only the attention core (Korthikanti et al. 2022's selective recomputation): the nodes
    /// on the paths between the layer's batched matmuls (scores `q·kᵀ` through softmax to
    /// `probs·v`), whose activations grow with s² per head.
    Selective,
}

impl RecomputeMode {
    /// `full` or `selective`.
    pub fn name(self) -> &'static str {
        match self {
            RecomputeMode::Full => "full",
            RecomputeMode::Selective => "selective",
        }
    }
}

impl std::str::FromStr for RecomputeMode {
    type Err = IrError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "full" => Ok(RecomputeMode::Full),
            "selective" => Ok(RecomputeMode::Selective),
            _ => Err(IrError::parse(
                "recompute mode",
                s,
                "expected full or selective",
            )),
        }
    }
}

/// Marks layers for recomputation in a training graph (one with backward nodes). `scopes` are
/// name prefixes (`layers.3`, or `layers.3.attn` for part of a layer); `None` marks every layer
/// (every distinct [`Node::layer`]; nodes without a numbered layer, like the embedding and the
/// logits, are never recomputed). The backward nodes of a scope (named after its forward nodes)
/// read the recomputed copies (`<name>.recompute`, `recompute: true`, phase forward), which are
/// placed just before the scope's first backward node.
///
/// Errors: the graph has no backward nodes, or a named scope has no forward node (or, in
/// selective mode, no attention core).
pub fn recompute(g: &Graph, mode: RecomputeMode, scopes: Option<&[String]>) -> Result<Graph> {
    let Some(first_backward) = g
        .nodes
        .iter()
        .position(|n| matches!(n.phase, Phase::BackwardInput | Phase::BackwardWeight))
    else {
        return Err(IrError::Graph(
            "recomputation needs a training graph: run autodiff first".into(),
        ));
    };
    // Named scopes must each have something to recompute; with every layer, some may not.
    let explicit = scopes.is_some();
    let scopes: Vec<String> = match scopes {
        Some(s) => s.to_vec(),
        None => {
            let all: BTreeSet<&str> = g.nodes[..first_backward]
                .iter()
                .filter_map(Node::layer)
                .collect();
            all.into_iter().map(str::to_string).collect()
        }
    };
    // The recomputed set of each scope, by scope index.
    let mut sets: Vec<Vec<ValueId>> = vec![Vec::new(); scopes.len()];
    for (i, n) in g.nodes[..first_backward].iter().enumerate() {
        if n.phase != Phase::Forward || n.recompute || n.op.is_source() {
            continue;
        }
        if let Some(k) = scope_of(&scopes, &n.name) {
            sets[k].push(ValueId(i as u32));
        }
    }
    for (k, set) in sets.iter_mut().enumerate() {
        if mode == RecomputeMode::Selective {
            *set = attention_core(g, set);
        }
        if set.is_empty() && explicit {
            return Err(IrError::Graph(format!(
                "scope `{}` has no forward nodes{} to recompute",
                scopes[k],
                if mode == RecomputeMode::Selective {
                    " in an attention core (two batched dot_generals)"
                } else {
                    ""
                }
            )));
        }
    }
    let member: BTreeMap<ValueId, usize> = sets
        .iter()
        .enumerate()
        .flat_map(|(k, s)| s.iter().map(move |&v| (v, k)))
        .collect();
    rewrite(g, &scopes, &sets, &member)
}

/// The scope (index) whose prefix `name` falls under: the longest matching one.
fn scope_of(scopes: &[String], name: &str) -> Option<usize> {
    scopes
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            name.len() > s.len() && name.starts_with(s.as_str()) && name.as_bytes()[s.len()] == b'.'
        })
        .max_by_key(|(_, s)| s.len())
        .map(|(k, _)| k)
}

/// The nodes of `set` on a path from one batched `dot_general` (one with batch dims) to another,
/// both included.
fn attention_core(g: &Graph, set: &[ValueId]) -> Vec<ValueId> {
    let inside: BTreeSet<ValueId> = set.iter().copied().collect();
    let batched = |v: ValueId| matches!(&g.node(v).op, Op::DotGeneral { lhs_batch, .. } if !lhs_batch.is_empty());
    let mut from = BTreeSet::new();
    for &v in set {
        if batched(v) || g.node(v).operands.iter().any(|o| from.contains(o)) {
            from.insert(v);
        }
    }
    let mut to = BTreeSet::new();
    for &v in set.iter().rev() {
        if batched(v) || to.contains(&v) {
            to.insert(v);
            for &o in &g.node(v).operands {
                if inside.contains(&o) {
                    to.insert(o);
                }
            }
        }
    }
    let core: Vec<ValueId> = set
        .iter()
        .copied()
        .filter(|v| from.contains(v) && to.contains(v))
        .collect();
    // A single batched matmul is no attention core.
    if core.iter().filter(|&&v| batched(v)).count() < 2 {
        return Vec::new();
    }
    core
}

/// Rebuilds the graph with each scope's copies inserted before its first backward node that
/// reads a recomputed value, and those reads redirected.
fn rewrite(
    g: &Graph,
    scopes: &[String],
    sets: &[Vec<ValueId>],
    member: &BTreeMap<ValueId, usize>,
) -> Result<Graph> {
    let mut out = Graph {
        name: g.name.clone(),
        nodes: Vec::with_capacity(g.len() + member.len()),
        outputs: Vec::new(),
        mesh: g.mesh.clone(),
        annotations: g.annotations.clone(),
        training: Default::default(),
    };
    let mut names = Names::of(g);
    let mut map: Vec<ValueId> = Vec::with_capacity(g.len());
    // copies[k]: old id → copy id, once scope k's copies exist.
    let mut copies: Vec<Option<BTreeMap<ValueId, ValueId>>> = vec![None; scopes.len()];
    for n in &g.nodes {
        let backward = matches!(n.phase, Phase::BackwardInput | Phase::BackwardWeight);
        let scope = if backward {
            scope_of(scopes, &n.name)
        } else {
            None
        };
        let mut operands: Vec<ValueId> = n.operands.iter().map(|o| map[o.index()]).collect();
        if let Some(k) = scope {
            if n.operands.iter().any(|o| member.get(o) == Some(&k)) {
                if copies[k].is_none() {
                    let mut c = BTreeMap::new();
                    for &v in &sets[k] {
                        let orig = g.node(v);
                        let ops = orig
                            .operands
                            .iter()
                            .map(|o| c.get(o).copied().unwrap_or(map[o.index()]))
                            .collect();
                        let id = ValueId(out.nodes.len() as u32);
                        out.nodes.push(Node {
                            name: names.fresh(format!("{}.recompute", orig.name)),
                            operands: ops,
                            recompute: true,
                            phase: Phase::Forward,
                            ..orig.clone()
                        });
                        c.insert(v, id);
                    }
                    copies[k] = Some(c);
                }
                let c = copies[k]
                    .as_ref()
                    .expect("invariant: copies were just made");
                for (slot, o) in operands.iter_mut().zip(&n.operands) {
                    if let Some(&r) = c.get(o) {
                        *slot = r;
                    }
                }
            }
        }
        map.push(ValueId(out.nodes.len() as u32));
        out.nodes.push(Node {
            operands,
            ..n.clone()
        });
    }
    let m = |v: ValueId| map[v.index()];
    out.outputs = g.outputs.iter().map(|&v| m(v)).collect();
    out.training.loss = g.training.loss.map(m);
    out.training.gradients = g
        .training
        .gradients
        .iter()
        .map(|&(a, b)| (m(a), m(b)))
        .collect();
    out.training.updates = g
        .training
        .updates
        .iter()
        .map(|&(a, b)| (m(a), m(b)))
        .collect();
    debug_verify(&out);
    Ok(out)
}
