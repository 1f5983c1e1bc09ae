//! Choosing a verifier and an environment from a config file at run time.

use serde::{Deserialize, Serialize};

use crate::countdown::{CountdownVerifier, CountdownVerifierConfig};
use crate::env::Environment;
use crate::error::TaskError;
use crate::exact::{ExactMatch, ExactMatchConfig};
use crate::format::FormatReward;
use crate::math::{MathVerifier, MathVerifierConfig};
use crate::qa_match::{QaMatch, QaMatchConfig};
use crate::single_turn::{SingleTurn, SingleTurnConfig};
use crate::try_again::{TryAgain, TryAgainConfig};
use crate::verifier::Verifier;

/// A shareable verifier chosen at run time.
pub type DynVerifier = Box<dyn Verifier + Send + Sync>;

/// A shareable environment chosen at run time.
pub type DynEnvironment = Box<dyn Environment + Send + Sync>;

/// Which verifier to build, e.g. in TOML:
///
/// ```toml
/// [verifier]
/// kind = "countdown"
/// format_score = 0.1
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum VerifierConfig {
    /// [`MathVerifier`].
    Math {
        /// Its settings. Default [`MathVerifierConfig::default`].
        #[serde(default)]
        config: MathVerifierConfig,
        /// Wrap in [`FormatReward`] with this score. Default none (binary reward).
        #[serde(default)]
        format_score: Option<f64>,
    },
    /// [`CountdownVerifier`].
    Countdown {
        /// Its settings. Default [`CountdownVerifierConfig::default`].
        #[serde(default)]
        config: CountdownVerifierConfig,
        /// Wrap in [`FormatReward`] with this score; 0.1 gives TinyZero's and DPS's score.
        /// Default none (binary reward).
        #[serde(default)]
        format_score: Option<f64>,
    },
    /// [`ExactMatch`].
    ExactMatch {
        /// Its settings. Default [`ExactMatchConfig::default`] (DRIFT's verifier).
        #[serde(default)]
        config: ExactMatchConfig,
        /// Wrap in [`FormatReward`] with this score. Default none (binary reward).
        #[serde(default)]
        format_score: Option<f64>,
    },
    /// [`QaMatch`]: SQuAD-normalised exact match of Webscale-RL answers.
    QaMatch {
        /// Its settings. Default [`QaMatchConfig::default`].
        #[serde(default)]
        config: QaMatchConfig,
        /// Wrap in [`FormatReward`] with this score. Default none (binary reward).
        #[serde(default)]
        format_score: Option<f64>,
    },
}

fn wrap<V: Verifier + Send + Sync + 'static>(
    v: V,
    format_score: Option<f64>,
) -> Result<DynVerifier, TaskError> {
    match format_score {
        None => Ok(Box::new(v)),
        Some(s) if (0.0..=1.0).contains(&s) => Ok(Box::new(FormatReward::new(v, s))),
        Some(s) => Err(TaskError::Config {
            field: "verifier.format_score".into(),
            reason: format!("must be in [0, 1], got {s}"),
        }),
    }
}

impl VerifierConfig {
    /// Builds the verifier.
    ///
    /// # Errors
    /// [`TaskError::Config`] if `format_score` is outside `[0, 1]`.
    pub fn build(&self) -> Result<DynVerifier, TaskError> {
        match self {
            VerifierConfig::Math {
                config,
                format_score,
            } => wrap(MathVerifier::new(config.clone()), *format_score),
            VerifierConfig::Countdown {
                config,
                format_score,
            } => wrap(CountdownVerifier::new(config.clone()), *format_score),
            VerifierConfig::ExactMatch {
                config,
                format_score,
            } => wrap(ExactMatch::new(config.clone()), *format_score),
            VerifierConfig::QaMatch {
                config,
                format_score,
            } => wrap(QaMatch::new(config.clone()), *format_score),
        }
    }
}

/// Which environment to build, e.g. in TOML:
///
/// ```toml
/// [environment]
/// kind = "try_again"
/// max_turns = 5
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EnvironmentConfig {
    /// [`SingleTurn`].
    SingleTurn(SingleTurnConfig),
    /// [`TryAgain`].
    TryAgain(TryAgainConfig),
}

impl EnvironmentConfig {
    /// Builds the environment around `verifier`.
    ///
    /// # Errors
    /// [`TaskError::Config`] if the settings are invalid.
    pub fn build(&self, verifier: DynVerifier) -> Result<DynEnvironment, TaskError> {
        Ok(match self {
            EnvironmentConfig::SingleTurn(c) => Box::new(SingleTurn::new(verifier, c.clone())),
            EnvironmentConfig::TryAgain(c) => Box::new(TryAgain::new(verifier, c.clone())?),
        })
    }
}
