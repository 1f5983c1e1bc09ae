//! # rlft-rollout
//!
//! Turning prompts into completions for RL finetuning: `k` completions per prompt with the
//! log-probability of every sampled token, from a local model or an inference server.
//!
//! - [`RolloutEngine`]: the trait (object-safe). [`SamplingParams`] says how to sample (n,
//!   temperature, top-p, top-k, min-p, greedy, stop ids and strings, max new tokens, seed,
//!   which log-probs: [`LogprobMode`]); results are [`rlft_core::Completion`]s.
//! - [`LocalEngine`]: batched KV-cache generation on an rlft-models [`rlft_models::CausalLm`],
//!   with chat templates (feature `local`, on by default; it is the only part that needs
//!   Burn); [`BigramEngine`]: the same machinery over a bigram table, no Burn.
//! - [`HttpEngine`]: OpenAI-compatible `/v1/completions` and `/v1/chat/completions` (vLLM,
//!   SGLang, llama.cpp), with retries, timeouts and a concurrency limit.
//! - [`RolloutEngine::generate_many`]: several requests with their own parameters in one call,
//!   each token reported as sampled and cancellation checked before every decode step (the
//!   hook rlft-serve's batching scheduler drives; the server itself lives in rlft-serve, so
//!   that users of the engines and the client compile no async web stack).
//! - [`run_episodes`]: multi-turn episodes of an rlft-tasks `Environment` over any engine,
//!   batched turn by turn.
//! - [`TokenSampler`]: the seeded host-side logits processor all local engines share.
//!
//! Seeds: completion `j` of prompt `i` draws from its own stream ([`stream_rng`] of
//! [`prompt_seed`]`(seed, i)` and `j`), so a batch gives the same completions however it is
//! split, served or scheduled.
//!
//! Stops: a stop token id (EOS included) is kept in `token_ids`/`logprobs` and left out of
//! `text`; a stop string may span tokens, `text` is cut before it (as OpenAI and vLLM do)
//! while `token_ids`/`logprobs` keep every sampled token up to the one that completed it.
//!
//! ```
//! use rlft_rollout::{BigramEngine, Prompt, RolloutEngine, SamplingParams};
//!
//! let engine = BigramEngine::fit("hello world\nhold the door\n", 0.5, 0)?;
//! let params = SamplingParams { n: 4, max_new_tokens: 8, stop: vec![" ".into()], seed: Some(1), ..Default::default() };
//! let local = engine.generate(&[Prompt::Text("ho".into())], &params)?;
//! assert_eq!(local[0].len(), 4);
//! assert!(local[0].iter().all(|c| c.logprobs.len() == c.token_ids.len() && !c.text.contains(' ')));
//! // Same seed, same completions: a batch gives the same results however it is split.
//! assert_eq!(engine.generate(&[Prompt::Text("ho".into())], &params)?, local);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Without `local`, the links above to `LocalEngine` and `rlft_models` have no target.
#![cfg_attr(not(feature = "local"), allow(rustdoc::broken_intra_doc_links))]

mod bigram;
mod decode;
mod engine;
mod episode;
mod error;
mod http_engine;
#[cfg(feature = "local")]
mod local;
mod openai;
mod params;
mod prompt;
mod sampling;
mod seed;
mod stop;
mod tokenizer;

pub use bigram::BigramEngine;
pub use engine::{GenerationObserver, GenerationRequest, RolloutEngine, TokenEvent};
pub use episode::{ChatRender, EpisodeOutcome, run_episodes};
pub use error::{Result, RolloutError};
pub use http_engine::{HttpConfig, HttpEngine};
#[cfg(feature = "local")]
pub use local::{LocalConfig, LocalEngine, ModelTokenizer};
pub use params::{LogprobMode, SamplingParams};
pub use prompt::{Message, Prompt};
pub use sampling::{SampledToken, TokenSampler};
pub use seed::{prompt_seed, stream_rng};
pub use stop::find_stop;
pub use tokenizer::{CharVocab, Tokenizer};
