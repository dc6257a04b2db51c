//! Gradient samples of the ops that run on a mesh or across stages: `axis_index`, the
//! collectives, and send/recv. Each runs on two devices (or two stages).

use shardc_ir::{BinaryFn, DType, Literal, Mesh, Op, ReduceFn, TensorType, UnaryFn, ValueId};

use super::{Place, Sample, B};

/// Samples for `op`, one of the mesh and pipeline ops.
pub(super) fn collective_samples(op: &Op) -> Vec<Sample> {
    let name = op.name().to_string();
    match op {
        Op::AxisIndex { .. } => {
            let mut b = mesh_builder();
            let x = b.p(&[3]);
            let i = b.op(
                Op::AxisIndex {
                    axes: vec!["x".into()],
                },
                vec![],
                Some(TensorType::scalar(DType::I32)),
            );
            let f = b.op(Op::Convert, vec![i], Some(B::f64t(&[])));
            let f = b.op(Op::Broadcast { dims: vec![] }, vec![f], Some(B::f64t(&[3])));
            let one = b.op(
                Op::Constant {
                    value: Literal::Splat(1.0),
                },
                vec![],
                Some(B::f64t(&[3])),
            );
            let f = b.op(
                Op::Binary {
                    func: BinaryFn::Add,
                },
                vec![f, one],
                None,
            );
            let y = b.op(
                Op::Binary {
                    func: BinaryFn::Mul,
                },
                vec![x, f],
                None,
            );
            vec![on_mesh(name, b, y)]
        }
        Op::AllReduce { .. } | Op::ReduceScatter { .. } => {
            [ReduceFn::Sum, ReduceFn::Max, ReduceFn::Min]
                .into_iter()
                .map(|func| {
                    let mut b = mesh_builder();
                    let x = b.p(&[4, 3]);
                    let axes = vec!["x".into()];
                    let reduction = match op {
                        Op::AllReduce { .. } => Op::AllReduce { axes, func },
                        _ => Op::ReduceScatter { dim: 0, axes, func },
                    };
                    let what = format!("{} {}", reduction.name(), func.name());
                    let y = b.op(reduction, vec![x], None);
                    on_mesh(what, b, y)
                })
                .collect()
        }
        Op::AllGather { .. } => {
            let mut b = mesh_builder();
            let x = b.p(&[2, 3]);
            let y = b.op(
                Op::AllGather {
                    dim: 1,
                    axes: vec!["x".into()],
                },
                vec![x],
                None,
            );
            vec![on_mesh(name, b, y)]
        }
        Op::AllToAll { .. } => {
            let mut b = mesh_builder();
            let x = b.p(&[4, 3]);
            let y = b.op(
                Op::AllToAll {
                    split_dim: 0,
                    concat_dim: 1,
                    axes: vec!["x".into()],
                },
                vec![x],
                None,
            );
            vec![on_mesh(name, b, y)]
        }
        Op::CollectivePermute { .. } => {
            let mut b = mesh_builder();
            let x = b.p(&[2, 3]);
            let y = b.op(
                Op::CollectivePermute {
                    axes: vec!["x".into()],
                    pairs: vec![(0, 1)],
                },
                vec![x],
                None,
            );
            let y = b.op(
                Op::Binary {
                    func: BinaryFn::Add,
                },
                vec![y, x],
                None,
            );
            vec![on_mesh(name, b, y)]
        }
        Op::Send { .. } | Op::Recv { .. } => {
            let mut b0 = B::new();
            let x = b0.p(&[2, 3]);
            let sq = b0.op(
                Op::Binary {
                    func: BinaryFn::Mul,
                },
                vec![x, x],
                None,
            );
            let sent = b0.op(
                Op::Send {
                    to_stage: 1,
                    tag: "t".into(),
                },
                vec![sq],
                None,
            );
            let mut b1 = B::new();
            b1.n = 100;
            let r = b1.op(
                Op::Recv {
                    from_stage: 0,
                    tag: "t".into(),
                },
                vec![],
                Some(B::f64t(&[2, 3])),
            );
            let w = b1.p(&[2, 3]);
            let y = b1.op(
                Op::Binary {
                    func: BinaryFn::Mul,
                },
                vec![r, w],
                None,
            );
            let y = b1.op(
                Op::Unary {
                    func: UnaryFn::Tanh,
                },
                vec![y],
                None,
            );
            vec![Sample {
                what: "send and recv".into(),
                programs: vec![b0.finish(sent), b1.finish(y)],
                place: Place::Pipeline,
            }]
        }
        other => unreachable!("collective_samples called on {}", other.name()),
    }
}

fn two_devices() -> Mesh {
    Mesh::new(&[("x", 2)]).unwrap()
}

/// A `shard_map` region on a 2x2 mesh, run by the reference executor (which writes the
/// region out per device): rows split over `x` and replicated over `y`, each device's block
/// scaled by its coordinate, summed over `y` inside, and put back together.
pub(super) fn manual_region() -> Vec<Sample> {
    let mesh = Mesh::new(&[("x", 2), ("y", 2)]).unwrap();
    let mut b = B::new();
    b.g.mesh = Some(mesh);
    let x = b.p(&[4, 3]);
    let dims = vec![vec!["x".to_string()], vec![]];
    let blk = b.op(Op::FullToShard { dims: dims.clone() }, vec![x], None);
    let i = b.op(
        Op::AxisIndex {
            axes: vec!["x".into(), "y".into()],
        },
        vec![],
        Some(TensorType::scalar(DType::I32)),
    );
    let f = b.op(Op::Convert, vec![i], Some(B::f64t(&[])));
    let f = b.op(
        Op::Broadcast { dims: vec![] },
        vec![f],
        Some(B::f64t(&[2, 3])),
    );
    let sq = b.op(
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![blk, blk],
        None,
    );
    let y = b.op(
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![sq, f],
        None,
    );
    let y = b.op(
        Op::AllReduce {
            axes: vec!["y".into()],
            func: ReduceFn::Sum,
        },
        vec![y],
        None,
    );
    let whole = b.op(Op::ShardToFull { dims }, vec![y], None);
    vec![Sample {
        what: "shard_map region (full_to_shard, shard_to_full)".into(),
        programs: vec![b.finish(whole)],
        place: Place::Single,
    }]
}

fn mesh_builder() -> B {
    let mut b = B::new();
    b.g.mesh = Some(two_devices());
    b
}

fn on_mesh(what: impl Into<String>, b: B, y: ValueId) -> Sample {
    Sample {
        what: what.into(),
        programs: vec![b.finish(y)],
        place: Place::Mesh(two_devices()),
    }
}
