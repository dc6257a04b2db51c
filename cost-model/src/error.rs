//! The error type of the cost model.

use thiserror::Error;

/// Everything the cost model can reject. Each variant says where and what was expected.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CostError {
    /// A hardware or calibration file could not be read or is malformed.
    #[error("{file}: {message}")]
    File { file: String, message: String },
    /// A cluster spec, mesh or option string could not be parsed.
    #[error("cannot parse {what} `{input}`: {message}")]
    Parse {
        what: &'static str,
        input: String,
        message: String,
    },
    /// The inputs are well-formed but do not fit together (a mesh larger than the cluster, an
    /// axis the mesh does not have, a sharding of the wrong rank).
    #[error("{0}")]
    Mismatch(String),
}

impl CostError {
    pub(crate) fn parse(
        what: &'static str,
        input: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        CostError::Parse {
            what,
            input: input.into(),
            message: message.into(),
        }
    }

    pub(crate) fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        CostError::File {
            file: file.into(),
            message: message.into(),
        }
    }
}

/// Result alias of the cost model.
pub type Result<T, E = CostError> = std::result::Result<T, E>;
