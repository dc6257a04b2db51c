//! The graph path on a tensor-parallel GPT layer built with `Graph::push`: it must agree with
//! the analytic path, which shares its building blocks.

use shardc_cost_model::{
    collective_time, estimate_graph, graph_step, local_work, node_time, Catalog, Cluster, CommUse,
    GraphOptions, OpClass, Schedule,
};
use shardc_ir::{
    BinaryFn, DType, Graph, Op, ReduceFn, Role, Sharding, ShardingAssignment, TensorType, UnaryFn,
    ValueId,
};

const S: u64 = 256;
const H: u64 = 512;
const A: u64 = 8;
const T: u64 = 4;

struct Layer {
    g: Graph,
    shardings: Vec<Sharding>,
    partials: Vec<ValueId>,
}

impl Layer {
    fn push(
        &mut self,
        name: &str,
        op: Op,
        args: Vec<ValueId>,
        ty: Option<TensorType>,
        s: Sharding,
    ) -> ValueId {
        let v = self.g.push(name, op, args, ty).unwrap();
        self.shardings.push(s);
        v
    }

    fn input(&mut self, name: &str, dims: Vec<u64>, role: Role, s: Sharding) -> ValueId {
        let v = self.push(
            name,
            Op::Input { init: None },
            vec![],
            Some(TensorType::new(DType::BF16, dims)),
            s,
        );
        self.g.nodes[v.index()].role = role;
        v
    }
}

fn dot(lc: usize, rc: usize) -> Op {
    Op::DotGeneral {
        lhs_batch: vec![],
        rhs_batch: vec![],
        lhs_contract: vec![lc],
        rhs_contract: vec![rc],
    }
}

fn tp_partial(rank: usize) -> Sharding {
    let mut s = Sharding::replicated(rank);
    s.partial = vec!["tp".into()];
    s
}

/// A Megatron layer's matmuls and a GeLU, tokens `[S, H]`, heads split over `tp`.
fn megatron_layer() -> Layer {
    let mut l = Layer {
        g: Graph::new("layer"),
        shardings: vec![],
        partials: vec![],
    };
    let rep = Sharding::replicated;
    let cols = || Sharding::from_dims(&[&[], &["tp"]]);
    let heads3 = |d: usize| {
        let mut s = Sharding::replicated(3);
        s.dims[d] = shardc_ir::DimSharding::on(&["tp"]);
        s
    };
    let x = l.input("x", vec![S, H], Role::Input, rep(2));
    let mut heads = Vec::new();
    for w in ["q", "k", "v"] {
        let wt = l.input(&format!("w{w}"), vec![H, H], Role::Parameter, cols());
        let y = l.push(w, dot(1, 0), vec![x, wt], None, cols());
        let r = l.push(
            &format!("{w}.split"),
            Op::Reshape,
            vec![y],
            Some(TensorType::new(DType::BF16, vec![S, A, H / A])),
            heads3(1),
        );
        let t = l.push(
            &format!("{w}.heads"),
            Op::Transpose {
                perm: vec![1, 0, 2],
            },
            vec![r],
            None,
            heads3(0),
        );
        heads.push(t);
    }
    let scores = l.push(
        "scores",
        Op::DotGeneral {
            lhs_batch: vec![0],
            rhs_batch: vec![0],
            lhs_contract: vec![2],
            rhs_contract: vec![2],
        },
        vec![heads[0], heads[1]],
        None,
        heads3(0),
    );
    let probs = l.push(
        "probs",
        Op::Unary { func: UnaryFn::Exp },
        vec![scores],
        None,
        heads3(0),
    );
    let ctx = l.push(
        "ctx",
        Op::DotGeneral {
            lhs_batch: vec![0],
            rhs_batch: vec![0],
            lhs_contract: vec![2],
            rhs_contract: vec![1],
        },
        vec![probs, heads[2]],
        None,
        heads3(0),
    );
    let ctx_t = l.push(
        "ctx.t",
        Op::Transpose {
            perm: vec![1, 0, 2],
        },
        vec![ctx],
        None,
        heads3(1),
    );
    let ctx2 = l.push(
        "ctx.merge",
        Op::Reshape,
        vec![ctx_t],
        Some(TensorType::new(DType::BF16, vec![S, H])),
        cols(),
    );
    let wo = l.input(
        "wo",
        vec![H, H],
        Role::Parameter,
        Sharding::from_dims(&[&["tp"], &[]]),
    );
    let proj = l.push("proj", dot(1, 0), vec![ctx2, wo], None, tp_partial(2));
    l.partials.push(proj);
    let w1 = l.input("w1", vec![H, 4 * H], Role::Parameter, cols());
    let fc1 = l.push("fc1", dot(1, 0), vec![x, w1], None, cols());
    let gelu = l.push(
        "gelu",
        Op::Unary {
            func: UnaryFn::Gelu,
        },
        vec![fc1],
        None,
        cols(),
    );
    let w2 = l.input(
        "w2",
        vec![4 * H, H],
        Role::Parameter,
        Sharding::from_dims(&[&["tp"], &[]]),
    );
    let fc2 = l.push("fc2", dot(1, 0), vec![gelu, w2], None, tp_partial(2));
    l.partials.push(fc2);
    let sum = l.push(
        "out",
        Op::Binary {
            func: BinaryFn::Add,
        },
        vec![proj, fc2],
        None,
        rep(2),
    );
    l.g.outputs.push(sum);
    l
}

