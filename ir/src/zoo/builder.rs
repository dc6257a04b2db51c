//! A small graph-building helper shared by the zoo: scoped names, typed pushes, and the few
//! composite layers (bias add, layer norm, softmax, cross-entropy) every model reuses.

use crate::dtype::DType;
use crate::error::Result;
use crate::graph::{Graph, Role, ValueId};
use crate::op::{BinaryFn, CompareDir, Init, Literal, Op, ReduceFn, UnaryFn};
use crate::types::TensorType;

/// Standard deviation of weight initialisation (GPT-2's `initializer_range`).
pub(crate) const WEIGHT_STD: f64 = 0.02;

/// Builds a graph node by node; every name is prefixed with the current scope.
pub(crate) struct Builder {
    pub g: Graph,
    scope: Vec<String>,
    /// The floating-point dtype of parameters, activations and constants.
    pub dtype: DType,
}

impl Builder {
    pub fn new(name: &str, dtype: DType) -> Self {
        Builder {
            g: Graph::new(name),
            scope: Vec::new(),
            dtype,
        }
    }

    /// Runs `f` with `scope` appended to the name prefix.
    pub fn scoped<T>(
        &mut self,
        scope: impl std::fmt::Display,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        self.scope.push(scope.to_string());
        let r = f(self);
        self.scope.pop();
        r
    }

    /// The full name of `local` under the current scope.
    pub fn name(&self, local: &str) -> String {
        if self.scope.is_empty() {
            local.to_string()
        } else {
            format!("{}.{local}", self.scope.join("."))
        }
    }

    pub fn dims(&self, v: ValueId) -> Vec<u64> {
        self.g.ty(v).dims().to_vec()
    }

    fn ty(&self, dims: &[u64]) -> TensorType {
        TensorType::new(self.dtype, dims.to_vec())
    }

    pub fn push(
        &mut self,
        local: &str,
        op: Op,
        operands: Vec<ValueId>,
        declared: Option<TensorType>,
    ) -> Result<ValueId> {
        let name = self.name(local);
        let v = self.g.push(name, op, operands, declared)?;
        // The verifier checks sizes too, but the builders multiply dims as they go: refuse an
        // overflowing value as soon as it exists so later arithmetic on dims cannot overflow.
        let node = self.g.node(v);
        if node
            .ty
            .shape
            .checked_elements()
            .and_then(|e| e.checked_mul(node.ty.dtype.size_bytes()))
            .is_none()
        {
            return Err(crate::IrError::node(
                &node.name,
                node.op.name(),
                format!("type {} overflows u64 bytes", node.ty),
            ));
        }
        Ok(v)
    }

    /// A value fed each step (tokens, images, labels, regression targets).
    pub fn input(&mut self, local: &str, ty: TensorType, init: Init) -> Result<ValueId> {
        let v = self.push(local, Op::Input { init: Some(init) }, vec![], Some(ty))?;
        self.g.nodes[v.index()].role = Role::Input;
        Ok(v)
    }

    pub fn param(&mut self, local: &str, dims: &[u64], init: Init) -> Result<ValueId> {
        let ty = self.ty(dims);
        let v = self.push(local, Op::Input { init: Some(init) }, vec![], Some(ty))?;
        self.g.nodes[v.index()].role = Role::Parameter;
        Ok(v)
    }

    /// A weight matrix, `Normal(0, 0.02)`.
    pub fn weight(&mut self, local: &str, dims: &[u64]) -> Result<ValueId> {
        self.param(local, dims, Init::Normal { std: WEIGHT_STD })
    }

    /// A bias, zeros.
    pub fn bias(&mut self, local: &str, dims: &[u64]) -> Result<ValueId> {
        self.param(local, dims, Init::Fill { value: 0.0 })
    }

    /// A constant of the model dtype, `value` everywhere.
    pub fn constant(&mut self, local: &str, value: f64, dims: &[u64]) -> Result<ValueId> {
        let ty = self.ty(dims);
        self.push(
            local,
            Op::Constant {
                value: Literal::Splat(value),
            },
            vec![],
            Some(ty),
        )
    }

    pub fn unary(&mut self, local: &str, func: UnaryFn, x: ValueId) -> Result<ValueId> {
        self.push(local, Op::Unary { func }, vec![x], None)
    }

    pub fn binary(
        &mut self,
        local: &str,
        func: BinaryFn,
        x: ValueId,
        y: ValueId,
    ) -> Result<ValueId> {
        self.push(local, Op::Binary { func }, vec![x, y], None)
    }

