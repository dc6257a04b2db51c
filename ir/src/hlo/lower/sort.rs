//! Sort instructions: a sort of `N` operands becomes `N` `sort` nodes (`NAME.0`, `NAME.1`, ...,
//! or one node named after the instruction when its type is not a tuple), each giving one
//! operand permuted by the order of the first. Which comparators are read is said in
//! `sort_comparator.rs`.

use crate::graph::ValueId;
use crate::op::Op;

use super::super::attrs;
use super::super::text::{HloType, Instruction};
use super::{Lowered, Lowering};

impl Lowering<'_> {
    /// XLA `sort(operands...), dimensions={d}, is_stable=..., to_apply=COMPARATOR`.
    pub(super) fn sort(&mut self, inst: &Instruction, ops: &[ValueId]) -> Result<Lowered, String> {
        if ops.is_empty() {
            return Err("sort needs at least one operand".into());
        }
        let dims = attrs::dims(inst.attr("dimensions").ok_or("expected dimensions={d}")?)?;
        let [dim] = dims[..] else {
            return Err(format!("sort dimensions must name one dim, got {dims:?}"));
        };
        let stable = inst.attr("is_stable").map(str::trim) == Some("true");
        let comp = inst.attr("to_apply").ok_or("expected to_apply=")?;
        let descending = self.sort_direction(comp, dim, ops)?;
        let op = |output: usize| Op::Sort {
            dim,
            descending,
            stable,
            output,
        };
        let base = self.node_name(inst);
        match &inst.ty {
            Some(HloType::Tuple(tys)) => {
                if tys.len() != ops.len() {
                    return Err(format!(
                        "a sort of {} operands must have a tuple of {} results, got {}",
                        ops.len(),
                        ops.len(),
                        tys.len()
                    ));
                }
                let mut out = Vec::with_capacity(tys.len());
                for (k, t) in tys.iter().enumerate() {
                    let ty = Self::tensor_type(t)?;
                    let name = self.fresh_name(&format!("{base}.{k}"));
                    out.push(Lowered::Node(self.push(&name, op(k), ops.to_vec(), ty)?));
                }
                Ok(Lowered::Tuple(out))
            }
            Some(t) if ops.len() == 1 => {
                let ty = Self::tensor_type(t)?;
                Ok(Lowered::Node(self.push(&base, op(0), ops.to_vec(), ty)?))
            }
            Some(_) => Err(format!(
                "a sort of {} operands must have a tuple type",
                ops.len()
            )),
            None => Err("a sort must declare its type".into()),
        }
    }
}
