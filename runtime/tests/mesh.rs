//! The threads backend: every collective against hand-computed results, SPMD programs against
//! the reference executor, send/recv between stages, and failure handling.

use std::time::{Duration, Instant};

use shardc_ir::{BinaryFn, DType, Graph, Mesh, Op, ReduceFn, Role, TensorType, ValueId};
use shardc_runtime::{
    execute, launch, max_relative_error, random_inputs, run_mpmd, run_spmd, run_spmd_per_device,
    Communicator, InjectedFailure, MeshOptions, RuntimeError, Stage, Tensor,
};

fn ty(dims: &[u64]) -> TensorType {
    TensorType::new(DType::F32, dims.to_vec())
}

fn t(dims: &[u64], v: &[f64]) -> Tensor {
    Tensor::from_f64(ty(dims), v).unwrap()
}

fn axes(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// A program over `mesh` with one f32 input of local shape `dims` and one collective `op`.
fn one_collective(mesh: &Mesh, dims: &[u64], op: Op) -> Graph {
    let mut g = Graph::new("collective");
    g.mesh = Some(mesh.clone());
    let x = g
        .push("x", Op::Input { init: None }, vec![], Some(ty(dims)))
        .unwrap();
    g.nodes[x.index()].role = Role::Input;
    let y = g.push("y", op, vec![x], None).unwrap();
    g.outputs.push(y);
    g
}

/// Runs `op` with device `d`'s input `f(d)` and returns each device's output values.
fn run_collective(
    mesh: &str,
    dims: &[u64],
    op: Op,
    f: impl Fn(usize) -> Vec<f64>,
) -> Vec<Vec<f64>> {
    let mesh: Mesh = mesh.parse().unwrap();
    let g = one_collective(&mesh, dims, op);
    let inputs = (0..mesh.devices.len())
        .map(|d| vec![t(dims, &f(d))])
        .collect();
    run_spmd(&g, &mesh, inputs)
        .unwrap()
        .into_iter()
        .map(|outs| outs[0].to_f64_vec())
        .collect()
}

#[test]
fn all_reduce_sums_and_maxes_over_2_and_4_devices() {
    let sum = Op::AllReduce {
        axes: axes(&["x"]),
        func: ReduceFn::Sum,
    };
    let out = run_collective("x=2", &[3], sum.clone(), |d| {
        vec![d as f64, 1.0, 10.0 * d as f64]
    });
    assert_eq!(out, vec![vec![1.0, 2.0, 10.0]; 2]);
    // 4 devices, 5 elements: chunks of uneven length in the reduce-scatter phase.
    let out = run_collective("x=4", &[5], sum, |d| {
        (0..5).map(|i| (d * 10 + i) as f64).collect()
    });
    assert_eq!(out, vec![vec![60.0, 64.0, 68.0, 72.0, 76.0]; 4]);
    let max = Op::AllReduce {
        axes: axes(&["x"]),
        func: ReduceFn::Max,
    };
    let out = run_collective("x=4", &[2], max, |d| vec![d as f64, -(d as f64)]);
    assert_eq!(out, vec![vec![3.0, 0.0]; 4]);
}

#[test]
fn all_gather_joins_shards_in_rank_order() {
    let op = Op::AllGather {
        dim: 1,
        axes: axes(&["x"]),
    };
    let out = run_collective("x=2", &[2, 1], op, |d| vec![d as f64, 10.0 + d as f64]);
    assert_eq!(out, vec![vec![0.0, 1.0, 10.0, 11.0]; 2]);
    let op = Op::AllGather {
        dim: 0,
        axes: axes(&["x"]),
    };
    let out = run_collective("x=4", &[1], op, |d| vec![d as f64 * 2.0]);
    assert_eq!(out, vec![vec![0.0, 2.0, 4.0, 6.0]; 4]);
}

#[test]
fn reduce_scatter_leaves_each_rank_its_chunk_of_the_sum() {
    let op = Op::ReduceScatter {
        dim: 0,
        axes: axes(&["x"]),
        func: ReduceFn::Sum,
    };
    // Device d holds [d, d+1, ..., d+3]; the sum is [6, 10, 14, 18] split into one per rank.
    let out = run_collective("x=4", &[4], op, |d| {
        (0..4).map(|i| (d + i) as f64).collect()
    });
    assert_eq!(out, vec![vec![6.0], vec![10.0], vec![14.0], vec![18.0]]);
    let op = Op::ReduceScatter {
        dim: 1,
        axes: axes(&["x"]),
        func: ReduceFn::Sum,
    };
    let out = run_collective("x=2", &[2, 2], op, |d| vec![1.0, 2.0, 3.0, 4.0 * d as f64]);
    assert_eq!(out, vec![vec![2.0, 6.0], vec![4.0, 4.0]]);
}

#[test]
fn all_to_all_transposes_chunks_between_ranks() {
    // Device d holds [4d, 4d+1, 4d+2, 4d+3] as [4, 1]; rank r gets chunk r of everyone's,
    // joined along dim 1: [2 rows from device 0 | 2 rows from device 1].
    let op = Op::AllToAll {
        split_dim: 0,
        concat_dim: 1,
        axes: axes(&["x"]),
    };
    let out = run_collective("x=2", &[4, 1], op, |d| {
        (0..4).map(|i| (4 * d + i) as f64).collect()
    });
    assert_eq!(
        out,
        vec![vec![0.0, 4.0, 1.0, 5.0], vec![2.0, 6.0, 3.0, 7.0]]
    );
    let op = Op::AllToAll {
        split_dim: 0,
        concat_dim: 0,
        axes: axes(&["x"]),
    };
    let out = run_collective("x=4", &[4], op, |d| {
        (0..4).map(|i| (10 * d + i) as f64).collect()
    });
    assert_eq!(out[1], vec![1.0, 11.0, 21.0, 31.0]);
    assert_eq!(out[3], vec![3.0, 13.0, 23.0, 33.0]);
}

#[test]
fn collective_permute_shifts_and_zero_fills_devices_that_receive_nothing() {
    // 0 -> 1 -> 2 -> 3, nobody sends to 0.
    let op = Op::CollectivePermute {
        axes: vec!["x".into()],
        pairs: vec![(0, 1), (1, 2), (2, 3)],
    };
    let out = run_collective("x=4", &[2], op, |d| vec![d as f64 + 1.0, -1.0]);
    assert_eq!(
        out,
        vec![
            vec![0.0, 0.0],
            vec![1.0, -1.0],
            vec![2.0, -1.0],
            vec![3.0, -1.0]
        ]
    );
    let ring = Op::CollectivePermute {
        axes: vec!["x".into()],
        pairs: vec![(0, 1), (1, 0)],
    };
    let out = run_collective("x=2", &[1], ring, |d| vec![d as f64 + 5.0]);
    assert_eq!(out, vec![vec![6.0], vec![5.0]]);
}

#[test]
fn collective_permute_over_two_axes_moves_blocks_between_any_devices() {
    // Transpose the 2x2 mesh: (x, y) sends to (y, x); linear coordinates over [x, y].
    let op = Op::CollectivePermute {
        axes: vec!["x".into(), "y".into()],
        pairs: vec![(0, 0), (1, 2), (2, 1), (3, 3)],
    };
    let out = run_collective("x=2,y=2", &[1], op, |d| vec![d as f64]);
    assert_eq!(out, vec![vec![0.0], vec![2.0], vec![1.0], vec![3.0]]);
    // Over [y, x] the linear coordinate of device (x, y) is 2y + x: a shift along y.
    let op = Op::CollectivePermute {
        axes: vec!["y".into(), "x".into()],
        pairs: vec![(0, 2), (1, 3), (2, 0), (3, 1)],
    };
    let out = run_collective("x=2,y=2", &[1], op, |d| vec![d as f64]);
    assert_eq!(out, vec![vec![1.0], vec![0.0], vec![3.0], vec![2.0]]);
}

#[test]
fn subgroups_of_a_2x2_mesh_reduce_only_along_their_axis() {
    // Positions (x, y): 0=(0,0) 1=(0,1) 2=(1,0) 3=(1,1); device d holds [d].
    let f = |d: usize| vec![d as f64];
    let over_x = run_collective(
        "x=2,y=2",
        &[1],
        Op::AllReduce {
            axes: axes(&["x"]),
            func: ReduceFn::Sum,
        },
        f,
    );
    assert_eq!(over_x, vec![vec![2.0], vec![4.0], vec![2.0], vec![4.0]]);
    let over_y = run_collective(
        "x=2,y=2",
        &[1],
        Op::AllReduce {
            axes: axes(&["y"]),
            func: ReduceFn::Sum,
        },
        f,
    );
    assert_eq!(over_y, vec![vec![1.0], vec![1.0], vec![5.0], vec![5.0]]);
    let both = run_collective(
        "x=2,y=2",
        &[1],
        Op::AllReduce {
            axes: axes(&["x", "y"]),
            func: ReduceFn::Sum,
        },
        f,
    );
    assert_eq!(both, vec![vec![6.0]; 4]);
    // Gathering over (y, x) orders ranks y-major: positions 0, 2, 1, 3.
    let g = run_collective(
        "x=2,y=2",
        &[1],
        Op::AllGather {
            dim: 0,
            axes: axes(&["y", "x"]),
        },
        f,
    );
    assert_eq!(g[3], vec![0.0, 2.0, 1.0, 3.0]);
    let g = run_collective(
        "x=2,y=2",
        &[1],
        Op::AllGather {
            dim: 0,
            axes: axes(&["y"]),
        },
        f,
    );
    assert_eq!(
        g,
        vec![
            vec![0.0, 1.0],
            vec![0.0, 1.0],
            vec![2.0, 3.0],
            vec![2.0, 3.0]
        ]
    );
}

#[test]
fn axis_index_is_the_linear_index_over_the_axes() {
    let mesh: Mesh = "x=2,y=3".parse().unwrap();
    let mut g = Graph::new("ids");
    g.mesh = Some(mesh.clone());
    let a = g
        .push(
            "a",
            Op::AxisIndex { axes: axes(&["y"]) },
            vec![],
            Some(TensorType::scalar(DType::I32)),
        )
        .unwrap();
    let b = g
        .push(
            "b",
            Op::AxisIndex {
                axes: axes(&["y", "x"]),
            },
            vec![],
            Some(TensorType::scalar(DType::I32)),
        )
        .unwrap();
    g.outputs = vec![a, b];
    let out = run_spmd(&g, &mesh, vec![vec![]; 6]).unwrap();
    let got: Vec<(f64, f64)> = out
        .iter()
        .map(|o| (o[0].scalar_f64().unwrap(), o[1].scalar_f64().unwrap()))
        .collect();
    // Position 4 is (x=1, y=1): y index 1, (y, x) index 1*2 + 1 = 3.
    assert_eq!(got[4], (1.0, 3.0));
    assert_eq!(
        got.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
    );
}

fn input(g: &mut Graph, name: &str, dims: &[u64]) -> ValueId {
    let v = g
        .push(name, Op::Input { init: None }, vec![], Some(ty(dims)))
        .unwrap();
    g.nodes[v.index()].role = Role::Input;
    v
}

fn matmul(g: &mut Graph, name: &str, a: ValueId, b: ValueId) -> ValueId {
    let op = Op::DotGeneral {
        lhs_batch: vec![],
        rhs_batch: vec![],
        lhs_contract: vec![1],
        rhs_contract: vec![0],
    };
    g.push(name, op, vec![a, b], None).unwrap()
}

/// Column block `r` of `n` of a row-major [rows, cols] matrix.
fn cols(v: &[f64], rows: usize, cols: usize, n: usize, r: usize) -> Vec<f64> {
    let c = cols / n;
    (0..rows)
        .flat_map(|i| v[i * cols + r * c..i * cols + (r + 1) * c].to_vec())
        .collect()
}

#[test]
fn row_parallel_matmul_with_one_all_reduce_equals_the_reference() {
    // y = x·w with x split by columns and w by rows over tp=4: local products are partial
    // sums, and one all-reduce completes them.
    let (m, k, n, tp) = (3u64, 8u64, 5u64, 4usize);
    let mut full = Graph::new("mm");
    let x = input(&mut full, "x", &[m, k]);
    let w = input(&mut full, "w", &[k, n]);
    let y = matmul(&mut full, "y", x, w);
    full.outputs.push(y);
    let ins = random_inputs(&full, 17);
    let want = execute(&full, &ins).unwrap().remove(0);

    let mesh: Mesh = format!("tp={tp}").parse().unwrap();
    let mut local = Graph::new("mm.tp");
    local.mesh = Some(mesh.clone());
    let kl = k / tp as u64;
    let x = input(&mut local, "x", &[m, kl]);
    let w = input(&mut local, "w", &[kl, n]);
    let p = matmul(&mut local, "partial", x, w);
    let y = local
        .push(
            "y",
            Op::AllReduce {
                axes: axes(&["tp"]),
                func: ReduceFn::Sum,
            },
            vec![p],
            None,
        )
        .unwrap();
    local.outputs.push(y);
    let (xv, wv) = (ins[0].to_f64_vec(), ins[1].to_f64_vec());
    let per_device = (0..tp)
        .map(|r| {
            vec![
                t(&[m, kl], &cols(&xv, m as usize, k as usize, tp, r)),
                t(
                    &[kl, n],
                    &wv[r * (kl * n) as usize..(r + 1) * (kl * n) as usize],
                ),
            ]
        })
        .collect();
    let out = run_spmd(&local, &mesh, per_device).unwrap();
    for dev in &out {
        let err = max_relative_error(&dev[0], &want).unwrap();
        assert!(err <= 1e-5, "relative error {err}");
    }
}

#[test]
fn stages_pass_activations_with_send_and_recv() {
    // Stage 0 (devices 0, 1 on dp=2) doubles its input and sends it; stage 1 (devices 2, 3)
    // receives at the same position and adds one.
    let mesh: Mesh = "dp=2".parse().unwrap();
    let mut s0 = Graph::new("stage0");
    s0.mesh = Some(mesh.clone());
    let x = input(&mut s0, "x", &[2]);
    let d = s0
        .push(
            "d",
            Op::Binary {
                func: BinaryFn::Add,
            },
            vec![x, x],
            None,
        )
        .unwrap();
    let sent = s0
        .push(
            "send",
            Op::Send {
                to_stage: 1,
                tag: "act".into(),
            },
            vec![d],
            None,
        )
        .unwrap();
    s0.outputs.push(sent);
    let mut s1 = Graph::new("stage1");
    s1.mesh = Some(mesh.clone());
    let r = s1
        .push(
            "recv",
            Op::Recv {
                from_stage: 0,
                tag: "act".into(),
            },
            vec![],
            Some(ty(&[2])),
        )
        .unwrap();
    let one = s1
        .push(
            "one",
            Op::Constant {
                value: shardc_ir::Literal::Splat(1.0),
            },
            vec![],
            Some(ty(&[2])),
        )
        .unwrap();
    let y = s1
        .push(
            "y",
            Op::Binary {
                func: BinaryFn::Add,
            },
            vec![r, one],
            None,
        )
        .unwrap();
    s1.outputs.push(y);
    let stages = [
        Stage {
            program: &s0,
            mesh: mesh.clone(),
            devices: vec![0, 1],
        },
        Stage {
            program: &s1,
            mesh,
            devices: vec![2, 3],
        },
    ];
    let inputs = vec![
        vec![t(&[2], &[1.0, 2.0])],
        vec![t(&[2], &[3.0, 4.0])],
        vec![],
        vec![],
    ];
    let out = run_mpmd(&stages, inputs, &MeshOptions::default()).unwrap();
    let out: Vec<Vec<f64>> = out
        .into_iter()
        .map(|r| r.unwrap()[0].to_f64_vec())
        .collect();
    assert_eq!(
        out,
        vec![
            vec![2.0, 4.0],
            vec![6.0, 8.0],
            vec![3.0, 5.0],
            vec![7.0, 9.0]
        ]
    );
}

/// A data-parallel "step": matmul, all-reduce, nonlinearity, matmul, all-reduce.
fn two_collective_step(mesh: &Mesh) -> Graph {
    let mut g = Graph::new("step");
    g.mesh = Some(mesh.clone());
    let x = input(&mut g, "x", &[16, 16]);
    let h = matmul(&mut g, "h", x, x);
    let r1 = g
        .push(
            "r1",
            Op::AllReduce {
                axes: axes(&["dp"]),
                func: ReduceFn::Sum,
            },
            vec![h],
            None,
        )
        .unwrap();
    let a = g
        .push(
            "a",
            Op::Unary {
                func: shardc_ir::UnaryFn::Tanh,
            },
            vec![r1],
            None,
        )
        .unwrap();
    let h2 = matmul(&mut g, "h2", a, x);
    let r2 = g
        .push(
            "r2",
            Op::AllReduce {
                axes: axes(&["dp"]),
                func: ReduceFn::Sum,
            },
            vec![h2],
            None,
        )
        .unwrap();
    g.outputs.push(r2);
    g
}

fn check_fault(panic: bool) {
    let mesh: Mesh = "dp=4".parse().unwrap();
    let g = two_collective_step(&mesh);
    let inputs: Vec<Vec<Tensor>> = (0..4).map(|d| random_inputs(&g, d)).collect();
    let options = MeshOptions {
        fail: Some(InjectedFailure {
            device: 2,
            node: "h2".into(),
            panic,
        }),
        ..MeshOptions::default()
    };
    let start = Instant::now();
    let results = run_spmd_per_device(&g, &mesh, inputs, &options).unwrap();
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    for (d, r) in results.iter().enumerate() {
        match r {
            Err(RuntimeError::Device { device: 2, message }) if d == 2 => {
                assert!(message.contains("injected"), "{message}");
            }
            Err(RuntimeError::Aborted {
                device,
                failed: 2,
                cause,
            }) if *device == d => {
                assert!(cause.contains("injected"), "{cause}");
            }
            other => panic!("device {d}: unexpected {other:?}"),
        }
    }
}

#[test]
fn a_device_that_fails_mid_step_stops_every_device_promptly() {
    check_fault(false);
}

#[test]
fn a_device_that_panics_mid_step_stops_every_device_promptly() {
    check_fault(true);
}

#[test]
fn run_spmd_reports_the_failing_device_not_the_aborts() {
    let mesh: Mesh = "dp=2".parse().unwrap();
    let g = two_collective_step(&mesh);
    // Device 1 gets an input of the wrong shape.
    let inputs = vec![random_inputs(&g, 0), vec![t(&[2], &[0.0, 0.0])]];
    let e = run_spmd(&g, &mesh, inputs).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("device 1: input 0 (`x`): expected f32[16,16], got f32[2]"),
        "{e}"
    );
}

