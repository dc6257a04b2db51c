//! The reference executor against hand-computed values and f64 re-implementations.

use shardc_ir::{BinaryFn, CompareDir, DType, Graph, Literal, Op, ReduceFn, UnaryFn, ValueId};
use shardc_runtime::{execute, execute_values, max_relative_error, random_inputs};

mod common;
use common::*;

fn matmul_dims() -> Op {
    Op::DotGeneral {
        lhs_batch: vec![],
        rhs_batch: vec![],
        lhs_contract: vec![1],
        rhs_contract: vec![0],
    }
}

#[test]
fn matmul_matches_hand_computed_product() {
    let mut g = Graph::new("mm");
    let a = input(&mut g, "a", DType::F32, &[2, 3]);
    let b = input(&mut g, "b", DType::F32, &[3, 2]);
    let c = op(&mut g, "c", matmul_dims(), vec![a, b]);
    g.outputs.push(c);
    let out = execute(
        &g,
        &[
            tensor(DType::F32, &[2, 3], &[1., 2., 3., 4., 5., 6.]),
            tensor(DType::F32, &[3, 2], &[7., 8., 9., 10., 11., 12.]),
        ],
    )
    .unwrap();
    assert_eq!(out[0].ty(), ty(DType::F32, &[2, 2]));
    assert_eq!(out[0].to_f64_vec(), vec![58., 64., 139., 154.]);
}

#[test]
fn dot_general_with_batch_dims_matches_an_f64_loop() {
    // lhs [k=3, b=2, m=4], rhs [n=5, b=2, k=3] -> [b, m, n].
    let mut g = Graph::new("bmm");
    let l = input(&mut g, "l", DType::F64, &[3, 2, 4]);
    let r = input(&mut g, "r", DType::F64, &[5, 2, 3]);
    let dot = Op::DotGeneral {
        lhs_batch: vec![1],
        rhs_batch: vec![1],
        lhs_contract: vec![0],
        rhs_contract: vec![2],
    };
    let o = op(&mut g, "o", dot, vec![l, r]);
    g.outputs.push(o);
    let ins = random_inputs(&g, 7);
    assert_eq!(ins[0].dtype(), DType::F64);
    let (lv, rv) = (ins[0].to_f64_vec(), ins[1].to_f64_vec());
    let out = execute(&g, &ins).unwrap();
    assert_eq!(out[0].ty(), ty(DType::F64, &[2, 4, 5]));
    let mut want = Vec::new();
    for b in 0..2 {
        for m in 0..4 {
            for n in 0..5 {
                let mut acc = 0.0;
                for k in 0..3 {
                    acc += lv[k * 8 + b * 4 + m] * rv[n * 6 + b * 3 + k];
                }
                want.push(acc);
            }
        }
    }
    assert_close(&out[0].to_f64_vec(), &want, 1e-14);
}

/// softmax over the last dim of `x` built from primitive ops.
fn softmax(g: &mut Graph, x: ValueId, prefix: &str) -> ValueId {
    let t = g.ty(x).clone();
    let last = t.rank() - 1;
    let keep: Vec<usize> = (0..last).collect();
    let m = op(
        g,
        &format!("{prefix}.max"),
        Op::Reduce {
            func: ReduceFn::Max,
            dims: vec![last],
        },
        vec![x],
    );
    let mb = op_ty(
        g,
        &format!("{prefix}.max_b"),
        Op::Broadcast { dims: keep.clone() },
        vec![m],
        t.clone(),
    );
    let s = op(
        g,
        &format!("{prefix}.shift"),
        Op::Binary {
            func: BinaryFn::Sub,
        },
        vec![x, mb],
    );
    let e = op(
        g,
        &format!("{prefix}.exp"),
        Op::Unary { func: UnaryFn::Exp },
        vec![s],
    );
    let z = op(
        g,
        &format!("{prefix}.sum"),
        Op::Reduce {
            func: ReduceFn::Sum,
            dims: vec![last],
        },
        vec![e],
    );
    let zb = op_ty(
        g,
        &format!("{prefix}.sum_b"),
        Op::Broadcast { dims: keep },
        vec![z],
        t,
    );
    op(
        g,
        &format!("{prefix}.out"),
        Op::Binary {
            func: BinaryFn::Div,
        },
        vec![e, zb],
    )
}

