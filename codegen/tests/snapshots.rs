//! The partitioned programs a person reviews whole: Megatron's MLP (one all-reduce in the
//! forward) and a data-parallel training step (every gradient all-reduced; reduce-scattered
//! under ZeRO). Each is also checked numerically.

mod common;

use common::run::check;
use shardc_ir::zoo::{self, MlpConfig};
use shardc_ir::{grad, Annotation, Graph, Mesh, Op, Sharding};

fn ann(value: &str, dims: &[&[&str]]) -> Annotation {
    Annotation {
        value: value.to_string(),
        sharding: Sharding::from_dims(dims),
        priority: 0,
    }
}

fn program(
    g: &Graph,
    mesh: &str,
    anns: &[Annotation],
    bucket_bytes: u64,
) -> shardc_codegen::SpmdProgram {
    let m: Mesh = mesh.parse().unwrap();
    let a = shardc_sharding::propagate(g, &m, anns).unwrap().assignment;
    check(g, &a, false);
    let p = shardc_codegen::partition(g, &a).unwrap();
    shardc_codegen::simplify(&p, bucket_bytes).unwrap()
}

fn count(p: &shardc_codegen::SpmdProgram, pred: impl Fn(&Op) -> bool) -> usize {
    p.graph.nodes.iter().filter(|n| pred(&n.op)).count()
}

#[test]
fn megatron_mlp_forward_has_one_all_reduce() {
    let cfg = MlpConfig {
        sizes: vec![16, 64, 16],
        loss: false,
        ..MlpConfig::default()
    };
    let g = zoo::mlp(&cfg).unwrap();
    let p = program(
        &g,
        "tp=4",
        &[
            ann("layers.0.weight", &[&[], &["tp"]]),
            ann("layers.0.bias", &[&["tp"]]),
            ann("layers.1.weight", &[&["tp"], &[]]),
        ],
        0,
    );
    assert_eq!(p.collective_counts(), vec![("all_reduce", 1)]);
    insta::assert_snapshot!(p.dump());
}

fn mlp_step(batch: u64) -> Graph {
    let g = zoo::mlp(&MlpConfig {
        batch,
        ..MlpConfig::default()
    })
    .unwrap();
    grad(&g, g.training.loss.unwrap()).unwrap()
}

#[test]
fn data_parallel_training_step_all_reduces_every_gradient() {
    let g = mlp_step(8);
    let p = program(
        &g,
        "dp=2",
        &[ann("x", &[&["dp"], &[]]), ann("target", &[&["dp"], &[]])],
        0,
    );
    let gradients = g.training.gradients.len();
    assert!(count(&p, |o| matches!(o, Op::AllReduce { .. })) >= gradients);
    insta::assert_snapshot!(p.dump());
}

#[test]
fn zero_training_step_reduce_scatters_gradients() {
    let g = mlp_step(64);
    let mut anns = vec![ann("x", &[&["dp"], &[]]), ann("target", &[&["dp"], &[]])];
    for i in 0..2 {
        anns.push(ann(&format!("layers.{i}.weight"), &[&["dp"], &[]]));
        anns.push(ann(&format!("layers.{i}.bias"), &[&["dp"]]));
        anns.push(ann(&format!("layers.{i}.matmul"), &[&["dp"], &[]]));
        anns.push(ann(&format!("layers.{i}.fc"), &[&["dp"], &[]]));
        anns.push(ann(&format!("layers.{i}.weight.grad"), &[&["dp"], &[]]));
        anns.push(ann(&format!("layers.{i}.bias.grad"), &[&["dp"]]));
    }
    let p = program(&g, "dp=2", &anns, 0);
    assert!(count(&p, |o| matches!(o, Op::ReduceScatter { .. })) >= g.training.gradients.len());
    insta::assert_snapshot!(p.dump());
}