#[test]
fn waits_are_bounded_when_a_peer_never_arrives() {
    let mesh: Mesh = "x=2".parse().unwrap();
    let start = Instant::now();
    let results = launch(&[(mesh, vec![0, 1])], Duration::from_millis(200), |comm| {
        if comm.device() == 0 {
            comm.all_reduce(t(&[1], &[1.0]), &axes(&["x"]), ReduceFn::Sum)
                .map(|_| ())
        } else {
            Ok(())
        }
    })
    .unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(results[0], Err(RuntimeError::Timeout { device: 0, .. })),
        "{:?}",
        results[0]
    );
    assert!(results[1].is_ok());
}

#[test]
fn mismatched_collectives_are_reported_not_hung() {
    let mesh: Mesh = "x=2".parse().unwrap();
    let results = launch(&[(mesh, vec![0, 1])], Duration::from_secs(30), |comm| {
        let x = t(&[2], &[1.0, 2.0]);
        if comm.device() == 0 {
            comm.all_gather(x, 0, &axes(&["x"])).map(|_| ())
        } else {
            comm.all_reduce(x, &axes(&["x"]), ReduceFn::Sum).map(|_| ())
        }
    })
    .unwrap();
    let msgs: Vec<String> = results
        .iter()
        .map(|r| r.as_ref().unwrap_err().to_string())
        .collect();
    assert!(
        msgs.iter().any(|m| m.contains("collective mismatch")),
        "{msgs:?}"
    );
}

