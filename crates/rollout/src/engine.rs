//! The [`RolloutEngine`] trait: prompts in, k completions each out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rlft_core::{Completion, PromptGroup};

use crate::error::{Result, RolloutError};
use crate::params::SamplingParams;
use crate::prompt::Prompt;
use crate::seed::call_seed;

/// Turns prompts into completions with per-token log-probs: locally
/// ([`BigramEngine`](crate::BigramEngine), the rlft-models engine) or on an OpenAI-compatible
/// server ([`HttpEngine`](crate::HttpEngine)).
///
/// # Contract
/// [`generate`](Self::generate) returns one `Vec` per prompt, in prompt order, each holding
/// exactly `params.n` completions in sample order. Each [`Completion`] has:
/// - `token_ids`: the generated ids (no prompt), ending with the stop token when one ended it;
/// - `logprobs`: one per token, as [`SamplingParams::logprob_mode`] says (empty only when an
///   engine cannot report them, e.g. a server without log-probs);
/// - `text`: the decoded text, cut before a stop string (see the crate docs on stops);
/// - `finished`: true when a stop token, EOS or stop string ended it, false at
///   `max_new_tokens`;
/// - `reward`: 0 (verifiers score later).
///
/// With `params.seed` set, the same request gives the same completions.
///
/// # Implementing
/// Only `generate` is required. The trait is object-safe (`Box<dyn RolloutEngine>`), and is
/// implemented for `&T`, `Box<T>` and `Arc<T>`. Engines served by rlft-serve's `Server`
/// must also be `Send + Sync`.
pub trait RolloutEngine {
    /// Generate `params.n` completions for each prompt.
    ///
    /// # Errors
    /// Invalid parameters or prompts, tokenizer, model or transport failures; see
    /// [`RolloutError`].
    fn generate(&self, prompts: &[Prompt], params: &SamplingParams)
    -> Result<Vec<Vec<Completion>>>;

    /// The model name reported by a server (`/v1/models`). Default `"rlft"`.
    fn model_id(&self) -> &str {
        "rlft"
    }

    /// Text of one token, for log-prob listings; `None` (the default) when unknown, in which
    /// case a server lists tokens as `token_id:N`.
    fn token_text(&self, id: u32) -> Option<String> {
        let _ = id;
        None
    }

    /// The tokenizer behind text and chat prompts, if the engine has one (a server uses it to
    /// count prompt tokens and to stream text). Default `None`.
    fn tokenizer(&self) -> Option<&dyn crate::tokenizer::Tokenizer> {
        None
    }

    /// Most tokens a sequence (prompt + completion) may hold, if the engine knows (the local
    /// engine: the model's `max_position_embeddings`). Default `None` (no limit known).
    fn context_len(&self) -> Option<usize> {
        None
    }

    /// Generate several requests, each with its own prompts and parameters, reporting every
    /// sampled token and each request's result to `observer` as soon as they exist, and
    /// stopping a request's rows before the next decode step once
    /// [`GenerationObserver::is_cancelled`] says so (a cancelled request still gets
    /// [`GenerationObserver::on_done`], with its completions cut where it stopped).
    ///
    /// The default runs the requests one after another through [`generate`](Self::generate)
    /// and reports each result's tokens after it; engines that decode step by step
    /// ([`BigramEngine`](crate::BigramEngine), the local engine) override it so that tokens
    /// stream and cancellation takes effect within one step; the local engine decodes the rows
    /// of all requests in one batch. Each request's results are those `generate` gives for it
    /// alone (seeds are per request).
    fn generate_many(&self, requests: &[GenerationRequest], observer: &mut dyn GenerationObserver) {
        for (request, r) in requests.iter().enumerate() {
            if observer.is_cancelled(request) {
                observer.on_done(request, Ok(cancelled_before_start(r)));
                continue;
            }
            let result = self.generate(&r.prompts, &r.params);
            if let Ok(groups) = &result {
                report_tokens(request, groups, observer);
            }
            observer.on_done(request, result);
        }
    }

    /// Generate a [`PromptGroup`] per token-id prompt `(prompt_index, prompt_ids)`.
    ///
    /// # Errors
    /// As [`generate`](Self::generate).
    fn generate_groups(
        &self,
        prompts: &[(usize, Vec<u32>)],
        params: &SamplingParams,
    ) -> Result<Vec<PromptGroup>> {
        let inputs: Vec<Prompt> = prompts
            .iter()
            .map(|(_, ids)| Prompt::Tokens(ids.clone()))
            .collect();
        let out = self.generate(&inputs, params)?;
        Ok(prompts
            .iter()
            .zip(out)
            .map(|((prompt_index, ids), completions)| PromptGroup {
                prompt_index: *prompt_index,
                prompt_ids: ids.clone(),
                completions,
            })
            .collect())
    }
}

