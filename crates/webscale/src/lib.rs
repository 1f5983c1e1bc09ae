//! # rlft-webscale
//!
//! The Webscale-RL data engine (Cen et al., arXiv:2510.06499): pretraining documents in,
//! verifiable question-answer pairs for RL out, in the released dataset's schema and as a
//! training file `rlft train` reads as is.
//!
//! Stages (spec `webscale.md` §1): S0 ingest with `sha256(NFC(text))` ids and exact-duplicate
//! removal; S1 length and language pre-filter; S2 LLM document filter; S3 domain + persona
//! tagging with deterministic clean-up; S4 seeded few-shot selection; S5 QA generation; S6
//! deterministic leak guard, then the LLM quality check; S7 13-gram benchmark
//! decontamination; S8 sorted, atomic output with stats and a manifest. Every rejection
//! carries a reason and the accounting always balances ([`Stats`]).
//!
//! The main types:
//! - [`ChatModel`]: messages in, text out. [`HttpChatModel`] (OpenAI-compatible servers via
//!   rlft-rollout's client, retries with backoff and jitter, several base URLs),
//!   [`EngineChatModel`] (any rlft-rollout engine, e.g. the local model with feature
//!   `local`), [`ScriptedModel`] (rules, for tests; [`fixture_model`] is the fixture's).
//! - [`Pipeline`]: runs the stages with up to `max_in_flight` model calls at once and the
//!   deterministic stages on all cores; output bytes never depend on either.
//! - [`ReplyCache`]: every reply on disk, keyed by (stage, model, prompt, sampling, seed): a
//!   rerun makes 0 calls and a killed run resumes to the same bytes.
//! - [`merge`]: shard outputs (`--shard i/n`) into one dataset.
//! - [`LlmJudge`]: the paper's LLM-judge reward as an rlft-tasks `Verifier` (the
//!   deterministic fallback is rlft-tasks' `QaMatch`).
//!
//! ```
//! use std::sync::Arc;
//! use rlft_webscale::{fixture_model, Document, Models, Pipeline, Progress, ReplyCache, Shard, WebscaleConfig};
//!
//! let cfg: WebscaleConfig = toml::from_str("out = \"unused\"\n[input]\npaths = [\"unused\"]")?;
//! let models = Models {
//!     filter: Arc::new(fixture_model("filter")),
//!     tagger: Arc::new(fixture_model("tagger")),
//!     generator: Arc::new(fixture_model("generator")),
//!     checker: Arc::new(fixture_model("checker")),
//! };
//! let pipeline = Pipeline::new(cfg, models)?;
//! let text = "The Harbour Museum was founded in 1921. It keeps ship models, maps and the logs of \
//!     local captains, and its staff restore old sailing boats in a workshop that visitors can \
//!     watch from a gallery. Every summer the museum opens an exhibition about the fishing \
//!     fleet, with photographs lent by the families of the town and a map of the old harbour.";
//! let docs = vec![Document { doc_id: rlft_webscale::doc_id(text), source: "demo".into(), source_row: "1".into(), text: text.into() }];
//! let cache = ReplyCache::in_memory();
//! let out = pipeline.process(docs, &cache, Shard::default(), &Progress::default())?;
//! assert_eq!(out.records.len(), 2); // two personas
//! assert_eq!(out.records[0].answer, "1921");
//! assert_eq!(out.stats.input_docs, out.stats.accepted_docs);
//! // The same run again is served by the cache: no model call.
//! let again = pipeline.process(vec![Document { doc_id: rlft_webscale::doc_id(text), source: "demo".into(), source_row: "1".into(), text: text.into() }], &cache, Shard::default(), &Progress::default())?;
//! assert_eq!((again.calls, again.records), (0, out.records));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![doc(test(attr(deny(warnings))))]

mod cache;
mod chat;
mod config;
mod decontam;
mod domain;
mod error;
mod fewshot;
mod fixture;
mod http;
mod ingest;
mod judge;
mod leak;
mod merge;
mod parse;
mod pipeline;
mod prefilter;
mod prompts;
mod record;
mod scripted;
mod stats;

pub use cache::{Cached, ReplyCache, cache_key};
pub use chat::{ChatModel, ChatRequest, EngineChatModel, LlmError};
pub use config::{
    Backend, ConcurrencyConfig, DecontamConfig, HttpSettings, LLM_STAGES, ModelConfig,
    ModelsConfig, StageConfig, WebscaleConfig,
};
pub use decontam::{BenchIndex, BenchItem, decontam_normalize};
pub use domain::{DOMAINS, canonical_domain, clean_personas};
pub use error::{Result, WebscaleError};
pub use fewshot::{Example, FewshotLibrary, render_fewshot, unit_seed};
pub use fixture::{fixture_model, founding};
pub use http::{HttpChatConfig, HttpChatModel};
pub use ingest::{
    Document, InputConfig, dedupe, doc_id, read_documents, read_jsonl, read_parquet, shard_of,
};
pub use judge::{JUDGE_PROMPT, LlmJudge};
pub use leak::{answer_leaks, leak_tokens};
pub use merge::{MergeOptions, merge, read_manifest, read_outputs};
pub use parse::{ParseError, parse_object, string_fields, yes_no};
pub use pipeline::{
    LocalBuilder, Manifest, Models, PIPELINE_VERSION, Pipeline, Plan, Progress, RunOutput, Shard,
    train_lines, write_outputs,
};
pub use prefilter::{PrefilterConfig, PrefilterReject, prefilter, truncate, word_count};
pub use prompts::{
    CHECKER_PROMPT, FILTER_PROMPT, GENERATOR_PROMPT, TAGGER_PROMPT, prompt_hash, render,
};
pub use record::{Checks, Failure, REASONS, Record, STAGES, StageModels, TrainLine};
pub use scripted::ScriptedModel;
pub use stats::Stats;

/// The local rlft model as a [`ChatModel`] (feature `local`): rlft-rollout's `LocalEngine`
/// behind [`EngineChatModel`].
#[cfg(feature = "local")]
pub type LocalChatModel = EngineChatModel<rlft_rollout::LocalEngine>;