fn setup() -> (Layer, ShardingAssignment, Vec<CommUse>, Cluster) {
    let l = megatron_layer();
    let a = ShardingAssignment {
        mesh: "tp=4".parse().unwrap(),
        shardings: l.shardings.clone(),
    };
    let comms = l
        .partials
        .iter()
        .map(|&v| CommUse {
            node: v,
            op: Op::AllReduce {
                axes: vec!["tp".into()],
                func: ReduceFn::Sum,
            },
            local_operand: l.g.ty(v).clone(),
            reason: format!("{} is a partial sum over tp", l.g.node(v).name),
        })
        .collect();
    let c = Cluster::parse("a100-80gb:1x8", &Catalog::builtin()).unwrap();
    (l, a, comms, c)
}

#[test]
fn tensor_parallel_layer_flops_per_device_match_megatrons_formula() {
    let (l, a, _, _) = setup();
    let matmul: f64 =
        l.g.ids()
            .map(|v| local_work(&l.g, v, &a).unwrap())
            .filter(|w| w.class == OpClass::Matmul)
            .map(|w| w.flops)
            .sum();
    // Forward matmuls of one layer: 24·b·s·h²·(1 + s/(6h)) / t.
    let (s, h, t) = (S as f64, H as f64, T as f64);
    assert_eq!(matmul, 24.0 * s * h * h * (1.0 + s / (6.0 * h)) / t);
}

#[test]
fn the_graph_path_prices_compute_and_collectives_with_the_shared_blocks() {
    let (l, a, comms, c) = setup();
    let w = graph_step(&l.g, &a, &comms, &c, &GraphOptions::default()).unwrap();
    // Forward only: the matmuls priced alone at their local shapes, plus fused elementwise
    // regions, which cost less than the same ops each reading and writing memory.
    let alone = |class: Option<OpClass>| -> f64 {
        l.g.ids()
            .filter(|&v| class.is_none_or(|c| local_work(&l.g, v, &a).unwrap().class == c))
            .map(|v| node_time(&l.g, v, &a, &c).unwrap())
            .sum()
    };
    let matmuls = alone(Some(OpClass::Matmul));
    // (Here every region is one op between two matmuls, so nothing fuses.)
    assert!(w.forward_s > matmuls, "{w:?}");
    assert!(w.forward_s <= alone(None) * (1.0 + 1e-12), "{w:?}");
    assert_eq!(w.top_ops.len(), 5);
    assert_eq!(
        (w.top_ops[0].what.as_str(), w.top_ops[0].class.as_str()),
        ("fc1", "matmul")
    );
    assert_eq!((w.backward_s, w.gradient_comm_s), (0.0, 0.0));
    // Two all-reduces of the [S, H] bf16 partial sums, priced by collective_time.
    let each = collective_time(&comms[0], &a.mesh, &c).unwrap().seconds;
    assert!((w.stage_comm_s - 2.0 * each).abs() < 1e-15);
    assert_eq!(w.collectives.len(), 1);
    assert_eq!(
        (w.collectives[0].count, w.collectives[0].bytes),
        (2, (S * H * 2) as f64)
    );
    // Weights per device: Wq, Wk, Wv, Wo (h² each) and W1, W2 (4h² each), split over tp.
    assert_eq!(w.memory.weights, (12 * H * H * 2 / T) as f64);
}

#[test]
fn micro_batches_and_stages_divide_the_work_and_the_activations() {
    let (l, a, comms, c) = setup();
    let one = graph_step(&l.g, &a, &comms, &c, &GraphOptions::default()).unwrap();
    let opts = GraphOptions {
        micro_batches: 4,
        schedule: Schedule::Gpipe,
        ..Default::default()
    };
    let four = graph_step(&l.g, &a, &comms, &c, &opts).unwrap();
    // Each micro-batch does a quarter of the work, on matmuls a quarter as tall: no faster.
    assert!(four.forward_s * 4.0 >= one.forward_s * (1.0 - 1e-12));
    assert!(four.forward_s * 4.0 < one.forward_s * 2.0);
    // GPipe holds all four quarter-size micro-batches: the same bytes as one whole batch.
    assert!((four.memory.activations - one.memory.activations).abs() < 1e-6);
    let est = estimate_graph(&l.g, &a, &comms, &c, &opts).unwrap();
    assert!(est.step_time_s > 0.0 && est.fits);
    let e = graph_step(
        &l.g,
        &a,
        &comms,
        &c,
        &GraphOptions {
            pipeline_axis: Some("pp".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("pipeline axis `pp` is not an axis of mesh `tp=4`"),
        "{e}"
    );
}
