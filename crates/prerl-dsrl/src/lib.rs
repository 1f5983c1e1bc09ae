//! # rlft-prerl-dsrl
//!
//! PreRL (RL on the marginal log P(y): the prompt replaced by one context token), its
//! negative- and positive-sample variants NSR-PreRL / PSR-PreRL, and Dual Space RL (DSRL:
//! NSR-PreRL for the first S − 1 steps, then GRPO, the reference synced at the switch), on
//! rlft-trainer's learner. Method and sources: `docs/prerl.md` and the spec `specs/prerl.md`
//! (arXiv 2604.14142, code `Trae1ounG/Pretrain_Space_RLVR`).
//!
//! The trainer holds the machinery (the [`Marginal`](rlft_trainer::Marginal) scorer, phased
//! [`Term`](rlft_trainer::Term)s, sample masks, reference sync); this crate gives it the
//! released recipes and the tools around them:
//!
//! - [`PreRlConfig`] (variant [`PreRlVariant`], weighting [`PreRlWeighting`]: the code's
//!   A = r − mean with c_pre = 0.01 and dual clip 10, or Zhu et al.'s A = −1), [`RlMethod`]
//!   (GRPO, PSR, NSR, W-REINFORCE in the conditional space), [`DsrlConfig`] (S in verl's
//!   1-based convention, switch at rlft step S − 1) and [`released_learner`]: each builds
//!   [`Term`](rlft_trainer::Term)s and a [`LearnerConfig`](rlft_trainer::LearnerConfig);
//! - [`gradient_alignment`]: the cosine between ∇log P(y) and ∇log π(y|x), overall and by
//!   token position;
//! - [`ThoughtCounts`] (re-exported from rlft-tasks; every `rlft train` run logs
//!   `thoughts/transition` and `thoughts/reflection`);
//! - [`experiment`]: the CPU experiment of spec §7.2 on the (a+b) mod 10 restatement task
//!   with rlft's own tiny transformer (`cargo run --release -p rlft-prerl-dsrl --example
//!   experiment`).
//!
//! ```
//! use rlft_prerl_dsrl::{DsrlConfig, released_learner};
//! use rlft_trainer::{Learner, Marginal};
//!
//! // The released DSRL: S = 20 in verl's 1-based steps, i.e. 19 NSR-PreRL updates
//! // (rlft steps 0..=18), then GRPO from step 19 with the reference synced there.
//! let dsrl = DsrlConfig::default();
//! let (terms, learner_cfg) = dsrl.build(Marginal { context_token: 151644 }, released_learner())?;
//! assert_eq!(dsrl.switch_step(), 19);
//! assert_eq!(learner_cfg.sync_reference_at, vec![19]);
//! assert_eq!((terms[0].phase.coef_at(18), terms[0].phase.coef_at(19)), (0.01, 0.0));
//! assert_eq!((terms[1].phase.coef_at(18), terms[1].phase.coef_at(19)), (0.0, 1.0));
//! let learner = Learner::with_terms(learner_cfg, 348, terms)?;
//! assert_eq!(learner.terms().len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![doc(test(attr(deny(warnings))))]

mod alignment;
mod config;
mod error;
pub mod experiment;

pub use alignment::{AlignmentReport, PositionAlignment, gradient_alignment};
pub use config::{
    DsrlConfig, PreRlConfig, PreRlVariant, PreRlWeighting, RlMethod, released_learner,
};
pub use error::{PrerlError, Result};
pub use rlft_tasks::{KeywordMatch, ThoughtCounts, mean_thoughts, mean_thoughts_with};
