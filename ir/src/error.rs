//! The error type of the IR crate.

use thiserror::Error;

/// Everything that can go wrong while building, reading or checking IR.
///
/// Every variant names *where* (node, field, line) and *what was expected*.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum IrError {
    /// A node is malformed: wrong operand count, bad attribute, shape mismatch.
    #[error("node `{node}` ({op}): {message}")]
    Node {
        node: String,
        op: String,
        message: String,
    },
    /// A graph-level structural problem: dangling or duplicate ids, cycles, bad outputs.
    #[error("graph: {0}")]
    Graph(String),
    /// A string could not be parsed (a type, a dtype, a sharding).
    #[error("cannot parse {what} `{input}`: {message}")]
    Parse {
        what: &'static str,
        input: String,
        message: String,
    },
    /// A graph file could not be read.
    #[error("{0}")]
    Format(String),
}

impl IrError {
    pub fn node(
        node: impl Into<String>,
        op: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        IrError::Node {
            node: node.into(),
            op: op.into(),
            message: message.into(),
        }
    }

    pub fn parse(what: &'static str, input: impl Into<String>, message: impl Into<String>) -> Self {
        IrError::Parse {
            what,
            input: input.into(),
            message: message.into(),
        }
    }
}

/// Result alias of the IR crate.
pub type Result<T, E = IrError> = std::result::Result<T, E>;
