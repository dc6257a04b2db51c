//! The facade's error type, which names the step that failed and keeps the crate's typed error
//! as its `source()`; and the CLI's, which adds the exit code.

use thiserror::Error;

/// The steps of the pipeline the facade runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Reading a graph file (shardc JSON, XLA HLO text).
    Import,
    /// Checking a graph.
    Verify,
    /// Propagating annotations to every value.
    Propagate,
    /// Choosing the shardings (the planner).
    Plan,
    /// Partitioning into the SPMD program.
    Partition,
    /// Simplifying the program's collectives.
    Simplify,
    /// Running the program on the threads backend.
    Run,
    /// Writing a plan for a framework (`shardc::export`).
    Export,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Import => "import",
            Step::Verify => "verify",
            Step::Propagate => "propagate",
            Step::Plan => "plan",
            Step::Partition => "partition",
            Step::Simplify => "simplify",
            Step::Run => "run",
            Step::Export => "export",
        })
    }
}

/// A failure of one step of the facade, on one thing (a file, a graph), with the crate's typed
/// error as its source.
#[derive(Debug, Error)]
#[error("{step} {what}: {source}")]
pub struct Error {
    /// The step that failed.
    pub step: Step,
    /// What it failed on (`graph `gpt``, a file path).
    pub what: String,
    /// The crate's error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl Error {
    /// An error of `step` on `what`.
    pub fn new(
        step: Step,
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error {
            step,
            what: what.into(),
            source: source.into(),
        }
    }
}

/// The facade's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error at the CLI level. Bad input (exit code 2) is distinguished from a failed check
/// (exit code 1, e.g. `run --check` above tolerance).
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
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
}

impl CliError {
    /// The process exit code: 2 for bad input, 1 for a failed check.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) | CliError::Io { .. } => 2,
            CliError::CheckFailed(_) => 1,
        }
    }

    /// Bad input, from anything printable.
    pub fn input(e: impl std::fmt::Display) -> Self {
        CliError::Input(e.to_string())
    }
}

impl From<shardc_ir::IrError> for CliError {
    fn from(e: shardc_ir::IrError) -> Self {
        CliError::Input(e.to_string())
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::Input(e.to_string())
    }
}
