//! rlft-tasks: what is being solved. Datasets, synthetic task generators, verifiers and
//! single- and multi-turn environments for RL finetuning, with no tensor dependency.
//!
//! The main types:
//! - [`Dataset`]: task items read from JSONL or (feature `parquet`) Parquet with configurable
//!   field names, text or conversational prompts, stable prompt ids, and hash-based
//!   train/test splits ([`DatasetConfig`], [`SplitConfig`]).
//! - [`Verifier`]: scores a completion, returning a [`Verdict`] (score, correctness,
//!   extracted answer, [`Reason`]). Built in: [`MathVerifier`], [`CountdownVerifier`],
//!   [`ExactMatch`], the [`FormatReward`] wrapper, and [`FnVerifier`] for closures.
//! - [`Environment`]: a state machine the caller steps with model output: [`SingleTurn`]
//!   and DRIFT's multi-turn "try again" protocol [`TryAgain`].
//! - [`VerifierConfig`] / [`EnvironmentConfig`]: pick both from a config file at run time.
//! - Generators: [`CountdownConfig`] (reachable targets by construction) and
//!   [`ArithmeticConfig`], graded by [`Difficulty`] and deterministic by seed; they produce a
//!   [`Dataset`] that writes JSONL atomically and reads back through the same loader.
//! - [`RestateConfig`]: the (a+b) mod 10 restatement task of the PreRL experiment;
//!   [`ThoughtCounts`]: transition / reflection thought counters (SEAL's keywords).
//!
//! ```
//! use rlft_tasks::{CountdownConfig, CountdownVerifier, Dataset, DatasetConfig, Verifier};
//!
//! let dir = std::env::temp_dir().join(format!("rlft-tasks-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("countdown.jsonl");
//! let generated = CountdownConfig { count: 8, ..Default::default() }.generate()?;
//! generated.write_jsonl(&path)?;
//!
//! let data = Dataset::from_jsonl(&path, &DatasetConfig::default())?;
//! assert_eq!(data, generated);
//! let item = &data.items()[0];
//! let solution = item.meta["solution"].as_str().unwrap_or_default();
//! let verdict = CountdownVerifier::default().verify(item, &format!("<answer>{solution}</answer>"))?;
//! assert!(verdict.correct);
//! assert_eq!(verdict.score, 1.0);
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![doc(test(attr(deny(warnings))))]

mod arithmetic_gen;
mod config;
mod countdown;
mod countdown_gen;
mod dataset;
mod env;
mod error;
mod exact;
mod expr;
mod extract;
mod format;
mod generate;
mod guess_gen;
mod hash;
mod item;
mod jsonl;
mod math;
#[cfg(feature = "parquet")]
mod parquet_file;
mod qa_match;
mod rational;
mod restate_gen;
mod single_turn;
mod thoughts;
mod try_again;
mod verifier;

pub use arithmetic_gen::{ArithOp, ArithmeticConfig};
pub use config::{DynEnvironment, DynVerifier, EnvironmentConfig, VerifierConfig};
pub use countdown::{CountdownProblem, CountdownVerifier, CountdownVerifierConfig};
pub use countdown_gen::{CountdownConfig, countdown_prompt};
pub use dataset::{Dataset, DatasetConfig, Split, SplitConfig, prompt_hash_id};
pub use env::{Environment, Episode, EpisodeRecord, Step, TurnRecord};
pub use error::{ExprError, TaskError};
pub use exact::{ExactMatch, ExactMatchConfig, Whitespace};
pub use expr::{Evaluated, ExprLimits, parse_expression};
pub use extract::{
    AnswerSource, ThinkAnswer, extract_answer, hash_answer, last_answer_tag, last_boxed,
    parse_think_answer,
};
pub use format::FormatReward;
pub use generate::Difficulty;
pub use guess_gen::GuessConfig;
pub use item::{Message, Role, TaskItem};
pub use jsonl::write_jsonl;
pub use math::{
    MathVerifier, MathVerifierConfig, gold_answer, math_equivalent, normalize_math_answer,
};
pub use qa_match::{QaMatch, QaMatchConfig, normalize_qa_answer};
pub use rational::Rational;
pub use restate_gen::{
    RESTATE_STRATEGIES, RESTATE_WAIT, RestateConfig, RestateTask, RestateVerifier, restate_correct,
    restate_digit, restate_prompt, restate_reflects,
};
pub use single_turn::{SingleTurn, SingleTurnConfig};
pub use thoughts::{
    KeywordMatch, REFLECTION_KEYWORDS, TRANSITION_KEYWORDS, ThoughtCounts, mean_thoughts,
    mean_thoughts_with,
};
pub use try_again::{
    DRIFT_FEEDBACK, DRIFT_INSTRUCTION, DRIFT_SIMPLE_TEMPLATE, DRIFT_SYSTEM_MESSAGE, PromptMode,
    TryAgain, TryAgainConfig, TurnFormat,
};
pub use verifier::{FnVerifier, Reason, Verdict, Verifier};
