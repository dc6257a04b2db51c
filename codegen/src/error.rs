//! The error type of the partitioner.

use thiserror::Error;

/// What can go wrong while partitioning: bad input (a sharding that does not fit its value or
/// mesh) or an op the partitioner cannot lower under the sharding it was given.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CodegenError {
    /// The sharding assignment does not fit the graph or the mesh.
    #[error("sharding of `{value}`: {message}")]
    Sharding {
        /// The value (or graph) the sharding belongs to.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// Building a node of the local program failed (names the original node).
    #[error("partitioning `{node}`: {source}")]
    Build {
        /// The original node being lowered.
        node: String,
        /// What the IR rejected.
        #[source]
        source: shardc_ir::IrError,
    },
    /// The inputs handed to `shard_inputs` / `gather_outputs` do not fit the program.
    #[error("{0}")]
    Data(String),
    /// The graph itself is malformed.
    #[error(transparent)]
    Ir(#[from] shardc_ir::IrError),
}

impl CodegenError {
    pub(crate) fn sharding(value: impl Into<String>, message: impl Into<String>) -> Self {
        CodegenError::Sharding {
            value: value.into(),
            message: message.into(),
        }
    }
}

/// Result alias of the codegen crate.
pub type Result<T, E = CodegenError> = std::result::Result<T, E>;
