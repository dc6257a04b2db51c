//! Sort comparators: which order a sort's `to_apply` computation defines, for the forms JAX,
//! TensorFlow and XLA emit that our `sort` expresses.
//!
//! - `ROOT compare(p0, p1), direction=LT|GT` (any `type=`), or with the parameters swapped:
//!   parameters 0 and 1 are the first operand's two values; other parameters may go unused.
//! - TopK's tie-break chain: `ROOT select(compare(GT(a, b), GT(b, a)), direction=EQ),
//!   compare(p2, p3), direction=LT, GT(a, b))`, where `a`/`b` are the first operand's values or
//!   their total-order integer keys (the bit trick `x < 0 ? 0x7fffffff - bits(x) : bits(x)` of
//!   an f32, possibly converted from bf16/f16), and the second operand is an iota along the sort
//!   dim: on ties it keeps the original order, which is what a stable sort does.
//!
//! Anything else (orders on other operands, other tie-breaks, NaN or zero canonicalisation) is
//! refused: our sort could not give the same order.

use crate::graph::ValueId;
use crate::op::Op;

use super::super::attrs;
use super::super::text::{Computation, HloType, Instruction};
use super::Lowering;

/// Whether `i` has an array type of element type `dtype` and rank 0.
fn scalar_of(i: &Instruction, dtype: &str) -> bool {
    matches!(&i.ty, Some(HloType::Array { dtype: d, dims, .. }) if d == dtype && dims.is_empty())
}

/// The instructions of one comparator, looked up by name.
struct Comparator<'c> {
    c: &'c Computation,
}

impl<'c> Comparator<'c> {
    fn get(&self, name: &str) -> Option<&'c Instruction> {
        let name = name.trim_start_matches('%');
        self.c.instructions.iter().find(|i| i.name == name)
    }

    /// The operands of `name` if its opcode is `opcode` and it has `n` of them.
    fn args(&self, name: &str, opcode: &str, n: usize) -> Option<(&'c Instruction, Vec<String>)> {
        let i = self.get(name)?;
        let ops = i.operands();
        (i.opcode == opcode && ops.len() == n).then_some((i, ops))
    }

    fn param(&self, name: &str) -> Option<usize> {
        let i = self.get(name)?;
        (i.opcode == "parameter")
            .then(|| i.args.trim().parse().ok())
            .flatten()
    }

    fn constant(&self, name: &str) -> Option<f64> {
        let (i, _) = self.args(name, "constant", 1)?;
        match attrs::literal(&i.args).ok()?[..] {
            [v] => Some(v),
            _ => None,
        }
    }

    /// `compare(x, y), direction=DIR` as `(x, y, DIR)`.
    fn compare(&self, name: &str) -> Option<(String, String, &'c str)> {
        let (i, ops) = self.args(name, "compare", 2)?;
        let dir = i.attr("direction")?.trim();
        Some((ops[0].clone(), ops[1].clone(), dir))
    }

    /// The parameter an f32 value is (or is an exact conversion of).
    fn f32_of_param(&self, name: &str) -> Option<usize> {
        let i = self.get(name)?;
        if !scalar_of(i, "f32") {
            return None;
        }
        match i.opcode.as_str() {
            "parameter" => self.param(name),
            "convert" => {
                let src = self.get(i.operands().first()?)?;
                let exact = ["bf16", "f16", "f32"].iter().any(|d| scalar_of(src, d));
                exact.then(|| self.param(&src.name)).flatten()
            }
            _ => None,
        }
    }

    /// The parameter whose total-order integer key `name` is:
    /// `select(compare(bits, 0) LT, bitcast(0x7fffffff - ubits(x)), bits)` with
    /// `bits = bitcast-convert(x)` to s32 and `ubits` to u32, `x` an f32 of a parameter.
    fn total_order_key(&self, name: &str) -> Option<usize> {
        let (sel, ops) = self.args(name, "select", 3)?;
        if !scalar_of(sel, "s32") {
            return None;
        }
        let (bits, bits_ops) = self.args(&ops[2], "bitcast-convert", 1)?;
        if !scalar_of(bits, "s32") {
            return None;
        }
        let x = &bits_ops[0];
        let p = self.f32_of_param(x)?;
        let (lhs, zero, dir) = self.compare(&ops[0])?;
        let negative =
            dir == "LT" && self.get(&lhs)?.name == bits.name && self.constant(&zero) == Some(0.0);
        let (flip, flip_ops) = self.args(&ops[1], "bitcast-convert", 1)?;
        let (_, sub) = self.args(&flip_ops[0], "subtract", 2)?;
        let (ubits, ubits_ops) = self.args(&sub[1], "bitcast-convert", 1)?;
        let flipped = scalar_of(flip, "s32")
            && scalar_of(ubits, "u32")
            && self.constant(&sub[0]) == Some(2147483647.0)
            && self.get(&ubits_ops[0])?.name == self.get(x)?.name;
        (negative && flipped).then_some(p)
    }

    /// The parameter a sort key expression is: the parameter itself or its total-order key.
    fn key_param(&self, name: &str) -> Option<usize> {
        self.param(name).or_else(|| self.total_order_key(name))
    }

    /// `compare(a, b), direction=LT|GT` of the keys of parameters 0 and 1 (either way round):
    /// whether it orders descending.
    fn key_order(&self, name: &str) -> Option<bool> {
        let (a, b, dir) = self.compare(name)?;
        let swapped = match (self.key_param(&a)?, self.key_param(&b)?) {
            (0, 1) => false,
            (1, 0) => true,
            _ => return None,
        };
        let descending = match dir {
            "LT" => false,
            "GT" => true,
            _ => return None,
        };
        Some(descending != swapped)
    }
}

