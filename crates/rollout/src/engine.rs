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
/// implemented for `&T`, `Box<T>` and `Arc<T>`. Engines served by [`Server`](crate::Server)
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
        }
    )*};
}

forward_engine!(&T, Box<T>, Arc<T>);

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

/// Check that `out` has one group per prompt with `n` completions each (for engines whose
/// results come from elsewhere).
pub(crate) fn check_shape(
    out: &[Vec<Completion>],
    prompts: usize,
    n: usize,
) -> std::result::Result<(), String> {
    if out.len() != prompts {
        return Err(format!("{} groups for {prompts} prompts", out.len()));
    }
    if let Some((i, g)) = out.iter().enumerate().find(|(_, g)| g.len() != n) {
        return Err(format!(
            "prompt {i} has {} completions, expected {n}",
            g.len()
        ));
    }
    Ok(())
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
