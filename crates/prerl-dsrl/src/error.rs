//! The crate's error type.

use thiserror::Error;

/// Errors of rlft-prerl-dsrl.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PrerlError {
    /// A config value is out of range or inconsistent.
    #[error("invalid config value for {field}: {reason}")]
    Config {
        /// The field, e.g. `dsrl.pretrain_loss_disable_step`.
        field: &'static str,
        /// What is wrong, as expected versus found.
        reason: String,
    },
    /// A batch the diagnostic cannot use.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// From the learner, scorers or the training loop.
    #[error(transparent)]
    Trainer(#[from] rlft_trainer::TrainerError),
    /// From estimators and objectives.
    #[error(transparent)]
    Core(#[from] rlft_core::CoreError),
    /// From the task generator or verifiers.
    #[error(transparent)]
    Task(#[from] rlft_tasks::TaskError),
    /// From the generation engine.
    #[error(transparent)]
    Rollout(#[from] rlft_rollout::RolloutError),
    /// From the model or tokenizer.
    #[error(transparent)]
    Model(#[from] rlft_models::ModelError),
}

/// Result with [`PrerlError`].
pub type Result<T> = std::result::Result<T, PrerlError>;
