//! Instructions that become a few existing ops: `topk` (a stable sort with an iota of
//! indices, then the first `k`), `clamp` (a maximum and a minimum) and `is-finite`
//! (`|x| < inf`, false for NaN too).

use crate::dtype::DType;
use crate::graph::ValueId;
use crate::op::{BinaryFn, CompareDir, Literal, Op, UnaryFn};
use crate::types::TensorType;

use super::super::text::{HloType, Instruction};
use super::{Lowered, Lowering};

impl Lowering<'_> {
    /// `topk(x), k=K, largest=true|false`: `(values, indices)` of the `K` largest (smallest)
    /// along the last dim, ties in index order (`NAME.0`, `NAME.1`).
    pub(super) fn topk(&mut self, inst: &Instruction, x: ValueId) -> Result<Lowered, String> {
        let k: u64 = inst
            .attr("k")
            .and_then(|k| k.trim().parse().ok())
            .ok_or("expected k=N")?;
        let descending = inst.attr("largest").map_or(true, |l| l.trim() != "false");
        let Some(HloType::Tuple(tys)) = &inst.ty else {
            return Err("topk must have a (values, indices) tuple type".into());
        };
        let [vt, it] = &tys[..] else {
            return Err("topk must have a (values, indices) tuple type".into());
        };
        let (vt, it) = (Self::tensor_type(vt)?, Self::tensor_type(it)?);
        let xt = self.graph.ty(x).clone();
        let rank = xt.rank();
        let Some(dim) = rank.checked_sub(1) else {
            return Err("topk needs an operand of rank 1 or more".into());
        };
        if k > xt.dims()[dim] {
            return Err(format!("k={k} exceeds the last dim of {xt}"));
        }
        let base = self.node_name(inst);
        let iota_name = self.fresh_name(&format!("{base}.iota"));
        let iota_ty = TensorType::new(it.dtype, xt.dims().to_vec());
        let iota = self.push(&iota_name, Op::Iota { dim }, vec![], iota_ty)?;
        let mut start = vec![0; rank];
        let mut limit = xt.dims().to_vec();
        limit[dim] = k;
        start[dim] = 0;
        let mut out = Vec::new();
        for (output, ty) in [(0, vt), (1, it)] {
            let sorted_name = self.fresh_name(&format!("{base}.sorted.{output}"));
            let sort = Op::Sort {
                dim,
                descending,
                stable: true,
                output,
            };
            let sorted_ty = TensorType::new(ty.dtype, xt.dims().to_vec());
            let s = self.push(&sorted_name, sort, vec![x, iota], sorted_ty)?;
            let name = self.fresh_name(&format!("{base}.{output}"));
            let slice = Op::Slice {
                start: start.clone(),
                limit: limit.clone(),
                stride: vec![1; rank],
            };
            out.push(Lowered::Node(self.push(&name, slice, vec![s], ty)?));
        }
        Ok(Lowered::Tuple(out))
    }

    /// `clamp(lo, x, hi)` = `min(max(x, lo), hi)`; scalar bounds are broadcast.
    pub(super) fn clamp(
        &mut self,
        inst: &Instruction,
        ops: &[ValueId],
        ty: TensorType,
    ) -> Result<Lowered, String> {
        let [lo, x, hi] = ops[..] else {
            return Err("clamp needs (min, operand, max)".into());
        };
        let base = self.node_name(inst);
        let xt = self.graph.ty(x).clone();
        let mut bound = |b: ValueId, what: &str| -> Result<ValueId, String> {
            if *self.graph.ty(b) == xt {
                return Ok(b);
            }
            let n = self.fresh_name(&format!("{base}.{what}"));
            self.push(&n, Op::Broadcast { dims: vec![] }, vec![b], xt.clone())
        };
        let (lo, hi) = (bound(lo, "min")?, bound(hi, "max")?);
        let n = self.fresh_name(&format!("{base}.lower"));
        let m = self.push(
            &n,
            Op::Binary {
                func: BinaryFn::Max,
            },
            vec![x, lo],
            xt,
        )?;
        self.push(
            &base,
            Op::Binary {
                func: BinaryFn::Min,
            },
            vec![m, hi],
            ty,
        )
        .map(Lowered::Node)
    }

    /// `is-finite(x)` = `|x| < inf` (NaN compares false).
    pub(super) fn is_finite(
        &mut self,
        inst: &Instruction,
        x: ValueId,
        ty: TensorType,
    ) -> Result<Lowered, String> {
        let base = self.node_name(inst);
        let xt = self.graph.ty(x).clone();
        if !xt.dtype.is_float() || ty.dtype != DType::Bool {
            return Err(format!(
                "is-finite needs a float operand and a pred result, got {xt} to {ty}"
            ));
        }
        let n = self.fresh_name(&format!("{base}.abs"));
        let a = self.push(&n, Op::Unary { func: UnaryFn::Abs }, vec![x], xt.clone())?;
        let n = self.fresh_name(&format!("{base}.inf"));
        let inf = Op::Constant {
            value: Literal::Splat(f64::INFINITY),
        };
        let inf = self.push(&n, inf, vec![], xt)?;
        let lt = Op::Compare {
            dir: CompareDir::Lt,
        };
        self.push(&base, lt, vec![a, inf], ty).map(Lowered::Node)
    }
}
