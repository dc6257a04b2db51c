//! Propagation on the models a person would check by hand: the whole result is an insta
//! snapshot, and the facts that define each strategy are asserted as well.

use shardc_ir::{
    Annotation, BinaryFn, Conv, DType, Graph, Mesh, Op, ReduceFn, Role, Sharding, TensorType,
    UnaryFn, ValueId,
};
use shardc_sharding::{propagate, Reason, ShardedGraph};

fn input(g: &mut Graph, name: &str, dims: &[u64], role: Role) -> ValueId {
    let v = g
        .push(
            name,
            Op::Input { init: None },
            vec![],
            Some(TensorType::new(DType::F32, dims.to_vec())),
        )
        .unwrap();
    g.nodes[v.index()].role = role;
    v
}

fn dot(
    g: &mut Graph,
    name: &str,
    a: ValueId,
    b: ValueId,
    batch: (&[usize], &[usize]),
    contract: (&[usize], &[usize]),
) -> ValueId {
    let op = Op::DotGeneral {
        lhs_batch: batch.0.to_vec(),
        rhs_batch: batch.1.to_vec(),
        lhs_contract: contract.0.to_vec(),
        rhs_contract: contract.1.to_vec(),
    };
    g.push(name, op, vec![a, b], None).unwrap()
}

fn binary(g: &mut Graph, name: &str, func: BinaryFn, a: ValueId, b: ValueId) -> ValueId {
    g.push(name, Op::Binary { func }, vec![a, b], None).unwrap()
}

fn unary(g: &mut Graph, name: &str, func: UnaryFn, a: ValueId) -> ValueId {
    g.push(name, Op::Unary { func }, vec![a], None).unwrap()
}

fn ann(value: &str, dims: &[&[&str]]) -> Annotation {
    Annotation {
        value: value.into(),
        sharding: Sharding::from_dims(dims),
        priority: 0,
    }
}

fn mesh(s: &str) -> Mesh {
    s.parse().unwrap()
}

fn sharding_of<'a>(sg: &'a ShardedGraph, name: &str) -> &'a Sharding {
    sg.sharding(sg.graph.find(name).unwrap())
}

fn collective_names(sg: &ShardedGraph) -> Vec<String> {
    sg.collectives()
        .unwrap()
        .iter()
        .map(|c| format!("{}@{}", c.op.name(), sg.graph.node(c.node).name))
        .collect()
}

/// x·W1 (column-split) → gelu → ·W2 (row-split) → + x.
fn megatron_mlp() -> Graph {
    let mut g = Graph::new("mlp");
    let x = input(&mut g, "x", &[8, 16], Role::Input);
    let w1 = input(&mut g, "w1", &[16, 64], Role::Parameter);
    let w2 = input(&mut g, "w2", &[64, 16], Role::Parameter);
    let h = dot(&mut g, "h", x, w1, (&[], &[]), (&[1], &[0]));
    let a = unary(&mut g, "gelu", UnaryFn::Gelu, h);
    let y = dot(&mut g, "y", a, w2, (&[], &[]), (&[1], &[0]));
    let out = binary(&mut g, "out", BinaryFn::Add, y, x);
    g.outputs.push(out);
    g
}

#[test]
fn megatron_mlp_leaves_a_pending_sum_over_tp_before_the_all_reduce() {
    let g = megatron_mlp();
    let sg = propagate(
        &g,
        &mesh("dp=2,tp=4"),
        &[ann("w1", &[&[], &["tp"]]), ann("w2", &[&["tp"], &[]])],
    )
    .unwrap();
    assert_eq!(
        sharding_of(&sg, "gelu"),
        &Sharding::from_dims(&[&[], &["tp"]])
    );
    let y = sharding_of(&sg, "y");
    assert_eq!(y.partial, vec!["tp"]);
    assert!(y.dims.iter().all(|d| d.axes.is_empty()));
    assert_eq!(collective_names(&sg), vec!["all_reduce@y"]);
    insta::assert_snapshot!(sg.report().unwrap());
}

