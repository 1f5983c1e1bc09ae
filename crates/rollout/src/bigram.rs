//! A model-free engine: next-token logits from a bigram table over a [`CharVocab`].

use rlft_core::Completion;

use crate::decode::{Row, RowRules};
use crate::engine::{
    GenerationObserver, GenerationRequest, RolloutEngine, SeedSource, TokenEvent, prompt_ids,
};
use crate::error::{Result, RolloutError};
use crate::params::SamplingParams;
use crate::prompt::Prompt;
use crate::sampling::TokenSampler;
use crate::seed::{prompt_seed, stream_rng};
use crate::stop::StopCriteria;
use crate::tokenizer::{CharVocab, Tokenizer};

/// An engine whose "model" is a bigram table: the logits of the next token depend only on the
/// last token. It runs the same sampler, stop and seed machinery as the model engine, without
/// Burn, which makes it the deterministic engine behind tests, demos and the server's
/// examples. `<eos>` (id 0) is its end-of-sequence token.
#[derive(Debug)]
pub struct BigramEngine {
    vocab: CharVocab,
    /// `logits[prev][next]`, `len × len`.
    logits: Vec<Vec<f32>>,
    seeds: SeedSource,
}

impl BigramEngine {
    /// An engine over `vocab` with the given `len × len` logit table.
    ///
    /// # Errors
    /// [`RolloutError::InvalidParam`] (`logits`) when the table is not square of the
    /// vocabulary's size.
    pub fn new(vocab: CharVocab, logits: Vec<Vec<f32>>, seed: u64) -> Result<Self> {
        let n = vocab.len();
        if logits.len() != n || logits.iter().any(|row| row.len() != n) {
            return Err(RolloutError::InvalidParam {
                field: "logits",
                reason: format!("the table must be {n} × {n} for a vocabulary of {n}"),
            });
        }
        Ok(Self {
            vocab,
            logits,
            seeds: SeedSource::new(seed),
        })
    }

    /// Fit the table to `corpus`: `logit[a][b] = ln(count(a→b) + smoothing)`, where each line
    /// of the corpus ends with `<eos>`; the vocabulary is the corpus's characters.
    ///
    /// # Errors
    /// [`RolloutError::InvalidParam`] (`smoothing`) unless `smoothing > 0`.
    pub fn fit(corpus: &str, smoothing: f32, seed: u64) -> Result<Self> {
        if !(smoothing > 0.0 && smoothing.is_finite()) {
            return Err(RolloutError::InvalidParam {
                field: "smoothing",
                reason: format!("must be finite and > 0, got {smoothing}"),
            });
        }
        let alphabet: String = corpus.chars().filter(|&c| c != '\n').collect();
        let vocab = CharVocab::new(&alphabet);
        let n = vocab.len();
        let mut counts = vec![vec![0u32; n]; n];
        for line in corpus.lines() {
            let mut ids = vocab.encode(line, false)?;
            ids.push(CharVocab::EOS);
            for w in ids.windows(2) {
                counts[w[0] as usize][w[1] as usize] += 1;
            }
        }
        let logits = counts
            .iter()
            .map(|row| row.iter().map(|&c| (c as f32 + smoothing).ln()).collect())
            .collect();
        Self::new(vocab, logits, seed)
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &CharVocab {
        &self.vocab
    }
}

/// Where [`BigramEngine::run`] reports: a request of a [`RolloutEngine::generate_many`] batch.
type Report<'a> = Option<(usize, &'a mut dyn GenerationObserver)>;

