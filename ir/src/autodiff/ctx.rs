//! What a gradient rule sees and builds with: the forward node being differentiated, which of its
//! operands want a gradient, and helpers that append backward nodes named after the forward node.

use std::collections::HashSet;

use crate::dtype::DType;
use crate::error::{IrError, Result};
use crate::graph::{Graph, Phase, Role, ValueId};
use crate::op::{BinaryFn, CompareDir, Literal, Op, ReduceFn};
use crate::types::TensorType;

/// Names already used in a graph, so that new nodes get unique ones.
#[derive(Default)]
pub(crate) struct Names(HashSet<String>);

impl Names {
    pub(crate) fn of(g: &Graph) -> Self {
        Names(g.nodes.iter().map(|n| n.name.clone()).collect())
    }

    /// `want` if it is free, else `want.1`, `want.2`, ...; the returned name is reserved.
    pub(crate) fn fresh(&mut self, want: String) -> String {
        if self.0.insert(want.clone()) {
            return want;
        }
        let mut i = 1u64;
        loop {
            let cand = format!("{want}.{i}");
            if self.0.insert(cand.clone()) {
                return cand;
            }
            i += 1;
        }
    }
}

/// Appends nodes of one phase with unique names (used by autodiff, optimizers and recomputation).
pub(crate) struct Emitter<'a> {
    pub g: &'a mut Graph,
    pub names: &'a mut Names,
    pub phase: Phase,
}

impl Emitter<'_> {
    /// Appends `op` under a fresh name derived from `name`, in this emitter's phase.
    pub(crate) fn emit(
        &mut self,
        name: String,
        op: Op,
        operands: Vec<ValueId>,
        declared: Option<TensorType>,
    ) -> Result<ValueId> {
        let name = self.names.fresh(name);
        let v = self.g.push(name, op, operands, declared)?;
        let n = &mut self.g.nodes[v.index()];
        n.phase = self.phase;
        n.role = Role::Activation;
        Ok(v)
    }
}

/// The context of one gradient rule: the forward node `node` with adjoint `dy`.
pub(crate) struct GradCtx<'a, 'b> {
    pub(crate) em: &'a mut Emitter<'b>,
    pub(crate) node: ValueId,
    /// `wants[i]`: operand `i` needs a gradient (it is a float value that depends on a parameter).
    pub(crate) wants: Vec<bool>,
    /// The adjoint of the node's value.
    pub(crate) dy: ValueId,
}

/// Per-operand gradient contributions a rule returns (`None`: no gradient for that operand).
pub(crate) type Grads = Vec<Option<ValueId>>;

impl GradCtx<'_, '_> {
    /// The forward node's `i`-th operand.
    pub(crate) fn x(&self, i: usize) -> ValueId {
        self.em.g.node(self.node).operands[i]
    }

    /// The forward node's value.
    pub(crate) fn y(&self) -> ValueId {
        self.node
    }

    pub(crate) fn ty(&self, v: ValueId) -> TensorType {
        self.em.g.ty(v).clone()
    }

    pub(crate) fn wants(&self, i: usize) -> bool {
        self.wants.get(i).copied().unwrap_or(false)
    }

    /// An error naming the forward node and its op.
    pub(crate) fn err(&self, message: impl Into<String>) -> IrError {
        let n = self.em.g.node(self.node);
        IrError::node(&n.name, n.op.name(), message)
    }

    /// Appends `op` named `<forward node>.<suffix>`.
    pub(crate) fn emit(
        &mut self,
        suffix: &str,
        op: Op,
        operands: Vec<ValueId>,
        declared: Option<TensorType>,
    ) -> Result<ValueId> {
        let name = format!("{}.{suffix}", self.em.g.node(self.node).name);
        self.em.emit(name, op, operands, declared)
    }

    /// A constant `value` of type `ty`.
    pub(crate) fn splat(&mut self, suffix: &str, value: f64, ty: &TensorType) -> Result<ValueId> {
        self.emit(
            suffix,
            Op::Constant {
                value: Literal::Splat(value),
            },
            vec![],
            Some(ty.clone()),
        )
    }

    /// Zeros shaped like `like`.
    pub(crate) fn zeros_like(&mut self, suffix: &str, like: ValueId) -> Result<ValueId> {
        let ty = self.ty(like);
        self.splat(suffix, 0.0, &ty)
    }

    /// A constant `value` shaped like `like`.
    pub(crate) fn splat_like(
        &mut self,
        suffix: &str,
        value: f64,
        like: ValueId,
    ) -> Result<ValueId> {
        let ty = self.ty(like);
        self.splat(suffix, value, &ty)
    }

