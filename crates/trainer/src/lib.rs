//! # rlft-trainer
//!
//! Assembles the rlft crates into training loops: [`OnlineTrainer`] (sampler → engine →
//! rewarder → [`GrpoLearner`], with exact checkpoint / resume), [`sft_train`] and
//! [`evaluate`]. Every part comes in through a trait, so a custom loop can call
//! [`collect_step`] and [`GrpoLearner::update`] itself (see `examples/custom_trainer.rs`), score
//! with any verifier through [`VerifierRewarder`], or minimise any objective through
//! [`GrpoLearner::with_objective`]. The pieces, each usable alone:
//!
//! - [`OptimConfig`]: AdamW with torch's defaults, [`clip_grad_norm`] with one global norm (torch
//!   `clip_grad_norm_`, TRL `max_grad_norm`) and Hugging Face's learning-rate schedules.
//! - [`MetricsLog`] / [`StepRecord`]: the per-step JSONL log (resume-safe) and [`svg_chart`].
//! - [`completion_logprobs`] / [`completion_logprobs_and_entropy`]: a
//!   [`rlft_core::PolicyBatch`] scored by an [`rlft_models::CausalLm`].
//! - [`GrpoLearner`]: the policy update of online RL (advantages, old / reference log-probs,
//!   μ passes, mini-batches, accumulation, global-norm clipping, AdamW, schedule).
//! - [`sft_train`]: supervised (or DRIFT-weighted) finetuning on the same step machinery.
//! - [`pass_at_k`]: the unbiased pass@k estimator.
//! - [`write_atomic`]: checkpoint and output writes that are never half-done.
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
mod collect;
mod error;
mod eval;
mod grpo;
mod metrics;
mod online;
mod optim;
mod passk;
mod policy;
mod sft;

pub use atomic::{write_atomic, write_json_atomic};
pub use collect::{Collected, Rewarder, VerifierRewarder, collect_step};
pub use error::{Result, TrainerError};
pub use eval::{EvalReport, evaluate};
pub use grpo::{GrpoConfig, GrpoLearner};
pub use metrics::{MetricsLog, StepRecord, read_log, svg_chart};
pub use online::{
    CheckpointInfo, EngineFactory, OnlineConfig, OnlineParts, OnlineTrainer, step_seed,
};
pub use optim::{LrSchedule, OptimConfig, clip_grad_norm};
pub use passk::pass_at_k;
pub use policy::{completion_logprobs, completion_logprobs_and_entropy};
pub use sft::{SftConfig, SftExample, sft_batch, sft_train};
