//! `sort`: one result of XLA's (variadic) sort: operand `output` permuted the way sorting the
//! keys (operand 0) along `dim` permutes them.
//!
//! A variadic HLO sort of `N` operands becomes `N` sort nodes sharing their operands, one per
//! result. Every dim but the sort dim is independent (one pass-through factor shared by all
//! tensors); the sort dim needs its whole extent on one device.

use super::{with_declared_dtype_check, TypeCtx};
use crate::autodiff::{GradCtx, Grads};
use crate::dtype::DType;
use crate::error::Result;
use crate::factors::{FactorKind, OpFactors};
use crate::op::{BinaryFn, Op, ScatterDims};
use crate::types::TensorType;

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
    let Op::Sort { dim, output, .. } = op else {
        unreachable!("sort::infer called on {}", op.name())
    };
    let Some(keys) = cx.operands.first() else {
        return Err("expected at least one operand (the keys)".into());
    };
    if *dim >= keys.rank() {
        return Err(format!(
            "sort dim {dim} is out of range for keys {keys} of rank {}",
            keys.rank()
        ));
    }
    for (i, t) in cx.operands.iter().enumerate().skip(1) {
        if t.dims() != keys.dims() {
            return Err(format!(
                "operand {i} is {t}, but every operand must have the keys' shape {:?}",
                keys.dims()
            ));
        }
    }
    let Some(out) = cx.operands.get(*output) else {
        return Err(format!(
            "output {output} is out of range: the sort has {} operand(s)",
            cx.operands.len()
        ));
    };
    with_declared_dtype_check(cx, (*out).clone())
}

/// Every dim but `dim` is one pass-through factor shared by all operands and the result; the
/// sort dim needs replication in every tensor (a device must see a whole row to sort it).
/// Comparisons are not floating-point arithmetic: `flops_per_point` is 0, as for gathers.
pub(super) fn factors(op: &Op, operands: &[&TensorType]) -> OpFactors {
    let Op::Sort { dim, .. } = op else {
        unreachable!("sort::factors called on {}", op.name())
    };
    let dims = operands[0].dims();
    let mut f = OpFactors::default();
    let shared: Vec<Option<usize>> = dims
        .iter()
        .enumerate()
        .map(|(d, &n)| (d != *dim).then(|| f.add(n, FactorKind::PassThrough)))
        .collect();
    let tensor = |f: &mut OpFactors| -> Vec<Vec<usize>> {
        shared
            .iter()
            .zip(dims)
            .map(|(s, &n)| vec![s.unwrap_or_else(|| f.add(n, FactorKind::NeedReplication))])
            .collect()
    };
    f.operands = (0..operands.len()).map(|_| tensor(&mut f)).collect();
    f.result = tensor(&mut f);
    f
}

/// The adjoint of output `k` goes back to operand `k` only (the permutation is locally constant
/// in the keys): `dy` is scattered (added) into zeros at the original positions, which sorting
/// an iota along `dim` with the same keys gives. Other operands get none.
pub(super) fn grad(op: &Op, cx: &mut GradCtx) -> Result<Grads> {
    let Op::Sort {
        dim,
        descending,
        stable,
        output,
    } = *op
    else {
        unreachable!("sort::grad called on {}", op.name())
    };
    let n = cx.em.g.node(cx.node).operands.len();
    let mut grads: Grads = vec![None; n];
    if !cx.wants(output) {
        return Ok(grads);
    }
    let (keys, x) = (cx.x(0), cx.x(output));
    let kt = cx.ty(keys);
    let idx_dtype = if kt.dims()[dim] <= i32::MAX as u64 {
        DType::I32
    } else {
        DType::I64
    };
    let iota = cx.emit(
        "grad.iota",
        Op::Iota { dim },
        vec![],
        Some(TensorType::new(idx_dtype, kt.dims().to_vec())),
    )?;
    let perm = cx.emit(
        "grad.perm",
        Op::Sort {
            dim,
            descending,
            stable,
            output: 1,
        },
        vec![keys, iota],
        None,
    )?;
    let zero = cx.zeros_like("grad.zero", x)?;
    let s = cx.emit(
        "grad",
        Op::GeneralScatter {
            dims: unpermute_dims(kt.rank(), dim),
            combine: Some(BinaryFn::Add),
        },
        vec![zero, perm, cx.dy],
        None,
    )?;
    grads[output] = Some(s);
    Ok(grads)
}