/// One transformer block: attention with heads on their own dim, softmax, output projection,
/// residual, MLP, residual.
fn gpt_block() -> Graph {
    let (b, s, d, h, dh, f) = (8, 16, 64, 4, 16, 256);
    let mut g = Graph::new("gpt_block");
    let x = input(&mut g, "x", &[b, s, d], Role::Input);
    let wq = input(&mut g, "attn.wq", &[d, h, dh], Role::Parameter);
    let wk = input(&mut g, "attn.wk", &[d, h, dh], Role::Parameter);
    let wv = input(&mut g, "attn.wv", &[d, h, dh], Role::Parameter);
    let wo = input(&mut g, "attn.wo", &[h, dh, d], Role::Parameter);
    let w1 = input(&mut g, "mlp.w1", &[d, f], Role::Parameter);
    let w2 = input(&mut g, "mlp.w2", &[f, d], Role::Parameter);
    let q = dot(&mut g, "attn.q", x, wq, (&[], &[]), (&[2], &[0]));
    let k = dot(&mut g, "attn.k", x, wk, (&[], &[]), (&[2], &[0]));
    let v = dot(&mut g, "attn.v", x, wv, (&[], &[]), (&[2], &[0]));
    // [b,s,h,dh]·[b,s,h,dh] → [b,h,s,s]
    let sc = dot(
        &mut g,
        "attn.scores",
        q,
        k,
        (&[0, 2], &[0, 2]),
        (&[3], &[3]),
    );
    let e = unary(&mut g, "attn.exp", UnaryFn::Exp, sc);
    let sum = g
        .push(
            "attn.sum",
            Op::Reduce {
                func: ReduceFn::Sum,
                dims: vec![3],
            },
            vec![e],
            None,
        )
        .unwrap();
    let sb = g
        .push(
            "attn.sum_b",
            Op::Broadcast {
                dims: vec![0, 1, 2],
            },
            vec![sum],
            Some(TensorType::new(DType::F32, vec![b, h, s, s])),
        )
        .unwrap();
    let p = binary(&mut g, "attn.probs", BinaryFn::Div, e, sb);
    // [b,h,s,s']·[b,s',h,dh] → [b,h,s,dh]
    let ctx = dot(&mut g, "attn.ctx", p, v, (&[0, 1], &[0, 2]), (&[3], &[1]));
    // [b,h,s,dh]·[h,dh,d] → [b,s,d]
    let o = dot(&mut g, "attn.out", ctx, wo, (&[], &[]), (&[1, 3], &[0, 1]));
    let r1 = binary(&mut g, "resid1", BinaryFn::Add, x, o);
    let m1 = dot(&mut g, "mlp.h", r1, w1, (&[], &[]), (&[2], &[0]));
    let act = unary(&mut g, "mlp.gelu", UnaryFn::Gelu, m1);
    let m2 = dot(&mut g, "mlp.out", act, w2, (&[], &[]), (&[2], &[0]));
    let r2 = binary(&mut g, "resid2", BinaryFn::Add, r1, m2);
    g.outputs.push(r2);
    g
}

#[test]
fn gpt_block_with_dp_on_batch_and_tp_on_heads() {
    let g = gpt_block();
    let sg = propagate(
        &g,
        &mesh("dp=2,tp=4"),
        &[
            ann("x", &[&["dp"], &[], &[]]),
            ann("attn.wq", &[&[], &["tp"], &[]]),
            ann("attn.wk", &[&[], &["tp"], &[]]),
            ann("attn.wv", &[&[], &["tp"], &[]]),
            ann("attn.wo", &[&["tp"], &[], &[]]),
            ann("mlp.w1", &[&[], &["tp"]]),
            ann("mlp.w2", &[&["tp"], &[]]),
        ],
    )
    .unwrap();
    assert_eq!(
        sharding_of(&sg, "attn.scores"),
        &Sharding::from_dims(&[&["dp"], &["tp"], &[], &[]])
    );
    assert_eq!(
        sharding_of(&sg, "attn.probs"),
        &Sharding::from_dims(&[&["dp"], &["tp"], &[], &[]])
    );
    for pending in ["attn.out", "mlp.out"] {
        assert_eq!(sharding_of(&sg, pending).partial, vec!["tp"], "{pending}");
        assert_eq!(
            sharding_of(&sg, pending).dims[0].axes,
            vec!["dp"],
            "{pending}"
        );
    }
    // Exactly the two Megatron all-reduces, nothing else.
    assert_eq!(
        collective_names(&sg),
        vec!["all_reduce@attn.out", "all_reduce@mlp.out"]
    );
    insta::assert_snapshot!(sg.report().unwrap());
}

