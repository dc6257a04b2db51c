//! The SSA graph: nodes in topological order, one value per node.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{IrError, Result};
use crate::factors::OpFactors;
use crate::mesh::Mesh;
use crate::op::Op;
use crate::ops;
use crate::sharding::Annotation;
use crate::types::TensorType;

/// A value: the index of the node that defines it. Operands always point to earlier nodes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ValueId(pub u32);

impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// What a value is in the model.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Data fed each step (tokens, images, labels).
    Input,
    /// A trained weight.
    Parameter,
    /// Anything computed.
    #[default]
    Activation,
    /// The gradient of the loss with respect to a parameter.
    Gradient,
    /// Optimizer state (momentum, Adam moments, fp32 master weights).
    OptimizerState,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Input => "input",
            Role::Parameter => "parameter",
            Role::Activation => "activation",
            Role::Gradient => "gradient",
            Role::OptimizerState => "optimizer_state",
        }
    }
}

/// Which part of a training step a node belongs to (zero-bubble's F, B, W and the update).
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Forward,
    /// Gradients with respect to activations (B).
    BackwardInput,
    /// Gradients with respect to parameters (W).
    BackwardWeight,
    /// The optimizer update.
    Update,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::BackwardInput => "backward_input",
            Phase::BackwardWeight => "backward_weight",
            Phase::Update => "update",
        }
    }
}

/// One node: an op applied to earlier values, defining one value.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Scoped, unique name (`layers.3.attn.qkv`); the prefix before the last dot is its scope.
    pub name: String,
    pub op: Op,
    pub operands: Vec<ValueId>,
    pub ty: TensorType,
    pub role: Role,
    pub phase: Phase,
    /// A forward node re-run during the backward pass (activation recomputation).
    pub recompute: bool,
}

impl Node {
    /// The layer scope: the name up to the last dot (`layers.3.attn` for `layers.3.attn.qkv`).
    pub fn scope(&self) -> &str {
        self.name.rsplit_once('.').map_or("", |(s, _)| s)
    }

    /// The `layers.N` (or other `prefix.N`) part of the name, if the name has one.
    pub fn layer(&self) -> Option<&str> {
        let parts: Vec<&str> = self.name.split('.').collect();
        let i = parts.iter().position(|p| p.parse::<u64>().is_ok())?;
        let end: usize = parts[..=i].iter().map(|p| p.len() + 1).sum::<usize>() - 1;
        Some(&self.name[..end])
    }
}

/// What autodiff adds: the loss, each parameter's gradient and updated value.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Training {
    pub loss: Option<ValueId>,
    /// `(parameter, gradient)` pairs.
    pub gradients: Vec<(ValueId, ValueId)>,
    /// `(parameter or optimizer state, its value after the update)` pairs.
    pub updates: Vec<(ValueId, ValueId)>,
}

/// A computation graph. Nodes are in topological order; `ValueId(i)` is `nodes[i]`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Graph {
    pub name: String,
    pub nodes: Vec<Node>,
    pub outputs: Vec<ValueId>,
    /// The mesh the graph's annotations and collectives refer to, if any.
    pub mesh: Option<Mesh>,
    pub annotations: Vec<Annotation>,
    pub training: Training,
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Self {
        Graph {
            name: name.into(),
            ..Default::default()
        }
    }

    pub fn node(&self, v: ValueId) -> &Node {
        &self.nodes[v.index()]
    }

    pub fn ty(&self, v: ValueId) -> &TensorType {
        &self.nodes[v.index()].ty
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = ValueId> + '_ {
        (0..self.nodes.len() as u32).map(ValueId)
    }

    /// Finds a value by name (linear scan; build [`Graph::name_index`] for many look-ups).
    pub fn find(&self, name: &str) -> Option<ValueId> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .map(|i| ValueId(i as u32))
    }

    /// Name → value for every node.
    pub fn name_index(&self) -> HashMap<&str, ValueId> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), ValueId(i as u32)))
            .collect()
    }

    /// The users of every value, in node order.
    pub fn users(&self) -> Vec<Vec<ValueId>> {
        let mut users = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &o in &n.operands {
                if !users[o.index()].contains(&ValueId(i as u32)) {
                    users[o.index()].push(ValueId(i as u32));
                }
            }
        }
        users
    }

    pub fn operand_types(&self, v: ValueId) -> Vec<&TensorType> {
        self.node(v).operands.iter().map(|&o| self.ty(o)).collect()
    }

    /// The factors of the op defining `v`.
    pub fn factors(&self, v: ValueId) -> OpFactors {
        let n = self.node(v);
        ops::op_factors(&n.op, &self.operand_types(v), &n.ty)
    }

    /// Values fed from outside, in order.
    pub fn inputs(&self) -> impl Iterator<Item = ValueId> + '_ {
        self.ids()
            .filter(|&v| matches!(self.node(v).op, Op::Input { .. }))
    }

    /// Appends a node after inferring and checking its type. `declared` gives the type of ops
    /// that cannot derive it (inputs, constants, iota, broadcast, reshape, convert); for the
    /// others it may be `None`.
    pub fn push(
        &mut self,
        name: impl Into<String>,
        op: Op,
        operands: Vec<ValueId>,
        declared: Option<TensorType>,
    ) -> Result<ValueId> {
        let name = name.into();
        for &o in &operands {
            if o.index() >= self.nodes.len() {
                return Err(IrError::node(
                    &name,
                    op.name(),
                    format!("operand {o} does not exist yet"),
                ));
            }
        }
        let ty = self.infer(&name, &op, &operands, declared.as_ref())?;
        self.nodes.push(Node {
            name,
            op,
            operands,
            ty,
            role: Role::Activation,
            phase: Phase::Forward,
            recompute: false,
        });
        Ok(ValueId(self.nodes.len() as u32 - 1))
    }

    /// The type `op` gives on these operands; `declared` as in [`Graph::push`].
    pub fn infer(
        &self,
        name: &str,
        op: &Op,
        operands: &[ValueId],
        declared: Option<&TensorType>,
    ) -> Result<TensorType> {
        let types: Vec<&TensorType> = operands.iter().map(|&o| self.ty(o)).collect();
        // Ops that derive their whole type ignore `declared` except for the dtype check, which
        // we satisfy by guessing the first operand's dtype when the caller gave no type.
        let fallback;
        let declared = match declared {
            Some(t) => t,
            None => {
                let dtype = match op {
                    Op::Compare { .. } => crate::DType::Bool,
                    Op::Select => types.get(1).map_or(crate::DType::F32, |t| t.dtype),
                    Op::Sort { output, .. } => {
                        types.get(*output).map_or(crate::DType::F32, |t| t.dtype)
                    }
                    _ => types.first().map_or(crate::DType::F32, |t| t.dtype),
                };
                fallback = TensorType::scalar(dtype);
                if needs_declared_type(op) {
                    return Err(IrError::node(
                        name,
                        op.name(),
                        "this op needs a declared result type",
                    ));
                }
                &fallback
            }
        };
        let cx = ops::TypeCtx {
            operands: &types,
            declared,
            mesh: self.mesh.as_ref(),
        };
        ops::infer_type(op, &cx).map_err(|m| IrError::node(name, op.name(), m))
    }
}

/// Ops whose result type is not a function of their operands.
pub(crate) fn needs_declared_type(op: &Op) -> bool {
    op.is_source() || matches!(op, Op::Broadcast { .. } | Op::Reshape | Op::Convert)
}
