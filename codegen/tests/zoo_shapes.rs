//! Every zoo model, forward and training step, partitions into a verified program under
//! mechanical assignments that split every value some way (which exercises every op's lowering,
//! including uneven shards and ops whose factors cannot be split).

mod common;

use common::mesh;
use shardc_codegen::{partition, simplify, DEFAULT_BUCKET_BYTES};
use shardc_ir::zoo::{self, GptConfig, MlpConfig, MoeConfig, ResNetConfig};
use shardc_ir::{grad, verify, Graph, Mesh, Sharding, ShardingAssignment};

fn models() -> Vec<Graph> {
    let fwd = vec![
        zoo::mlp(&MlpConfig::default()).unwrap(),
        zoo::gpt(&GptConfig::tiny()).unwrap(),
        zoo::moe(&MoeConfig::default()).unwrap(),
        zoo::resnet(&ResNetConfig::default()).unwrap(),
    ];
    let mut all = Vec::new();
    for g in fwd {
        let loss = g.training.loss.expect("zoo models have a loss");
        all.push(grad(&g, loss).unwrap());
        all.push(g);
    }
    all
}

/// Splits dim `pick(rank)` of every value of rank ≥ 1 over `axes`.
fn split_every(
    g: &Graph,
    m: &Mesh,
    axes: &[&str],
    pick: impl Fn(&[u64]) -> Option<usize>,
) -> ShardingAssignment {
    let shardings = g
        .nodes
        .iter()
        .map(|n| {
            let mut s = Sharding::replicated(n.ty.rank());
            if let Some(d) = pick(n.ty.dims()) {
                s.dims[d].axes = axes.iter().map(|a| a.to_string()).collect();
            }
            s
        })
        .collect();
    ShardingAssignment {
        mesh: m.clone(),
        shardings,
    }
}

#[test]
fn every_zoo_model_partitions_under_mechanical_assignments() {
    let m = mesh("a=2,b=3");
    let picks: Vec<(&str, Box<dyn Fn(&[u64]) -> Option<usize>>)> = vec![
        (
            "first dim",
            Box::new(|d: &[u64]| (!d.is_empty()).then_some(0)),
        ),
        ("last dim", Box::new(|d: &[u64]| d.len().checked_sub(1))),
        (
            "largest dim",
            Box::new(|d: &[u64]| (0..d.len()).max_by_key(|&i| (d[i], i))),
        ),
    ];
    for g in models() {
        for axes in [&["a"][..], &["b"], &["a", "b"]] {
            for (what, pick) in &picks {
                let a = split_every(&g, &m, axes, pick);
                let p = partition(&g, &a)
                    .unwrap_or_else(|e| panic!("{} split on {what} over {axes:?}: {e}", g.name));
                verify(&p.graph).unwrap();
                let q = simplify(&p, DEFAULT_BUCKET_BYTES)
                    .unwrap_or_else(|e| panic!("{} simplify, {what} over {axes:?}: {e}", g.name));
                verify(&q.graph).unwrap();
            }
        }
    }
}
