//! The error type of the sharding crate.

use thiserror::Error;

/// What can go wrong while propagating or resharding. Every variant names where and what was
/// expected.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ShardingError {
    /// An annotation names a value the graph does not have.
    #[error("annotation on `{0}`: the graph has no value of that name")]
    UnknownValue(String),
    /// A sharding does not fit its value or the mesh (rank, unknown or repeated axis).
    #[error("sharding of `{value}`: {message}")]
    Invalid { value: String, message: String },
    /// The graph itself is malformed.
    #[error(transparent)]
    Ir(#[from] shardc_ir::IrError),
}

/// Result alias of the sharding crate.
pub type Result<T, E = ShardingError> = std::result::Result<T, E>;
