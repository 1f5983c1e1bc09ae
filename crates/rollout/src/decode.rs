//! Decoding state of one completion, shared by the engines: sample, record, check stops.

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
