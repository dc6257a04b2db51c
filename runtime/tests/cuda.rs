//! The CUDA backend against the CPU reference executor: every kernel family, fused chains,
//! softmax and layer norm, a GPT training step, host-staged and NCCL collectives. Each test
//! skips, saying why, where there is no GPU (or no CUDA driver or library).

#![cfg(feature = "cuda")]

mod common;

use common::{input, op, op_ty, tensor, ty};
use shardc_ir::zoo::{gpt, GptConfig, GptShardings};
use shardc_ir::{
    training_step, BinaryFn, CompareDir, Conv, DType, Graph, Mesh, Op, Optimizer, ReduceFn, Role,
    TrainOptions, UnaryFn, ValueId,
};
use shardc_runtime::cuda::{
    execute_cuda, probe, run_spmd_cuda, run_spmd_cuda_rank, CudaOptions, CudaReport, FileIds,
    NcclMesh,
};
use shardc_runtime::{execute, max_relative_error, random_inputs, run_spmd, Tensor};

/// Whether a GPU is usable; prints why not.
fn gpu() -> bool {
    match probe() {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// Runs `g` on the GPU and on the reference executor with `inputs` and checks every output.
/// Without a GPU, only the reference runs (so the test's graphs are still checked).
fn check_with(g: &Graph, inputs: &[Tensor], tol: f64, options: &CudaOptions) -> CudaReport {
    let want = execute(g, inputs).unwrap();
    if !gpu() {
        return CudaReport::default();
    }
    let (got, report) = execute_cuda(g, inputs, options).unwrap();
    for ((v, a), b) in g.outputs.iter().zip(&got).zip(&want) {
        let err = max_relative_error(a, b).unwrap();
        assert!(
            err <= tol,
            "output `{}`: relative error {err:e} above {tol:e}\ngot  {:?}\nwant {:?}",
            g.node(*v).name,
            &a.to_f64_vec()[..a.len().min(8)],
            &b.to_f64_vec()[..b.len().min(8)]
        );
    }
    report
}

fn check(g: &Graph, tol: f64) -> CudaReport {
    check_with(g, &random_inputs(g, 3), tol, &CudaOptions::default())
}

#[test]
fn without_a_gpu_runs_fail_with_a_clear_error_not_a_panic() {
    let mut g = Graph::new("one");
    let x = input(&mut g, "x", DType::F32, &[2]);
    g.outputs.push(x);
    let inputs = [tensor(DType::F32, &[2], &[1.0, 2.0])];
    match probe() {
        Ok(n) => {
            assert!(n > 0);
            assert_eq!(
                execute_cuda(&g, &inputs, &CudaOptions::default())
                    .unwrap()
                    .0[0]
                    .to_f64_vec(),
                vec![1.0, 2.0]
            );
        }
        Err(e) => {
            let m = e.to_string();
            assert!(
                m.starts_with("no CUDA") || m.starts_with("no NVRTC") || m.starts_with("no cuBLAS"),
                "{m}"
            );
            assert_eq!(
                execute_cuda(&g, &inputs, &CudaOptions::default()).unwrap_err(),
                e
            );
        }
    }
}

/// Every unary and binary float function, each an output of one fused chain with its inputs.
fn float_elementwise(dtype: DType) -> Graph {
    let mut g = Graph::new("elementwise");
    let x = input(&mut g, "x", dtype, &[33, 17]);
    let y = input(&mut g, "y", dtype, &[33, 17]);
    // The functions of floating-point values (`not` and `popcnt` are bitwise).
    for func in UnaryFn::ALL
        .into_iter()
        .filter(|f| !matches!(f, UnaryFn::Not | UnaryFn::Popcnt))
    {
        // x*y + x, then the function: three nodes in one kernel.
        let m = op(
            &mut g,
            &format!("m_{}", func.name()),
            Op::Binary {
                func: BinaryFn::Mul,
            },
            vec![x, y],
        );
        let a = op(
            &mut g,
            &format!("a_{}", func.name()),
            Op::Binary {
                func: BinaryFn::Add,
            },
            vec![m, x],
        );
        let u = op(&mut g, func.name(), Op::Unary { func }, vec![a]);
        g.outputs.push(u);
    }
    for func in BinaryFn::ALL.into_iter().filter(|f| {
        !matches!(
            f,
            BinaryFn::And
                | BinaryFn::Or
                | BinaryFn::Xor
                | BinaryFn::ShiftLeft
                | BinaryFn::ShiftRightLogical
                | BinaryFn::ShiftRightArithmetic
        )
    }) {
        let b = op(&mut g, func.name(), Op::Binary { func }, vec![x, y]);
        g.outputs.push(b);
    }
    let lt = op(
        &mut g,
        "lt",
        Op::Compare {
            dir: CompareDir::Lt,
        },
        vec![x, y],
    );
    let sel = op(&mut g, "select", Op::Select, vec![lt, x, y]);
    let i = op_ty(
        &mut g,
        "to_i32",
        Op::Convert,
        vec![sel],
        ty(DType::I32, &[33, 17]),
    );
    let back = op_ty(
        &mut g,
        "to_f64",
        Op::Convert,
        vec![i],
        ty(DType::F64, &[33, 17]),
    );
    g.outputs.extend([lt, back]);
    g
}

#[test]
fn fused_elementwise_kernels_match_the_reference_in_f32_bf16_and_f16() {
    check(&float_elementwise(DType::F32), 1e-6);
    // Both round every node's value to bf16/f16; only transcendental ulps can differ.
    check(&float_elementwise(DType::BF16), 1e-2);
    check(&float_elementwise(DType::F16), 1e-3);
}

#[test]
fn integer_and_bool_elementwise_kernels_wrap_and_saturate_like_the_reference() {
    let mut g = Graph::new("ints");
    let x = input(&mut g, "x", DType::I32, &[6]);
    let y = input(&mut g, "y", DType::I32, &[6]);
    let f = input(&mut g, "f", DType::F32, &[6]);
    for func in [
        BinaryFn::Add,
        BinaryFn::Sub,
        BinaryFn::Mul,
        BinaryFn::Div,
        BinaryFn::Max,
        BinaryFn::Min,
        BinaryFn::Pow,
    ] {
        let b = op(&mut g, func.name(), Op::Binary { func }, vec![x, y]);
        g.outputs.push(b);
    }
    let n = op(&mut g, "neg", Op::Unary { func: UnaryFn::Neg }, vec![x]);
    let e = op(
        &mut g,
        "eq",
        Op::Compare {
            dir: CompareDir::Eq,
        },
        vec![x, y],
    );
    let ne = op(&mut g, "not", Op::Unary { func: UnaryFn::Not }, vec![e]);
    let sat = op_ty(&mut g, "sat", Op::Convert, vec![f], ty(DType::I32, &[6]));
    g.outputs.extend([n, ne, sat]);
    let inputs = [
        tensor(
            DType::I32,
            &[6],
            &[i32::MAX as f64, -7.0, 7.0, 0.0, -1.0, 3.0],
        ),
        tensor(DType::I32, &[6], &[1.0, 2.0, 0.0, 5.0, -3.0, 4.0]),
        tensor(DType::F32, &[6], &[1e12, -1e12, f64::NAN, -2.7, 3.9, 0.0]),
    ];
    check_with(&g, &inputs, 0.0, &CudaOptions::default());
}

fn dot(lhs: (&[u64], DType), rhs: &[u64], dims: [&[usize]; 4]) -> Graph {
    let mut g = Graph::new("dot");
    let a = input(&mut g, "a", lhs.1, lhs.0);
    let b = input(&mut g, "b", lhs.1, rhs);
    let d = op(
        &mut g,
        "d",
        Op::DotGeneral {
            lhs_batch: dims[0].to_vec(),
            rhs_batch: dims[1].to_vec(),
            lhs_contract: dims[2].to_vec(),
            rhs_contract: dims[3].to_vec(),
        },
        vec![a, b],
    );
    g.outputs.push(d);
    g
}

#[test]
fn cublas_matmuls_match_the_reference_in_every_layout_and_dtype() {
    let tf32 = CudaOptions { tf32: true };
    for (d, tol) in [
        (DType::F32, 1e-5),
        (DType::F64, 1e-12),
        (DType::BF16, 1e-2),
        (DType::F16, 2e-3),
    ] {
        // [m, k] · [k, n]
        check(&dot((&[64, 48], d), &[48, 40], [&[], &[], &[1], &[0]]), tol);
        // Batched, lhs read transposed ([b, k, m]) and rhs transposed ([b, n, k]).
        check(
            &dot((&[3, 20, 24], d), &[3, 16, 20], [&[0], &[0], &[1], &[2]]),
            tol,
        );
        // Batch dim in the middle and two contracted dims: both operands permuted first.
        check(
            &dot(
                (&[5, 2, 6, 3], d),
                &[6, 3, 2, 7],
                [&[1], &[2], &[2, 3], &[0, 1]],
            ),
            tol,
        );
    }
    let g = dot((&[64, 96], DType::F32), &[96, 32], [&[], &[], &[1], &[0]]);
    check_with(&g, &random_inputs(&g, 1), 5e-3, &tf32);
}

#[test]
fn reductions_match_the_reference_over_any_dims() {
    for (d, tol) in [(DType::F32, 1e-6), (DType::BF16, 1e-2), (DType::I64, 0.0)] {
        let mut g = Graph::new("reduce");
        let x = input(&mut g, "x", d, &[6, 7, 300]);
        for (k, dims) in [vec![0], vec![2], vec![0, 2], vec![0, 1, 2]]
            .into_iter()
            .enumerate()
        {
            for func in [ReduceFn::Sum, ReduceFn::Max, ReduceFn::Min] {
                let r = op(
                    &mut g,
                    &format!("{}{k}", func.name()),
                    Op::Reduce {
                        func,
                        dims: dims.clone(),
                    },
                    vec![x],
                );
                g.outputs.push(r);
            }
        }
        check(&g, tol);
    }
}

/// softmax over the last dim and layer norm, as the model zoo writes them.
fn softmax_and_layer_norm(d: DType) -> Graph {
    let mut g = Graph::new("norms");
    let (rows, cols) = (64u64, 1000u64);
    let x = input(&mut g, "x", d, &[rows, cols]);
    let bc = |g: &mut Graph, name: &str, v: ValueId| {
        op_ty(
            g,
            name,
            Op::Broadcast { dims: vec![0] },
            vec![v],
            ty(d, &[rows, cols]),
        )
    };
    let mx = op(
        &mut g,
        "max",
        Op::Reduce {
            func: ReduceFn::Max,
            dims: vec![1],
        },
        vec![x],
    );
    let mxb = bc(&mut g, "max_b", mx);
    let sh = op(
        &mut g,
        "shift",
        Op::Binary {
            func: BinaryFn::Sub,
        },
        vec![x, mxb],
    );
    let ex = op(&mut g, "exp", Op::Unary { func: UnaryFn::Exp }, vec![sh]);
    let sm = op(
        &mut g,
        "sum",
        Op::Reduce {
            func: ReduceFn::Sum,
            dims: vec![1],
        },
        vec![ex],
    );
    let smb = bc(&mut g, "sum_b", sm);
    let softmax = op(
        &mut g,
        "softmax",
        Op::Binary {
            func: BinaryFn::Div,
        },
        vec![ex, smb],
    );
    let inv_n = op_ty(
        &mut g,
        "inv_n",
        Op::Constant {
            value: shardc_ir::Literal::Splat(1.0 / cols as f64),
        },
        vec![],
        ty(d, &[rows]),
    );
    let s1 = op(
        &mut g,
        "s1",
        Op::Reduce {
            func: ReduceFn::Sum,
            dims: vec![1],
        },
        vec![x],
    );
    let mean = op(
        &mut g,
        "mean",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![s1, inv_n],
    );
    let meanb = bc(&mut g, "mean_b", mean);
    let c = op(
        &mut g,
        "centered",
        Op::Binary {
            func: BinaryFn::Sub,
        },
        vec![x, meanb],
    );
    let sq = op(
        &mut g,
        "sq",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![c, c],
    );
    let s2 = op(
        &mut g,
        "s2",
        Op::Reduce {
            func: ReduceFn::Sum,
            dims: vec![1],
        },
        vec![sq],
    );
    let var = op(
        &mut g,
        "var",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![s2, inv_n],
    );
    let rs = op(
        &mut g,
        "rstd",
        Op::Unary {
            func: UnaryFn::Rsqrt,
        },
        vec![var],
    );
    let rsb = bc(&mut g, "rstd_b", rs);
    let norm = op(
        &mut g,
        "layer_norm",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![c, rsb],
    );
    g.outputs.extend([softmax, norm]);
    g
}

#[test]
fn softmax_and_layer_norm_match_the_reference() {
    check(&softmax_and_layer_norm(DType::F32), 1e-5);
    check(&softmax_and_layer_norm(DType::BF16), 2e-2);
}

#[test]
fn layout_kernels_move_elements_exactly_as_the_reference() {
    let mut g = Graph::new("layout");
    let x = input(&mut g, "x", DType::BF16, &[4, 1, 6]);
    let y = input(&mut g, "y", DType::BF16, &[4, 3, 6]);
    let i = input(&mut g, "i", DType::I32, &[]);
    let b = op_ty(
        &mut g,
        "broadcast",
        Op::Broadcast {
            dims: vec![0, 1, 2],
        },
        vec![x],
        ty(DType::BF16, &[4, 3, 6]),
    );
    let t = op(
        &mut g,
        "transpose",
        Op::Transpose {
            perm: vec![2, 0, 1],
        },
        vec![y],
    );
    let r = op(&mut g, "reverse", Op::Reverse { dims: vec![0, 2] }, vec![y]);
    let s = op(
        &mut g,
        "slice",
        Op::Slice {
            start: vec![1, 0, 1],
            limit: vec![4, 3, 6],
            stride: vec![2, 1, 2],
        },
        vec![y],
    );
    let c = op(&mut g, "concat", Op::Concatenate { dim: 1 }, vec![b, y, x]);
    let p = op(
        &mut g,
        "pad",
        Op::Pad {
            low: vec![1, 0, 2],
            high: vec![0, 1, 1],
            interior: vec![1, 0, 2],
            value: -3.5,
        },
        vec![x],
    );
    let rs = op_ty(
        &mut g,
        "reshape",
        Op::Reshape,
        vec![y],
        ty(DType::BF16, &[12, 6]),
    );
    let ds = op(
        &mut g,
        "dynamic_slice",
        Op::DynamicSlice {
            sizes: vec![2, 2, 3],
        },
        vec![y, i, i, i],
    );
    let upd = op(&mut g, "dus", Op::DynamicUpdateSlice, vec![y, ds, i, i, i]);
    let cp = op(&mut g, "copy", Op::Copy, vec![t]);
    g.outputs.extend([b, t, r, s, c, p, rs, ds, upd, cp]);
    let mut inputs = random_inputs(&g, 5);
    // Start 5 clamps to the largest start that fits (4 - 2 = 2, 3 - 2 = 1, 6 - 3 = 3).
    inputs[2] = tensor(DType::I32, &[], &[5.0]);
    check_with(&g, &inputs, 0.0, &CudaOptions::default());
}

#[test]
fn gather_and_scatter_add_clamp_indices_like_the_reference() {
    for d in [DType::F32, DType::BF16] {
        let mut g = Graph::new("take");
        let x = input(&mut g, "x", d, &[3, 5, 4]);
        let idx = input(&mut g, "idx", DType::I32, &[2, 3]);
        let gx = op(&mut g, "gather", Op::Gather { axis: 1 }, vec![x, idx]);
        let sc = op(
            &mut g,
            "scatter_add",
            Op::ScatterAdd { axis: 1 },
            vec![x, idx, gx],
        );
        g.outputs.extend([gx, sc]);
        let mut inputs = random_inputs(&g, 2);
        inputs[1] = tensor(DType::I32, &[2, 3], &[0.0, 4.0, 4.0, -2.0, 9.0, 1.0]);
        check_with(
            &g,
            &inputs,
            if d == DType::F32 { 1e-6 } else { 1e-2 },
            &CudaOptions::default(),
        );
    }
}

#[test]
fn ops_without_a_gpu_kernel_run_on_the_host_and_are_reported() {
    let mut g = Graph::new("conv");
    let x = input(&mut g, "x", DType::F32, &[2, 3, 8, 8]);
    let w = input(&mut g, "w", DType::F32, &[4, 3, 3, 3]);
    let c = op(
        &mut g,
        "conv",
        Op::Convolution(Conv::simple(2, 1, 1)),
        vec![x, w],
    );
    let r = op(
        &mut g,
        "relu",
        Op::Unary {
            func: UnaryFn::Relu,
        },
        vec![c],
    );
    g.outputs.push(r);
    let report = check(&g, 1e-6);
    if !gpu() {
        return;
    }
    assert_eq!(
        report.host_fallbacks.get("convolution"),
        Some(&1),
        "{report:?}"
    );
}

#[test]
fn a_gpt_training_step_matches_the_reference() {
    let cfg = GptConfig {
        layers: 2,
        hidden: 32,
        heads: 2,
        seq: 16,
        vocab: 64,
        batch: 2,
        dtype: DType::F32,
        shardings: GptShardings::None,
    };
    // SGD: Adam's update of a near-zero gradient (the qkv bias) turns the 1e-7 differences of
    // another matmul summation order into 1e-3 ones, on the threads backend too.
    let opts = TrainOptions {
        optimizer: Optimizer::sgd(1e-2),
        ..TrainOptions::default()
    };
    let g = training_step(&gpt(&cfg).unwrap(), &opts).unwrap();
    let report = check(&g, 1e-4);
    if !gpu() {
        return;
    }
    eprintln!(
        "{}: host fallbacks {:?}",
        report.device, report.host_fallbacks
    );
}

/// A program over `mesh` applying each collective to its input, every result an output.
fn collectives(mesh: &Mesh, axis: &str) -> Graph {
    let mut g = Graph::new("collectives");
    g.mesh = Some(mesh.clone());
    let x = g
        .push(
            "x",
            Op::Input { init: None },
            vec![],
            Some(ty(DType::F32, &[4, 6])),
        )
        .unwrap();
    g.nodes[x.index()].role = Role::Input;
    let axes = vec![axis.to_string()];
    let n = mesh.axis_size(axis).unwrap_or(1);
    let ops = [
        Op::AllReduce {
            axes: axes.clone(),
            func: ReduceFn::Sum,
        },
        Op::AllReduce {
            axes: axes.clone(),
            func: ReduceFn::Max,
        },
        Op::AllGather {
            dim: 1,
            axes: axes.clone(),
        },
        Op::ReduceScatter {
            dim: 0,
            axes: axes.clone(),
            func: ReduceFn::Sum,
        },
        Op::AllToAll {
            split_dim: 0,
            concat_dim: 1,
            axes: axes.clone(),
        },
        Op::CollectivePermute {
            axes: axes.clone(),
            pairs: (0..n).map(|s| (s, (s + 1) % n)).collect(),
        },
        Op::AxisIndex { axes: axes.clone() },
    ];
    for (k, o) in ops.into_iter().enumerate() {
        let (operands, declared) = if matches!(o, Op::AxisIndex { .. }) {
            (vec![], Some(ty(DType::I32, &[])))
        } else {
            (vec![x], None)
        };
        let v = g.push(&format!("c{k}"), o, operands, declared).unwrap();
        g.outputs.push(v);
    }
    g
}

fn per_device_inputs(g: &Graph, n: usize) -> Vec<Vec<Tensor>> {
    (0..n).map(|d| random_inputs(g, d as u64 + 10)).collect()
}

#[test]
fn several_ranks_on_one_gpu_match_the_threads_backend() {
    for (mesh, axis) in [("x=2", "x"), ("dp=2,tp=2", "tp"), ("dp=2,tp=2", "dp")] {
        let mesh: Mesh = mesh.parse().unwrap();
        let g = collectives(&mesh, axis);
        let inputs = per_device_inputs(&g, mesh.devices.len());
        let want = run_spmd(&g, &mesh, inputs.clone()).unwrap();
        if !gpu() {
            return;
        }
        let (got, _) = run_spmd_cuda(&g, &mesh, inputs, &CudaOptions::default()).unwrap();
        assert_eq!(got, want, "mesh {mesh} axis {axis}");
    }
}

#[test]
fn nccl_collectives_of_a_one_rank_mesh_match_the_threads_backend() {
    // NCCL allows one rank per GPU per communicator; a machine with one GPU runs the one-rank
    // mesh, which still makes and uses a communicator per axis group.
    let mesh: Mesh = "x=1".parse().unwrap();
    let g = collectives(&mesh, "x");
    let inputs = per_device_inputs(&g, 1);
    let want = run_spmd(&g, &mesh, inputs.clone()).unwrap();
    if !gpu() {
        return;
    }
    if let Err(e) = shardc_runtime::cuda::probe_nccl() {
        eprintln!("skipped: {e}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("shardc-nccl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ids = FileIds {
        dir: dir.clone(),
        timeout: std::time::Duration::from_secs(60),
    };
    let mut nccl = NcclMesh::new(mesh, 0, Box::new(ids)).unwrap();
    let (got, _) = run_spmd_cuda_rank(
        &g,
        &mut nccl,
        0,
        inputs.into_iter().next().unwrap(),
        &CudaOptions::default(),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(got, want[0]);
}

#[test]
fn nccl_unique_ids_pass_through_files_and_a_missing_one_times_out_clearly() {
    use shardc_runtime::cuda::NcclIds;
    let dir = std::env::temp_dir().join(format!("shardc-ncclid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ids = FileIds {
        dir: dir.clone(),
        timeout: std::time::Duration::from_millis(100),
    };
    let id: [u8; 128] = std::array::from_fn(|i| i as u8);
    assert_eq!(ids.share("axes-tp-lead-0", true, Some(id)).unwrap(), id);
    assert_eq!(ids.share("axes-tp-lead-0", false, None).unwrap(), id);
    let e = ids
        .share("axes-dp-lead-0", false, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("waited 0 s for the NCCL id file") && e.contains("axes-dp-lead-0"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_nccl_mesh_without_nccl_is_a_clear_error() {
    let dir = std::env::temp_dir();
    let ids = FileIds {
        dir,
        timeout: std::time::Duration::from_secs(1),
    };
    let mesh: Mesh = "x=2".parse().unwrap();
    match shardc_runtime::cuda::probe_nccl() {
        Ok(()) => assert!(
            NcclMesh::new(mesh, 2, Box::new(ids)).is_err(),
            "position 2 is outside x=2"
        ),
        Err(e) => {
            let m = NcclMesh::new(mesh, 0, Box::new(ids))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                m.starts_with("no NCCL library found: none of libnccl.so"),
                "{m}"
            );
            assert_eq!(m, e.to_string());
        }
    }
}

#[test]
fn a_gpt_training_step_has_a_gpu_kernel_for_every_node_but_its_sources() {
    let cfg = GptConfig {
        layers: 2,
        hidden: 32,
        heads: 2,
        seq: 16,
        vocab: 64,
        batch: 2,
        dtype: DType::BF16,
        shardings: GptShardings::None,
    };
    let g = training_step(&gpt(&cfg).unwrap(), &TrainOptions::default()).unwrap();
    let on_host: Vec<(String, String)> = shardc_runtime::cuda::gpu_support(&g)
        .into_iter()
        .zip(&g.nodes)
        .filter(|(_, n)| {
            !matches!(
                n.op,
                Op::Input { .. } | Op::Constant { .. } | Op::Iota { .. }
            )
        })
        .filter_map(|((name, s), _)| s.err().map(|why| (name, why)))
        .collect();
    assert!(on_host.is_empty(), "{on_host:?}");
    let kernels = shardc_runtime::cuda::elementwise_kernels(&g);
    let elementwise = g
        .nodes
        .iter()
        .filter(|n| {
            matches!(
                n.op,
                Op::Unary { .. }
                    | Op::Binary { .. }
                    | Op::Compare { .. }
                    | Op::Select
                    | Op::Convert
            )
        })
        .count();
    // Fusion leaves fewer kernels than elementwise nodes, and every one generates.
    assert!(
        kernels.len() < elementwise,
        "{} kernels for {elementwise} elementwise nodes",
        kernels.len()
    );
    for (name, k) in kernels {
        assert!(k.is_ok(), "{name}: {k:?}");
    }
}
