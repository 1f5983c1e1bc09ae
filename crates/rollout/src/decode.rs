//! Decoding state of one completion, shared by the engines: sample, record, check stops; and
//! the hooks a multi-request batch reports through.

use rand::rngs::Xoshiro256PlusPlus;
use rlft_core::Completion;

use crate::error::{Result, RolloutError};
use crate::sampling::TokenSampler;
use crate::stop::{Finish, StopCriteria};
use crate::tokenizer::Tokenizer;

/// What every row of a request shares.
pub(crate) struct RowRules<'a> {
    pub sampler: &'a TokenSampler,
    pub stops: &'a StopCriteria,
    pub tokenizer: Option<&'a dyn Tokenizer>,
    pub max_new_tokens: usize,
}

impl<'a> RowRules<'a> {
    /// Rules for a request; stop strings need a tokenizer.
    pub(crate) fn new(
        sampler: &'a TokenSampler,
        stops: &'a StopCriteria,
        tokenizer: Option<&'a dyn Tokenizer>,
        max_new_tokens: usize,
    ) -> Result<Self> {
        if stops.has_strings() && tokenizer.is_none() {
            return Err(RolloutError::NoTokenizer {
                what: "stop strings",
            });
        }
        Ok(Self {
            sampler,
            stops,
            tokenizer,
            max_new_tokens,
        })
    }
}

/// One completion being decoded.
#[derive(Clone)]
pub(crate) struct Row {
    rng: Xoshiro256PlusPlus,
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    text: String,
    finish: Option<Finish>,
}

impl Row {
    pub(crate) fn new(rng: Xoshiro256PlusPlus) -> Self {
        Self {
            rng,
            tokens: Vec::new(),
            logprobs: Vec::new(),
            text: String::new(),
            finish: None,
        }
    }

    /// Whether the row is finished (no more tokens).
    pub(crate) fn is_done(&self) -> bool {
        self.finish.is_some()
    }

    /// Stop decoding this row (its request was cancelled); it ends as at `max_new_tokens`.
    pub(crate) fn cancel(&mut self) {
        if self.finish.is_none() {
            self.finish = Some(Finish::Length);
        }
    }

    /// The last sampled token and its log-prob.
    pub(crate) fn last(&self) -> Option<(u32, f32)> {
        Some((*self.tokens.last()?, *self.logprobs.last()?))
    }

    /// The completion as it stands (see [`into_completion`](Self::into_completion)).
    #[cfg(feature = "local")]
    pub(crate) fn completion(&self, rules: &RowRules<'_>) -> Result<Completion> {
        self.clone().into_completion(rules)
    }

    /// The generated tokens so far.
    pub(crate) fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Sample the next token from `logits` and check the stops; returns the token.
    pub(crate) fn step(&mut self, logits: &[f32], rules: &RowRules<'_>) -> Result<u32> {
        let s = rules.sampler.sample(logits, &mut self.rng)?;
        self.tokens.push(s.token);
        self.logprobs.push(s.logprob);
        if rules.stops.is_stop_token(s.token) {
            self.finish = Some(Finish::StopToken);
        } else if let (true, Some(tok)) = (rules.stops.has_strings(), rules.tokenizer) {
            let searched = self.text.len();
            self.text = tok.decode(&self.tokens)?;
            if let Some(keep) = rules.stops.check_text(&self.text, searched) {
                self.finish = Some(Finish::StopString { keep });
            }
        }
        if self.finish.is_none() && self.tokens.len() >= rules.max_new_tokens {
            self.finish = Some(Finish::Length);
        }
        Ok(s.token)
    }

    /// The finished completion (reward 0 until a verifier scores it; text empty without a
    /// tokenizer).
    pub(crate) fn into_completion(self, rules: &RowRules<'_>) -> Result<Completion> {
        let finish = self.finish.unwrap_or(Finish::Length);
        let text = match (finish, rules.tokenizer) {
            (Finish::StopString { keep }, _) => {
                let mut text = self.text;
                text.truncate(keep);
                text
            }
            (Finish::StopToken, Some(tok)) => tok.decode(&self.tokens[..self.tokens.len() - 1])?,
            (Finish::Length, Some(tok)) => tok.decode(&self.tokens)?,
            (_, None) => String::new(),
        };
        Ok(Completion {
            token_ids: self.tokens,
            logprobs: self.logprobs,
            text,
            reward: 0.0,
            finished: finish != Finish::Length,
            ..Completion::default()
        })
    }
}

/// What a batch of rows reports after each step and asks before it (rows are indexed within
/// the batch). The single-request path uses [`NoHooks`].
#[cfg(feature = "local")]
pub(crate) trait RowHooks {
    /// Whether row `r`'s request was cancelled.
    fn cancelled(&self, r: usize) -> bool {
        let _ = r;
        false
    }
    /// Row `r` sampled a token, or (when `cancelled`) was stopped.
    fn after_step(&mut self, r: usize, row: &Row, cancelled: bool) -> Result<()> {
        let _ = (r, row, cancelled);
        Ok(())
    }
}

/// Hooks that do nothing.
#[cfg(feature = "local")]
pub(crate) struct NoHooks;

#[cfg(feature = "local")]
impl RowHooks for NoHooks {}
