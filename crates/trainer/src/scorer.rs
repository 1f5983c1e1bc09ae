//! Scoring a [`PolicyBatch`] with a causal LM: how a batch of completions becomes per-token
//! log-probs (and entropy) for an objective.
//!
//! Two scorers ship: [`Conditional`] (log π(y_t | x, y_<t), what every GRPO-family method
//! uses) and [`Marginal`] (PreRL's log P(y_t | c, y_<t): the prompt replaced by one context
//! token, positions restarting at 0; spec prerl.md §1.2). A learner term holds one scorer, and
//! the same scorer computes that term's loss, old and reference log-probs.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rlft_core::PolicyBatch;
use rlft_models::{CausalLm, ChatTokenizer};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainerError};

/// Per-token log-probs `[B, T]` aligned with `batch.completion_ids`, and the entropy at the
/// same positions when asked for.
pub type Scored = (Tensor<2>, Option<Tensor<2>>);

/// Turns a [`PolicyBatch`] into the current policy's per-token log-probs of its completion
/// tokens (and, when asked, the entropy at the same positions).
///
/// # Contract
/// - The result is `[batch.rows, batch.completion_len]`, aligned with `completion_ids`;
///   values at padded positions are meaningless (objectives mask them).
/// - It is tracked by autodiff when `model` is; `entropy = Some(true)` keeps the entropy
///   differentiable (an entropy bonus), `Some(false)` detaches it, `None` skips it.
/// - Deterministic: the same model and batch give bit-identical numbers.
///
/// The trait is object-safe; a learner holds `Box<dyn Scorer>` per objective term.
pub trait Scorer {
    /// A short name for logs and metrics (`conditional`, `marginal`).
    fn name(&self) -> &str;

    /// Scores `batch` under `model` at `temperature`.
    ///
    /// # Errors
    /// [`TrainerError::InvalidBatch`] for an inconsistent batch.
    fn score(
        &self,
        model: &CausalLm,
        batch: &PolicyBatch,
        temperature: f64,
        device: &Device,
        entropy: Option<bool>,
    ) -> Result<Scored>;
}

/// log π(y_t | x, y_<t): prompt (left-padded) ‖ completion (right-padded) in one row, scored in
/// one forward (TRL's and verl's layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conditional;

impl Scorer for Conditional {
    fn name(&self) -> &str {
        "conditional"
    }

    fn score(
        &self,
        model: &CausalLm,
        batch: &PolicyBatch,
        temperature: f64,
        device: &Device,
        entropy: Option<bool>,
    ) -> Result<Scored> {
        let (ids, mask, targets) = inputs(batch, device)?;
        let (p, t) = (batch.prompt_len, batch.completion_len);
        match entropy {
            None => {
                let lp = model.token_log_probs(ids, mask, targets, temperature);
                Ok((lp.narrow(1, p - 1, t), None))
            }
            Some(grad) => {
                let (lp, h) =
                    model.token_log_probs_and_entropy(ids, mask, targets, temperature, grad);
                Ok((lp.narrow(1, p - 1, t), Some(h.narrow(1, p - 1, t))))
            }
        }
    }
}

/// PreRL's marginal log P(y_t | c, y_<t) (spec prerl.md §1.2): each row becomes
/// `[context_token] ‖ y`, with attention mask `[1] ‖ completion mask` and positions 0..L, so
/// every response token is scored, including y_1 (predicted from the context token alone)
/// and the final EOS. The prompt never enters the forward: changing it leaves the result
/// bit-identical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marginal {
    /// The one token that replaces the prompt: Qwen's `<|im_start|>` (151644 in Qwen's
    /// vocabulary, the released PreRL code's choice), else the tokenizer's BOS.
    pub context_token: u32,
}

impl Marginal {
    /// The context token for `tokenizer`: `<|im_start|>` when the vocabulary has it (Qwen,
    /// ChatML), else its BOS token.
    ///
    /// # Errors
    /// [`TrainerError::Config`] when the tokenizer has neither.
    pub fn for_tokenizer(tokenizer: &ChatTokenizer) -> Result<Self> {
        tokenizer
            .inner()
            .token_to_id("<|im_start|>")
            .or_else(|| tokenizer.bos_token_id())
            .map(|context_token| Self { context_token })
            .ok_or(TrainerError::Config {
                field: "objective.scorer.context_token",
                reason: "the tokenizer has neither <|im_start|> nor a BOS token; set context_token"
                    .into(),
            })
    }