#[test]
fn data_parallel_only_shards_activations_on_the_batch_and_replicates_weights() {
    let mut g = megatron_mlp();
    let out = g.outputs[0];
    let loss = g
        .push(
            "loss",
            Op::Reduce {
                func: ReduceFn::Sum,
                dims: vec![0, 1],
            },
            vec![out],
            None,
        )
        .unwrap();
    g.outputs = vec![loss];
    let sg = propagate(&g, &mesh("dp=8"), &[ann("x", &[&["dp"], &[]])]).unwrap();
    for v in ["h", "gelu", "y", "out"] {
        assert_eq!(
            sharding_of(&sg, v),
            &Sharding::from_dims(&[&["dp"], &[]]),
            "{v}"
        );
    }
    for w in ["w1", "w2"] {
        assert!(sharding_of(&sg, w).is_replicated(), "{w}");
    }
    // The loss sums over the batch: a pending sum over dp, reduced once at the output.
    assert_eq!(sharding_of(&sg, "loss").partial, vec!["dp"]);
    assert_eq!(collective_names(&sg), vec!["all_reduce@loss"]);
    insta::assert_snapshot!(sg.report().unwrap());
}

#[test]
fn two_d_sharded_matmul_on_a_2x4_mesh() {
    let mut g = Graph::new("matmul_2d");
    let a = input(&mut g, "a", &[16, 32], Role::Input);
    let b = input(&mut g, "b", &[32, 64], Role::Parameter);
    let e = input(&mut g, "e", &[64, 64], Role::Parameter);
    let c = dot(&mut g, "c", a, b, (&[], &[]), (&[1], &[0]));
    let d = dot(&mut g, "d", c, e, (&[], &[]), (&[1], &[0]));
    g.outputs.push(d);
    let sg = propagate(
        &g,
        &mesh("x=2,y=4"),
        &[
            ann("a", &[&["x"], &["y"]]),
            ann("b", &[&["y"], &[]]),
            ann("e", &[&[], &["y"]]),
        ],
    )
    .unwrap();
    let c = sharding_of(&sg, "c");
    assert_eq!(c.dims[0].axes, vec!["x"]);
    assert_eq!(c.partial, vec!["y"]);
    assert_eq!(
        sharding_of(&sg, "d"),
        &Sharding::from_dims(&[&["x"], &["y"]])
    );
    assert_eq!(collective_names(&sg), vec!["all_reduce@c"]);
    insta::assert_snapshot!(sg.report().unwrap());
}

#[test]
fn convolution_with_its_spatial_dim_split_needs_a_halo() {
    let mut g = Graph::new("conv");
    let x = input(&mut g, "x", &[4, 8, 32, 32], Role::Input);
    let k = input(&mut g, "kernel", &[16, 8, 3, 3], Role::Parameter);
    let y = g
        .push(
            "conv",
            Op::Convolution(Conv::simple(2, 1, 1)),
            vec![x, k],
            None,
        )
        .unwrap();
    let r = unary(&mut g, "relu", UnaryFn::Relu, y);
    g.outputs.push(r);
    let sg = propagate(
        &g,
        &mesh("dp=2,tp=4"),
        &[ann("x", &[&["dp"], &[], &["tp"], &[]])],
    )
    .unwrap();
    assert_eq!(
        sharding_of(&sg, "relu"),
        &Sharding::from_dims(&[&["dp"], &[], &["tp"], &[]])
    );
    assert!(sharding_of(&sg, "kernel").is_replicated());
    let comms = sg.collectives().unwrap();
    assert_eq!(comms.len(), 2, "one halo each way");
    for c in &comms {
        assert_eq!(c.op.name(), "collective_permute");
        // Local input f32[2,8,8,32]; a 3×3 kernel with padding 1 needs one row from each side.
        assert_eq!(
            c.local_operand,
            TensorType::new(DType::F32, vec![2, 8, 1, 32])
        );
    }
    insta::assert_snapshot!(sg.report().unwrap());
}

