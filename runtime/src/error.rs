//! The error type of the runtime.

use thiserror::Error;

/// Everything that can go wrong while running a graph. Every variant says where (input, node,
/// device) and what was expected.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum RuntimeError {
    /// The graph itself is malformed (it failed `shardc_ir::verify`).
    #[error("graph does not verify: {0}")]
    Graph(#[from] shardc_ir::IrError),
    /// An input tensor does not fit the graph.
    #[error("input {index} (`{name}`): {message}")]
    Input {
        index: usize,
        name: String,
        message: String,
    },
    /// A kernel could not compute a node.
    #[error("node `{node}` ({op}): {message}")]
    Node {
        node: String,
        op: String,
        message: String,
    },
    /// A tensor or argument is malformed (wrong data length, shapes that differ, ...).
    #[error("{0}")]
    Invalid(String),
    /// A device of a mesh run failed on its own (a kernel error or panic, a bad collective).
    #[error("device {device}: {message}")]
    Device { device: usize, message: String },
    /// A device of a mesh run stopped because another device failed first.
    #[error("device {device}: stopped because device {failed} failed: {cause}")]
    Aborted {
        device: usize,
        failed: usize,
        cause: String,
    },
    /// A device waited longer than the mesh's bound for its peers.
    #[error("device {device}: timed out after {seconds} s waiting for its peers in {what}")]
    Timeout {
        device: usize,
        seconds: u64,
        what: String,
    },
}

impl RuntimeError {
    pub(crate) fn node(node: &str, op: &str, message: impl Into<String>) -> Self {
        RuntimeError::Node {
            node: node.to_string(),
            op: op.to_string(),
            message: message.into(),
        }
    }
}
