//! A shuffled epoch stream: prompts drawn without replacement within an epoch, reshuffled at
//! each epoch boundary (a shuffled dataloader).

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::sampler::PromptId;

/// Position in a shuffled pass over the (active) prompts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochStream {
    order: Vec<u32>,
    pos: usize,
    epochs: u64,
}

impl EpochStream {
    /// Completed reshuffles so far.
    pub fn epochs(&self) -> u64 {
        self.epochs
    }

    /// Take up to `n` distinct prompts. When the epoch runs out, the active prompts
    /// (`active(id)` true) are reshuffled and the take continues in the new epoch, skipping ids
    /// already taken in this call. Returns fewer than `n` only if fewer prompts are active.
    pub fn take(
        &mut self,
        n: usize,
        num_prompts: usize,
        rng: &mut dyn Rng,
        active: &dyn Fn(PromptId) -> bool,
    ) -> Vec<PromptId> {
        self.take_excluding(n, num_prompts, rng, active, &[])
    }

    /// Like [`take`](Self::take), but also skips (and consumes) ids listed in `exclude`.
    pub fn take_excluding(
        &mut self,
        n: usize,
        num_prompts: usize,
        rng: &mut dyn Rng,
        active: &dyn Fn(PromptId) -> bool,
        exclude: &[PromptId],
    ) -> Vec<PromptId> {
        let mut out: Vec<PromptId> = Vec::with_capacity(n);
        let mut reshuffles_this_call = 0;
        while out.len() < n {
            if self.pos >= self.order.len() {
                if reshuffles_this_call == 2 {
                    break;
                }
                self.reshuffle(num_prompts, rng, active);
                reshuffles_this_call += 1;
                if self.order.is_empty() {
                    break;
                }
                continue;
            }
            let id = self.order[self.pos] as PromptId;
            self.pos += 1;
            if (reshuffles_this_call > 0 && out.contains(&id)) || exclude.contains(&id) {
                continue;
            }
            out.push(id);
        }
        out
    }

    fn reshuffle(
        &mut self,
        num_prompts: usize,
        rng: &mut dyn Rng,
        active: &dyn Fn(PromptId) -> bool,
    ) {
        self.order.clear();
        self.order
            .extend((0..num_prompts).filter(|&i| active(i)).map(|i| i as u32));
        self.order.shuffle(rng);
        self.pos = 0;
        self.epochs += 1;
    }
}
