//! The error type of rlft-drift.

use std::path::PathBuf;

/// What can go wrong reading DRIFT rows, weighting them, collecting or evaluating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriftError {
    /// A setting is out of range (β ≤ 0 or NaN, K = 0, …).
    #[error("invalid config value for {field}: {reason}")]
    Config {
        /// The field, as spelled in the TOML file.
        field: &'static str,
        /// What is wrong, with the value found.
        reason: String,
    },
    /// A JSONL line cannot be used: not JSON, not an object, or a required field is missing
    /// or has the wrong type.
    #[error("{}:{line}: {field}: {reason}", path.display())]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field at fault (`<line>` when the line itself is not a JSON object).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A collection directory was written with other settings or data than the ones given.
    #[error("collection {}: {reason}", path.display())]
    Resume {
        /// The directory.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A rollout engine or the episode runner failed.
    #[error(transparent)]
    Rollout(#[from] rlft_rollout::RolloutError),
    /// The trainer (rendering, SFT) failed.
    #[error(transparent)]
    Trainer(#[from] rlft_trainer::TrainerError),
    /// A task, verifier or environment failed.
    #[error(transparent)]
    Task(#[from] rlft_tasks::TaskError),
}

/// Result alias for rlft-drift.
pub type Result<T, E = DriftError> = std::result::Result<T, E>;

pub(crate) fn io(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> DriftError {
    let path = path.to_path_buf();
    move |source| DriftError::Io { op, path, source }
}
