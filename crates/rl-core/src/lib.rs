//! # rlft-core
//!
//! The shared vocabulary of rlft and the objectives of the GRPO family, on Burn tensors with
//! no backend chosen: the caller passes a [`burn::tensor::Device`].
//!
//! - Vocabulary: [`PromptGroup`] and [`Completion`] (what a rollout produces), [`PolicyBatch`]
//!   and [`PolicyTensors`] (what an objective consumes), [`Trajectory`] (multi-turn episodes).
//! - [`AdvantageEstimator`]: GRPO (TRL semantics), Dr.GRPO, RLOO, REINFORCE++, PSR, NSR,
//!   W-REINFORCE, over consecutive groups (TRL) or verl's uid groups ([`GroupIndex`]).
//! - [`RewardTable`]: several reward functions with weights and missing scores, combined as
//!   TRL's `sum_then_normalize` or `normalize_then_sum` ([`RewardAggregation`]).
//! - [`Objective`], with [`PolicyLoss`] (clipped surrogate, token or sequence ratio, DAPO
//!   clip-higher, dual clip, δ cap, KL k1/k2/k3, entropy bonus, TRL and verl aggregations,
//!   TRL 1.16's CISPO, SAPO and VESPO as [`Surrogate`]s) and
//!   [`WeightedNll`] (SFT, DRIFT).
//! - [`token_logprobs`] and [`token_entropy`] from logits.
//!
//! Everything on tensors (objectives, [`PolicyTensors`], [`PolicyBatch::to_tensors`], the
//! log-prob functions) is behind the default feature `tensor`. Without it the host-side
//! vocabulary, the advantage estimators and the errors build with no Burn in the dependency
//! tree, which is what rlft-rollout's HTTP client uses.
//!
//! Numbers match TRL 1.16 and verl 0.9.1: the crate's tests compare against fixtures written by
//! running those libraries' own code (`scripts/trl_parity/`).
//!
//! ```
//! # #[cfg(feature = "tensor")] {
//! use burn::tensor::{Device, Tensor};
//! use rlft_core::{AdvantageEstimator, Objective, ObjectiveInput, PolicyLossConfig, PolicyTensors};
//!
//! // Two prompts, two completions each: GRPO advantages from rewards.
//! let adv = AdvantageEstimator::default().compute(&[1.0, 0.0, 0.0, 0.0], 2)?;
//! assert!(adv.values[0] > 0.0 && adv.values[1] < 0.0 && adv.values[2] == 0.0);
//!
//! // The DAPO-style token-mean loss of on-policy log-probs, differentiated.
//! let device = Device::flex().autodiff();
//! let logps = Tensor::<2>::from_floats([[-1.0, -2.0], [-0.5, -0.1], [-1.0, -1.0], [-3.0, -0.2]], &device)
//!     .require_grad();
//! let mask = Tensor::<2>::ones([4, 2], &device);
//! let batch = PolicyTensors::new(mask, Tensor::from_floats(adv.values.as_slice(), &device), None, None)?;
//! let loss = PolicyLossConfig::default().init()?;
//! let out = loss.compute(ObjectiveInput::new(logps.clone(), &batch))?;
//! let grad = logps.grad(&out.loss.backward()).unwrap();
//! // On-policy the gradient is −A/N for every active token (N = 8 tokens).
//! let g: Vec<f32> = grad.into_data().try_to_vec::<f32>().unwrap();
//! assert!((g[0] + adv.values[0] / 8.0).abs() < 1e-6);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Without `tensor`, the links above to tensor items have no target.
#![cfg_attr(not(feature = "tensor"), allow(rustdoc::broken_intra_doc_links))]

mod advantage;
mod batch;
mod error;
mod group;
#[cfg(feature = "tensor")]
mod logprobs;
#[cfg(feature = "tensor")]
mod objective;
mod trajectory;

pub use advantage::{
    AdvantageEstimator, Advantages, GroupIndex, RewardAggregation, RewardScale, RewardTable,
    SingletonGroups, trl_advantages,
};
#[cfg(feature = "tensor")]
pub use batch::PolicyTensors;
pub use batch::{BatchOptions, PolicyBatch};
pub use error::{CoreError, Result};
pub use group::{Completion, PromptGroup};
#[cfg(feature = "tensor")]
pub use logprobs::{token_entropy, token_logprobs};
#[cfg(feature = "tensor")]
pub use objective::{
    ImportanceLevel, KlEstimator, LossAggregation, LossScale, Metrics, NllNormalization, Objective,
    ObjectiveInput, ObjectiveOutput, PolicyLoss, PolicyLossConfig, Surrogate, WeightedNll,
    kl_divergence,
};
pub use trajectory::{Role, Trajectory, Turn};