    /// `dot_general` with the given (lhs, rhs) batch and contracting dims.
    pub fn dot(
        &mut self,
        local: &str,
        x: ValueId,
        y: ValueId,
        batch: (&[usize], &[usize]),
        contract: (&[usize], &[usize]),
    ) -> Result<ValueId> {
        let op = Op::DotGeneral {
            lhs_batch: batch.0.to_vec(),
            rhs_batch: batch.1.to_vec(),
            lhs_contract: contract.0.to_vec(),
            rhs_contract: contract.1.to_vec(),
        };
        self.push(local, op, vec![x, y], None)
    }

    /// `x @ w`: contracts the last dim of `x` with the first of `w`.
    pub fn linear(&mut self, local: &str, x: ValueId, w: ValueId) -> Result<ValueId> {
        let last = self.g.ty(x).rank().saturating_sub(1);
        self.dot(local, x, w, (&[], &[]), (&[last], &[0]))
    }

    pub fn broadcast(
        &mut self,
        local: &str,
        x: ValueId,
        dims: &[usize],
        out: &[u64],
    ) -> Result<ValueId> {
        let ty = self.g.ty(x).dtype;
        self.push(
            local,
            Op::Broadcast {
                dims: dims.to_vec(),
            },
            vec![x],
            Some(TensorType::new(ty, out.to_vec())),
        )
    }

    pub fn reshape(&mut self, local: &str, x: ValueId, out: &[u64]) -> Result<ValueId> {
        let ty = self.g.ty(x).dtype;
        self.push(
            local,
            Op::Reshape,
            vec![x],
            Some(TensorType::new(ty, out.to_vec())),
        )
    }

    pub fn transpose(&mut self, local: &str, x: ValueId, perm: &[usize]) -> Result<ValueId> {
        self.push(
            local,
            Op::Transpose {
                perm: perm.to_vec(),
            },
            vec![x],
            None,
        )
    }

    pub fn reduce(
        &mut self,
        local: &str,
        func: ReduceFn,
        x: ValueId,
        dims: &[usize],
    ) -> Result<ValueId> {
        self.push(
            local,
            Op::Reduce {
                func,
                dims: dims.to_vec(),
            },
            vec![x],
            None,
        )
    }

    /// `x * factor` (the factor a splat constant named `{local}.factor`).
    pub fn scale(&mut self, local: &str, x: ValueId, factor: f64) -> Result<ValueId> {
        let dims = self.dims(x);
        let c = self.constant(&format!("{local}.factor"), factor, &dims)?;
        self.binary(local, BinaryFn::Mul, x, c)
    }

    /// `func(x, y)` where `y` covers dims `dims` of `x` and is broadcast first (`{local}.bcast`).
    pub fn binary_bcast(
        &mut self,
        local: &str,
        func: BinaryFn,
        x: ValueId,
        y: ValueId,
        dims: &[usize],
    ) -> Result<ValueId> {
        let out = self.dims(x);
        let yb = self.broadcast(&format!("{local}.bcast"), y, dims, &out)?;
        self.binary(local, func, x, yb)
    }

    /// `x + b` for a bias `b` over the last dim of `x`.
    pub fn add_bias(&mut self, local: &str, x: ValueId, b: ValueId) -> Result<ValueId> {
        let last = self.g.ty(x).rank().saturating_sub(1);
        self.binary_bcast(local, BinaryFn::Add, x, b, &[last])
    }

    /// The mean of `x` over its last dim (rank one less).
    fn mean_last(&mut self, local: &str, x: ValueId) -> Result<ValueId> {
        let dims = self.dims(x);
        let last = dims.len().saturating_sub(1);
        let n = dims.last().copied().unwrap_or(1);
        let s = self.reduce(&format!("{local}.sum"), ReduceFn::Sum, x, &[last])?;
        self.scale(local, s, 1.0 / n as f64)
    }

    /// Layer norm over the last dim with a gain (`gain`, ones) and a bias (`bias`, zeros), under
    /// scope `scope`; the result is `{scope}.out`.
    pub fn layer_norm(&mut self, scope: &str, x: ValueId) -> Result<ValueId> {
        // GPT-2 and Megatron-LM use epsilon 1e-5.
        const EPS: f64 = 1e-5;
        self.scoped(scope, |b| {
            let dims = b.dims(x);
            let last = dims.len() - 1;
            let keep: Vec<usize> = (0..last).collect();
            let h = dims[last];
            let gain = b.param("gain", &[h], Init::Fill { value: 1.0 })?;
            let bias = b.bias("bias", &[h])?;
            let mean = b.mean_last("mean", x)?;
            let centered = b.binary_bcast("centered", BinaryFn::Sub, x, mean, &keep)?;
            let sq = b.binary("squared", BinaryFn::Mul, centered, centered)?;
            let var = b.mean_last("var", sq)?;
            let eps = b.constant("eps", EPS, &dims[..last])?;
            let var_eps = b.binary("var_eps", BinaryFn::Add, var, eps)?;
            let rstd = b.unary("rstd", UnaryFn::Rsqrt, var_eps)?;
            let normed = b.binary_bcast("normed", BinaryFn::Mul, centered, rstd, &keep)?;
            let scaled = b.binary_bcast("scaled", BinaryFn::Mul, normed, gain, &[last])?;
            b.binary_bcast("out", BinaryFn::Add, scaled, bias, &[last])
        })
    }