#[test]
fn softmax_from_ops_matches_f64() {
    let mut g = Graph::new("softmax");
    let x = input(&mut g, "x", DType::F32, &[4, 7]);
    let y = softmax(&mut g, x, "sm");
    g.outputs.push(y);
    let ins = random_inputs(&g, 1);
    let xv = ins[0].to_f64_vec();
    let out = execute(&g, &ins).unwrap()[0].to_f64_vec();
    let mut want = Vec::new();
    for row in xv.chunks(7) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|v| (v - m).exp()).sum();
        want.extend(row.iter().map(|v| (v - m).exp() / z));
    }
    assert_close(&out, &want, 1e-6);
    for row in out.chunks(7) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    }
}

#[test]
fn layer_norm_from_ops_matches_f64() {
    let (rows, h) = (3u64, 8u64);
    let mut g = Graph::new("ln");
    let x = input(&mut g, "x", DType::F32, &[rows, h]);
    let gain = input(&mut g, "gain", DType::F32, &[h]);
    let bias = input(&mut g, "bias", DType::F32, &[h]);
    let full = ty(DType::F32, &[rows, h]);
    let sum = op(
        &mut g,
        "sum",
        Op::Reduce {
            func: ReduceFn::Sum,
            dims: vec![1],
        },
        vec![x],
    );
    let inv_n = op_ty(
        &mut g,
        "inv_n",
        Op::Constant {
            value: Literal::Splat(1.0 / h as f64),
        },
        vec![],
        ty(DType::F32, &[rows]),
    );
    let mean = op(
        &mut g,
        "mean",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![sum, inv_n],
    );
    let mean_b = op_ty(
        &mut g,
        "mean_b",
        Op::Broadcast { dims: vec![0] },
        vec![mean],
        full.clone(),
    );
    let xc = op(
        &mut g,
        "xc",
        Op::Binary {
            func: BinaryFn::Sub,
        },
        vec![x, mean_b],
    );
    let sq = op(
        &mut g,
        "sq",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![xc, xc],
    );
    let ss = op(
        &mut g,
        "ss",
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
        vec![ss, inv_n],
    );
    let eps = op_ty(
        &mut g,
        "eps",
        Op::Constant {
            value: Literal::Splat(1e-5),
        },
        vec![],
        ty(DType::F32, &[rows]),
    );
    let ve = op(
        &mut g,
        "ve",
        Op::Binary {
            func: BinaryFn::Add,
        },
        vec![var, eps],
    );
    let rs = op(
        &mut g,
        "rs",
        Op::Unary {
            func: UnaryFn::Rsqrt,
        },
        vec![ve],
    );
    let rs_b = op_ty(
        &mut g,
        "rs_b",
        Op::Broadcast { dims: vec![0] },
        vec![rs],
        full.clone(),
    );
    let norm = op(
        &mut g,
        "norm",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![xc, rs_b],
    );
    let gain_b = op_ty(
        &mut g,
        "gain_b",
        Op::Broadcast { dims: vec![1] },
        vec![gain],
        full.clone(),
    );
    let bias_b = op_ty(
        &mut g,
        "bias_b",
        Op::Broadcast { dims: vec![1] },
        vec![bias],
        full,
    );
    let scaled = op(
        &mut g,
        "scaled",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![norm, gain_b],
    );
    let y = op(
        &mut g,
        "y",
        Op::Binary {
            func: BinaryFn::Add,
        },
        vec![scaled, bias_b],
    );
    g.outputs.push(y);
    let ins = random_inputs(&g, 3);
    let (xv, gv, bv) = (
        ins[0].to_f64_vec(),
        ins[1].to_f64_vec(),
        ins[2].to_f64_vec(),
    );
    let out = execute(&g, &ins).unwrap()[0].to_f64_vec();
    let mut want = Vec::new();
    for row in xv.chunks(h as usize) {
        let m = row.iter().sum::<f64>() / h as f64;
        let v = row.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / h as f64;
        for (j, x) in row.iter().enumerate() {
            want.push((x - m) / (v + 1e-5).sqrt() * gv[j] + bv[j]);
        }
    }
    assert_close(&out, &want, 1e-6);
}

