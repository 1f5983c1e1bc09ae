//! The crate's error type.

use std::path::PathBuf;

/// Everything that can stop a run. Per-document problems (a bad LLM reply, a rejected
/// document, an unreachable server) are not errors: they become failure records with a
/// reason, and the accounting counts them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebscaleError {
    /// A config value is out of range or inconsistent.
    #[error("config {field}: {reason}")]
    Config {
        /// The field, as spelt in the TOML (`models.filter.base_urls`).
        field: String,
        /// What is wrong, with the value found.
        reason: String,
    },
    /// A file could not be read, written or listed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A line or row of an input file is unusable.
    #[error("{}:{line}: {reason}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// 1-based line (JSONL) or row (Parquet) number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A model could not be built (bad base URL, missing API key variable).
    #[error("model for stage {stage}: {reason}")]
    Model {
        /// `filter`, `tagger`, `generator` or `checker`.
        stage: String,
        /// What is wrong.
        reason: String,
    },
    /// The shards given to a merge do not belong together.
    #[error("merge: {reason}")]
    Merge {
        /// What is wrong.
        reason: String,
    },
}

impl WebscaleError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// `Result` with [`WebscaleError`].
pub type Result<T, E = WebscaleError> = std::result::Result<T, E>;
