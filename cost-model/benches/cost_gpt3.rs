//! Costing a GPT-3 175B training graph (forward from the zoo, backward from autodiff) under a
//! data- and tensor-parallel sharding: the target is under 100 ms per estimate.

use criterion::{criterion_group, criterion_main, Criterion};
use shardc_cost_model::{estimate_graph, Catalog, Cluster, CommUse, GraphOptions};
use shardc_ir::{grad, zoo, Op, ReduceFn, Role, Sharding, ShardingAssignment};

fn bench(c: &mut Criterion) {
    let cfg = zoo::GptConfig::gpt3_175b(64);
    let fwd = zoo::gpt(&cfg).expect("GPT-3 builds");
    let loss = fwd
        .training
        .loss
        .or_else(|| fwd.outputs.first().copied())
        .expect("a loss");
    let g = grad(&fwd, loss).expect("autodiff builds the backward pass");
    let mesh: shardc_ir::Mesh = "dp=64,tp=8".parse().expect("mesh");
    // A simple sharding: activations split on batch over dp, weights replicated, gradients
    // all-reduced over dp (the sharding crate's output has this shape).
    let shardings: Vec<Sharding> = g
        .ids()
        .map(|v| {
            let ty = g.ty(v);
            let mut s = Sharding::replicated(ty.rank());
            if g.node(v).role == Role::Activation && ty.dims().first() == Some(&cfg.batch) {
                s.dims[0] = shardc_ir::DimSharding::on(&["dp"]);
            }
            s
        })
        .collect();
    let comms: Vec<CommUse> = g
        .training
        .gradients
        .iter()
        .map(|&(_, gr)| CommUse {
            node: gr,
            op: Op::AllReduce {
                axes: vec!["dp".into()],
                func: ReduceFn::Sum,
            },
            local_operand: g.ty(gr).clone(),
            reason: "data-parallel gradient".into(),
        })
        .collect();
    let a = ShardingAssignment { mesh, shardings };
    let cluster = Cluster::parse("a100-80gb:64x8", &Catalog::builtin()).expect("cluster");
    let opts = GraphOptions {
        micro_batches: 8,
        ..Default::default()
    };
    let e = estimate_graph(&g, &a, &comms, &cluster, &opts).expect("estimate");
    eprintln!("graph: {} nodes, {} collectives\n{e}", g.len(), comms.len());
    c.bench_function("estimate_graph gpt3-175b training", |b| {
        b.iter(|| estimate_graph(&g, &a, &comms, &cluster, &opts).expect("estimate"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