#[test]
fn cross_entropy_from_ops_matches_f64() {
    // loss = mean_b(logsumexp(logits[b]) - logits[b, label[b]]), the label picked by a one-hot.
    let (b, v) = (4u64, 6u64);
    let mut g = Graph::new("xent");
    let logits = input(&mut g, "logits", DType::F32, &[b, v]);
    let labels = input(&mut g, "labels", DType::I32, &[b]);
    let full = ty(DType::F32, &[b, v]);
    let m = op(
        &mut g,
        "m",
        Op::Reduce {
            func: ReduceFn::Max,
            dims: vec![1],
        },
        vec![logits],
    );
    let mb = op_ty(
        &mut g,
        "mb",
        Op::Broadcast { dims: vec![0] },
        vec![m],
        full.clone(),
    );
    let sh = op(
        &mut g,
        "sh",
        Op::Binary {
            func: BinaryFn::Sub,
        },
        vec![logits, mb],
    );
    let e = op(&mut g, "e", Op::Unary { func: UnaryFn::Exp }, vec![sh]);
    let z = op(
        &mut g,
        "z",
        Op::Reduce {
            func: ReduceFn::Sum,
            dims: vec![1],
        },
        vec![e],
    );
    let lz = op(&mut g, "lz", Op::Unary { func: UnaryFn::Log }, vec![z]);
    let lse = op(
        &mut g,
        "lse",
        Op::Binary {
            func: BinaryFn::Add,
        },
        vec![lz, m],
    );
    let cls = op_ty(
        &mut g,
        "cls",
        Op::Iota { dim: 1 },
        vec![],
        ty(DType::I32, &[b, v]),
    );
    let lb = op_ty(
        &mut g,
        "lb",
        Op::Broadcast { dims: vec![0] },
        vec![labels],
        ty(DType::I32, &[b, v]),
    );
    let hit = op(
        &mut g,
        "hit",
        Op::Compare {
            dir: CompareDir::Eq,
        },
        vec![cls, lb],
    );
    let onehot = op_ty(&mut g, "onehot", Op::Convert, vec![hit], full);
    let picked_all = op(
        &mut g,
        "picked_all",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![logits, onehot],
    );
    let picked = op(
        &mut g,
        "picked",
        Op::Reduce {
            func: ReduceFn::Sum,
            dims: vec![1],
        },
        vec![picked_all],
    );
    let per = op(
        &mut g,
        "per",
        Op::Binary {
            func: BinaryFn::Sub,
        },
        vec![lse, picked],
    );
    let total = op(
        &mut g,
        "total",
        Op::Reduce {
            func: ReduceFn::Sum,
            dims: vec![0],
        },
        vec![per],
    );
    let inv_b = op_ty(
        &mut g,
        "inv_b",
        Op::Constant {
            value: Literal::Splat(1.0 / b as f64),
        },
        vec![],
        ty(DType::F32, &[]),
    );
    let loss = op(
        &mut g,
        "loss",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![total, inv_b],
    );
    g.outputs.push(loss);
    let logit_v = [
        0.5, -1.0, 2.0, 0.0, 1.5, -0.5, 3.0, 1.0, -2.0, 0.25, 0.0, 1.0, -1.5, 2.5, 0.5, 0.5, 1.0,
        -3.0, 0.0, 0.0, 4.0, 1.0, -1.0, 2.0,
    ];
    let label_v = [2.0, 0.0, 5.0, 3.0];
    let out = execute(
        &g,
        &[
            tensor(DType::F32, &[b, v], &logit_v),
            tensor(DType::I32, &[b], &label_v),
        ],
    )
    .unwrap();
    let mut want = 0.0;
    for (row, &l) in logit_v.chunks(v as usize).zip(&label_v) {
        let lse = row.iter().map(|x: &f64| x.exp()).sum::<f64>().ln();
        want += lse - row[l as usize];
    }
    want /= b as f64;
    let got = out[0].scalar_f64().unwrap();
    assert!(
        (got - want).abs() / want.abs() < 1e-6,
        "got {got}, want {want}"
    );
}

