//! Structurally identical layers solved once: nodes at the same position of layers with the
//! same structure (names past the layer prefix, ops, types, roles, phases, and where each
//! operand comes from) form one class that takes one choice, so the ILP of a 96-layer
//! transformer is the size of its distinct layers (the first and last read from outside the
//! stack, the middle ones all alike). PyTorch autoparallel's repeated-subgraph constraint
//! (REFERENCES.md) is the same idea.

use std::collections::BTreeMap;

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
}

/// The signature of one node within its layer: everything its choices and costs depend on.
fn node_signature(g: &Graph, v: usize, layer: &str, pos: &[Option<(usize, usize)>]) -> String {
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
        .map(|o| match pos[o.index()] {
            Some((l, p)) if g.nodes[o.index()].layer() == Some(layer) => {
                let _ = l;
                format!("L{p}")
            }
            Some((_, p)) => format!("P{p}"),
            None => format!("N{}", o.index()),
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

/// Classes of the graph's nodes by layer structure.
pub(crate) fn classes(g: &Graph) -> Classes {
    let n = g.len();
    // Layers in order of their first node, with their nodes in node order.
    let mut layer_index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut layers: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut pos: Vec<Option<(usize, usize)>> = vec![None; n];
    for (v, node) in g.nodes.iter().enumerate() {
        let Some(l) = node.layer() else { continue };
        let k = *layer_index.entry(l).or_insert_with(|| {
            layers.push((l, Vec::new()));
            layers.len() - 1
        });
        pos[v] = Some((k, layers[k].1.len()));
        layers[k].1.push(v);
    }
    if layers.len() < 2 {
        return Classes::singletons(n);
    }
    // Layers of one signature share the first one's classes.
    let mut first_of: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    let mut rep_layer: Vec<usize> = Vec::with_capacity(layers.len());
    for (k, (name, nodes)) in layers.iter().enumerate() {
        let sig: Vec<String> = nodes
            .iter()
            .map(|&v| node_signature(g, v, name, &pos))
            .collect();
        rep_layer.push(*first_of.entry(sig).or_insert(k));
    }
    // Representatives first (in node order: a later layer's backward runs before an earlier
    // one's), then the members that follow them.
    let mut of = vec![usize::MAX; n];
    let mut members: Vec<Vec<usize>> = Vec::new();
    for v in 0..n {
        if pos[v].map_or(true, |(k, _)| rep_layer[k] == k) {
            of[v] = members.len();
            members.push(vec![v]);
        }
    }
    for v in 0..n {
        if let Some((k, p)) = pos[v] {
            if rep_layer[k] != k {
                let c = of[layers[rep_layer[k]].1[p]];
                of[v] = c;
                members[c].push(v);
            }
        }
    }
    Classes { of, members }
}