    /// `batch` with every prompt replaced by the context token (prompt length 1); the
    /// completion side, masks and training signals are unchanged.
    pub fn view(&self, batch: &PolicyBatch) -> PolicyBatch {
        PolicyBatch {
            prompt_len: 1,
            prompt_ids: vec![self.context_token; batch.rows],
            prompt_mask: vec![1.0; batch.rows],
            ..batch.clone()
        }
    }
}

impl Scorer for Marginal {
    fn name(&self) -> &str {
        "marginal"
    }

    fn score(
        &self,
        model: &CausalLm,
        batch: &PolicyBatch,
        temperature: f64,
        device: &Device,
        entropy: Option<bool>,
    ) -> Result<Scored> {
        Conditional.score(model, &self.view(batch), temperature, device, entropy)
    }
}

/// Which scorer a config term uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ScorerConfig {
    /// [`Conditional`] (default).
    #[default]
    Conditional,
    /// [`Marginal`]; `context_token` defaults to the tokenizer's `<|im_start|>`, else BOS.
    Marginal {
        /// Explicit context token id.
        #[serde(default)]
        context_token: Option<u32>,
    },
}

impl ScorerConfig {
    /// Builds the scorer; `tokenizer` resolves a marginal scorer's default context token.
    ///
    /// # Errors
    /// [`TrainerError::Config`] when a marginal scorer has no context token and no tokenizer
    /// provides one.
    pub fn build(&self, tokenizer: Option<&ChatTokenizer>) -> Result<Box<dyn Scorer>> {
        Ok(match *self {
            Self::Conditional => Box::new(Conditional),
            Self::Marginal {
                context_token: Some(context_token),
            } => Box::new(Marginal { context_token }),
            Self::Marginal {
                context_token: None,
            } => match tokenizer {
                Some(t) => Box::new(Marginal::for_tokenizer(t)?),
                None => {
                    return Err(TrainerError::Config {
                        field: "objective.scorer.context_token",
                        reason: "a marginal scorer needs context_token when no tokenizer is given"
                            .into(),
                    });
                }
            },
        })
    }
}

/// Log-probabilities of every completion token of `batch` under `model` ([`Conditional`]).
///
/// # Errors
/// [`TrainerError::InvalidBatch`] for an inconsistent batch or one without prompt tokens.
pub fn completion_logprobs(
    model: &CausalLm,
    batch: &PolicyBatch,
    temperature: f64,
    device: &Device,
) -> Result<Tensor<2>> {
    Ok(Conditional
        .score(model, batch, temperature, device, None)?
        .0)
}

/// [`completion_logprobs`] and the policy's entropy at the same positions, `[B, T]`, from the
/// same forward pass. The entropy is detached unless `entropy_grad` (an entropy bonus).
///
/// # Errors
/// As [`completion_logprobs`].
pub fn completion_logprobs_and_entropy(
    model: &CausalLm,
    batch: &PolicyBatch,
    temperature: f64,
    device: &Device,
    entropy_grad: bool,
) -> Result<(Tensor<2>, Tensor<2>)> {
    let (lp, h) = Conditional.score(model, batch, temperature, device, Some(entropy_grad))?;
    Ok((lp, h.expect("entropy requested")))
}

/// Token ids, attention mask and next-token targets of prompt ‖ completion rows.
fn inputs(
    batch: &PolicyBatch,
    device: &Device,
) -> Result<(Tensor<2, Int>, Tensor<2, Int>, Tensor<2, Int>)> {
    batch
        .validate()
        .map_err(|e| TrainerError::InvalidBatch(e.to_string()))?;
    let (b, p, t) = (batch.rows, batch.prompt_len, batch.completion_len);
    if p == 0 || t == 0 {
        return Err(TrainerError::InvalidBatch(format!(
            "need at least one prompt and one completion position, got prompt_len {p}, completion_len {t}"
        )));
    }
    let w = p + t;
    let mut ids = Vec::with_capacity(b * w);
    let mut mask = Vec::with_capacity(b * w);
    let mut targets = Vec::with_capacity(b * w);
    for r in 0..b {
        let row_ids: Vec<i64> = batch.prompt_ids[r * p..(r + 1) * p]
            .iter()
            .chain(&batch.completion_ids[r * t..(r + 1) * t])
            .map(|&x| x as i64)
            .collect();
        mask.extend(
            batch.prompt_mask[r * p..(r + 1) * p]
                .iter()
                .chain(&batch.completion_mask[r * t..(r + 1) * t])
                .map(|&m| i64::from(m > 0.0)),
        );
        targets.extend(row_ids.iter().skip(1).copied());
        targets.push(0);
        ids.extend(row_ids);
    }
    let int = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [b, w]), device);
    Ok((int(ids), int(mask), int(targets)))
}