#[test]
fn elementwise_compare_select_convert_and_integer_rules() {
    let a = tensor(DType::F32, &[3], &[-1.5, 0.0, 2.0]);
    let b = tensor(DType::F32, &[3], &[1.0, 0.0, 3.0]);
    let lt = run_one(
        Op::Compare {
            dir: CompareDir::Lt,
        },
        &[a.clone(), b.clone()],
        None,
    );
    assert_eq!(lt.to_f64_vec(), vec![1., 0., 1.]);
    let sel = run_one(Op::Select, &[lt, a.clone(), b.clone()], None);
    assert_eq!(sel.to_f64_vec(), vec![-1.5, 0.0, 2.0]);
    let gelu = run_one(
        Op::Unary {
            func: UnaryFn::Gelu,
        },
        std::slice::from_ref(&b),
        None,
    )
    .to_f64_vec();
    let want = |x: f64| {
        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
    };
    assert_close(&gelu, &[want(1.0), 0.0, want(3.0)], 1e-7);
    let p = run_one(
        Op::Binary {
            func: BinaryFn::Pow,
        },
        &[b.clone(), tensor(DType::F32, &[3], &[2., 0.5, 3.])],
        None,
    );
    assert_eq!(p.to_f64_vec(), vec![1., 0., 27.]);
    let i = run_one(Op::Convert, &[a], Some(ty(DType::I32, &[3])));
    assert_eq!(i.to_f64_vec(), vec![-1., 0., 2.]);
    let n = tensor(DType::I32, &[3], &[7., -7., 5.]);
    let d = tensor(DType::I32, &[3], &[2., 2., 0.]);
    let q = run_one(
        Op::Binary {
            func: BinaryFn::Div,
        },
        &[n, d],
        None,
    );
    assert_eq!(
        q.to_f64_vec(),
        vec![3., -3., -1.],
        "truncating division, x/0 = -1"
    );
}

#[test]
fn bf16_results_are_rounded_after_every_op() {
    let x = tensor(DType::BF16, &[2], &[1.0, 256.0]);
    let y = tensor(DType::BF16, &[2], &[1.0 / 512.0, 1.0]);
    // 1 + 2^-9 and 257 are not representable with bf16's 8 significant bits.
    let s = run_one(
        Op::Binary {
            func: BinaryFn::Add,
        },
        &[x, y],
        None,
    );
    assert_eq!(s.dtype(), DType::BF16);
    assert_eq!(s.to_f64_vec(), vec![1.0, 256.0]);
    let f = tensor(DType::F16, &[1], &[2048.0]);
    let s = run_one(
        Op::Binary {
            func: BinaryFn::Add,
        },
        &[f.clone(), tensor(DType::F16, &[1], &[1.0])],
        None,
    );
    assert_eq!(s.to_f64_vec(), vec![2048.0], "f16 has 11 significant bits");
}

