//! Graph-building and comparison helpers shared by the reference-executor tests.

#![allow(dead_code)]

use shardc_ir::{DType, Graph, Op, Role, TensorType, ValueId};
use shardc_runtime::{execute, Tensor};

pub fn ty(dtype: DType, dims: &[u64]) -> TensorType {
    TensorType::new(dtype, dims.to_vec())
}

pub fn input(g: &mut Graph, name: &str, dtype: DType, dims: &[u64]) -> ValueId {
    let v = g
        .push(
            name,
            Op::Input { init: None },
            vec![],
            Some(ty(dtype, dims)),
        )
        .unwrap();
    g.nodes[v.index()].role = Role::Input;
    v
}

pub fn tensor(dtype: DType, dims: &[u64], values: &[f64]) -> Tensor {
    Tensor::from_f64(ty(dtype, dims), values).unwrap()
}

pub fn op(g: &mut Graph, name: &str, op: Op, operands: Vec<ValueId>) -> ValueId {
    g.push(name, op, operands, None).unwrap()
}

pub fn op_ty(g: &mut Graph, name: &str, op: Op, operands: Vec<ValueId>, t: TensorType) -> ValueId {
    g.push(name, op, operands, Some(t)).unwrap()
}

pub fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() / scale <= tol,
            "element {i}: got {a}, want {b}"
        );
    }
}

/// Applies one op to fresh inputs of the given types and runs it.
pub fn run_one(o: Op, ins: &[Tensor], declared: Option<TensorType>) -> Tensor {
    let mut g = Graph::new("one");
    let vs: Vec<ValueId> = ins
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let t = t.ty();
            input(&mut g, &format!("in{i}"), t.dtype, t.dims())
        })
        .collect();
    let r = g.push("r", o, vs, declared).unwrap();
    g.outputs.push(r);
    execute(&g, ins).unwrap().remove(0)
}
