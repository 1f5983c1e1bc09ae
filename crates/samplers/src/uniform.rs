//! Uniform sampling (US): B prompts per step from a shuffled epoch order.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::epoch::EpochStream;
use crate::error::{Result, SamplerError};
use crate::sampler::{
    Accounting, BatchShape, Ledger, Outcome, PromptSampler, SamplerState, Selection,
};

/// Uniform sampling: each step takes the next B prompts of a shuffled epoch (without
/// replacement within the epoch) and rolls out k each. Cost per step B·k (DPS spec §5 "US",
/// the `framework=0` scripts).
#[derive(Clone, Debug)]
pub struct Uniform {
    shape: BatchShape,
    state: UniformState,
}

/// Checkpointable state of [`Uniform`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UniformState {
    ledger: Ledger,
    stream: EpochStream,
}

impl Uniform {
    /// Build for `shape`.
    ///
    /// # Errors
    /// [`SamplerError::Config`] if the shape is invalid.
    pub fn new(shape: BatchShape) -> Result<Self> {
        shape.validate()?;
        Ok(Self {
            shape,
            state: UniformState {
                ledger: Ledger::new(shape.num_prompts),
                stream: EpochStream::default(),
            },
        })
    }
}

impl PromptSampler for Uniform {
    fn name(&self) -> &str {
        "uniform"
    }
    fn num_prompts(&self) -> usize {
        self.shape.num_prompts
    }
    fn select(&mut self, _step: u64, rng: &mut dyn Rng) -> Result<Selection> {
        self.state.ledger.check_can_select()?;
        let prompts =
            self.state
                .stream
                .take(self.shape.batch_size, self.shape.num_prompts, rng, &|_| {
                    true
                });
        let sel = Selection::Train {
            prompts,
            rollouts: self.shape.group_size,
        };
        self.state.ledger.issue(&sel, &[]);
        Ok(sel)
    }
    fn observe(&mut self, outcomes: &[Outcome]) -> Result<()> {
        self.state.ledger.record(outcomes).map(|_| ())
    }
    fn accounting(&self) -> Accounting {
        self.state.ledger.accounting().clone()
    }
    fn state(&self) -> SamplerState {
        SamplerState::Uniform(self.state.clone())
    }
    fn restore(&mut self, state: SamplerState) -> Result<()> {
        match state {
            SamplerState::Uniform(s) => {
                s.ledger.check_fits(self.shape.num_prompts)?;
                self.state = s;
                Ok(())
            }
            other => Err(wrong_kind("uniform", &other)),
        }
    }
}

/// The error for restoring a state of another sampler kind.
pub(crate) fn wrong_kind(expected: &str, found: &SamplerState) -> SamplerError {
    let found = serde_json::to_value(found)
        .ok()
        .and_then(|v| v.get("sampler").and_then(|s| s.as_str().map(str::to_owned)))
        .unwrap_or_else(|| "unknown".to_owned());
    SamplerError::State {
        reason: format!("expected a {expected} state, found {found}"),
    }
}
