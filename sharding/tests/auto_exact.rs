//! The planner's solvers (the default elimination solver and the ILP) find the true optimum of
//! its model: on random small graphs (at most 12 ops, 2x2 and 2x4 meshes) their objective equals
//! an exhaustive enumeration's, with and without a memory limit, and values the user annotated
//! keep their annotation. The Lagrangian relaxation (used for large memory-bound cores) is
//! checked to fit, to be no cheaper than the optimum, and to report a gap that brackets it.

use shardc_cost_model::{Catalog, Cluster};
use shardc_ir::{
    Annotation, BinaryFn, DType, Graph, Mesh, Op, Role, Sharding, TensorType, UnaryFn, ValueId,
};
use shardc_sharding::auto::{auto_shard, AutoOptions, Solver};

/// A small deterministic generator (SplitMix64), so that failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A random graph of square `[n, n]` values: inputs and parameters, then dots, adds,
/// activations and transposes of what came before, and a sum over rows at the end.
fn random_graph(rng: &mut Rng, ops: usize, n: u64) -> Graph {
    let mut g = Graph::new("random");
    let ty = TensorType::new(DType::F32, vec![n, n]);
    let mut vals: Vec<ValueId> = Vec::new();
    let x = g
        .push("x", Op::Input { init: None }, vec![], Some(ty.clone()))
        .unwrap();
    g.nodes[x.index()].role = Role::Input;
    vals.push(x);
    for i in 0..2 {
        let w = g
            .push(
                &format!("w{i}"),
                Op::Input { init: None },
                vec![],
                Some(ty.clone()),
            )
            .unwrap();
        g.nodes[w.index()].role = Role::Parameter;
        vals.push(w);
    }
    let mut last = x;
    for i in 0..ops - 1 {
        let a = if rng.below(2) == 0 {
            last
        } else {
            vals[rng.below(vals.len())]
        };
        let b = vals[rng.below(vals.len())];
        let name = format!("op{i}");
        let (op, operands) = match rng.below(5) {
            0 | 1 => (
                Op::DotGeneral {
                    lhs_batch: vec![],
                    rhs_batch: vec![],
                    lhs_contract: vec![1],
                    rhs_contract: vec![0],
                },
                vec![a, b],
            ),
            2 => (
                Op::Binary {
                    func: BinaryFn::Add,
                },
                vec![a, b],
            ),
            3 => (
                Op::Unary {
                    func: UnaryFn::Tanh,
                },
                vec![a],
            ),
            _ => (Op::Transpose { perm: vec![1, 0] }, vec![a]),
        };
        last = g.push(&name, op, operands, None).unwrap();
        vals.push(last);
    }
    let out = g
        .push(
            "sum",
            Op::Reduce {
                func: shardc_ir::ReduceFn::Sum,
                dims: vec![1],
            },
            vec![last],
            None,
        )
        .unwrap();
    g.outputs.push(out);
    g
}

fn both(g: &Graph, mesh: &Mesh, cluster: &Cluster, ann: &[Annotation], limit: Option<f64>) {
    for solver in [Solver::Elimination, Solver::Ilp] {
        against_enumeration(solver, g, mesh, cluster, ann, limit);
    }
    lagrangian_bounds(g, mesh, cluster, ann, limit);
}

/// The Lagrangian pick fits, is no cheaper than the optimum, and its reported gap brackets it.
fn lagrangian_bounds(
    g: &Graph,
    mesh: &Mesh,
    cluster: &Cluster,
    ann: &[Annotation],
    limit: Option<f64>,
) {
    let opts = |solver| AutoOptions {
        solver,
        memory_limit: limit,
        ..AutoOptions::default()
    };
    let lag = auto_shard(g, mesh, cluster, ann, &opts(Solver::Lagrangian)).unwrap();
    let all = auto_shard(g, mesh, cluster, ann, &opts(Solver::Exhaustive)).unwrap();
    match (lag, all) {
        (Some(a), Some(b)) => {
            let tol = 1e-9 * b.seconds.max(1e-12) + 1e-12;
            assert!(a.seconds >= b.seconds - tol, "Lagrangian below the optimum");
            let bound = a.seconds * (1.0 - a.gap);
            assert!(
                bound <= b.seconds + tol,
                "mesh {mesh}, limit {limit:?}: Lagrangian bound {bound} s above the optimum {} s",
                b.seconds
            );
            if let Some(l) = limit {
                assert!(
                    a.memory <= l * (1.0 + 1e-9),
                    "Lagrangian pick over the limit"
                );
            }
        }
        (None, None) => {}
        (a, b) => panic!(
            "Lagrangian, mesh {mesh}: feasible {}, enumeration feasible {}",
            a.is_some(),
            b.is_some()
        ),
    }
}