impl Lowering<'_> {
    /// Whether the comparator `comp` of a sort along `dim` of `ops` orders descending, or why
    /// our sort cannot express it.
    pub(super) fn sort_direction(
        &self,
        comp: &str,
        dim: usize,
        ops: &[ValueId],
    ) -> Result<bool, String> {
        let c = self
            .module
            .computation(comp)
            .ok_or_else(|| format!("sort comparator `{comp}` is not in the module"))?;
        let bad = |why: String| {
            format!(
                "sort comparator `{comp}` is not a compare of the first operand (ROOT \
                 compare(parameter 0, parameter 1), direction=LT or GT, or that with ties broken \
                 by an iota along the sort dim): {why}"
            )
        };
        let cmp = Comparator { c };
        let root = c.root().ok_or_else(|| bad("it is empty".into()))?;
        match root.opcode.as_str() {
            "compare" => {
                let (a, b, dir) = cmp
                    .compare(&root.name)
                    .ok_or_else(|| bad("its ROOT compare has no direction".into()))?;
                if !matches!(dir, "LT" | "GT") {
                    return Err(bad(format!(
                        "direction {dir} is not a strict order (LT or GT)"
                    )));
                }
                let params = (cmp.param(&a), cmp.param(&b));
                if !matches!(params, (Some(0), Some(1)) | (Some(1), Some(0))) {
                    return Err(bad(format!("its ROOT compares {a}, {b}")));
                }
                cmp.key_order(&root.name)
                    .ok_or_else(|| bad(format!("its ROOT compares {a}, {b}")))
            }
            "select" => self.tie_broken_order(&cmp, root, dim, ops).map_err(bad),
            o => Err(bad(format!("its ROOT is `{o}`"))),
        }
    }

    /// TopK's `select(EQ(GT(a, b), GT(b, a)), LT(p2, p3), GT(a, b))` with operand 1 an iota
    /// along `dim`.
    fn tie_broken_order(
        &self,
        cmp: &Comparator,
        root: &Instruction,
        dim: usize,
        ops: &[ValueId],
    ) -> Result<bool, String> {
        let what = "its ROOT select is not `select(EQ(c(a, b), c(b, a)), LT(p2, p3), c(a, b))`";
        let rops = root.operands();
        let [tie, tie_break, main] = &rops[..] else {
            return Err(what.into());
        };
        let descending = cmp.key_order(main).ok_or(what)?;
        let (a, b, dir) = cmp.compare(main).ok_or(what)?;
        let (e0, e1, eq) = cmp.compare(tie).ok_or(what)?;
        let same = |n: &str, x: &str, y: &str| {
            cmp.compare(n)
                .is_some_and(|(p, q, d)| d == dir && p == x && q == y)
        };
        let both_ways =
            (same(&e0, &a, &b) && same(&e1, &b, &a)) || (same(&e0, &b, &a) && same(&e1, &a, &b));
        if eq != "EQ" || !both_ways {
            return Err(what.into());
        }
        let (i, j, lt) = cmp.compare(tie_break).ok_or(what)?;
        if lt != "LT" || cmp.param(&i) != Some(2) || cmp.param(&j) != Some(3) {
            return Err(format!(
                "ties are not broken by parameter 2 < parameter 3 (`{tie_break}`)"
            ));
        }
        let iota = ops.get(1).map(|&v| &self.graph.node(v).op);
        if iota != Some(&Op::Iota { dim }) {
            return Err(format!(
                "ties are broken by operand 1, which is not an iota along the sort dim {dim}"
            ));
        }
        Ok(descending)
    }
}
