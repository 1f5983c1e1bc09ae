//! The error type of rlft-core.

/// Everything that can go wrong in rlft-core: bad shapes, empty batches, invalid rewards and
/// invalid configuration values. Each variant carries the evidence needed to fix the input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// Two inputs that must agree in shape do not.
    #[error("shape mismatch for {what}: expected {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// Which input has the wrong shape.
        what: &'static str,
        /// The shape implied by the other inputs.
        expected: Vec<usize>,
        /// The shape that was given.
        found: Vec<usize>,
    },
    /// An input that must hold at least one element is empty.
    #[error("empty batch: {what} has no elements")]
    EmptyBatch {
        /// Which input is empty.
        what: &'static str,
    },
    /// Group-relative estimators need at least two completions per prompt (TRL's
    /// `num_generations` must be ≥ 2 for the same reason).
    #[error("group size must be at least 2, got {group_size}")]
    GroupTooSmall {
        /// The group size that was given.
        group_size: usize,
    },
    /// The number of rewards is not a multiple of the group size.
    #[error("{len} rewards do not split into groups of {group_size}")]
    RaggedGroups {
        /// Number of rewards given.
        len: usize,
        /// Group size given.
        group_size: usize,
    },
    /// A reward is infinite. (NaN is allowed: it marks an unscorable completion, as in TRL.)
    #[error("reward at index {index} is not finite: {value}")]
    NonFiniteReward {
        /// Position of the reward in the flat reward list.
        index: usize,
        /// The offending value.
        value: f32,
    },
    /// A configuration value is out of range or inconsistent with another one.
    #[error("invalid config value for {field}: {reason}")]
    Config {
        /// The field, as spelled in the config file (e.g. `clip.epsilon_high`).
        field: &'static str,
        /// What is wrong, with expected versus found.
        reason: String,
    },
    /// The objective needs an input that the batch does not carry.
    #[error("missing input {what}: {reason}")]
    MissingInput {
        /// Which input is missing.
        what: &'static str,
        /// Why it is needed.
        reason: &'static str,
    },
}

/// Result alias for rlft-core.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