/// The scatter that writes element `p` of the updates to `p` with dim `dim` replaced by the
/// index at `p` (indices shaped like the operand, one index per element): `dim` is the indexed
/// (inserted) dim, every other dim a batching dim.
pub(crate) fn unpermute_dims(rank: usize, dim: usize) -> ScatterDims {
    let others: Vec<usize> = (0..rank).filter(|&d| d != dim).collect();
    ScatterDims {
        update_window_dims: Vec::new(),
        inserted_window_dims: vec![dim],
        scatter_dims_to_operand_dims: vec![dim],
        index_vector_dim: rank,
        input_batching_dims: others.clone(),
        scatter_indices_batching_dims: others,
    }
}

#[cfg(test)]
mod tests {
    use crate::factors::FactorKind;
    use crate::graph::Graph;
    use crate::op::Op;
    use crate::types::TensorType;
    use crate::DType;

    fn sort(dim: usize, output: usize) -> Op {
        Op::Sort {
            dim,
            descending: false,
            stable: true,
            output,
        }
    }

    fn graph_with(types: &[TensorType]) -> (Graph, Vec<crate::graph::ValueId>) {
        let mut g = Graph::new("t");
        let vs = types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                g.push(
                    format!("x{i}"),
                    Op::Input { init: None },
                    vec![],
                    Some(t.clone()),
                )
                .unwrap()
            })
            .collect();
        (g, vs)
    }

    #[test]
    fn the_result_is_the_chosen_operand() {
        let (mut g, v) = graph_with(&[
            TensorType::new(DType::F32, vec![2, 5]),
            TensorType::new(DType::I32, vec![2, 5]),
        ]);
        let y = g.push("s", sort(1, 1), v.clone(), None).unwrap();
        assert_eq!(*g.ty(y), TensorType::new(DType::I32, vec![2, 5]));
        let y = g.push("s0", sort(0, 0), v, None).unwrap();
        assert_eq!(*g.ty(y), TensorType::new(DType::F32, vec![2, 5]));
    }

    #[test]
    fn the_graph_format_reads_sort_with_defaults() {
        let op: Op =
            serde_json::from_str(r#"{"op": "sort", "dim": 1, "descending": true, "output": 2}"#)
                .unwrap();
        assert_eq!(
            op,
            Op::Sort {
                dim: 1,
                descending: true,
                stable: false,
                output: 2
            }
        );
        let back = serde_json::to_value(sort(0, 1)).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"op": "sort", "dim": 0, "descending": false, "stable": true, "output": 1})
        );
        let err = serde_json::from_str::<Op>(r#"{"op": "sort", "dim": 0, "axis": 1}"#).unwrap_err();
        assert!(err.to_string().contains("axis"), "{err}");
    }

    #[test]
    fn bad_sorts_say_what_is_wrong() {
        let (mut g, v) = graph_with(&[
            TensorType::new(DType::F32, vec![2, 5]),
            TensorType::new(DType::I32, vec![2, 4]),
        ]);
        let e = g.push("a", sort(2, 0), vec![v[0]], None).unwrap_err();
        assert!(e.to_string().contains("sort dim 2 is out of range"), "{e}");
        let e = g.push("b", sort(1, 0), v.clone(), None).unwrap_err();
        assert!(e.to_string().contains("operand 1 is i32[2,4]"), "{e}");
        let e = g.push("c", sort(1, 1), vec![v[0]], None).unwrap_err();
        assert!(e.to_string().contains("output 1 is out of range"), "{e}");
        let e = g.push("d", sort(0, 0), vec![], None).unwrap_err();
        assert!(e.to_string().contains("at least one operand"), "{e}");
    }

    #[test]
    fn non_sort_dims_pass_through_and_the_sort_dim_needs_replication() {
        let a = TensorType::new(DType::F32, vec![2, 5, 3]);
        let b = TensorType::new(DType::I32, vec![2, 5, 3]);
        let f = crate::ops::op_factors(&sort(1, 1), &[&a, &b], &b);
        for t in [&f.operands[0], &f.operands[1], &f.result] {
            assert_eq!(t[0], f.result[0]);
            assert_eq!(t[2], f.result[2]);
            assert_eq!(f.factors[t[1][0]].kind, FactorKind::NeedReplication);
        }
        assert_eq!(f.factors[f.result[0][0]].kind, FactorKind::PassThrough);
        assert_eq!(f.factors[f.result[2][0]].kind, FactorKind::PassThrough);
        assert_ne!(f.operands[0][1], f.result[1]);
        assert_eq!(f.flops(), 0);
    }
}
