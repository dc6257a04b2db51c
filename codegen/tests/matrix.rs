//! The end-to-end matrix of issue 5: zoo models under the usual strategies, shardings from user
//! annotations through propagation, partitioned, simplified and run on the threads runtime
//! against the reference executor (outputs and, for training steps, every gradient: `grad`
//! makes the loss and the gradients outputs).

mod common;

use common::run::check;
use shardc_codegen::SpmdProgram;
use shardc_ir::zoo::{self, GptConfig, GptShardings, MlpConfig, MoeConfig, ResNetConfig};
use shardc_ir::{grad, Annotation, Graph, Mesh, Sharding, ShardingAssignment};

fn training(g: Graph) -> Graph {
    let loss = g.training.loss.expect("zoo models have a loss");
    grad(&g, loss).unwrap()
}

fn ann(value: &str, dims: &[&[&str]]) -> Annotation {
    Annotation {
        value: value.to_string(),
        sharding: Sharding::from_dims(dims),
        priority: 0,
    }
}

fn propagated(g: &Graph, mesh: &Mesh, anns: &[Annotation]) -> ShardingAssignment {
    shardc_sharding::propagate(g, mesh, anns)
        .unwrap_or_else(|e| panic!("{}: propagation: {e}", g.name))
        .assignment
}

fn count(p: &SpmdProgram, op: &str) -> usize {
    p.collective_counts()
        .iter()
        .find(|(n, _)| *n == op)
        .map_or(0, |c| c.1)
}

fn mlp_step() -> Graph {
    training(zoo::mlp(&MlpConfig::default()).unwrap())
}

#[test]
fn mlp_training_step_under_data_parallelism() {
    let g = mlp_step();
    let m: Mesh = "dp=4".parse().unwrap();
    let a = propagated(
        &g,
        &m,
        &[ann("x", &[&["dp"], &[]]), ann("target", &[&["dp"], &[]])],
    );
    let p = check(&g, &a, false);
    // Every weight and bias gradient is a pending sum over the batch shards.
    assert!(count(&p, "all_reduce") >= 4, "{}", p.dump());
    check(&g, &a, true);
}

#[test]
fn mlp_training_step_under_megatron_tensor_parallelism() {
    let g = mlp_step();
    let m: Mesh = "tp=4".parse().unwrap();
    let a = propagated(
        &g,
        &m,
        &[
            ann("layers.0.weight", &[&[], &["tp"]]),
            ann("layers.0.bias", &[&["tp"]]),
            ann("layers.1.weight", &[&["tp"], &[]]),
        ],
    );
    check(&g, &a, false);
    check(&g, &a, true);
}

#[test]
fn mlp_training_step_with_zero3_weight_sharding() {
    // ZeRO-3: the batch over `dp` and every weight split over `dp` too (gathered before use).
    let g = training(
        zoo::mlp(&MlpConfig {
            batch: 64,
            ..MlpConfig::default()
        })
        .unwrap(),
    );
    let m: Mesh = "dp=4".parse().unwrap();
    let mut anns = vec![ann("x", &[&["dp"], &[]]), ann("target", &[&["dp"], &[]])];
    // Weights are stored split but used whole: the layers' activations stay split on the batch.
    for i in 0..2 {
        anns.push(ann(&format!("layers.{i}.weight"), &[&["dp"], &[]]));
        anns.push(ann(&format!("layers.{i}.bias"), &[&["dp"]]));
        anns.push(ann(&format!("layers.{i}.matmul"), &[&["dp"], &[]]));
        anns.push(ann(&format!("layers.{i}.fc"), &[&["dp"], &[]]));
        // Gradients land split like their weights: reduce-scattered, not all-reduced.
        anns.push(ann(&format!("layers.{i}.weight.grad"), &[&["dp"], &[]]));
        anns.push(ann(&format!("layers.{i}.bias.grad"), &[&["dp"]]));
    }
    let a = propagated(&g, &m, &anns);
    let p = check(&g, &a, true);
    // Each weight is gathered before its forward use (and again for the backward, as ZeRO-3
    // re-gathers), and no gradient is all-reduced whole.
    for i in 0..2 {
        let w = format!("layers.{i}.weight");
        let gathered = p.graph.nodes.iter().any(|n| {
            matches!(n.op, shardc_ir::Op::AllGather { .. }) && p.graph.node(n.operands[0]).name == w
        });
        assert!(gathered, "{w} is not gathered:\n{}", p.dump());
    }
    assert!(count(&p, "reduce_scatter") >= 4, "{}", p.dump());
}

fn gpt_step(cfg: GptConfig) -> Graph {
    training(zoo::gpt(&cfg).unwrap())
}

fn gpt_cfg(mesh: &Mesh) -> GptConfig {
    GptConfig {
        layers: 1,
        heads: 4,
        hidden: 16,
        seq: 8,
        vocab: 32,
        batch: 2,
        shardings: GptShardings::Megatron(mesh.clone()),
        ..GptConfig::tiny()
    }
}

fn check_gpt(mesh: &str) -> SpmdProgram {
    let m: Mesh = mesh.parse().unwrap();
    let g = gpt_step(gpt_cfg(&m));
    let a = propagated(&g, &m, &g.annotations);
    check(&g, &a, false);
    check(&g, &a, true)
}

#[test]
fn gpt_block_training_step_under_data_parallelism() {
    check_gpt("dp=2");
}

#[test]
fn gpt_block_training_step_under_megatron_tensor_parallelism() {
    check_gpt("tp=4");
}

