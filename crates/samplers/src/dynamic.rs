//! Dynamic Sampling (DS, DAPO `filter_groups`): oversample, keep mixed groups, refill.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::epoch::EpochStream;
use crate::error::{Result, config_err};
use crate::sampler::{
    Accounting, BatchShape, Ledger, Outcome, PromptId, PromptSampler, SamplerState, Selection,
};
use crate::uniform::wrong_kind;

/// Configuration of [`DynamicSampling`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DynamicSamplingConfig {
    /// Cap on generation rounds per step, `max_num_gen_batches`. Default 4: DPS repo MATH
    /// `*_dapo.sh` (Countdown and Geo3k scripts use 10).
    pub max_gen_batches: u32,
    /// Prompts per generation round. Default `None` = the train batch size B, as in the DPS
    /// repo's DAPO scripts (the DAPO paper's own recipe uses 3·B).
    pub gen_batch_size: Option<usize>,
}

impl Default for DynamicSamplingConfig {
    fn default() -> Self {
        Self {
            max_gen_batches: 4,
            gen_batch_size: None,
        }
    }
}

/// Dynamic Sampling as configured in the DPS repo (DPS spec §5 "DS"):
///
/// 1. screen the next generation batch from the shuffled stream with k rollouts each;
/// 2. keep groups with reward std > 0, i.e. 0 < successes < k (binary rewards);
/// 3. repeat until B groups are kept or `max_gen_batches` rounds were generated;
/// 4. train on the first B kept groups (their screening rollouts are reused).
///
/// **At the cap** the step trains on the groups it has, possibly fewer than B (possibly none),
/// and [`Accounting::short_steps`] counts it. The verl code instead concatenates the last
/// generation batch a second time, which can duplicate groups or train on filtered-out ones; we
/// do not copy that quirk (sfl.md §5.1.4: "smaller, and this is logged").
///
/// Rollouts per step = rounds · gen_batch · k, all counted as generated.
#[derive(Clone, Debug)]
pub struct DynamicSampling {
    shape: BatchShape,
    gen_batch: usize,
    cap: u32,
    state: DynamicSamplingState,
}

/// Checkpointable state of [`DynamicSampling`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DynamicSamplingState {
    ledger: Ledger,
    stream: EpochStream,
    rounds: u32,
    last_request: Vec<PromptId>,
    kept: Vec<Outcome>,
}

impl DynamicSampling {
    /// Build for `shape` with `config`.
    ///
    /// # Errors
    /// [`crate::SamplerError::Config`] for an invalid shape, a zero cap or a zero or oversized
    /// generation batch.
    pub fn new(shape: BatchShape, config: &DynamicSamplingConfig) -> Result<Self> {
        shape.validate()?;
        if config.max_gen_batches == 0 {
            return Err(config_err("max_gen_batches", "must be at least 1, got 0"));
        }
        let gen_batch = config.gen_batch_size.unwrap_or(shape.batch_size);
        if gen_batch == 0 || gen_batch > shape.num_prompts {
            return Err(config_err(
                "gen_batch_size",
                format!("must be in 1..={}, got {gen_batch}", shape.num_prompts),
            ));
        }
        Ok(Self {
            shape,
            gen_batch,
            cap: config.max_gen_batches,
            state: DynamicSamplingState {
                ledger: Ledger::new(shape.num_prompts),
                stream: EpochStream::default(),
                rounds: 0,
                last_request: Vec::new(),
                kept: Vec::new(),
            },
        })
    }

    /// Generation rounds used so far in the current step.
    pub fn rounds_this_step(&self) -> u32 {
        self.state.rounds
    }
}

impl PromptSampler for DynamicSampling {
    fn name(&self) -> &str {
        "dynamic_sampling"
    }
    fn num_prompts(&self) -> usize {
        self.shape.num_prompts
    }
    fn select(&mut self, _step: u64, rng: &mut dyn Rng) -> Result<Selection> {
        let st = &mut self.state;
        st.ledger.check_can_select()?;
        let b = self.shape.batch_size;
        if st.kept.len() >= b || st.rounds >= self.cap {
            let mut trained = std::mem::take(&mut st.kept);
            trained.truncate(b);
            if trained.len() < b {
                st.ledger.mark_short_step();
            }
            let sel = Selection::TrainScreened {
                prompts: trained.iter().map(|o| o.prompt).collect(),
            };
            st.ledger.issue(&sel, &trained);
            st.rounds = 0;
            st.last_request.clear();
            return Ok(sel);
        }
        st.rounds += 1;
        let prompts = st
            .stream
            .take(self.gen_batch, self.shape.num_prompts, rng, &|_| true);
        st.last_request.clone_from(&prompts);
        let sel = Selection::Screen {
            prompts,
            rollouts: self.shape.group_size,
        };
        st.ledger.issue(&sel, &[]);
        Ok(sel)
    }
    fn observe(&mut self, outcomes: &[Outcome]) -> Result<()> {
        let st = &mut self.state;
        st.ledger.record(outcomes)?;
        // Keep mixed groups in request order, so the result does not depend on the order in
        // which the trainer reports outcomes; a prompt already kept this step is not kept twice.
        for &id in &st.last_request {
            if let Some(o) = outcomes.iter().find(|o| o.prompt == id)
                && o.is_mixed()
                && !st.kept.iter().any(|k| k.prompt == id)
            {
                st.kept.push(*o);
            }
        }
        Ok(())
    }
    fn accounting(&self) -> Accounting {
        self.state.ledger.accounting().clone()
    }
    fn state(&self) -> SamplerState {
        SamplerState::DynamicSampling(self.state.clone())
    }
    fn restore(&mut self, state: SamplerState) -> Result<()> {
        match state {
            SamplerState::DynamicSampling(s) => {
                s.ledger.check_fits(self.shape.num_prompts)?;
                self.state = s;
                Ok(())
            }
            other => Err(wrong_kind("dynamic_sampling", &other)),
        }
    }
}
