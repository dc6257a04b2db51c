//! Pipeline stages of a graph until the pipeline crate slices graphs: the graph's numbered
//! layers (`Node::layer`, `layers.7`; backward and recomputed nodes carry their forward node's
//! name) split into `p` contiguous runs of `l/p` layers, the embedding on the first stage and the
//! output layer and loss on the last.

use std::collections::HashMap;

use shardc_ir::{Graph, Phase};

/// The pipeline stage of every node (see the module docs).
pub fn pipeline_stages(g: &Graph, p: u64) -> Vec<u32> {
    let n = g.len();
    if p <= 1 {
        return vec![0; n];
    }
    // Layers in the order their first forward node appears.
    let mut layer_index: HashMap<&str, u64> = HashMap::new();
    for node in &g.nodes {
        if node.phase == Phase::Forward && !node.recompute {
            if let Some(l) = node.layer() {
                let k = layer_index.len() as u64;
                layer_index.entry(l).or_insert(k);
            }
        }
    }
    let layers = layer_index.len() as u64;
    if layers == 0 {
        return vec![0; n];
    }
    let of_layer = |i: u64| (i * p / layers).min(p - 1) as u32;
    let forward = |n: &shardc_ir::Node| n.phase == Phase::Forward && !n.recompute;
    let mut stage = vec![0u32; n];
    // Forward nodes: a layer's stage; after a layer, the stage of what they read.
    let mut after_layers = vec![false; n];
    for (i, node) in g.nodes.iter().enumerate() {
        if !forward(node) {
            continue;
        }
        if let Some(&k) = node.layer().and_then(|l| layer_index.get(l)) {
            stage[i] = of_layer(k);
            after_layers[i] = true;
        } else {
            stage[i] = node
                .operands
                .iter()
                .map(|o| stage[o.index()])
                .max()
                .unwrap_or(0);
            after_layers[i] = node.operands.iter().any(|o| after_layers[o.index()]);
        }
    }
    // Forward nodes that no layer feeds (the embedding, the labels' one-hot) run on the first
    // stage that reads them.
    let users = g.users();
    for i in (0..n).rev() {
        let node = &g.nodes[i];
        if forward(node) && !after_layers[i] && node.layer().is_none() {
            if let Some(s) = users[i]
                .iter()
                .filter(|u| forward(g.node(**u)))
                .map(|u| stage[u.index()])
                .min()
            {
                stage[i] = s;
            }
        }
    }
    // Backward, recomputed and update nodes follow their layer, or the forward node they are
    // named after (`logits.grad_rhs` after `logits`), or what they read.
    let forward_stage: HashMap<&str, u32> = g
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, x)| forward(x))
        .map(|(i, x)| (x.name.as_str(), stage[i]))
        .collect();
    for (i, node) in g.nodes.iter().enumerate() {
        if forward(node) {
            continue;
        }
        stage[i] = if let Some(&k) = node.layer().and_then(|l| layer_index.get(l)) {
            of_layer(k)
        } else {
            let mut name = node.name.as_str();
            let mut found = None;
            while let Some((head, _)) = name.rsplit_once('.') {
                if let Some(&s) = forward_stage.get(head) {
                    found = Some(s);
                    break;
                }
                name = head;
            }
            found.unwrap_or_else(|| {
                node.operands
                    .iter()
                    .map(|o| stage[o.index()])
                    .max()
                    .unwrap_or(0)
            })
        };
    }
    stage
}
