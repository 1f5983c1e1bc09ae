//! Sampling For Learnability (SFL; Foster and Foerster 2025, arXiv 2502.12272): the inline
//! variant (score r·B candidates, keep the top B) and the buffer variant (T, N, K, ρ, L).

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::epoch::EpochStream;
use crate::error::{Result, config_err};
use crate::sampler::{
    Accounting, BatchShape, Ledger, Outcome, PromptId, PromptSampler, SamplerState, Selection,
};
use crate::topk::top_b;
use crate::uniform::wrong_kind;

/// Learnability of a group: p̂(1 − p̂) with p̂ = successes / k, the population variance of the
/// k binary rewards (sfl.md §1.1). Returns 0 for k = 0.
pub fn learnability(successes: u32, k: u32) -> f64 {
    if k == 0 {
        return 0.0;
    }
    let p = f64::from(successes) / f64::from(k);
    p * (1.0 - p)
}

/// Draw `n` distinct prompts uniformly from `0..num_prompts` (n is clamped to N).
fn uniform_distinct(num_prompts: usize, n: usize, rng: &mut dyn Rng) -> Vec<PromptId> {
    let mut rng = rng;
    rand::seq::index::sample(&mut rng, num_prompts, n.min(num_prompts)).into_vec()
}

/// Keep the `b` groups with the largest learnability, ties broken at random; rank order.
fn top_learnable(screened: &[Outcome], b: usize, rng: &mut dyn Rng) -> Vec<Outcome> {
    let scores: Vec<f64> = screened
        .iter()
        .map(|o| learnability(o.successes, o.k))
        .collect();
    top_b(&scores, b, rng)
        .into_iter()
        .map(|i| screened[i])
        .collect()
}

/// Sort screened outcomes into the order of the request, dropping unreported prompts.
fn in_request_order(request: &[PromptId], outcomes: &[Outcome]) -> Vec<Outcome> {
    let mut by_id: Vec<Outcome> = outcomes.to_vec();
    by_id.sort_unstable_by_key(|o| o.prompt);
    request
        .iter()
        .filter_map(|id| {
            by_id
                .binary_search_by_key(id, |o| o.prompt)
                .ok()
                .map(|i| by_id[i])
        })
        .collect()
}

/// Configuration of [`SflInline`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SflInlineConfig {
    /// Candidate ratio r: r·B candidates are screened per step. Default 4:
    /// `sfl_n_to_k_ratio` in `configs/sfl/with_sfl.jsonnet` (thomfoster/VinePPO).
    pub candidate_ratio: usize,
}

impl Default for SflInlineConfig {
    fn default() -> Self {
        Self { candidate_ratio: 4 }
    }
}

/// SFL inline (sfl.md §1.2 A, LILO): each step screens r·B uniformly drawn distinct prompts
/// with k rollouts, keeps the B with the largest p̂(1 − p̂) (random ties) and trains on their
/// screening rollouts. Stateless across steps. Rollouts per step r·B·k, trained B·k.
///
/// Deviation: the author code samples candidates with replacement; we draw distinct candidates
/// so that a prompt is never screened twice in one step.
#[derive(Clone, Debug)]
pub struct SflInline {
    shape: BatchShape,
    candidates: usize,
    state: SflInlineState,
}

/// Checkpointable state of [`SflInline`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SflInlineState {
    ledger: Ledger,
    request: Vec<PromptId>,
    screened: Option<Vec<Outcome>>,
}

impl SflInline {
    /// Build for `shape` with `config`.
    ///
    /// # Errors
    /// [`crate::SamplerError::Config`] for an invalid shape or r = 0.
    pub fn new(shape: BatchShape, config: &SflInlineConfig) -> Result<Self> {
        shape.validate()?;
        if config.candidate_ratio == 0 {
            return Err(config_err("candidate_ratio", "must be at least 1, got 0"));
        }
        Ok(Self {
            shape,
            candidates: (config.candidate_ratio * shape.batch_size).min(shape.num_prompts),
            state: SflInlineState {
                ledger: Ledger::new(shape.num_prompts),
                request: Vec::new(),
                screened: None,
            },
        })
    }
}

