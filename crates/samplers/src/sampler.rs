//! The [`PromptSampler`] trait, the types it exchanges with a trainer, and the shared ledger that
//! validates observations and counts rollouts.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SamplerError};

/// Index of a prompt in the training set (`0..num_prompts`).
pub type PromptId = usize;

/// The outcome of one prompt's group of rollouts: `successes` correct out of `k`.
///
/// "Correct" is the binary verifier result (DPS's `acc`, not a shaped reward).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The prompt.
    pub prompt: PromptId,
    /// Number of correct rollouts.
    pub successes: u32,
    /// Number of rollouts in the group.
    pub k: u32,
}

impl Outcome {
    /// Build an outcome.
    pub fn new(prompt: PromptId, successes: u32, k: u32) -> Self {
        Self {
            prompt,
            successes,
            k,
        }
    }

    /// True iff the group is mixed (0 < successes < k): it has GRPO signal.
    pub fn is_mixed(&self) -> bool {
        self.successes > 0 && self.successes < self.k
    }
}

/// What a sampler asks the trainer to do next within a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Selection {
    /// Generate `rollouts` completions for each prompt, report them with
    /// [`PromptSampler::observe`], then call [`PromptSampler::select`] again for the **same**
    /// step. These groups are not trained on unless a later [`Selection::TrainScreened`] names
    /// them.
    Screen {
        /// Prompts to screen.
        prompts: Vec<PromptId>,
        /// Rollouts per prompt.
        rollouts: u32,
    },
    /// Generate `rollouts` completions for each prompt, train on them, and report their
    /// outcomes with [`PromptSampler::observe`]. This ends the step.
    Train {
        /// Prompts to roll out and train on.
        prompts: Vec<PromptId>,
        /// Rollouts per prompt.
        rollouts: u32,
    },
    /// Train on the groups already generated for these prompts by this step's screening rounds.
    /// Nothing new is generated and no `observe` call follows. This ends the step.
    TrainScreened {
        /// Screened prompts whose groups are trained on, in order.
        prompts: Vec<PromptId>,
    },
}

impl Selection {
    /// The prompts named by the request.
    pub fn prompts(&self) -> &[PromptId] {
        match self {
            Selection::Screen { prompts, .. }
            | Selection::Train { prompts, .. }
            | Selection::TrainScreened { prompts } => prompts,
        }
    }

    /// True iff the request ends the step (a train request).
    pub fn ends_step(&self) -> bool {
        !matches!(self, Selection::Screen { .. })
    }
}

/// Honest rollout accounting, cumulative since the sampler was built.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    /// Completed steps (train requests issued).
    pub steps: u64,
    /// Generation calls requested (screening rounds plus fresh train rounds).
    pub generation_rounds: u64,
    /// Every rollout generated and observed, screening included.
    pub rollouts_generated: u64,
    /// Rollouts in the groups that were trained on.
    pub rollouts_trained: u64,
    /// Prompt groups trained on.
    pub prompts_trained: u64,
    /// Trained groups with 0 < successes < k.
    pub prompts_effective: u64,
    /// Steps that hit a generation cap and trained on fewer than the batch size.
    pub short_steps: u64,
}

impl Accounting {
    /// Effective ratio: share of trained prompts with 0 < successes < k (0 before any).
    pub fn effective_ratio(&self) -> f64 {
        if self.prompts_trained == 0 {
            0.0
        } else {
            self.prompts_effective as f64 / self.prompts_trained as f64
        }
    }

    /// Rollouts generated but never trained on.
    pub fn rollouts_wasted(&self) -> u64 {
        self.rollouts_generated
            .saturating_sub(self.rollouts_trained)
    }
}

/// Checkpointable state of any sampler in this crate, as a typed enum.
///
/// Serialise it with any serde format (JSON is exact: the crate enables serde_json's
/// `float_roundtrip`). A sampler written outside this crate can use [`SamplerState::Custom`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "sampler", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SamplerState {
    /// [`crate::Uniform`].
    Uniform(crate::uniform::UniformState),
    /// [`crate::DynamicSampling`].
    DynamicSampling(crate::dynamic::DynamicSamplingState),
    /// [`crate::HistoryResampling`].
    HistoryResampling(crate::history::HistoryResamplingState),
    /// [`crate::SflInline`].
    SflInline(crate::sfl::SflInlineState),
    /// [`crate::SflBuffer`].
    SflBuffer(crate::sfl::SflBufferState),
    /// [`crate::Mopps`].
    Mopps(crate::mopps::MoppsState),
    /// [`crate::Dps`].
    Dps(Box<crate::dps::DpsState>),
    /// A sampler defined elsewhere.
    Custom(serde_json::Value),
}

