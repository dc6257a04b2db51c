//! The facade's error type: what went wrong, and the exit code the CLI gives for it.

use thiserror::Error;

/// An error at the facade or CLI level. Bad input (exit code 2) is distinguished from a failed
/// check (exit code 1, e.g. `run --check` above tolerance).
#[derive(Debug, Error)]
pub enum CliError {
    /// The input was malformed or inconsistent.
    #[error("{0}")]
    Input(String),
    /// The input was fine but a requested check failed.
    #[error("{0}")]
    CheckFailed(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) | CliError::Io { .. } => 2,
            CliError::CheckFailed(_) => 1,
        }
    }

    pub fn input(e: impl std::fmt::Display) -> Self {
        CliError::Input(e.to_string())
    }
}

impl From<shardc_ir::IrError> for CliError {
    fn from(e: shardc_ir::IrError) -> Self {
        CliError::Input(e.to_string())
    }
}
