//! `reduce-window` and `select-and-scatter` (pooling, cumulative sums and a max pool's
//! gradient) become `reduce_window` and `select_and_scatter` nodes.

use crate::graph::ValueId;
use crate::op::{CompareDir, Op};
use crate::types::TensorType;

use super::super::attrs;
use super::super::text::Instruction;
use super::{Lowered, Lowering};

impl Lowering<'_> {
    fn window_attr(&self, inst: &Instruction, x: ValueId) -> Result<crate::op::Window, String> {
        let rank = self.graph.ty(x).rank();
        match inst.attr("window") {
            Some(w) => attrs::window(w, rank),
            None => Ok(crate::op::Window::simple(vec![1; rank], vec![1; rank])),
        }
    }

    /// `reduce-window(x, init), window={..}, to_apply=ADD|MAX|MIN`; `init` a scalar constant.
    pub(super) fn reduce_window(
        &mut self,
        inst: &Instruction,
        ops: &[ValueId],
        ty: TensorType,
    ) -> Result<Lowered, String> {
        let [x, init] = ops[..] else {
            return Err(format!(
                "only a reduce-window of one operand (operand, init) is supported, got {} operands",
                ops.len()
            ));
        };
        let func = self.reducer(inst.attr("to_apply").ok_or("expected to_apply=")?)?;
        let init = self
            .scalar_constant(Some(init))
            .ok_or("the reduce-window init must be a scalar constant")?;
        let window = self.window_attr(inst, x)?;
        let name = self.node_name(inst);
        let op = Op::ReduceWindow { func, window, init };
        self.push(&name, op, vec![x], ty).map(Lowered::Node)
    }

    /// `select-and-scatter(operand, source, init), window={..}, select=GE|GT|LE|LT,
    /// scatter=ADD`; `init` a scalar constant.
    pub(super) fn select_and_scatter(
        &mut self,
        inst: &Instruction,
        ops: &[ValueId],
        ty: TensorType,
    ) -> Result<Lowered, String> {
        let [x, source, init] = ops[..] else {
            return Err("select-and-scatter needs (operand, source, init)".into());
        };
        let init = self
            .scalar_constant(Some(init))
            .ok_or("the select-and-scatter init must be a scalar constant")?;
        let scatter = self.reducer(inst.attr("scatter").ok_or("expected scatter=")?)?;
        if scatter != crate::op::ReduceFn::Sum {
            return Err("only a select-and-scatter whose scatter adds is supported".into());
        }
        let select = self.select_direction(inst.attr("select").ok_or("expected select=")?)?;
        let window = self.window_attr(inst, x)?;
        let name = self.node_name(inst);
        let op = Op::SelectAndScatter {
            window,
            select,
            init,
        };
        self.push(&name, op, vec![x, source], ty).map(Lowered::Node)
    }

    /// The direction of a `select=` computation: its ROOT compares its first parameter with its
    /// second (`compare(p0, p1), direction=GE`).
    fn select_direction(&self, comp: &str) -> Result<CompareDir, String> {
        let c = self
            .module
            .computation(comp)
            .ok_or_else(|| format!("select computation `{comp}` is not in the module"))?;
        let params: Vec<(&str, usize)> = c
            .instructions
            .iter()
            .filter(|i| i.opcode == "parameter")
            .filter_map(|i| Some((i.name.as_str(), i.args.trim().parse().ok()?)))
            .collect();
        let root = c.root().ok_or("empty select computation")?;
        let ops = root.operands();
        let param = |n: &str| params.iter().find(|(p, _)| *p == n).map(|(_, k)| *k);
        let order = match ops[..] {
            [ref a, ref b] => (param(a), param(b)),
            _ => (None, None),
        };
        let dir = root.attr("direction").map(str::trim);
        let dir = match dir {
            Some("GE") => CompareDir::Ge,
            Some("GT") => CompareDir::Gt,
            Some("LE") => CompareDir::Le,
            Some("LT") => CompareDir::Lt,
            _ => CompareDir::Eq,
        };
        match (root.opcode.as_str(), order, dir) {
            ("compare", (Some(0), Some(1)), d) if d != CompareDir::Eq => Ok(d),
            _ => Err(format!(
                "select computation `{comp}` is not a GE/GT/LE/LT compare of its parameters in order"
            )),
        }
    }
}
