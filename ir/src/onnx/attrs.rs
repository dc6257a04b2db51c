//! Reading a node's attributes, with errors that name the node and the attribute.

use super::proto::{AttributeProto, NodeProto, TensorProto};
use crate::error::IrError;

/// A node's attributes by name.
pub(crate) struct Attrs<'a> {
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(node: &'a NodeProto) -> Self {
        Attrs { node }
    }

    /// The operator's type (`MatMul`).
    pub(crate) fn op_type(&self) -> &'a str {
        self.node.op_type()
    }

    /// How many outputs the node names (empty names included).
    pub(crate) fn num_outputs(&self) -> usize {
        self.node.output.len()
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name() == name)
    }

    pub(crate) fn err(&self, m: impl std::fmt::Display) -> IrError {
        IrError::node(node_label(self.node), self.node.op_type(), m.to_string())
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub(crate) fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).and_then(|a| a.i).unwrap_or(default)
    }

    pub(crate) fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).and_then(|a| a.f).unwrap_or(default)
    }

    pub(crate) fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }

    pub(crate) fn floats(&self, name: &str) -> Option<Vec<f32>> {
        self.get(name).map(|a| a.floats.clone())
    }

    pub(crate) fn string(&self, name: &str, default: &str) -> String {
        self.get(name)
            .and_then(|a| a.s.as_ref())
            .map_or(default.to_string(), |s| {
                String::from_utf8_lossy(s).into_owned()
            })
    }

    pub(crate) fn tensor(&self, name: &str) -> Option<&'a TensorProto> {
        self.get(name).and_then(|a| a.t.as_ref())
    }

    /// The only attribute that is set, with its name (for `Constant`, which has one of several).
    pub(crate) fn first(&self) -> Option<&'a AttributeProto> {
        self.node.attribute.first()
    }
}

/// How a node is named in errors: its name, or its first output when it has none.
pub(crate) fn node_label(n: &NodeProto) -> String {
    match n.name() {
        "" => n
            .output
            .first()
            .cloned()
            .unwrap_or_else(|| "<unnamed>".into()),
        s => s.to_string(),
    }
}