    pub(crate) fn binary(
        &mut self,
        suffix: &str,
        func: BinaryFn,
        a: ValueId,
        b: ValueId,
    ) -> Result<ValueId> {
        self.emit(suffix, Op::Binary { func }, vec![a, b], None)
    }

    pub(crate) fn mul(&mut self, suffix: &str, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.binary(suffix, BinaryFn::Mul, a, b)
    }

    pub(crate) fn div(&mut self, suffix: &str, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.binary(suffix, BinaryFn::Div, a, b)
    }

    pub(crate) fn add(&mut self, suffix: &str, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.binary(suffix, BinaryFn::Add, a, b)
    }

    pub(crate) fn sub(&mut self, suffix: &str, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.binary(suffix, BinaryFn::Sub, a, b)
    }

    pub(crate) fn unary(
        &mut self,
        suffix: &str,
        func: crate::op::UnaryFn,
        x: ValueId,
    ) -> Result<ValueId> {
        self.emit(suffix, Op::Unary { func }, vec![x], None)
    }

    /// `x * c` for a constant `c`.
    pub(crate) fn scale(&mut self, suffix: &str, x: ValueId, c: f64) -> Result<ValueId> {
        let k = self.splat_like(&format!("{suffix}.c"), c, x)?;
        self.mul(suffix, x, k)
    }

    pub(crate) fn compare(
        &mut self,
        suffix: &str,
        dir: CompareDir,
        a: ValueId,
        b: ValueId,
    ) -> Result<ValueId> {
        self.emit(suffix, Op::Compare { dir }, vec![a, b], None)
    }

    pub(crate) fn select(
        &mut self,
        suffix: &str,
        p: ValueId,
        a: ValueId,
        b: ValueId,
    ) -> Result<ValueId> {
        self.emit(suffix, Op::Select, vec![p, a, b], None)
    }

    /// `dy` where `p`, else zero (or the reverse with `where_true = false`).
    pub(crate) fn mask(
        &mut self,
        suffix: &str,
        p: ValueId,
        v: ValueId,
        where_true: bool,
    ) -> Result<ValueId> {
        let z = self.zeros_like(&format!("{suffix}.zero"), v)?;
        if where_true {
            self.select(suffix, p, v, z)
        } else {
            self.select(suffix, p, z, v)
        }
    }

    pub(crate) fn convert(&mut self, suffix: &str, x: ValueId, dtype: DType) -> Result<ValueId> {
        let ty = self.ty(x).with_dtype(dtype);
        self.emit(suffix, Op::Convert, vec![x], Some(ty))
    }

    pub(crate) fn transpose(
        &mut self,
        suffix: &str,
        x: ValueId,
        perm: Vec<usize>,
    ) -> Result<ValueId> {
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(x);
        }
        self.emit(suffix, Op::Transpose { perm }, vec![x], None)
    }

    pub(crate) fn reshape(&mut self, suffix: &str, x: ValueId, dims: Vec<u64>) -> Result<ValueId> {
        if self.ty(x).dims() == dims.as_slice() {
            return Ok(x);
        }
        let ty = TensorType::new(self.ty(x).dtype, dims);
        self.emit(suffix, Op::Reshape, vec![x], Some(ty))
    }

    pub(crate) fn reduce_sum(
        &mut self,
        suffix: &str,
        x: ValueId,
        dims: Vec<usize>,
    ) -> Result<ValueId> {
        if dims.is_empty() {
            return Ok(x);
        }
        self.emit(
            suffix,
            Op::Reduce {
                func: ReduceFn::Sum,
                dims,
            },
            vec![x],
            None,
        )
    }

    /// Broadcasts `x` to `to` (operand dim `i` becomes result dim `dims[i]`).
    pub(crate) fn broadcast(
        &mut self,
        suffix: &str,
        x: ValueId,
        dims: Vec<usize>,
        to: &[u64],
    ) -> Result<ValueId> {
        let xt = self.ty(x);
        if xt.dims() == to && dims.iter().enumerate().all(|(i, &d)| i == d) {
            return Ok(x);
        }
        let ty = TensorType::new(xt.dtype, to.to_vec());
        self.emit(suffix, Op::Broadcast { dims }, vec![x], Some(ty))
    }
}

/// `argsort(v)`: the permutation that sorts `v`.
pub(crate) fn argsort(v: &[usize]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by_key(|&i| v[i]);
    idx
}
