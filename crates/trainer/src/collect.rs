//! The rollout half of an online RL step: ask the sampler, generate, score, report outcomes,
//! repeat until the sampler names the groups to train on.

use std::collections::HashMap;

use rand::Rng;
use rlft_core::PromptGroup;
use rlft_rollout::{RolloutEngine, SamplingParams};
use rlft_samplers::{Outcome, PromptSampler, Selection};

use crate::error::{Result, TrainerError};

/// Scores completions: a reward for the trainer's advantages and a binary `correct` that
/// samplers observe (they differ when a shaped reward such as a format bonus is used).
pub trait Rewarder {
    /// Reward and correctness of `text` as an answer to prompt `prompt_index`.
    ///
    /// # Errors
    /// Whatever the scorer cannot handle (e.g. a malformed dataset item).
    fn score(&self, prompt_index: usize, text: &str) -> Result<(f32, bool)>;
}

impl<F: Fn(usize, &str) -> Result<(f32, bool)>> Rewarder for F {
    fn score(&self, prompt_index: usize, text: &str) -> Result<(f32, bool)> {
        self(prompt_index, text)
    }
}

/// A training step's rollouts, with what it cost.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// The groups to train on, rewards set.
    pub groups: Vec<PromptGroup>,
    /// Rollouts generated this step, screening included.
    pub rollouts: usize,
    /// Completion tokens generated this step.
    pub tokens: usize,
    /// Trained groups with some but not all completions correct.
    pub mixed_groups: usize,
}

/// Runs one step's selection protocol. `prompt_ids[i]` are the (templated) token ids of prompt
/// `i`; `params.n` is overridden by the rollouts each selection asks for; `params.seed` should
/// be derived from the run seed and the step so that resumed runs repeat it.
///
/// # Errors
/// Sampler, engine and scorer errors; [`TrainerError::InvalidBatch`] for a prompt id outside
/// `prompt_ids` or a screened prompt the sampler never screened.
pub fn collect_step(
    step: u64,
    sampler: &mut dyn PromptSampler,
    rng: &mut dyn Rng,
    engine: &dyn RolloutEngine,
    prompt_ids: &[Vec<u32>],
    rewarder: &dyn Rewarder,
    params: &SamplingParams,
) -> Result<Collected> {
    let mut screened: HashMap<usize, (PromptGroup, bool)> = HashMap::new();
    let mut out = Collected::default();
    let mut round = 0u64;
    loop {
        let selection = sampler.select(step, rng)?;
        let (prompts, rollouts, train) = match selection {
            Selection::Screen { prompts, rollouts } => (prompts, rollouts, false),
            Selection::Train { prompts, rollouts } => (prompts, rollouts, true),
            Selection::TrainScreened { prompts } => {
                for p in prompts {
                    let (g, mixed) = screened.remove(&p).ok_or_else(|| {
                        TrainerError::InvalidBatch(format!(
                            "sampler asked to train on prompt {p}, which was not screened this step"
                        ))
                    })?;
                    out.mixed_groups += usize::from(mixed);
                    out.groups.push(g);
                }
                return Ok(out);
            }
        };
        let inputs = prompts
            .iter()
            .map(|&p| {
                prompt_ids
                    .get(p)
                    .map(|ids| (p, ids.clone()))
                    .ok_or_else(|| {
                        TrainerError::InvalidBatch(format!(
                            "prompt id {p} out of range for {} prompts",
                            prompt_ids.len()
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut p = params.clone();
        p.n = rollouts as usize;
        p.seed = params
            .seed
            .map(|s| s ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        round += 1;
        let mut groups = engine.generate_groups(&inputs, &p)?;
        let mut outcomes = Vec::with_capacity(groups.len());
        for g in &mut groups {
            let mut successes = 0u32;
            for c in &mut g.completions {
                let (reward, correct) = rewarder.score(g.prompt_index, &c.text)?;
                c.reward = reward;
                successes += u32::from(correct);
                out.tokens += c.token_ids.len();
            }
            out.rollouts += g.completions.len();
            outcomes.push(Outcome::new(g.prompt_index, successes, rollouts));
        }
        sampler.observe(&outcomes)?;
        let mixed = outcomes.iter().map(Outcome::is_mixed);
        if train {
            out.mixed_groups += mixed.filter(|&m| m).count();
            out.groups = groups;
            return Ok(out);
        }
        for (g, m) in groups.into_iter().zip(mixed) {
            screened.insert(g.prompt_index, (g, m));
        }
    }
}

/// A [`Rewarder`] from any [`Verifier`](rlft_tasks::Verifier) and the task items the prompt
/// indices refer to: reward = the verdict's score, correct = its `correct`.
///
/// ```
/// use rlft_tasks::{ExactMatch, TaskItem};
/// use rlft_trainer::{Rewarder, VerifierRewarder};
///
/// let items = vec![TaskItem::new("a", "1+1=", "2")];
/// let r = VerifierRewarder::new(ExactMatch::default(), items);
/// assert_eq!(r.score(0, "<answer>2</answer>")?, (1.0, true));
/// assert_eq!(r.score(0, "<answer>3</answer>")?, (0.0, false));
/// assert!(r.score(1, "2").is_err()); // no item 1
/// # Ok::<(), rlft_trainer::TrainerError>(())
/// ```
#[derive(Debug, Clone)]
pub struct VerifierRewarder<V> {
    verifier: V,
    items: Vec<rlft_tasks::TaskItem>,
}

impl<V: rlft_tasks::Verifier> VerifierRewarder<V> {
    /// Scores prompt `i` against `items[i]` with `verifier`.
    pub fn new(verifier: V, items: Vec<rlft_tasks::TaskItem>) -> Self {
        Self { verifier, items }
    }

    /// The task items, indexed by prompt index.
    pub fn items(&self) -> &[rlft_tasks::TaskItem] {
        &self.items
    }
}

impl<V: rlft_tasks::Verifier> Rewarder for VerifierRewarder<V> {
    fn score(&self, prompt_index: usize, text: &str) -> Result<(f32, bool)> {
        let item = self.items.get(prompt_index).ok_or_else(|| {
            TrainerError::InvalidBatch(format!(
                "prompt index {prompt_index} out of range for {} task items",
                self.items.len()
            ))
        })?;
        let v = self.verifier.verify(item, text)?;
        Ok((v.score as f32, v.correct))
    }
}