#[test]
fn gpt_block_training_step_data_times_tensor_on_a_2x4_mesh() {
    check_gpt("dp=2,tp=4");
}

#[test]
fn sequence_parallel_layer_norm_training_step() {
    // y = layer_norm(x) · w with the sequence split: layer norm is local per position; the
    // gain's and bias's gradients are sums over the split sequence.
    let mut g = Graph::new("ln");
    let x = common::input(&mut g, "x", &[2, 8, 16], shardc_ir::Role::Input);
    let gain = common::input(&mut g, "gain", &[16], shardc_ir::Role::Parameter);
    let y = layer_norm(&mut g, x, gain);
    let l = common::reduce(&mut g, "loss", shardc_ir::ReduceFn::Sum, y, &[0, 1, 2]);
    g.outputs.push(l);
    g.training.loss = Some(l);
    let g = grad(&g, l).unwrap();
    let m: Mesh = "sp=4".parse().unwrap();
    let a = propagated(&g, &m, &[ann("x", &[&[], &["sp"], &[]])]);
    let p = check(&g, &a, true);
    assert!(
        count(&p, "all_gather") == 0,
        "layer norm needs no gather: {}",
        p.dump()
    );
}

/// `(x - mean) * rsqrt(var + eps) * gain` over the last dim.
fn layer_norm(
    g: &mut Graph,
    x: shardc_ir::ValueId,
    gain: shardc_ir::ValueId,
) -> shardc_ir::ValueId {
    use shardc_ir::{BinaryFn, Op, ReduceFn, UnaryFn};
    let dims = g.ty(x).dims().to_vec();
    let (h, keep) = (dims[2], vec![dims[0], dims[1]]);
    let ty = common::f32t(&dims);
    let sum = common::reduce(g, "ln.sum", ReduceFn::Sum, x, &[2]);
    let inv_h = g
        .push(
            "ln.inv_h",
            Op::Constant {
                value: shardc_ir::Literal::Splat(1.0 / h as f64),
            },
            vec![],
            Some(common::f32t(&keep)),
        )
        .unwrap();
    let mean = common::binary(g, "ln.mean", BinaryFn::Mul, sum, inv_h);
    let mean_b = g
        .push(
            "ln.mean_b",
            Op::Broadcast { dims: vec![0, 1] },
            vec![mean],
            Some(ty.clone()),
        )
        .unwrap();
    let c = common::binary(g, "ln.centered", BinaryFn::Sub, x, mean_b);
    let sq = common::binary(g, "ln.sq", BinaryFn::Mul, c, c);
    let ss = common::reduce(g, "ln.ss", ReduceFn::Sum, sq, &[2]);
    let var = common::binary(g, "ln.var", BinaryFn::Mul, ss, inv_h);
    let eps = g
        .push(
            "ln.eps",
            Op::Constant {
                value: shardc_ir::Literal::Splat(1e-5),
            },
            vec![],
            Some(common::f32t(&keep)),
        )
        .unwrap();
    let ve = common::binary(g, "ln.var_eps", BinaryFn::Add, var, eps);
    let r = common::unary(g, "ln.rstd", UnaryFn::Rsqrt, ve);
    let rb = g
        .push(
            "ln.rstd_b",
            Op::Broadcast { dims: vec![0, 1] },
            vec![r],
            Some(ty.clone()),
        )
        .unwrap();
    let n = common::binary(g, "ln.normed", BinaryFn::Mul, c, rb);
    let gb = g
        .push(
            "ln.gain_b",
            Op::Broadcast { dims: vec![2] },
            vec![gain],
            Some(ty),
        )
        .unwrap();
    common::binary(g, "ln.out", BinaryFn::Mul, n, gb)
}

fn check_resnet(image: u64, mesh: &str) -> SpmdProgram {
    let g = training(
        zoo::resnet(&ResNetConfig {
            image,
            ..ResNetConfig::default()
        })
        .unwrap(),
    );
    let m: Mesh = mesh.parse().unwrap();
    let a = propagated(&g, &m, &[ann("images", &[&[], &[], &["sp"], &[]])]);
    check(&g, &a, false);
    check(&g, &a, true)
}

#[test]
fn conv_net_training_step_with_spatial_partitioning_exchanges_halos() {
    let p = check_resnet(16, "sp=4");
    assert!(count(&p, "collective_permute") > 0, "{}", p.dump());
}

#[test]
fn conv_net_spatial_partitioning_of_a_dim_not_divisible_by_the_axis() {
    // 10 rows over 4 devices: shards of 3 rows, the last one padded.
    let p = check_resnet(10, "sp=4");
    assert!(count(&p, "collective_permute") > 0, "{}", p.dump());
}

#[test]
fn moe_training_step_with_experts_split_over_an_axis() {
    let g = training(zoo::moe(&MoeConfig::default()).unwrap());
    let m: Mesh = "ep=4".parse().unwrap();
    let a = propagated(
        &g,
        &m,
        &[
            ann("x", &[&["ep"], &[]]),
            ann("target", &[&["ep"], &[]]),
            ann("experts.w1", &[&["ep"], &[], &[]]),
            ann("experts.w2", &[&["ep"], &[], &[]]),
        ],
    );
    let p = check(&g, &a, false);
    // Tokens split over `ep` meet experts split over `ep`: all-to-all dispatch and combine.
    assert!(count(&p, "all_to_all") >= 2, "{}", p.dump());
    check(&g, &a, true);
}