impl BigramEngine {
    /// Generate one request, reporting each token (and checking cancellation before each
    /// step) when `report` is given.
    fn run(
        &self,
        prompts: &[Prompt],
        params: &SamplingParams,
        mut report: Report<'_>,
    ) -> Result<Vec<Vec<Completion>>> {
        let sampler = TokenSampler::new(params)?;
        let stops = StopCriteria::new(params, &[CharVocab::EOS]);
        let rules = RowRules::new(&sampler, &stops, Some(&self.vocab), params.max_new_tokens)?;
        let ids = prompt_ids(prompts, Some(&self.vocab))?;
        let n = self.vocab.len();
        for (index, p) in ids.iter().enumerate() {
            if let Some(bad) = p.iter().find(|&&t| t as usize >= n) {
                return Err(RolloutError::InvalidPrompt {
                    index,
                    reason: format!("token id {bad} is outside the vocabulary ({n})"),
                });
            }
        }
        let seed = self.seeds.resolve(params);
        ids.iter()
            .enumerate()
            .map(|(i, prompt)| {
                (0..params.n)
                    .map(|j| {
                        let mut row = Row::new(stream_rng(prompt_seed(seed, i), j));
                        let mut last = *prompt.last().unwrap_or(&CharVocab::EOS);
                        while !row.is_done() && row.tokens().len() < params.max_new_tokens {
                            if let Some((request, observer)) = report.as_mut() {
                                if observer.is_cancelled(*request) {
                                    row.cancel();
                                    break;
                                }
                                last = row.step(&self.logits[last as usize], &rules)?;
                                let (token, logprob) = row.last().unwrap_or((last, 0.0));
                                observer.on_token(TokenEvent {
                                    request: *request,
                                    prompt: i,
                                    sample: j,
                                    token,
                                    logprob,
                                    finished: row.is_done(),
                                });
                            } else {
                                last = row.step(&self.logits[last as usize], &rules)?;
                            }
                        }
                        row.into_completion(&rules)
                    })
                    .collect()
            })
            .collect()
    }
}

impl RolloutEngine for BigramEngine {
    fn generate(
        &self,
        prompts: &[Prompt],
        params: &SamplingParams,
    ) -> Result<Vec<Vec<Completion>>> {
        self.run(prompts, params, None)
    }

    fn tokenizer(&self) -> Option<&dyn Tokenizer> {
        Some(&self.vocab)
    }

    /// One request after another, row by row, each token reported as sampled and
    /// cancellation checked before every step.
    fn generate_many(&self, requests: &[GenerationRequest], observer: &mut dyn GenerationObserver) {
        for (request, r) in requests.iter().enumerate() {
            let result = self.run(&r.prompts, &r.params, Some((request, &mut *observer)));
            observer.on_done(request, result);
        }
    }

    fn model_id(&self) -> &str {
        "bigram"
    }

    fn token_text(&self, id: u32) -> Option<String> {
        self.vocab.token_text(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_counts_bigrams_and_rejects_bad_tables() {
        let e = BigramEngine::fit("ab\nab", 0.5, 0).unwrap();
        // a=1, b=2; "ab<eos>" twice: a→b twice, b→<eos> twice.
        assert!((e.logits[1][2] - 2.5f32.ln()).abs() < 1e-6);
        assert!((e.logits[2][0] - 2.5f32.ln()).abs() < 1e-6);
        assert!((e.logits[1][1] - 0.5f32.ln()).abs() < 1e-6);
        assert!(BigramEngine::new(CharVocab::new("ab"), vec![vec![0.0; 3]; 2], 0).is_err());
        assert!(BigramEngine::fit("ab", 0.0, 0).is_err());
    }

    #[test]
    fn out_of_vocabulary_prompt_is_an_error() {
        let e = BigramEngine::fit("ab", 1.0, 0).unwrap();
        let r = e.generate(
            &[Prompt::Tokens(vec![1]), Prompt::Tokens(vec![9])],
            &Default::default(),
        );
        assert!(matches!(
            r,
            Err(RolloutError::InvalidPrompt { index: 1, .. })
        ));
        let r = e.generate(&[Prompt::Tokens(vec![])], &Default::default());
        assert!(matches!(
            r,
            Err(RolloutError::InvalidPrompt { index: 0, .. })
        ));
    }
}