macro_rules! forward_engine {
    ($($ty:ty),*) => {$(
        impl<T: RolloutEngine + ?Sized> RolloutEngine for $ty {
            fn generate(
                &self,
                prompts: &[Prompt],
                params: &SamplingParams,
            ) -> Result<Vec<Vec<Completion>>> {
                (**self).generate(prompts, params)
            }
            fn model_id(&self) -> &str {
                (**self).model_id()
            }
            fn token_text(&self, id: u32) -> Option<String> {
                (**self).token_text(id)
            }
            fn generate_groups(
                &self,
                prompts: &[(usize, Vec<u32>)],
                params: &SamplingParams,
            ) -> Result<Vec<PromptGroup>> {
                (**self).generate_groups(prompts, params)
            }
            fn tokenizer(&self) -> Option<&dyn crate::tokenizer::Tokenizer> {
                (**self).tokenizer()
            }
            fn context_len(&self) -> Option<usize> {
                (**self).context_len()
            }
            fn generate_many(
                &self,
                requests: &[GenerationRequest],
                observer: &mut dyn GenerationObserver,
            ) {
                (**self).generate_many(requests, observer)
            }
        }
    )*};
}

forward_engine!(&T, Box<T>, Arc<T>);

/// One request of [`RolloutEngine::generate_many`]: prompts and how to sample them.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    /// The prompts.
    pub prompts: Vec<Prompt>,
    /// How to sample them.
    pub params: SamplingParams,
}

/// One sampled token, as [`RolloutEngine::generate_many`] reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenEvent {
    /// Index of the request in the batch.
    pub request: usize,
    /// Prompt of that request.
    pub prompt: usize,
    /// Sample of that prompt (`0..n`).
    pub sample: usize,
    /// The token.
    pub token: u32,
    /// Its log-probability (as the request's `logprob_mode` says).
    pub logprob: f32,
    /// Whether this token ended the completion (stop token, stop string or length); the
    /// completion's final text comes with [`GenerationObserver::on_done`].
    pub finished: bool,
}

/// What [`RolloutEngine::generate_many`] reports to, and asks of, its caller while it decodes.
pub trait GenerationObserver {
    /// A row sampled a token.
    fn on_token(&mut self, event: TokenEvent) {
        let _ = event;
    }

    /// Whether `request` was cancelled (asked before every decode step). Default false.
    fn is_cancelled(&self, request: usize) -> bool {
        let _ = request;
        false
    }

    /// `request` is done: its completions (one `Vec` per prompt, `n` each), or why it failed.
    fn on_done(&mut self, request: usize, result: Result<Vec<Vec<Completion>>>);
}

/// Completions of a request cancelled before it started: `n` empty, unfinished ones per prompt.
pub(crate) fn cancelled_before_start(r: &GenerationRequest) -> Vec<Vec<Completion>> {
    vec![vec![Completion::default(); r.params.n]; r.prompts.len()]
}

/// Report every token of finished `groups` of `request` (for engines without step hooks).
pub(crate) fn report_tokens(
    request: usize,
    groups: &[Vec<Completion>],
    observer: &mut dyn GenerationObserver,
) {
    for (prompt, group) in groups.iter().enumerate() {
        for (sample, c) in group.iter().enumerate() {
            for (k, &token) in c.token_ids.iter().enumerate() {
                observer.on_token(TokenEvent {
                    request,
                    prompt,
                    sample,
                    token,
                    logprob: c.logprobs.get(k).copied().unwrap_or(0.0),
                    finished: k + 1 == c.token_ids.len(),
                });
            }
        }
    }
}

/// The seed of a request on a local engine: the request's own, else one derived from the
/// engine's seed and how many seedless requests it has served.
#[derive(Debug, Default)]
pub(crate) struct SeedSource {
    seed: u64,
    calls: AtomicU64,
}

impl SeedSource {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            seed,
            calls: AtomicU64::new(0),
        }
    }

    pub(crate) fn resolve(&self, params: &SamplingParams) -> u64 {
        params.seed.unwrap_or_else(|| {
            let call = self.calls.fetch_add(1, Ordering::Relaxed);
            call_seed(self.seed, call)
        })
    }
}

/// Token ids of each prompt, through `tokenizer` for text and chat prompts.
pub(crate) fn prompt_ids(
    prompts: &[Prompt],
    tokenizer: Option<&dyn crate::tokenizer::Tokenizer>,
) -> Result<Vec<Vec<u32>>> {
    prompts
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let ids = match (p, tokenizer) {
                (Prompt::Tokens(ids), _) => ids.clone(),
                (Prompt::Text(text), Some(t)) => t.encode(text, true)?,
                (Prompt::Chat(messages), Some(t)) => {
                    t.encode(&t.apply_chat_template(messages)?, false)?
                }
                (Prompt::Text(_), None) => {
                    return Err(RolloutError::NoTokenizer {
                        what: "text prompts",
                    });
                }
                (Prompt::Chat(_), None) => {
                    return Err(RolloutError::NoTokenizer {
                        what: "chat prompts",
                    });
                }
            };
            if ids.is_empty() {
                return Err(RolloutError::InvalidPrompt {
                    index,
                    reason: "the prompt has no tokens".into(),
                });
            }
            Ok(ids)
        })
        .collect()
}