    /// Softmax over the last dim, numerically stable (max subtracted first). The result is
    /// `{local}`; intermediate values are `{local}.max`, `{local}.exp`, ...
    pub fn softmax(&mut self, local: &str, x: ValueId) -> Result<ValueId> {
        let dims = self.dims(x);
        let last = dims.len() - 1;
        let keep: Vec<usize> = (0..last).collect();
        let max = self.reduce(&format!("{local}.max"), ReduceFn::Max, x, &[last])?;
        let shifted =
            self.binary_bcast(&format!("{local}.shifted"), BinaryFn::Sub, x, max, &keep)?;
        let e = self.unary(&format!("{local}.exp"), UnaryFn::Exp, shifted)?;
        let s = self.reduce(&format!("{local}.sum"), ReduceFn::Sum, e, &[last])?;
        self.binary_bcast(local, BinaryFn::Div, e, s, &keep)
    }

    /// One-hot rows of the model dtype: `[..., classes]` with a 1 where the class equals
    /// `labels[...]` (iota, compare, convert: we have no one-hot op).
    pub fn one_hot(&mut self, local: &str, labels: ValueId, classes: u64) -> Result<ValueId> {
        let lt = self.g.ty(labels).clone();
        let mut dims = lt.dims().to_vec();
        let rank = dims.len();
        dims.push(classes);
        let iota = self.push(
            &format!("{local}.iota"),
            Op::Iota { dim: rank },
            vec![],
            Some(TensorType::new(lt.dtype, dims.clone())),
        )?;
        let keep: Vec<usize> = (0..rank).collect();
        let lb = self.broadcast(&format!("{local}.labels"), labels, &keep, &dims)?;
        let eq = self.push(
            &format!("{local}.eq"),
            Op::Compare {
                dir: CompareDir::Eq,
            },
            vec![iota, lb],
            None,
        )?;
        let ty = self.ty(&dims);
        self.push(local, Op::Convert, vec![eq], Some(ty))
    }

    /// Mean cross-entropy of `logits` (`[..., classes]`) against integer `labels` (`[...]`),
    /// via log-softmax, under scope `loss`; returns the scalar `loss.value`.
    pub fn cross_entropy(&mut self, logits: ValueId, labels: ValueId) -> Result<ValueId> {
        self.scoped("loss", |b| {
            let dims = b.dims(logits);
            let last = dims.len() - 1;
            let keep: Vec<usize> = (0..last).collect();
            let max = b.reduce("max", ReduceFn::Max, logits, &[last])?;
            let shifted = b.binary_bcast("shifted", BinaryFn::Sub, logits, max, &keep)?;
            let e = b.unary("exp", UnaryFn::Exp, shifted)?;
            let s = b.reduce("sum_exp", ReduceFn::Sum, e, &[last])?;
            let lse = b.unary("log_sum_exp", UnaryFn::Log, s)?;
            let logp = b.binary_bcast("log_probs", BinaryFn::Sub, shifted, lse, &keep)?;
            let onehot = b.one_hot("one_hot", labels, dims[last])?;
            let picked = b.binary("picked", BinaryFn::Mul, logp, onehot)?;
            let all: Vec<usize> = (0..dims.len()).collect();
            let total = b.reduce("total", ReduceFn::Sum, picked, &all)?;
            let rows: u64 = dims[..last].iter().product();
            b.scale("value", total, -1.0 / rows as f64)
        })
    }

    /// Mean squared error of `x` against `target` (same shape), under scope `scope`; returns the
    /// scalar `{scope}.value`.
    pub fn mean_squared_error(
        &mut self,
        scope: &str,
        x: ValueId,
        target: ValueId,
    ) -> Result<ValueId> {
        self.scoped(scope, |b| {
            let diff = b.binary("diff", BinaryFn::Sub, x, target)?;
            let sq = b.binary("squared", BinaryFn::Mul, diff, diff)?;
            let dims = b.dims(sq);
            let all: Vec<usize> = (0..dims.len()).collect();
            let total = b.reduce("total", ReduceFn::Sum, sq, &all)?;
            let n: u64 = dims.iter().product();
            b.scale("value", total, 1.0 / n as f64)
        })
    }

    /// Marks `loss` as the training loss and an output, and returns the graph.
    pub fn finish_with_loss(mut self, loss: ValueId) -> Graph {
        self.g.training.loss = Some(loss);
        self.g.outputs.push(loss);
        self.g
    }
}
