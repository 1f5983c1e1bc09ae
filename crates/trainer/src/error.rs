//! The error type of rlft-trainer.

use std::path::PathBuf;

/// What can go wrong while training: configuration, I/O of checkpoints and metrics, and errors
/// of the crates the trainer assembles.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainerError {
    /// A configuration value is out of range or inconsistent.
    #[error("invalid config value for {field}: {reason}")]
    Config {
        /// The field, as spelled in the TOML file.
        field: &'static str,
        /// What is wrong, with expected versus found.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("write", "rename", "read", …).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be parsed or written.
    #[error("json {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A checkpoint could not be written or read back.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint directory.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A batch or example set cannot be trained on.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// An objective or estimator rejected its input.
    #[error(transparent)]
    Core(#[from] rlft_core::CoreError),
    /// A prompt sampler rejected a call.
    #[error(transparent)]
    Sampler(#[from] rlft_samplers::SamplerError),
    /// A rollout engine failed.
    #[error(transparent)]
    Rollout(#[from] rlft_rollout::RolloutError),
    /// A dataset, verifier or environment failed.
    #[error(transparent)]
    Task(#[from] rlft_tasks::TaskError),
    /// A model could not be built, loaded or saved.
    #[error(transparent)]
    Model(#[from] rlft_models::ModelError),
}

/// Result alias for rlft-trainer.
pub type Result<T, E = TrainerError> = std::result::Result<T, E>;