#[test]
fn repeated_all_reduces_reuse_buffers_and_stay_correct() {
    // Each device starts with d+1 (sum 10 over 4 devices); every round multiplies by 4, except
    // the first, which gives 10.
    let mesh: Mesh = "x=4".parse().unwrap();
    let results = launch(
        &[(mesh, (0..4).collect())],
        Duration::from_secs(30),
        |comm| {
            let d = comm.device() as f64;
            let mut x = t(&[7], &[d + 1.0; 7]);
            let mut seen = Vec::new();
            for _ in 0..3 {
                x = comm.all_reduce(x, &axes(&["x"]), ReduceFn::Sum)?;
                seen.push(x.to_f64_vec());
            }
            Ok(seen)
        },
    )
    .unwrap();
    for r in results {
        assert_eq!(
            r.unwrap(),
            vec![vec![10.0; 7], vec![40.0; 7], vec![160.0; 7]]
        );
    }
}

#[test]
fn a_value_used_after_its_collective_is_not_consumed_by_it() {
    // y = all_reduce(x) + x: x's buffer must survive the all-reduce that reads it.
    let mesh: Mesh = "x=2".parse().unwrap();
    let mut g = Graph::new("keep");
    g.mesh = Some(mesh.clone());
    let x = input(&mut g, "x", &[3]);
    let r = g
        .push(
            "r",
            Op::AllReduce {
                axes: axes(&["x"]),
                func: ReduceFn::Sum,
            },
            vec![x],
            None,
        )
        .unwrap();
    let r2 = g
        .push(
            "r2",
            Op::AllReduce {
                axes: axes(&["x"]),
                func: ReduceFn::Sum,
            },
            vec![r],
            None,
        )
        .unwrap();
    let y = g
        .push(
            "y",
            Op::Binary {
                func: BinaryFn::Add,
            },
            vec![r2, x],
            None,
        )
        .unwrap();
    g.outputs = vec![y, r];
    let inputs = vec![
        vec![t(&[3], &[1.0, 2.0, 3.0])],
        vec![t(&[3], &[10.0, 20.0, 30.0])],
    ];
    let out = run_spmd(&g, &mesh, inputs).unwrap();
    assert_eq!(out[0][0].to_f64_vec(), vec![23.0, 46.0, 69.0]);
    assert_eq!(out[1][0].to_f64_vec(), vec![32.0, 64.0, 96.0]);
    assert_eq!(out[1][1].to_f64_vec(), vec![11.0, 22.0, 33.0]);
}