#[test]
fn explain_follows_the_rules_back_to_the_annotations() {
    let g = megatron_mlp();
    let sg = propagate(
        &g,
        &mesh("dp=2,tp=4"),
        &[ann("w1", &[&[], &["tp"]]), ann("w2", &[&["tp"], &[]])],
    )
    .unwrap();
    let y = g.find("y").unwrap();
    match sg.reason(y) {
        Reason::Rule { op, from, .. } => {
            assert_eq!(*op, y);
            assert!(from.contains(&g.find("w2").unwrap()));
        }
        r => panic!("y should come from its dot's rule, got {r:?}"),
    }
    insta::assert_snapshot!(sg.explain(y).unwrap().to_string());
}

#[test]
fn user_priority_decides_a_conflict_before_op_order() {
    // x·w where x wants its feature dim on tp and w its input dim on dp: the contracted factor
    // is claimed twice; priority 0 wins whatever the operand order.
    let mut g = Graph::new("conflict");
    let x = input(&mut g, "x", &[8, 16], Role::Input);
    let w = input(&mut g, "w", &[16, 32], Role::Parameter);
    let t = unary(&mut g, "t", UnaryFn::Tanh, x);
    let u = unary(&mut g, "u", UnaryFn::Tanh, w);
    dot(&mut g, "y", t, u, (&[], &[]), (&[1], &[0]));
    let mut lo = ann("w", &[&["dp"], &[]]);
    lo.priority = 1;
    let hi = ann("x", &[&[], &["tp"]]);
    let sg = propagate(&g, &mesh("dp=2,tp=4"), &[lo, hi]).unwrap();
    // Round 0 only sees x: tp reaches t, the contracted factor and so u (w is not seen yet).
    assert_eq!(sharding_of(&sg, "u"), &Sharding::from_dims(&[&["tp"], &[]]));
    assert_eq!(sharding_of(&sg, "y").partial, vec!["tp"]);
}

#[test]
fn ops_without_a_rule_fall_back_to_replicated_with_a_warning() {
    let mut g = Graph::new("collective");
    g.mesh = Some(mesh("dp=2,tp=4"));
    let x = input(&mut g, "x", &[8, 16], Role::Input);
    let r = g
        .push(
            "reduced",
            Op::AllReduce {
                axes: vec!["tp".into()],
                func: ReduceFn::Sum,
            },
            vec![x],
            None,
        )
        .unwrap();
    unary(&mut g, "after", UnaryFn::Exp, r);
    let sg = propagate(&g, &mesh("dp=2,tp=4"), &[ann("x", &[&["dp"], &[]])]).unwrap();
    assert!(sharding_of(&sg, "reduced").is_replicated());
    assert!(sharding_of(&sg, "after").is_replicated());
    assert_eq!(sg.warnings.len(), 1);
    assert!(
        sg.warnings[0].contains("`reduced` (all_reduce)"),
        "{}",
        sg.warnings[0]
    );
}

#[test]
fn bad_annotations_are_errors_that_name_the_value() {
    let g = megatron_mlp();
    let m = mesh("dp=2,tp=4");
    let e = propagate(&g, &m, &[ann("nope", &[&[], &[]])])
        .err()
        .unwrap();
    assert!(e.to_string().contains("`nope`"), "{e}");
    let e = propagate(&g, &m, &[ann("w1", &[&["pp"], &[]])])
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("w1") && e.to_string().contains("pp"),
        "{e}"
    );
    let e = propagate(&g, &m, &[ann("w1", &[&["tp"]])]).err().unwrap();
    assert!(e.to_string().contains("rank"), "{e}");
}

#[test]
fn propagation_is_deterministic() {
    let g = gpt_block();
    let anns = [
        ann("x", &[&["dp"], &[], &[]]),
        ann("mlp.w1", &[&[], &["tp"]]),
    ];
    let a = propagate(&g, &mesh("dp=2,tp=4"), &anns)
        .unwrap()
        .report()
        .unwrap();
    let b = propagate(&g, &mesh("dp=2,tp=4"), &anns)
        .unwrap()
        .report()
        .unwrap();
    assert_eq!(a, b);
}
