//! Prompt samplers for RL finetuning, with honest rollout accounting.
//!
//! A [`PromptSampler`] decides which prompts a trainer rolls out and trains on each step,
//! learns from per-prompt outcomes (successes out of k), and counts every rollout it causes.
//! Implemented exactly as published:
//!
//! - [`Uniform`] (epoch shuffle), [`DynamicSampling`] (DAPO filter with a round cap),
//!   [`HistoryResampling`] (SRPO);
//! - [`SflInline`] and [`SflBuffer`] (sampling for learnability);
//! - [`Mopps`] (Beta posterior, Thompson sampling);
//! - [`Dps`] (Dynamics-Predictive Sampling: a per-prompt HMM with Dirichlet transitions).
//!
//! [`simulate`] compares them on synthetic prompts that learn, without a GPU.
//!
//! ```
//! use rand::{SeedableRng, rngs::Xoshiro256PlusPlus};
//! use rlft_samplers::{BatchShape, Dps, DpsConfig, Outcome, PromptSampler, Selection};
//!
//! let shape = BatchShape { num_prompts: 100, batch_size: 4, group_size: 8 };
//! let mut dps = Dps::new(shape, &DpsConfig { decay: 0.5, ..DpsConfig::default() })?;
//! let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
//!
//! // Step 0: every prompt is tied; report the chosen prompts as partially solved.
//! let Selection::Train { prompts, .. } = dps.select(0, &mut rng)? else { unreachable!() };
//! let outcomes: Vec<Outcome> = prompts.iter().map(|&p| Outcome::new(p, 3, 8)).collect();
//! dps.observe(&outcomes)?;
//!
//! // Step 1: a prompt seen partial now predicts 0.4 for "partial" and is chosen again.
//! let Selection::Train { prompts: next, .. } = dps.select(1, &mut rng)? else { unreachable!() };
//! assert!((dps.score(prompts[0]).unwrap() - 0.4).abs() < 1e-12);
//! assert_eq!(next.len(), 4);
//! assert!(next.iter().all(|p| prompts.contains(p)));
//! assert_eq!(dps.accounting().rollouts_generated, 32);
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod dps;
mod dynamic;
mod epoch;
mod error;
mod history;
mod mopps;
mod sampler;
mod sfl;
pub mod simulate;
mod topk;
mod uniform;

pub use config::SamplerConfig;
pub use dps::{
    CandidatePool, Dps, DpsConfig, DpsState, DpsStrategy, InitialBelief, TransitionPrior,
};
pub use dynamic::{DynamicSampling, DynamicSamplingConfig, DynamicSamplingState};
pub use epoch::EpochStream;
pub use error::{Result, SamplerError};
pub use history::{HistoryResampling, HistoryResamplingState};
pub use mopps::{Mopps, MoppsConfig, MoppsRule, MoppsState};
pub use sampler::{
    Accounting, BatchShape, Ledger, Outcome, PromptId, PromptSampler, SamplerState, Selection,
};
pub use sfl::{
    SflBuffer, SflBufferConfig, SflBufferState, SflInline, SflInlineConfig, SflInlineState,
    learnability,
};
pub use uniform::{Uniform, UniformState};