/// Chooses which prompts to roll out and train on, learns from their outcomes, and counts
/// rollouts.
///
/// # Contract (how a trainer drives a sampler)
///
/// One training step is a short conversation:
///
/// 1. `select(step, rng)` returns a [`Selection`].
/// 2. On [`Selection::Screen`]: generate the requested rollouts, call `observe` with one
///    [`Outcome`] per prompt (a subset is allowed if some generations failed), then go to 1 with
///    the same `step`. Dynamic Sampling, SFL and other samplers that must see rollouts before
///    deciding use this.
/// 3. On [`Selection::Train`]: generate the rollouts, train on them, call `observe` with their
///    outcomes. The step is over.
/// 4. On [`Selection::TrainScreened`]: train on the groups generated by this step's screening
///    rounds for the named prompts. No `observe` follows. The step is over.
///
/// `step` counts from 0 and increases by one per step. `rng` is the only randomness a sampler
/// uses, so the same seed gives the same run; samplers never hold a generator of their own.
///
/// `observe` validates every outcome before changing anything: an id outside the dataset, a
/// prompt the pending request did not name, a duplicate, `k = 0`, `successes > k` or a group
/// size other than the one requested is an error, and the state is left unchanged.
/// Calling `select` while a request waits for `observe`, or `observe` with nothing pending, is
/// also an error.
///
/// [`accounting`](Self::accounting) counts every generated rollout, screening included, so
/// comparisons at equal rollouts are honest.
///
/// # Checkpoints
///
/// [`state`](Self::state) returns a typed [`SamplerState`] (serde); [`restore`](Self::restore)
/// puts it back into a sampler built with the same config. A restored sampler given the same
/// RNG continues exactly as the original would have, including a pending request. The RNG is the
/// caller's and is checkpointed by the caller.
///
/// # Object safety
///
/// The trait is object-safe: the CLI builds a `Box<dyn PromptSampler>` from a TOML
/// [`crate::SamplerConfig`].
pub trait PromptSampler: Send {
    /// Short name for reports, e.g. `"dps"`.
    fn name(&self) -> &str;

    /// Size of the training set the sampler selects from.
    fn num_prompts(&self) -> usize;

    /// Choose what to do next within `step`. See the trait docs for the protocol.
    fn select(&mut self, step: u64, rng: &mut dyn Rng) -> Result<Selection>;

    /// Report the outcomes of the pending request.
    fn observe(&mut self, outcomes: &[Outcome]) -> Result<()>;

    /// Cumulative rollout accounting.
    fn accounting(&self) -> Accounting;

    /// The full state, for checkpoints.
    fn state(&self) -> SamplerState;

    /// Restore a state produced by [`state`](Self::state) of a sampler with the same config.
    fn restore(&mut self, state: SamplerState) -> Result<()>;
}

impl<S: PromptSampler + ?Sized> PromptSampler for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn num_prompts(&self) -> usize {
        (**self).num_prompts()
    }
    fn select(&mut self, step: u64, rng: &mut dyn Rng) -> Result<Selection> {
        (**self).select(step, rng)
    }
    fn observe(&mut self, outcomes: &[Outcome]) -> Result<()> {
        (**self).observe(outcomes)
    }
    fn accounting(&self) -> Accounting {
        (**self).accounting()
    }
    fn state(&self) -> SamplerState {
        (**self).state()
    }
    fn restore(&mut self, state: SamplerState) -> Result<()> {
        (**self).restore(state)
    }
}

impl<S: PromptSampler + ?Sized> PromptSampler for &mut S {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn num_prompts(&self) -> usize {
        (**self).num_prompts()
    }
    fn select(&mut self, step: u64, rng: &mut dyn Rng) -> Result<Selection> {
        (**self).select(step, rng)
    }
    fn observe(&mut self, outcomes: &[Outcome]) -> Result<()> {
        (**self).observe(outcomes)
    }
    fn accounting(&self) -> Accounting {
        (**self).accounting()
    }
    fn state(&self) -> SamplerState {
        (**self).state()
    }
    fn restore(&mut self, state: SamplerState) -> Result<()> {
        (**self).restore(state)
    }
}

/// The request that waits for `observe`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pending {
    /// Requested prompts, sorted.
    pub sorted: Vec<PromptId>,
    /// Rollouts per prompt.
    pub rollouts: u32,
    /// True for a train request (the step ends at observe).
    pub train: bool,
}

/// Protocol bookkeeping shared by every sampler: the pending request, validation of outcomes,
/// and the accounting counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    num_prompts: usize,
    pending: Option<Pending>,
    accounting: Accounting,
}

impl Ledger {
    /// A fresh ledger for a dataset of `num_prompts`.
    pub(crate) fn new(num_prompts: usize) -> Self {
        Self {
            num_prompts,
            pending: None,
            accounting: Accounting::default(),
        }
    }

    /// The counters.
    pub(crate) fn accounting(&self) -> &Accounting {
        &self.accounting
    }

