//! The crate's error type: every variant names what was wrong and where.

/// What went wrong while generating, reading, checking or simulating a schedule.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A schedule cannot be generated for these numbers.
    #[error("{schedule} does not support {stages} stages on {ranks} ranks with {microbatches} micro-batches: {reason}")]
    Unsupported {
        /// The schedule's name.
        schedule: String,
        /// Stages asked for.
        stages: u32,
        /// Ranks asked for.
        ranks: u32,
        /// Micro-batches asked for.
        microbatches: u32,
        /// Why not.
        reason: String,
    },
    /// An action or CSV cell that does not parse.
    #[error("cannot read action `{text}`: {reason}")]
    Parse {
        /// The text as given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A schedule that breaks a rule of the validator.
    #[error("invalid schedule: {0}")]
    Invalid(String),
    /// A schedule whose dry run stops: no rank can take its next action.
    #[error("schedule is not progressing: {stuck}\n{table}")]
    Deadlock {
        /// Each stuck rank's next action and what it waits for.
        stuck: String,
        /// The steps that did run, one row per step, `<-- ERROR HERE` on the step that stuck.
        table: String,
    },
    /// Bad numbers given to the simulator, the slicer or a renderer.
    #[error("{0}")]
    Input(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
