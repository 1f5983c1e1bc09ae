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
    /// Another process holds the run directory's lock.
    #[error(
        "run directory {dir} is in use by another rlft process{} (lock file {dir}/.rlft.lock); wait for it to finish or choose another out",
        holder.map_or(String::new(), |p| format!(" (pid {p})"))
    )]
    RunLocked {
        /// The run directory.
        dir: PathBuf,
        /// The id of the process holding it, when it could be read.
        holder: Option<u32>,
    },
    /// The run directory holds a run started with another config, model or data.
    #[error(
        "run directory {dir} holds a run started with a different setup:\n  {}\nresuming would mix the two; rerun with --restart to start over in this directory, or with --force-resume to resume anyway",
        changes.join("\n  ")
    )]
    FingerprintMismatch {
        /// The run directory.
        dir: PathBuf,
        /// One line per difference (`config train.grpo.optim.lr: 0.01 → 0.02`).
        changes: Vec<String>,
    },
    /// The run directory is the model directory or inside it.
    #[error(
        "out {out} is inside (or equal to) the model directory {model}: the run would overwrite the model's files; choose an out outside it"
    )]
    OutInsideModel {
        /// The run directory.
        out: PathBuf,
        /// The model directory.
        model: PathBuf,
    },
    /// The loss or the gradient norm of an optimiser step is NaN or infinite. The step was not
    /// applied and nothing was checkpointed or exported after it.
    #[error(
        "non-finite {what} ({value}) at optimiser step {step}: stopped before applying it, so no checkpoint or export holds it; lower the learning rate (or extreme weights), or rerun with --nan-policy skip-step to skip such steps"
    )]
    NonFinite {
        /// `loss` or `gradient norm`.
        what: &'static str,
        /// The value.
        value: f64,
        /// The optimiser step (0-based).
        step: usize,
    },
    /// A line of a JSONL file is malformed.
    #[error("{path}:{line}: {source}")]
    JsonLine {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A reward function failed (a remote one unreachable, a subprocess that died, a reply
    /// of the wrong shape).
    #[error("reward function {name}: {reason}")]
    Reward {
        /// The function: its URL, command line or name.
        name: String,
        /// What went wrong.
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