impl PromptSampler for SflInline {
    fn name(&self) -> &str {
        "sfl_inline"
    }
    fn num_prompts(&self) -> usize {
        self.shape.num_prompts
    }
    fn select(&mut self, _step: u64, rng: &mut dyn Rng) -> Result<Selection> {
        let st = &mut self.state;
        st.ledger.check_can_select()?;
        if let Some(screened) = st.screened.take() {
            let kept = top_learnable(&screened, self.shape.batch_size, rng);
            if kept.len() < self.shape.batch_size {
                st.ledger.mark_short_step();
            }
            let sel = Selection::TrainScreened {
                prompts: kept.iter().map(|o| o.prompt).collect(),
            };
            st.ledger.issue(&sel, &kept);
            st.request.clear();
            return Ok(sel);
        }
        let prompts = uniform_distinct(self.shape.num_prompts, self.candidates, rng);
        st.request.clone_from(&prompts);
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
        st.screened = Some(in_request_order(&st.request, outcomes));
        Ok(())
    }
    fn accounting(&self) -> Accounting {
        self.state.ledger.accounting().clone()
    }
    fn state(&self) -> SamplerState {
        SamplerState::SflInline(self.state.clone())
    }
    fn restore(&mut self, state: SamplerState) -> Result<()> {
        match state {
            SamplerState::SflInline(s) => {
                s.ledger.check_fits(self.shape.num_prompts)?;
                self.state = s;
                Ok(())
            }
            other => Err(wrong_kind("sfl_inline", &other)),
        }
    }
}

/// Configuration of [`SflBuffer`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SflBufferConfig {
    /// T, steps between buffer rebuilds. Default 50: docstring of
    /// `math_episode_generator_with_sfl.py` (thomfoster/VinePPO).
    pub period: u64,
    /// N, candidates screened at each rebuild. Default 1280: same docstring.
    pub candidates: usize,
    /// K, buffer size (top-K of the N by learnability). Default 256: same docstring.
    pub buffer_size: usize,
    /// ρ, fraction of the batch drawn from the buffer. Default 0.5: same docstring.
    pub buffer_fraction: f64,
    /// L, rollouts per candidate when scoring. Default 8: same docstring.
    pub scoring_rollouts: u32,
    /// Train buffer prompts on their scoring rollouts instead of fresh ones. Default false (the
    /// buffer code generates fresh rollouts); only valid with T = 1 and L = k.
    pub reuse_scoring_rollouts: bool,
}

impl Default for SflBufferConfig {
    fn default() -> Self {
        Self {
            period: 50,
            candidates: 1280,
            buffer_size: 256,
            buffer_fraction: 0.5,
            scoring_rollouts: 8,
            reuse_scoring_rollouts: false,
        }
    }
}

/// SFL with a buffer (sfl.md §1.2 B, Rutherford et al. 2024 ported to LLMs):
///
/// - at steps with `step % T == 0`, screen N uniform distinct candidates with L rollouts each and
///   set the buffer to the top K by p̂(1 − p̂) (random ties);
/// - each step trains on ⌊ρB⌋ buffer prompts (shuffled, without repeats; all of them in rank
///   order when the buffer holds no more than that) plus uniform prompts from a shuffled epoch
///   stream to fill B, with fresh k rollouts each.
///
/// With ρ = 0 no rebuild happens and the sampler is [`crate::Uniform`] for the same seed; with
/// T = 1, ρ = 1, K = B, N = r·B and reuse on it is [`SflInline`]. Rebuild cost N·L every T steps.
#[derive(Clone, Debug)]
pub struct SflBuffer {
    shape: BatchShape,
    config: SflBufferConfig,
    state: SflBufferState,
}

/// Checkpointable state of [`SflBuffer`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SflBufferState {
    ledger: Ledger,
    stream: EpochStream,
    buffer: Vec<Outcome>,
    request: Vec<PromptId>,
    rebuilt_at: Option<u64>,
    unranked: bool,
}

