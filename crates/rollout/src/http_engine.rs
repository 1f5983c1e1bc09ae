//! [`HttpEngine`]: rollouts from an OpenAI-compatible server (vLLM, SGLang, llama.cpp, or
//! rlft-serve's `Server`) over blocking HTTP.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rlft_core::Completion;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::engine::RolloutEngine;
use crate::error::{Result, RolloutError, clip};
use crate::openai::{
    ChatRequest, ChatResponse, CommonParams, CompletionRequest, CompletionResponse, ModelList,
    PromptField, StopField, parse_token_id,
};
use crate::params::{LogprobMode, SamplingParams};
use crate::prompt::Prompt;
use crate::seed::prompt_seed;
use crate::tokenizer::Tokenizer;

/// Largest reply body read (256 MiB: 64 completions × 4096 tokens with log-probs fit easily).
const MAX_REPLY_BYTES: u64 = 256 << 20;

/// Settings of [`HttpEngine`]. Timeouts and retries follow the openai-python client's defaults
/// (`openai/_constants.py`: 600 s timeout, 5 s connect, 2 retries, backoff 0.5 s doubling to
/// 8 s).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// API root including `/v1`. Default `http://127.0.0.1:8000/v1`: vLLM's
    /// `vllm serve` default port.
    pub base_url: String,
    /// Model name sent with each request; `None` asks `/v1/models` once and takes the first.
    /// Default `None`.
    pub model: Option<String>,
    /// Per-request timeout (connect to last byte), seconds. Default 600: openai-python.
    pub timeout_secs: f64,
    /// Connect timeout, seconds. Default 5: openai-python.
    pub connect_timeout_secs: f64,
    /// Retries after a connection error, a timeout, a 5xx or a 429 (attempts = 1 + retries).
    /// Default 2: openai-python `DEFAULT_MAX_RETRIES`.
    pub max_retries: u32,
    /// Wait before the first retry, milliseconds; doubles per retry. Default 500:
    /// openai-python `INITIAL_RETRY_DELAY`.
    pub backoff_initial_ms: u64,
    /// Longest wait between retries, milliseconds. Default 8000: openai-python
    /// `MAX_RETRY_DELAY`.
    pub backoff_max_ms: u64,
    /// Requests in flight at once (one request per prompt). Default 8.
    pub max_concurrency: usize,
    /// Ask for token ids as `token_id:N` (vLLM's `return_tokens_as_token_ids`). Default true.
    pub request_token_ids: bool,
    /// Sent as `Authorization: Bearer …` when set (vLLM `--api-key`). Default `None`.
    pub api_key: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8000/v1".into(),
            model: None,
            timeout_secs: 600.0,
            connect_timeout_secs: 5.0,
            max_retries: 2,
            backoff_initial_ms: 500,
            backoff_max_ms: 8000,
            max_concurrency: 8,
            request_token_ids: true,
            api_key: None,
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("timeout_secs", &self.timeout_secs)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("max_retries", &self.max_retries)
            .field("backoff_initial_ms", &self.backoff_initial_ms)
            .field("backoff_max_ms", &self.backoff_max_ms)
            .field("max_concurrency", &self.max_concurrency)
            .field("request_token_ids", &self.request_token_ids)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl HttpConfig {
    /// A config for the API root `base_url` (e.g. `http://127.0.0.1:8000/v1`).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            ..Self::default()
        }
    }

    /// Check ranges.
    ///
    /// # Errors
    /// [`RolloutError::InvalidParam`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: String| Err(RolloutError::InvalidParam { field, reason });
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return bad(
                "base_url",
                format!(
                    "must start with http:// or https://, got {:?}",
                    self.base_url
                ),
            );
        }
        for (field, v) in [
            ("timeout_secs", self.timeout_secs),
            ("connect_timeout_secs", self.connect_timeout_secs),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(field, format!("must be finite and > 0, got {v}"));
            }
        }
        if self.max_concurrency == 0 {
            return bad("max_concurrency", "must be at least 1, got 0".into());
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            return bad(
                "backoff_max_ms",
                format!(
                    "must be ≥ backoff_initial_ms ({}), got {}",
                    self.backoff_initial_ms, self.backoff_max_ms
                ),
            );
        }
        Ok(())
    }

    /// Wait before retry number `retry` (1-based).
    fn backoff(&self, retry: u32) -> Duration {
        let ms = self
            .backoff_initial_ms
            .saturating_mul(1u64 << (retry - 1).min(32))
            .min(self.backoff_max_ms);
        Duration::from_millis(ms)
    }
}

