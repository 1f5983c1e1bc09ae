//! The crate's one error type.

/// Everything that can go wrong when configuring or driving a sampler.
///
/// Bad user data (observations, configs, checkpoints) gives one of these, never a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SamplerError {
    /// An observation names a prompt id outside `0..num_prompts`.
    #[error("unknown prompt id {prompt}: the dataset has {num_prompts} prompts")]
    UnknownPrompt {
        /// The offending id.
        prompt: usize,
        /// Size of the dataset the sampler was built for.
        num_prompts: usize,
    },
    /// An observation has a group size of zero.
    #[error("prompt {prompt}: group size k must be at least 1, got 0")]
    ZeroGroupSize {
        /// The prompt whose outcome had k = 0.
        prompt: usize,
    },
    /// An observation reports more successes than rollouts.
    #[error("prompt {prompt}: successes ({successes}) exceed group size k ({k})")]
    SuccessesExceedK {
        /// The prompt.
        prompt: usize,
        /// Reported successes.
        successes: u32,
        /// Reported group size.
        k: u32,
    },
    /// An observation's group size differs from the number of rollouts the request asked for.
    #[error("prompt {prompt}: expected a group of {expected} rollouts, got k = {found}")]
    GroupSizeMismatch {
        /// The prompt.
        prompt: usize,
        /// Rollouts per prompt that the request asked for.
        expected: u32,
        /// The k in the observation.
        found: u32,
    },
    /// An observation names a prompt that the pending request did not ask for.
    #[error("prompt {prompt} was not requested by the pending selection")]
    NotRequested {
        /// The prompt.
        prompt: usize,
    },
    /// The same prompt appears twice in one observation call.
    #[error("prompt {prompt} is observed twice in one call")]
    DuplicateObservation {
        /// The prompt.
        prompt: usize,
    },
    /// `observe` was called although no request is waiting for outcomes.
    #[error("observe called with no pending request (call select first)")]
    NothingPending,
    /// `select` was called while a request still waits for its outcomes.
    #[error("select called while {pending} requested prompts still wait for observe")]
    ObservationPending {
        /// How many prompts the pending request named.
        pending: usize,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid config field `{field}`: {reason}")]
    Config {
        /// Dotted name of the field.
        field: &'static str,
        /// What is wrong, with expected versus found.
        reason: String,
    },
    /// A checkpointed state does not fit this sampler.
    #[error("cannot restore state: {reason}")]
    State {
        /// What does not fit.
        reason: String,
    },
    /// Writing an output file failed.
    #[error("cannot write {path}")]
    Io {
        /// The path being written.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = SamplerError> = std::result::Result<T, E>;

/// Build a [`SamplerError::Config`] error.
pub(crate) fn config_err(field: &'static str, reason: impl Into<String>) -> SamplerError {
    SamplerError::Config {
        field,
        reason: reason.into(),
    }
}