impl SflBuffer {
    /// Build for `shape` with `config`.
    ///
    /// # Errors
    /// [`crate::SamplerError::Config`] for an invalid shape, T = 0, N or K out of range, ρ
    /// outside [0, 1], L = 0, or reuse without T = 1 and L = k.
    pub fn new(shape: BatchShape, config: &SflBufferConfig) -> Result<Self> {
        shape.validate()?;
        let c = config;
        if c.period == 0 {
            return Err(config_err("period", "must be at least 1, got 0"));
        }
        if c.candidates == 0 {
            return Err(config_err("candidates", "must be at least 1, got 0"));
        }
        if c.buffer_size == 0 || c.buffer_size > c.candidates {
            return Err(config_err(
                "buffer_size",
                format!(
                    "must be in 1..={} (candidates), got {}",
                    c.candidates, c.buffer_size
                ),
            ));
        }
        if !(0.0..=1.0).contains(&c.buffer_fraction) {
            return Err(config_err(
                "buffer_fraction",
                format!("must be in [0, 1], got {}", c.buffer_fraction),
            ));
        }
        if c.scoring_rollouts == 0 {
            return Err(config_err("scoring_rollouts", "must be at least 1, got 0"));
        }
        if c.reuse_scoring_rollouts && (c.period != 1 || c.scoring_rollouts != shape.group_size) {
            return Err(config_err(
                "reuse_scoring_rollouts",
                format!(
                    "needs period = 1 and scoring_rollouts = group_size ({}), got period = {} and scoring_rollouts = {}",
                    shape.group_size, c.period, c.scoring_rollouts
                ),
            ));
        }
        Ok(Self {
            shape,
            config: config.clone(),
            state: SflBufferState {
                ledger: Ledger::new(shape.num_prompts),
                stream: EpochStream::default(),
                buffer: Vec::new(),
                request: Vec::new(),
                rebuilt_at: None,
                unranked: false,
            },
        })
    }

    /// Prompts in the current buffer, in rank order.
    pub fn buffer(&self) -> Vec<PromptId> {
        self.state.buffer.iter().map(|o| o.prompt).collect()
    }

    fn buffer_share(&self) -> usize {
        (self.config.buffer_fraction * self.shape.batch_size as f64).floor() as usize
    }
}

impl PromptSampler for SflBuffer {
    fn name(&self) -> &str {
        "sfl_buffer"
    }
    fn num_prompts(&self) -> usize {
        self.shape.num_prompts
    }
    fn select(&mut self, step: u64, rng: &mut dyn Rng) -> Result<Selection> {
        self.state.ledger.check_can_select()?;
        let n_buf = self.buffer_share();
        let due = n_buf > 0 && step.is_multiple_of(self.config.period);
        if due && self.state.rebuilt_at != Some(step) {
            let prompts = uniform_distinct(self.shape.num_prompts, self.config.candidates, rng);
            let st = &mut self.state;
            st.request.clone_from(&prompts);
            st.rebuilt_at = Some(step);
            let sel = Selection::Screen {
                prompts,
                rollouts: self.config.scoring_rollouts,
            };
            st.ledger.issue(&sel, &[]);
            return Ok(sel);
        }
        let st = &mut self.state;
        if st.unranked {
            st.buffer = top_learnable(&st.buffer, self.config.buffer_size, rng);
            st.unranked = false;
        }
        let mut chosen: Vec<Outcome> = if n_buf >= st.buffer.len() {
            st.buffer.clone()
        } else {
            let mut b = st.buffer.clone();
            b.shuffle(rng);
            b.truncate(n_buf);
            b
        };
        chosen.truncate(self.shape.batch_size);
        if self.config.reuse_scoring_rollouts {
            if chosen.len() < self.shape.batch_size {
                st.ledger.mark_short_step();
            }
            let sel = Selection::TrainScreened {
                prompts: chosen.iter().map(|o| o.prompt).collect(),
            };
            st.ledger.issue(&sel, &chosen);
            return Ok(sel);
        }
        let mut prompts: Vec<PromptId> = chosen.iter().map(|o| o.prompt).collect();
        let fresh = st.stream.take_excluding(
            self.shape.batch_size - prompts.len(),
            self.shape.num_prompts,
            rng,
            &|_| true,
            &prompts,
        );
        prompts.extend(fresh);
        let sel = Selection::Train {
            prompts,
            rollouts: self.shape.group_size,
        };
        st.ledger.issue(&sel, &[]);
        Ok(sel)
    }
    fn observe(&mut self, outcomes: &[Outcome]) -> Result<()> {
        let train = self.state.ledger.record(outcomes)?;
        if !train {
            let screened = in_request_order(&self.state.request, outcomes);
            // The rebuild's tie-breaking randomness is drawn at the next select; store the
            // screened groups and rank them there.
            self.state.buffer = screened;
            self.state.request.clear();
            self.state.unranked = true;
        }
        Ok(())
    }
    fn accounting(&self) -> Accounting {
        self.state.ledger.accounting().clone()
    }
    fn state(&self) -> SamplerState {
        SamplerState::SflBuffer(self.state.clone())
    }
    fn restore(&mut self, state: SamplerState) -> Result<()> {
        match state {
            SamplerState::SflBuffer(s) => {
                s.ledger.check_fits(self.shape.num_prompts)?;
                self.state = s;
                Ok(())
            }
            other => Err(wrong_kind("sfl_buffer", &other)),
        }
    }
}