/// Rollouts from an OpenAI-compatible server.
///
/// Each prompt is one request with `n` completions: [`Prompt::Tokens`] and [`Prompt::Text`] go
/// to `/v1/completions` (token ids as a list of ints), [`Prompt::Chat`] to
/// `/v1/chat/completions`. Up to `max_concurrency` requests run at once on scoped threads;
/// prompt `i` carries seed [`prompt_seed`]`(seed, i)`, so results do not depend on the
/// scheduling. Connection errors, timeouts, 5xx and 429 are retried `max_retries` times with
/// exponential backoff; when they persist the batch fails with
/// [`RolloutError::ServerUnreachable`] or [`RolloutError::Status`] naming the URL and the
/// attempts, and no new requests start.
///
/// # Token ids
/// The engine asks for `return_tokens_as_token_ids` (vLLM; this crate's server) and reads
/// `token_id:N`. A server that ignores it returns token text; then, if a tokenizer was given
/// ([`HttpEngine::with_tokenizer`]), the ids are the tokenizer's encoding of the concatenated
/// token texts (of the completion text when the reply has no log-probs) and the log-probs are
/// kept only when their count matches the ids; without a tokenizer the request fails with
/// [`RolloutError::TokenIdsUnavailable`].
///
/// # Log-probs
/// Whatever the server reports: vLLM reports `raw_logprobs` (before temperature) unless it was
/// started with `--logprobs-mode processed_logprobs`; [`SamplingParams::logprob_mode`] is sent
/// as the extension field `logprobs_mode` only when it is not the default, which this crate's
/// server honours.
pub struct HttpEngine {
    config: HttpConfig,
    agent: ureq::Agent,
    tokenizer: Option<Box<dyn Tokenizer>>,
    model: OnceLock<String>,
}

impl std::fmt::Debug for HttpEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEngine")
            .field("config", &self.config)
            .field("tokenizer", &self.tokenizer.is_some())
            .field("model", &self.model.get())
            .finish()
    }
}

