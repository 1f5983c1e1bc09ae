//! # rlft-trainer
//!
//! Assembles the rlft crates into training loops: [`OnlineTrainer`] (sampler → rollout
//! source → [`Learner`], with exact checkpoint / resume), [`SftTrainer`] / [`sft_train`] and
//! [`evaluate`]. Every part comes in through a trait, so a custom loop can call
//! [`collect_step`] and [`Learner::update`] itself (see `examples/custom_trainer.rs` and
//! `examples/dsrl.rs`). The pieces, each usable alone:
//!
//! - [`Learner`]: one update over a sum of phased [`Term`]s, each a [`Scorer`] ([`Conditional`]
//!   or PreRL's [`Marginal`]), an advantage estimator, a [`SampleMask`], any
//!   [`rlft_core::Objective`] and a [`Phase`]; `sync_reference_at` events (DSRL).
//! - [`RolloutSource`]: [`SingleTurn`] (engine + [`Rewarder`], e.g. [`VerifierRewarder`], or
//!   [`RewardFunctions`]: several weighted reward functions, local, [`HttpReward`] or
//!   [`CommandReward`]) or
//!   [`MultiTurn`] (an environment's episodes, turn by turn over any engine).
//! - [`OptimStep`]: the one optimiser step RL and SFT share: AdamW with torch's defaults
//!   ([`OptimConfig`]), [`clip_grad_norm`] with one global norm, Hugging Face's schedules.
//! - [`SftExample`] with per-token loss masks; [`render_conversation`] through the model's chat
//!   template.
//! - [`MetricsLog`] / [`StepRecord`]: the per-step JSONL log (resume-safe) and [`svg_chart`].
//! - [`pass_at_k`]: the unbiased pass@k estimator.
//! - [`write_atomic`]: checkpoint and output writes that are never half-done.
//! - [`RunGuard`]: one process per run directory ([`RunLock`]), a [`Fingerprint`] of config,
//!   model and data that a resume must match ([`ResumePolicy`]), no run directory inside the
//!   model ([`check_out_dir`]).
//!
//! ```
//! use rlft_trainer::{OptimConfig, pass_at_k};
//!
//! let optim = OptimConfig { lr: 1e-5, warmup_steps: 10, ..OptimConfig::default() };
//! optim.validate()?;
//! assert_eq!(optim.lr_at(5, 100), 5e-6);
//! assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod atomic;
mod checkpoint;
mod collect;
mod error;
mod eval;
mod learner;
mod metrics;
mod multiturn;
mod online;
mod optim;
mod passk;
mod reward;
mod run_guard;
mod scorer;
mod sft;
mod terms;

pub use atomic::{write_atomic, write_json_atomic};
pub use checkpoint::{CheckpointInfo, StopFlag};
pub use collect::{Collected, Rewarder, RolloutSource, SingleTurn, VerifierRewarder, collect_step};
pub use error::{Result, TrainerError};
pub use eval::{EvalReport, evaluate};
pub use learner::{GrpoConfig, GrpoLearner, Learner, LearnerConfig};
pub use metrics::{MetricsLog, StepRecord, read_log, svg_chart};
pub use multiturn::{
    LossTurns, MultiTurn, MultiTurnConfig, RenderedConversation, TemplateRender,
    render_conversation,
};
pub use online::{EngineFactory, EvalHook, OnlineConfig, OnlineParts, OnlineTrainer, step_seed};
pub use optim::{LrSchedule, NanPolicy, OptimConfig, OptimStep, StepStats, clip_grad_norm};
pub use passk::{pass_at_k, pass_at_k_svg};
pub use reward::{
    CommandReward, CommandRewardConfig, HttpReward, HttpRewardConfig, NamedReward, RewardConfig,
    RewardFunction, RewardFunctions, RewardKind, RewardRequest, VerifierFunction, reward_names,
};
pub use run_guard::{
    FINGERPRINT_FILE, Fingerprint, LOCK_FILE, ResumePolicy, RunGuard, RunLock, check_fingerprint,
    check_out_dir,
};
pub use scorer::{
    Conditional, Marginal, Scorer, ScorerConfig, completion_logprobs,
    completion_logprobs_and_entropy,
};
pub use sft::{SftConfig, SftExample, SftTrainer, sft_batch, sft_train};
pub use terms::{Phase, SampleMask, Term, TermConfig};