/// `solver`'s optimum equals the enumeration's, fits the limit and keeps the annotations.
fn against_enumeration(
    solver: Solver,
    g: &Graph,
    mesh: &Mesh,
    cluster: &Cluster,
    ann: &[Annotation],
    limit: Option<f64>,
) {
    let opts = |solver| AutoOptions {
        solver,
        memory_limit: limit,
        ..AutoOptions::default()
    };
    let ilp = auto_shard(g, mesh, cluster, ann, &opts(solver)).unwrap();
    let all = auto_shard(g, mesh, cluster, ann, &opts(Solver::Exhaustive)).unwrap();
    match (ilp, all) {
        (Some(a), Some(b)) => {
            let tol = 1e-9 * b.seconds.max(1e-12) + 1e-12;
            assert!(
                (a.seconds - b.seconds).abs() <= tol,
                "{solver:?}, mesh {mesh}, limit {limit:?}: {} s, enumeration {} s",
                a.seconds,
                b.seconds
            );
            assert_eq!(a.gap, 0.0, "{solver:?} reports a gap on a small graph");
            if let Some(l) = limit {
                assert!(
                    a.memory <= l * (1.0 + 1e-9),
                    "ILP pick over the memory limit"
                );
            }
            for an in ann {
                let v = g.find(&an.value).unwrap();
                assert_eq!(a.assignment.shardings[v.index()].dims, an.sharding.dims);
                assert_eq!(b.assignment.shardings[v.index()].dims, an.sharding.dims);
            }
        }
        (None, None) => {}
        (a, b) => panic!(
            "{solver:?}, mesh {mesh}: feasible {}, enumeration feasible {}",
            a.is_some(),
            b.is_some()
        ),
    }
}

#[test]
fn ilp_optimum_equals_exhaustive_enumeration_on_random_graphs() {
    let catalog = Catalog::builtin();
    let meshes = [
        ("a100-80gb:1x4", "dp=2,tp=2"),
        ("a100-80gb:1x8", "dp=2,tp=4"),
    ];
    for (spec, mesh) in meshes {
        let cluster = Cluster::parse(spec, &catalog).unwrap();
        let mesh: Mesh = mesh.parse().unwrap();
        for seed in 0..6u64 {
            let mut rng = Rng(seed * 7919 + 1);
            let ops = 4 + rng.below(9); // 4..=12 ops, the final sum included
                                        // Sizes large enough that communication and compute both matter.
            let g = random_graph(&mut rng, ops, 512);
            both(&g, &mesh, &cluster, &[], None);
            // A memory limit between the least and the most the unconstrained pick holds.
            let free = auto_shard(&g, &mesh, &cluster, &[], &AutoOptions::default())
                .unwrap()
                .unwrap();
            both(&g, &mesh, &cluster, &[], Some(free.memory * 0.6 + 1.0));
            // An annotation on the first parameter and on the input is kept.
            let ann = vec![
                Annotation {
                    value: "w0".into(),
                    sharding: Sharding::from_dims(&[&[], &["tp"]]),
                    priority: 0,
                },
                Annotation {
                    value: "x".into(),
                    sharding: Sharding::from_dims(&[&["dp"], &[]]),
                    priority: 0,
                },
            ];
            both(&g, &mesh, &cluster, &ann, None);
        }
    }
}