impl HttpEngine {
    /// An engine for `config`.
    ///
    /// # Errors
    /// [`RolloutError::InvalidParam`] from [`HttpConfig::validate`].
    pub fn new(config: HttpConfig) -> Result<Self> {
        config.validate()?;
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs_f64(config.timeout_secs)))
                .timeout_connect(Some(Duration::from_secs_f64(config.connect_timeout_secs)))
                .max_idle_connections_per_host(config.max_concurrency)
                .build(),
        );
        let model = OnceLock::new();
        if let Some(m) = &config.model {
            let _ = model.set(m.clone());
        }
        Ok(Self {
            config,
            agent,
            tokenizer: None,
            model,
        })
    }

    /// Use `tokenizer` to recover token ids from servers that only return text.
    pub fn with_tokenizer(mut self, tokenizer: impl Tokenizer + 'static) -> Self {
        self.tokenizer = Some(Box::new(tokenizer));
        self
    }

    /// The config.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The text of one chat completion of `messages` (`/v1/chat/completions`, `n = 1`), for
    /// callers that need only text (LLM pipelines, judges): no log-probs and no token ids are
    /// asked for, so any OpenAI-compatible server (OpenAI itself included) works without a
    /// tokenizer. `params.n` is ignored; the other sampling fields are sent as in
    /// [`RolloutEngine::generate`], with `params.seed` as is. Retries as configured.
    ///
    /// # Errors
    /// [`RolloutError::InvalidParam`] from [`SamplingParams::validate`]; transport, status
    /// or reply errors as for `generate`; [`RolloutError::Reply`] when the reply has no
    /// choice.
    pub fn chat_text(
        &self,
        messages: &[crate::Message],
        params: &SamplingParams,
    ) -> Result<String> {
        params.validate()?;
        let common = CommonParams {
            model: Some(self.model()?.to_string()),
            n: Some(1),
            max_tokens: Some(params.max_new_tokens),
            temperature: Some(if params.is_greedy() {
                0.0
            } else {
                params.temperature
            }),
            top_p: (params.top_p < 1.0).then_some(params.top_p),
            top_k: params.top_k.map(|k| k as i64),
            min_p: (params.min_p > 0.0).then_some(params.min_p),
            seed: params.seed,
            stop: (!params.stop.is_empty()).then(|| StopField::Many(params.stop.clone())),
            ..CommonParams::default()
        };
        let body = ChatRequest {
            messages: messages.to_vec(),
            common,
            logprobs: None,
            top_logprobs: None,
        };
        let abort = AtomicBool::new(false);
        let reply: ChatResponse = self.request(Some(&body), "/chat/completions", &abort)?;
        let url = self.url("/chat/completions");
        reply
            .choices
            .into_iter()
            .min_by_key(|c| c.index)
            .map(|c| c.message.content.unwrap_or_default())
            .ok_or(RolloutError::Reply {
                url,
                reason: "the reply has no choice".into(),
            })
    }

    /// Model ids the server lists at `/v1/models`.
    ///
    /// # Errors
    /// Transport, status or reply errors.
    pub fn models(&self) -> Result<Vec<String>> {
        let list: ModelList = self.request(None::<&()>, "/models", &AtomicBool::new(false))?;
        Ok(list.data.into_iter().map(|m| m.id).collect())
    }

    fn model(&self) -> Result<&str> {
        if let Some(m) = self.model.get() {
            return Ok(m);
        }
        let url = self.url("/models");
        let first = self
            .models()?
            .into_iter()
            .next()
            .ok_or(RolloutError::Reply {
                url,
                reason: "the server lists no models".into(),
            })?;
        Ok(self.model.get_or_init(|| first))
    }

    /// POSTs `body` as JSON to `base_url` itself (no path appended) and parses the reply as
    /// `T`, with this engine's timeouts, retries and API key: the client for JSON services that
    /// are not inference servers, such as a remote reward function.
    ///
    /// # Errors
    /// As [`RolloutEngine::generate`]: transport errors after the retries, a non-2xx status,
    /// or a reply that is not `T`.
    pub fn post_json<B: Serialize, T: DeserializeOwned>(&self, body: &B) -> Result<T> {
        self.request(Some(body), "", &AtomicBool::new(false))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// GET (no body) or POST `body` to `path`, with retries; the reply parsed as `T`.
    fn request<B: Serialize, T: DeserializeOwned>(
        &self,
        body: Option<&B>,
        path: &str,
        abort: &AtomicBool,
    ) -> Result<T> {
        let url = self.url(path);
        let attempts = self.config.max_retries + 1;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last_try = attempt == attempts || abort.load(Ordering::Relaxed);
            let sent = match body {
                Some(b) => {
                    let mut req = self.agent.post(&url);
                    if let Some(key) = &self.config.api_key {
                        req = req.header("Authorization", format!("Bearer {key}"));
                    }
                    req.send_json(b)
                }
                None => {
                    let mut req = self.agent.get(&url);
                    if let Some(key) = &self.config.api_key {
                        req = req.header("Authorization", format!("Bearer {key}"));
                    }
                    req.call()
                }
            };
            let failure = match sent {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let text = resp
                        .body_mut()
                        .with_config()
                        .limit(MAX_REPLY_BYTES)
                        .read_to_string();
                    match text {
                        Ok(text) if (200..300).contains(&status) => {
                            return serde_json::from_str(&text).map_err(|e| RolloutError::Reply {
                                url: url.clone(),
                                reason: format!(
                                    "not the expected JSON ({e}): {}",
                                    clip(&text, 300)
                                ),
                            });
                        }
                        Ok(text) => {
                            let err = RolloutError::Status {
                                url: url.clone(),
                                status,
                                attempts: attempt,
                                body: clip(&text, 1000),
                            };
                            if status != 429 && status < 500 {
                                return Err(err);
                            }
                            err
                        }
                        Err(source) if retryable(&source) => RolloutError::ServerUnreachable {
                            url: url.clone(),
                            attempts: attempt,
                            source,
                        },
                        Err(e) => {
                            return Err(RolloutError::Reply {
                                url,
                                reason: format!("cannot read the body: {e}"),
                            });
                        }
                    }
                }
                Err(source) => {
                    let retry = retryable(&source);
                    let err = RolloutError::ServerUnreachable {
                        url: url.clone(),
                        attempts: attempt,
                        source,
                    };
                    if !retry {
                        return Err(err);
                    }
                    err
                }
            };
            if last_try {
                return Err(failure);
            }
            std::thread::sleep(self.config.backoff(attempt));
        }
    }

    /// One prompt: one request with `n` choices.
    fn one(
        &self,
        index: usize,
        prompt: &Prompt,
        params: &SamplingParams,
        model: &str,
        abort: &AtomicBool,
    ) -> Result<Vec<Completion>> {
        let common = CommonParams {
            model: Some(model.to_string()),
            n: Some(params.n),
            max_tokens: Some(params.max_new_tokens),
            max_completion_tokens: None,
            temperature: Some(if params.is_greedy() {
                0.0
            } else {
                params.temperature
            }),
            top_p: (params.top_p < 1.0).then_some(params.top_p),
            top_k: params.top_k.map(|k| k as i64),
            min_p: (params.min_p > 0.0).then_some(params.min_p),
            seed: params.seed.map(|s| prompt_seed(s, index)),
            stop: (!params.stop.is_empty()).then(|| StopField::Many(params.stop.clone())),
            stop_token_ids: (!params.stop_token_ids.is_empty())
                .then(|| params.stop_token_ids.clone()),
            ignore_eos: params.ignore_eos.then_some(true),
            include_stop_str_in_output: params.include_stop_str_in_output.then_some(true),
            return_tokens_as_token_ids: self.config.request_token_ids.then_some(true),
            logprobs_mode: (params.logprob_mode != LogprobMode::default())
                .then_some(params.logprob_mode),
            stream: None,
        };
        let choices: Vec<(usize, Choice)> = match prompt {
            Prompt::Tokens(ids) => self.complete(PromptField::Ids(ids.clone()), common, abort)?,
            Prompt::Text(t) => self.complete(PromptField::Text(t.clone()), common, abort)?,
            Prompt::Chat(messages) => {
                let body = ChatRequest {
                    messages: messages.clone(),
                    common,
                    logprobs: Some(true),
                    top_logprobs: None,
                };
                let reply: ChatResponse = self.request(Some(&body), "/chat/completions", abort)?;
                reply
                    .choices
                    .into_iter()
                    .map(|c| {
                        let content = c.logprobs.and_then(|l| l.content);
                        let (tokens, logprobs) = match content {
                            Some(items) => {
                                let (t, l) =
                                    items.into_iter().map(|i| (i.token, i.logprob)).unzip();
                                (Some(t), l)
                            }
                            None => (None, Vec::new()),
                        };
                        (
                            c.index,
                            Choice {
                                text: c.message.content.unwrap_or_default(),
                                tokens,
                                logprobs,
                                finish_reason: c.finish_reason,
                            },
                        )
                    })
                    .collect()
            }
        };
        let url = self.url(match prompt {
            Prompt::Chat(_) => "/chat/completions",
            _ => "/completions",
        });
        let mut slots: Vec<Option<Completion>> = vec![None; params.n];
        for (i, choice) in choices {
            let slot = slots.get_mut(i).ok_or_else(|| RolloutError::Reply {
                url: url.clone(),
                reason: format!("choice index {i} is out of range for n = {}", params.n),
            })?;
            if slot.is_some() {
                return Err(RolloutError::Reply {
                    url,
                    reason: format!("choice index {i} appears twice"),
                });
            }
            *slot = Some(self.completion(choice, &url)?);
        }
        slots
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                c.ok_or_else(|| RolloutError::Reply {
                    url: url.clone(),
                    reason: format!("choice {i} of n = {} is missing", params.n),
                })
            })
            .collect()
    }

    /// `/v1/completions` for one prompt; the choices with their indices.
    fn complete(
        &self,
        prompt: PromptField,
        common: CommonParams,
        abort: &AtomicBool,
    ) -> Result<Vec<(usize, Choice)>> {
        let body = CompletionRequest {
            prompt,
            common,
            logprobs: Some(1),
            echo: None,
        };
        let reply: CompletionResponse = self.request(Some(&body), "/completions", abort)?;
        Ok(reply
            .choices
            .into_iter()
            .map(|c| {
                let lp = c.logprobs.unwrap_or_default();
                let tokens = (!lp.tokens.is_empty()).then_some(lp.tokens);
                (
                    c.index,
                    Choice {
                        text: c.text,
                        tokens,
                        logprobs: lp.token_logprobs,
                        finish_reason: c.finish_reason,
                    },
                )
            })
            .collect())
    }

    fn completion(&self, choice: Choice, url: &str) -> Result<Completion> {
        let finished = choice.finish_reason.as_deref() != Some("length");
        let logprobs: Option<Vec<f32>> = choice.logprobs.iter().copied().collect();
        let parsed: Option<Vec<u32>> = choice
            .tokens
            .as_ref()
            .and_then(|t| t.iter().map(|s| parse_token_id(s)).collect());
        let (token_ids, logprobs) = match (parsed, &self.tokenizer) {
            (Some(ids), _) => {
                let lp = logprobs.unwrap_or_default();
                if !lp.is_empty() && lp.len() != ids.len() {
                    return Err(RolloutError::Reply {
                        url: url.to_string(),
                        reason: format!("{} token ids but {} log-probs", ids.len(), lp.len()),
                    });
                }
                (ids, lp)
            }
            (None, Some(tok)) => {
                let source = match &choice.tokens {
                    Some(t) => t.concat(),
                    None => choice.text.clone(),
                };
                let ids = tok.encode(&source, false)?;
                let lp = logprobs
                    .filter(|l| l.len() == ids.len() && choice.tokens.is_some())
                    .unwrap_or_default();
                (ids, lp)
            }
            (None, None) => {
                let token = choice
                    .tokens
                    .as_ref()
                    .and_then(|t| t.iter().find(|s| parse_token_id(s).is_none()).cloned())
                    .unwrap_or_else(|| "(the reply has no log-probs)".into());
                return Err(RolloutError::TokenIdsUnavailable {
                    url: url.to_string(),
                    token,
                });
            }
        };
        Ok(Completion {
            token_ids,
            logprobs,
            text: choice.text,
            reward: 0.0,
            finished,
            ..Completion::default()
        })
    }
}

