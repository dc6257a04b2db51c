//! Structurally identical layers solved once: nodes of different layers with the same
//! signature (name past the layer prefix, op, types, role, phase, and which node of the layer
//! each operand is, or the type of one from outside it) form one class that takes one choice, so
//! the model of a 96-layer transformer is the size of one layer and its boundary. PyTorch
//! autoparallel's repeated-subgraph constraint (REFERENCES.md) is the same idea.

use std::collections::{BTreeMap, BTreeSet};

use shardc_ir::{Graph, Op};

/// Node → class, and per class its members (the first is the representative).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Classes {
    pub of: Vec<usize>,
    pub members: Vec<Vec<usize>>,
}

impl Classes {
    /// Every node its own class.
    pub fn singletons(n: usize) -> Self {
        Classes {
            of: (0..n).collect(),
            members: (0..n).map(|v| vec![v]).collect(),
        }
    }

    /// The representative node of a class.
    pub fn rep(&self, c: usize) -> usize {
        self.members[c][0]
    }

    /// Per node, its class's representative (no later than the node itself).
    pub fn representatives(&self) -> Vec<usize> {
        self.of.iter().map(|&c| self.rep(c)).collect()
    }
}

/// The signature of one node within its layer: everything its choices and costs depend on.
/// An operand from inside the layer is named by its name past the layer prefix; one from
/// outside (the previous layer's output, or the embedding's for the first layer; the next
/// layer's gradient, or the head's for the last) by its type only: a node's choices depend on
/// its op and types, not on where an operand comes from, and the edges from each producer class
/// are priced apart (`model::build_edges`).
fn node_signature(g: &Graph, v: usize, layer: &str) -> String {
    let n = &g.nodes[v];
    let suffix = n.name.strip_prefix(layer).unwrap_or(&n.name);
    // Constants' values do not change how they shard; their data can be large.
    let op = match &n.op {
        Op::Constant { .. } => "constant".to_string(),
        op => format!("{op:?}"),
    };
    let operands: Vec<String> = n
        .operands
        .iter()
        .map(|o| {
            let on = &g.nodes[o.index()];
            match on.name.strip_prefix(layer) {
                Some(rest) if on.layer() == Some(layer) => format!("L{rest}"),
                _ => format!("X{}", on.ty),
            }
        })
        .collect();
    format!(
        "{suffix}|{op}|{}|{:?}|{:?}|{}|{}|{}",
        n.ty,
        n.role,
        n.phase,
        n.recompute,
        operands.join(","),
        g.outputs.iter().any(|x| x.index() == v)
    )
}

/// Classes of the graph's nodes by layer structure: nodes of different layers with one
/// signature ([`node_signature`]) form one class. Tying node by node rather than layer by layer
/// lets the first and last layers of a stack tie with the middle ones where only their boundary
/// differs (the last layer's residual gradient has one term fewer to add: that node and its
/// readers stay apart, the rest of the layer ties).
pub(crate) fn classes(g: &Graph) -> Classes {
    let n = g.len();
    let layers: BTreeSet<&str> = g.nodes.iter().filter_map(|x| x.layer()).collect();
    if layers.len() < 2 {
        return Classes::singletons(n);
    }
    // Classes in node order of their first member (a later layer's backward runs before an
    // earlier one's, so the representative is the first in node order, whichever its layer).
    let mut by_signature: BTreeMap<String, usize> = BTreeMap::new();
    let mut of = Vec::with_capacity(n);
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (v, node) in g.nodes.iter().enumerate() {
        let c = match node.layer() {
            Some(l) => *by_signature
                .entry(node_signature(g, v, l))
                .or_insert(members.len()),
            None => members.len(),
        };
        if c == members.len() {
            members.push(Vec::new());
        }
        members[c].push(v);
        of.push(c);
    }
    Classes { of, members }
}