#[test]
fn execute_values_returns_intermediates_and_skips_what_is_not_needed() {
    let mut g = Graph::new("mid");
    let x = input(&mut g, "x", DType::F32, &[2]);
    let a = op(&mut g, "a", Op::Unary { func: UnaryFn::Neg }, vec![x]);
    let b = op(
        &mut g,
        "b",
        Op::Binary {
            func: BinaryFn::Mul,
        },
        vec![a, a],
    );
    let c = op(&mut g, "c", Op::Unary { func: UnaryFn::Exp }, vec![b]);
    g.outputs.push(c);
    let ins = [tensor(DType::F32, &[2], &[1., 2.])];
    let got = execute_values(&g, &ins, &[a, b, a]).unwrap();
    assert_eq!(got[0].to_f64_vec(), vec![-1., -2.]);
    assert_eq!(got[1].to_f64_vec(), vec![1., 4.]);
    assert_eq!(got[2], got[0]);
}

#[test]
fn bad_inputs_and_mesh_ops_give_clear_errors() {
    let mut g = Graph::new("bad");
    let x = input(&mut g, "x", DType::F32, &[2]);
    g.outputs.push(x);
    let e = execute(&g, &[tensor(DType::F32, &[3], &[0.; 3])]).unwrap_err();
    assert_eq!(e.to_string(), "input 0 (`x`): expected f32[2], got f32[3]");
    let e = execute(&g, &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "graph `bad` has 1 inputs, 0 tensors were given"
    );
    g.mesh = Some("dp=2".parse().unwrap());
    let r = g
        .push(
            "r",
            Op::AllReduce {
                axes: vec!["dp".into()],
                func: ReduceFn::Sum,
            },
            vec![x],
            None,
        )
        .unwrap();
    g.outputs = vec![r];
    let e = execute(&g, &[tensor(DType::F32, &[2], &[0.; 2])]).unwrap_err();
    assert!(
        e.to_string().contains("all_reduce needs the mesh executor"),
        "{e}"
    );
}

#[test]
fn random_inputs_are_deterministic_and_follow_hints() {
    let mut g = Graph::new("hints");
    let table = input(&mut g, "table", DType::F32, &[10, 4]);
    let ids = input(&mut g, "ids", DType::I32, &[64]);
    let fixed = g
        .push(
            "ones",
            Op::Input {
                init: Some(shardc_ir::Init::Fill { value: 1.0 }),
            },
            vec![],
            Some(ty(DType::F32, &[3])),
        )
        .unwrap();
    let labels = g
        .push(
            "labels",
            Op::Input {
                init: Some(shardc_ir::Init::Index { high: 3 }),
            },
            vec![],
            Some(ty(DType::I64, &[64])),
        )
        .unwrap();
    let emb = op(&mut g, "emb", Op::Gather { axis: 0 }, vec![table, ids]);
    g.outputs = vec![emb, fixed, labels];
    let a = random_inputs(&g, 42);
    assert_eq!(a, random_inputs(&g, 42));
    assert_ne!(a[0], random_inputs(&g, 43)[0]);
    let ids_v = a[1].to_f64_vec();
    assert!(ids_v.iter().all(|&i| (0.0..10.0).contains(&i)));
    assert!(
        ids_v.iter().any(|&i| i >= 5.0),
        "indices cover the table's rows"
    );
    assert_eq!(a[2].to_f64_vec(), vec![1.0; 3]);
    assert!(a[3].to_f64_vec().iter().all(|&i| (0.0..3.0).contains(&i)));
    let s = a[0].summary();
    assert!(s.mean.abs() < 0.5 && s.l2 > 2.0, "normal(0,1) values: {s}");
    // The inputs run.
    execute(&g, &a).unwrap();
}

#[test]
fn relative_error_of_identical_runs_is_zero() {
    let mut g = Graph::new("same");
    let x = input(&mut g, "x", DType::F32, &[5, 5]);
    let y = softmax(&mut g, x, "s");
    g.outputs.push(y);
    let ins = random_inputs(&g, 9);
    let a = execute(&g, &ins).unwrap();
    let b = execute(&g, &ins).unwrap();
    assert_eq!(max_relative_error(&a[0], &b[0]).unwrap(), 0.0);
}