    /// Error if a request is still waiting for outcomes.
    pub(crate) fn check_can_select(&self) -> Result<()> {
        match &self.pending {
            Some(p) => Err(SamplerError::ObservationPending {
                pending: p.sorted.len(),
            }),
            None => Ok(()),
        }
    }

    /// Record an outgoing request. For [`Selection::TrainScreened`], `screened` gives the
    /// outcomes of the trained groups (already observed during screening).
    pub(crate) fn issue(&mut self, selection: &Selection, screened: &[Outcome]) {
        match selection {
            Selection::Screen { prompts, rollouts } | Selection::Train { prompts, rollouts } => {
                let mut sorted = prompts.clone();
                sorted.sort_unstable();
                self.accounting.generation_rounds += 1;
                self.pending = Some(Pending {
                    sorted,
                    rollouts: *rollouts,
                    train: selection.ends_step(),
                });
                if selection.ends_step() {
                    self.accounting.steps += 1;
                }
            }
            Selection::TrainScreened { .. } => {
                self.accounting.steps += 1;
                for o in screened {
                    self.accounting.prompts_trained += 1;
                    self.accounting.rollouts_trained += u64::from(o.k);
                    self.accounting.prompts_effective += u64::from(o.is_mixed());
                }
            }
        }
    }

    /// Count a step that trained on fewer prompts than the batch size.
    pub(crate) fn mark_short_step(&mut self) {
        self.accounting.short_steps += 1;
    }

    /// Validate `outcomes` against the pending request without changing anything.
    pub(crate) fn validate(&self, outcomes: &[Outcome]) -> Result<()> {
        let pending = self.pending.as_ref().ok_or(SamplerError::NothingPending)?;
        for o in outcomes {
            if o.prompt >= self.num_prompts {
                return Err(SamplerError::UnknownPrompt {
                    prompt: o.prompt,
                    num_prompts: self.num_prompts,
                });
            }
            if o.k == 0 {
                return Err(SamplerError::ZeroGroupSize { prompt: o.prompt });
            }
            if o.successes > o.k {
                return Err(SamplerError::SuccessesExceedK {
                    prompt: o.prompt,
                    successes: o.successes,
                    k: o.k,
                });
            }
            if o.k != pending.rollouts {
                return Err(SamplerError::GroupSizeMismatch {
                    prompt: o.prompt,
                    expected: pending.rollouts,
                    found: o.k,
                });
            }
            if pending.sorted.binary_search(&o.prompt).is_err() {
                return Err(SamplerError::NotRequested { prompt: o.prompt });
            }
        }
        let mut ids: Vec<PromptId> = outcomes.iter().map(|o| o.prompt).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(SamplerError::DuplicateObservation { prompt: w[0] });
        }
        Ok(())
    }

    /// Validate, then count `outcomes` and clear the pending request. Returns whether the
    /// request was a train request.
    pub(crate) fn record(&mut self, outcomes: &[Outcome]) -> Result<bool> {
        self.validate(outcomes)?;
        let train = self.pending.take().is_some_and(|p| p.train);
        for o in outcomes {
            self.accounting.rollouts_generated += u64::from(o.k);
            if train {
                self.accounting.prompts_trained += 1;
                self.accounting.rollouts_trained += u64::from(o.k);
                self.accounting.prompts_effective += u64::from(o.is_mixed());
            }
        }
        Ok(train)
    }

    /// Check that a restored ledger fits this dataset.
    pub(crate) fn check_fits(&self, num_prompts: usize) -> Result<()> {
        if self.num_prompts != num_prompts {
            return Err(SamplerError::State {
                reason: format!(
                    "state is for {} prompts, sampler has {num_prompts}",
                    self.num_prompts
                ),
            });
        }
        Ok(())
    }
}

/// Shape of the batch a trainer trains on, given to every sampler at construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchShape {
    /// Training-set size N.
    pub num_prompts: usize,
    /// Prompts trained per step B (DPS MATH/CD scripts: 256).
    pub batch_size: usize,
    /// Rollouts per prompt k (DPS scripts `rollout.n` = 8).
    pub group_size: u32,
}

impl BatchShape {
    /// Check N ≥ 1, 1 ≤ B ≤ N and k ≥ 1.
    pub fn validate(&self) -> Result<()> {
        if self.num_prompts == 0 {
            return Err(crate::error::config_err(
                "num_prompts",
                "must be at least 1, got 0",
            ));
        }
        if self.batch_size == 0 || self.batch_size > self.num_prompts {
            return Err(crate::error::config_err(
                "batch_size",
                format!(
                    "must be in 1..={}, got {}",
                    self.num_prompts, self.batch_size
                ),
            ));
        }
        if self.group_size == 0 {
            return Err(crate::error::config_err(
                "group_size",
                "must be at least 1, got 0",
            ));
        }
        Ok(())
    }
}