/// A choice of either endpoint, reduced to what a completion needs.
struct Choice {
    text: String,
    tokens: Option<Vec<String>>,
    logprobs: Vec<Option<f32>>,
    finish_reason: Option<String>,
}

/// Whether a transport error may pass (the server restarting, overloaded, or a reset).
fn retryable(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::HostNotFound
    )
}

impl RolloutEngine for HttpEngine {
    fn generate(
        &self,
        prompts: &[Prompt],
        params: &SamplingParams,
    ) -> Result<Vec<Vec<Completion>>> {
        params.validate()?;
        if prompts.is_empty() {
            return Ok(Vec::new());
        }
        let model = self.model()?.to_string();
        let next = AtomicUsize::new(0);
        let abort = AtomicBool::new(false);
        let results: Vec<Mutex<Option<Result<Vec<Completion>>>>> =
            prompts.iter().map(|_| Mutex::new(None)).collect();
        let workers = self.config.max_concurrency.min(prompts.len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    while !abort.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(prompt) = prompts.get(i) else { break };
                        let r = self.one(i, prompt, params, &model, &abort);
                        if r.is_err() {
                            abort.store(true, Ordering::Relaxed);
                        }
                        if let Ok(mut slot) = results[i].lock() {
                            *slot = Some(r);
                        }
                    }
                });
            }
        });
        let mut out = Vec::with_capacity(prompts.len());
        let mut first_err = None;
        for slot in results {
            match slot.into_inner().ok().flatten() {
                Some(Ok(c)) => out.push(c),
                Some(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                None => {}
            }
        }
        match first_err {
            Some(e) => Err(e),
            None if out.len() == prompts.len() => Ok(out),
            None => Err(RolloutError::Reply {
                url: self.config.base_url.clone(),
                reason: "a request thread ended without a result".into(),
            }),
        }
    }

    fn model_id(&self) -> &str {
        self.model
            .get()
            .map(String::as_str)
            .unwrap_or("openai-compatible")
    }

    fn token_text(&self, id: u32) -> Option<String> {
        self.tokenizer.as_ref()?.token_text(id)
    }
}

/// Checks shared by the unit tests of [`HttpConfig`].
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_fields() {
        HttpConfig::default().validate().unwrap();
        let cases = [
            (HttpConfig::new("localhost:8000"), "base_url"),
            (
                HttpConfig {
                    timeout_secs: 0.0,
                    ..Default::default()
                },
                "timeout_secs",
            ),
            (
                HttpConfig {
                    max_concurrency: 0,
                    ..Default::default()
                },
                "max_concurrency",
            ),
            (
                HttpConfig {
                    backoff_initial_ms: 10,
                    backoff_max_ms: 5,
                    ..Default::default()
                },
                "backoff_max_ms",
            ),
        ];
        for (c, field) in cases {
            assert!(
                matches!(c.validate(), Err(RolloutError::InvalidParam { field: f, .. }) if f == field),
                "{field}"
            );
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let c = HttpConfig {
            backoff_initial_ms: 100,
            backoff_max_ms: 350,
            ..Default::default()
        };
        let ms: Vec<u128> = (1..=4).map(|r| c.backoff(r).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 350, 350]);
    }

    #[test]
    fn api_key_is_redacted_in_debug() {
        let c = HttpConfig {
            api_key: Some("sk-secret".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("sk-secret"));
    }
}
