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

    /// Sets `reward` and `correct` on every completion of `groups`. Default: [`score`] each
    /// one. Rewarders that score in batches (remote reward functions) or normalise within a
    /// prompt group (`normalize_then_sum`) override it.
    ///
    /// [`score`]: Rewarder::score
    ///
    /// # Errors
    /// As [`score`](Rewarder::score).
    fn score_groups(&self, groups: &mut [PromptGroup]) -> Result<()> {
        for g in groups {
            for c in &mut g.completions {
                let (reward, correct) = self.score(g.prompt_index, &c.text)?;
                c.reward = reward;
                c.correct = Some(correct);
            }
        }
        Ok(())
    }

    /// Named values about the completions scored since the last call (e.g. each reward
    /// function's mean as `reward/<name>`), which the online trainer adds to the step's
    /// metrics. Default: none.
    fn take_metrics(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
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

/// Where a step's rollouts come from: given an engine and the prompt ids a sampler chose,
/// `params.n` scored rollouts per prompt, each [`Completion`](rlft_core::Completion) with its
/// `reward` and `correct` verdict set. [`SingleTurn`] generates one completion per rollout and
/// scores it with a [`Rewarder`]; [`MultiTurn`](crate::MultiTurn) runs an environment's
/// episodes turn by turn.
pub trait RolloutSource {
    /// Number of prompts the source knows (prompt ids are `0..num_prompts()`).
    fn num_prompts(&self) -> usize;

    /// `params.n` scored rollouts for each of `prompts`, one group per prompt in order.
    ///
    /// # Errors
    /// Engine and scorer errors; [`TrainerError::InvalidBatch`] for an unknown prompt id.
    fn rollout(
        &self,
        engine: &dyn RolloutEngine,
        prompts: &[usize],
        params: &SamplingParams,
    ) -> Result<Vec<PromptGroup>>;

    /// Named values about the rollouts since the last call, added to the step's metrics (a
    /// [`SingleTurn`] source passes on its rewarder's [`Rewarder::take_metrics`]). Default:
    /// none.
    fn take_metrics(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// Single-turn rollouts: prompt `i` is `prompt_ids[i]` (token ids after any chat template),
/// each completion scored by a [`Rewarder`].
pub struct SingleTurn<'a> {
    prompt_ids: Vec<Vec<u32>>,
    rewarder: &'a dyn Rewarder,
}

impl std::fmt::Debug for SingleTurn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleTurn")
            .field("prompts", &self.prompt_ids.len())
            .finish_non_exhaustive()
    }
}

impl<'a> SingleTurn<'a> {
    /// Prompts by id, and their scorer.
    pub fn new(prompt_ids: Vec<Vec<u32>>, rewarder: &'a dyn Rewarder) -> Self {
        Self {
            prompt_ids,
            rewarder,
        }
    }
}

impl RolloutSource for SingleTurn<'_> {
    fn num_prompts(&self) -> usize {
        self.prompt_ids.len()
    }

    fn rollout(
        &self,
        engine: &dyn RolloutEngine,
        prompts: &[usize],
        params: &SamplingParams,
    ) -> Result<Vec<PromptGroup>> {
        let inputs = prompts
            .iter()
            .map(|&p| {
                self.prompt_ids
                    .get(p)
                    .map(|ids| (p, ids.clone()))
                    .ok_or_else(|| {
                        TrainerError::InvalidBatch(format!(
                            "prompt id {p} out of range for {} prompts",
                            self.prompt_ids.len()
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut groups = engine.generate_groups(&inputs, params)?;
        self.rewarder.score_groups(&mut groups)?;
        Ok(groups)
    }

    fn take_metrics(&self) -> Vec<(String, f64)> {
        self.rewarder.take_metrics()
    }
}

/// Runs one step's selection protocol. `params.n` is overridden by the rollouts each
/// selection asks for; `params.seed` should be derived from the run seed and the step so that
/// resumed runs repeat it. Samplers observe the completions' `correct` verdicts (a completion
/// without one counts as wrong).
///
/// # Errors
/// Sampler, engine and scorer errors; [`TrainerError::InvalidBatch`] for a prompt id outside
/// the source or a screened prompt the sampler never screened.
pub fn collect_step(
    step: u64,
    sampler: &mut dyn PromptSampler,
    rng: &mut dyn Rng,
    engine: &dyn RolloutEngine,
    source: &dyn RolloutSource,
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
        let mut p = params.clone();
        p.n = rollouts as usize;
        p.seed = params.seed.map(|s| rlft_util::seed::round_seed(s, round));
        round += 1;
        let groups = source.rollout(engine, &prompts, &p)?;
        if groups.len() != prompts.len() {
            return Err(TrainerError::InvalidBatch(format!(
                "the rollout source returned {} groups for {} prompts",
                groups.len(),
                prompts.len()
            )));
        }
        let mut outcomes = Vec::with_capacity(groups.len());
        for g in &groups {
            let successes = g
                .completions
                .iter()
                .filter(|c| c.correct == Some(true))
                .count() as u32;
            out.tokens += g
                .completions
                .iter()
                .map(|c| c.token_ids.len())
                .sum::<usize>();
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
