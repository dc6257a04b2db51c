//! Variadic reduces that are an argmax or argmin (how `jnp.argmax` lowers): a reduce of
//! (values, indices) whose `to_apply` keeps the (value, index) pair with the larger (or
//! smaller) value. They become a reduction of the values, then the smallest index among the
//! positions that hold it (the lowest-index tie-break `jnp.argmax` writes into its comparator).

use crate::dtype::DType;
use crate::graph::ValueId;
use crate::op::{CompareDir, Literal, Op, ReduceFn};

use super::super::attrs;
use super::super::text::{HloType, Instruction};
use super::{Lowered, Lowering};

impl Lowering<'_> {
    /// A reduce of pred (`jnp.all`/`jnp.any`: `and`/`or`, read as min/max) runs on 0/1 as s32
    /// and compares the result with 0: `NAME.as_int`, `NAME.init_int`, `NAME.int`, then `NAME`.
    pub(super) fn bool_reduce(
        &mut self,
        name: &str,
        func: ReduceFn,
        dims: Vec<usize>,
        ops: &[ValueId],
        ty: crate::types::TensorType,
    ) -> Result<Lowered, String> {
        let int = |t: &crate::types::TensorType| t.with_dtype(DType::I32);
        let (xt, it) = (self.graph.ty(ops[0]).clone(), self.graph.ty(ops[1]).clone());
        let n = self.fresh_name(&format!("{name}.as_int"));
        let x = self.push(&n, Op::Convert, vec![ops[0]], int(&xt))?;
        let n = self.fresh_name(&format!("{name}.init_int"));
        let init = self.push(&n, Op::Convert, vec![ops[1]], int(&it))?;
        let n = self.fresh_name(&format!("{name}.reduced"));
        let r = self.push(&n, Op::Reduce { func, dims }, vec![x], int(&ty))?;
        let n = self.fresh_name(&format!("{name}.init"));
        let b = self.push(&n, Op::Broadcast { dims: Vec::new() }, vec![init], int(&ty))?;
        let combine = match func {
            ReduceFn::Min => crate::op::BinaryFn::Min,
            _ => crate::op::BinaryFn::Max,
        };
        let n = self.fresh_name(&format!("{name}.int"));
        let c = self.push(&n, Op::Binary { func: combine }, vec![r, b], int(&ty))?;
        let n = self.fresh_name(&format!("{name}.zero"));
        let zero = Op::Constant {
            value: Literal::Splat(0.0),
        };
        let z = self.push(&n, zero, vec![], int(&ty))?;
        let ne = Op::Compare {
            dir: CompareDir::Ne,
        };
        self.push(name, ne, vec![c, z], ty).map(Lowered::Node)
    }

    /// `reduce(values, indices, init_value, init_index)` as an argmax/argmin: nodes `NAME.0`
    /// (the extreme values) and `NAME.1` (their indices).
    pub(super) fn arg_reduce(
        &mut self,
        inst: &Instruction,
        ops: &[ValueId],
    ) -> Result<Lowered, String> {
        let [x, idx, init, init_idx] = ops[..] else {
            return Err(format!(
                "a reduce of {} operands is unsupported: only (operand, init) and the argmax/argmin form (values, indices, init, init) are",
                ops.len()
            ));
        };
        let func = self.arg_reducer(inst.attr("to_apply").ok_or("expected to_apply=")?)?;
        let dims = attrs::dims(inst.attr("dimensions").ok_or("expected dimensions=")?)?;
        let (xt, it) = (self.graph.ty(x).clone(), self.graph.ty(idx).clone());
        if xt.dims() != it.dims() || !it.dtype.is_int() {
            return Err(format!(
                "an argmax/argmin reduce needs integer indices of the values' shape, got {xt} and {it}"
            ));
        }
        let Some(HloType::Tuple(tys)) = &inst.ty else {
            return Err("an argmax/argmin reduce has a tuple type".into());
        };
        let (vt, jt) = match &tys[..] {
            [a, b] => (Self::tensor_type(a)?, Self::tensor_type(b)?),
            _ => return Err("an argmax/argmin reduce has two results".into()),
        };
        let base = self.node_name(inst);
        // An init that is no constant identity is folded in once, after the reduction.
        let folded = !self.is_identity(init, func);
        let kept: Vec<usize> = (0..xt.rank()).filter(|d| !dims.contains(d)).collect();
        let name = self.fresh_name(&format!("{base}{}", if folded { ".reduce" } else { ".0" }));
        let best = self.push(
            &name,
            Op::Reduce {
                func,
                dims: dims.clone(),
            },
            vec![x],
            vt.clone(),
        )?;
        let n = self.fresh_name(&format!("{base}.best"));
        let spread = self.push(&n, Op::Broadcast { dims: kept }, vec![best], xt.clone())?;
        let n = self.fresh_name(&format!("{base}.is_best"));
        let hit = self.push(
            &n,
            Op::Compare {
                dir: CompareDir::Eq,
            },
            vec![x, spread],
            xt.with_dtype(DType::Bool),
        )?;
        let n = self.fresh_name(&format!("{base}.none"));
        let none_value = match it.dtype {
            DType::I32 => i32::MAX as f64,
            _ => i64::MAX as f64,
        };
        let none = self.push(
            &n,
            Op::Constant {
                value: Literal::Splat(none_value),
            },
            vec![],
            it.clone(),
        )?;
        let n = self.fresh_name(&format!("{base}.candidates"));
        let cand = self.push(&n, Op::Select, vec![hit, idx, none], it)?;
        let name = self.fresh_name(&format!(
            "{base}{}",
            if folded { ".argreduce" } else { ".1" }
        ));
        let arg = self.push(
            &name,
            Op::Reduce {
                func: ReduceFn::Min,
                dims,
            },
            vec![cand],
            jt.clone(),
        )?;
        if !folded {
            return Ok(Lowered::Tuple(vec![
                Lowered::Node(best),
                Lowered::Node(arg),
            ]));
        }
        // The init pair wins where its value is strictly better than the data's best.
        let n = self.fresh_name(&format!("{base}.init"));
        let iv = self.push(&n, Op::Broadcast { dims: vec![] }, vec![init], vt.clone())?;
        let n = self.fresh_name(&format!("{base}.init_index"));
        let ii = self.push(
            &n,
            Op::Broadcast { dims: vec![] },
            vec![init_idx],
            jt.clone(),
        )?;
        let n = self.fresh_name(&format!("{base}.init_wins"));
        let dir = if func == ReduceFn::Max {
            CompareDir::Gt
        } else {
            CompareDir::Lt
        };
        let wins = self.push(
            &n,
            Op::Compare { dir },
            vec![iv, best],
            vt.with_dtype(DType::Bool),
        )?;
        let name = self.fresh_name(&format!("{base}.0"));
        let v = self.push(&name, Op::Select, vec![wins, iv, best], vt)?;
        let name = self.fresh_name(&format!("{base}.1"));
        let j = self.push(&name, Op::Select, vec![wins, ii, arg], jt)?;
        Ok(Lowered::Tuple(vec![Lowered::Node(v), Lowered::Node(j)]))
    }

    /// Whether `to_apply` (parameters: value and index of the left pair, then of the right)
    /// returns `tuple(select(c, v0, v1), select(c, i0, i1))` with `c` true where the left value
    /// is greater (argmax) or smaller (argmin), possibly with NaN and tie-break terms.
    fn arg_reducer(&self, comp: &str) -> Result<ReduceFn, String> {
        let c = self
            .module
            .computation(comp)
            .ok_or_else(|| format!("to_apply computation `{comp}` is not in the module"))?;
        let bad = |m: &str| format!("reduce to_apply `{comp}` is not an argmax/argmin: {m}");
        let param = |name: &str| {
            c.instructions
                .iter()
                .find(|i| i.name == name && i.opcode == "parameter")
                .and_then(|i| i.args.trim().parse::<usize>().ok())
        };
        let find = |name: &str| c.instructions.iter().find(|i| i.name == name);
        let root = c.root().ok_or("empty to_apply computation")?;
        let elems = root.operands();
        if root.opcode != "tuple" || elems.len() != 2 {
            return Err(bad("its ROOT is no pair"));
        }
        let select = |e: &str, a: usize, b: usize| -> Option<String> {
            let s = find(e).filter(|s| s.opcode == "select")?;
            let o = s.operands();
            (o.len() == 3 && param(&o[1]) == Some(a) && param(&o[2]) == Some(b))
                .then(|| o[0].clone())
        };
        let (Some(c0), Some(c1)) = (select(&elems[0], 0, 2), select(&elems[1], 1, 3)) else {
            return Err(bad(
                "its ROOT must pick (value, index) of one side with one predicate",
            ));
        };
        if c0 != c1 {
            return Err(bad(
                "the value and the index are picked by different predicates",
            ));
        }
        // The comparison of the two values that decides: GT/GE keeps the larger (argmax).
        let mut dir = None;
        let mut stack = vec![c0];
        while let Some(n) = stack.pop() {
            let Some(i) = find(&n) else { continue };
            match i.opcode.as_str() {
                "or" | "and" => stack.extend(i.operands()),
                "compare" => {
                    let o = i.operands();
                    let pair = (param(&o[0]), param(&o[1]));
                    let d = i.attr("direction").map(str::trim);
                    let f = match (pair, d) {
                        ((Some(0), Some(2)), Some("GT" | "GE"))
                        | ((Some(2), Some(0)), Some("LT" | "LE")) => Some(ReduceFn::Max),
                        ((Some(0), Some(2)), Some("LT" | "LE"))
                        | ((Some(2), Some(0)), Some("GT" | "GE")) => Some(ReduceFn::Min),
                        _ => None,
                    };
                    if let Some(f) = f {
                        if dir.is_some_and(|g| g != f) {
                            return Err(bad("it compares the values both ways"));
                        }
                        dir = Some(f);
                    }
                }
                _ => {}
            }
        }
        dir.ok_or_else(|| bad("no comparison of the two values decides it"))
    }
}
