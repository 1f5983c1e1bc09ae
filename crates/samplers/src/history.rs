//! History Resampling (HR, SRPO 2025): an epoch-level filter that drops solved prompts.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::epoch::EpochStream;
use crate::error::Result;
use crate::sampler::{
    Accounting, BatchShape, Ledger, Outcome, PromptSampler, SamplerState, Selection,
};
use crate::uniform::wrong_kind;

/// History Resampling: uniform epochs, except that a prompt whose trained group was all
/// correct is marked solved and left out of every later epoch (an absorbing state; DPS spec §5
/// "HR"). "Solved" uses the prompt's last observation, as the spec recommends; since a solved
/// prompt is never drawn again, its last observation stays the solving one.
///
/// If every prompt is solved, the filter is lifted so that training can continue (the spec is
/// silent; we document this choice). Cost per step B·k.
#[derive(Clone, Debug)]
pub struct HistoryResampling {
    shape: BatchShape,
    state: HistoryResamplingState,
}

/// Checkpointable state of [`HistoryResampling`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryResamplingState {
    ledger: Ledger,
    stream: EpochStream,
    solved: Vec<bool>,
    num_solved: usize,
}

impl HistoryResampling {
    /// Build for `shape`.
    ///
    /// # Errors
    /// [`crate::SamplerError::Config`] if the shape is invalid.
    pub fn new(shape: BatchShape) -> Result<Self> {
        shape.validate()?;
        Ok(Self {
            shape,
            state: HistoryResamplingState {
                ledger: Ledger::new(shape.num_prompts),
                stream: EpochStream::default(),
                solved: vec![false; shape.num_prompts],
                num_solved: 0,
            },
        })
    }

    /// True iff `prompt` has been marked solved and is excluded from later epochs.
    pub fn is_solved(&self, prompt: usize) -> bool {
        self.state.solved.get(prompt).copied().unwrap_or(false)
    }
}

impl PromptSampler for HistoryResampling {
    fn name(&self) -> &str {
        "history_resampling"
    }
    fn num_prompts(&self) -> usize {
        self.shape.num_prompts
    }
    fn select(&mut self, _step: u64, rng: &mut dyn Rng) -> Result<Selection> {
        self.state.ledger.check_can_select()?;
        let st = &mut self.state;
        let all_solved = st.num_solved >= self.shape.num_prompts;
        let solved = &st.solved;
        let active = |i: usize| all_solved || !solved[i];
        let prompts = st
            .stream
            .take(self.shape.batch_size, self.shape.num_prompts, rng, &active);
        if prompts.len() < self.shape.batch_size {
            st.ledger.mark_short_step();
        }
        let sel = Selection::Train {
            prompts,
            rollouts: self.shape.group_size,
        };
        st.ledger.issue(&sel, &[]);
        Ok(sel)
    }
    fn observe(&mut self, outcomes: &[Outcome]) -> Result<()> {
        self.state.ledger.record(outcomes)?;
        for o in outcomes {
            if o.successes == o.k && !self.state.solved[o.prompt] {
                self.state.solved[o.prompt] = true;
                self.state.num_solved += 1;
            }
        }
        Ok(())
    }
    fn accounting(&self) -> Accounting {
        self.state.ledger.accounting().clone()
    }
    fn state(&self) -> SamplerState {
        SamplerState::HistoryResampling(self.state.clone())
    }
    fn restore(&mut self, state: SamplerState) -> Result<()> {
        match state {
            SamplerState::HistoryResampling(s) => {
                s.ledger.check_fits(self.shape.num_prompts)?;
                if s.solved.len() != self.shape.num_prompts {
                    return Err(crate::SamplerError::State {
                        reason: format!(
                            "solved mask has {} entries, expected {}",
                            s.solved.len(),
                            self.shape.num_prompts
                        ),
                    });
                }
                self.state = s;
                Ok(())
            }
            other => Err(wrong_kind("history_resampling", &other)),
        }
    }
}
