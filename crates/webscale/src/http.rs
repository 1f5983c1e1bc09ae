//! [`HttpChatModel`]: OpenAI-compatible servers through rlft-rollout's HTTP client, with
//! retries (exponential backoff with jitter on 429, 5xx, timeouts and refused connections)
//! spread over several base URLs.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rlft_rollout::{HttpConfig, HttpEngine, RolloutError, SamplingParams};
use serde::{Deserialize, Serialize};

use crate::chat::{ChatModel, ChatRequest, LlmError};
use crate::error::{Result, WebscaleError};

/// Settings of [`HttpChatModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpChatConfig {
    /// API roots including `/v1`, used round-robin; a retry goes to the next one. Default
    /// `["http://127.0.0.1:8000/v1"]`: `vllm serve`'s default port (the reference code sends
    /// non-OpenAI models to `http://localhost:{port}/v1`).
    pub base_urls: Vec<String>,
    /// Model name sent with each request.
    pub model: String,
    /// Environment variable holding the API key (sent as `Authorization: Bearer`), e.g.
    /// `OPENAI_API_KEY`. Default none (local servers).
    pub api_key_env: Option<String>,
    /// Per-request timeout, seconds. Default 600: openai-python.
    pub timeout_secs: f64,
    /// Connect timeout, seconds. Default 5: openai-python.
    pub connect_timeout_secs: f64,
    /// Retries after 429, 5xx, a timeout or a transport error. Default 5: the reference
    /// code's rate-limit loop (`agent.py`).
    pub max_retries: u32,
    /// First backoff, milliseconds, doubling per retry. Default 1000: the reference code
    /// waits `2^attempt` seconds from attempt 0.
    pub backoff_initial_ms: u64,
    /// Longest backoff, milliseconds. Default 60000 (\[D\]).
    pub backoff_max_ms: u64,
    /// Uniform jitter added to each backoff, milliseconds. Default 1000: the reference
    /// code's `+ U(0, 1)` seconds.
    pub jitter_ms: u64,
}

impl Default for HttpChatConfig {
    fn default() -> Self {
        Self {
            base_urls: vec!["http://127.0.0.1:8000/v1".into()],
            model: "gpt-4.1".into(),
            api_key_env: None,
            timeout_secs: 600.0,
            connect_timeout_secs: 5.0,
            max_retries: 5,
            backoff_initial_ms: 1000,
            backoff_max_ms: 60_000,
            jitter_ms: 1000,
        }
    }
}

/// A chat model on one or more OpenAI-compatible servers (vLLM, SGLang, llama.cpp,
/// `rlft serve`, OpenAI).
///
/// Each call tries up to `1 + max_retries` times. 429, 5xx, timeouts and transport errors
/// are retried after `min(initial · 2^(k−1), max) + U(0, jitter)`, each retry on the next base
/// URL; other 4xx fail at once (terminal). When the retries run out the error is
/// `retryable`, so the unit is retried by a resumed run.
pub struct HttpChatModel {
    engines: Vec<HttpEngine>,
    config: HttpChatConfig,
    next: AtomicUsize,
    jitter_state: AtomicU64,
}

impl std::fmt::Debug for HttpChatModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpChatModel")
            .field("base_urls", &self.config.base_urls)
            .field("model", &self.config.model)
            .finish()
    }
}

impl HttpChatModel {
    /// A model for `config`; the API key is read from `api_key_env` now.
    ///
    /// # Errors
    /// [`WebscaleError::Model`] (with `stage`) for no base URL, a bad URL or timeout, or an
    /// unset key variable.
    pub fn new(config: HttpChatConfig, stage: &str) -> Result<Self> {
        let bad = |reason: String| WebscaleError::Model {
            stage: stage.to_string(),
            reason,
        };
        if config.base_urls.is_empty() {
            return Err(bad("base_urls is empty".into()));
        }
        let api_key = match &config.api_key_env {
            None => None,
            Some(var) => Some(std::env::var(var).map_err(|_| {
                bad(format!(
                    "api_key_env: the environment variable {var} is not set"
                ))
            })?),
        };
        let engines = config
            .base_urls
            .iter()
            .map(|url| {
                HttpEngine::new(HttpConfig {
                    base_url: url.clone(),
                    model: Some(config.model.clone()),
                    timeout_secs: config.timeout_secs,
                    connect_timeout_secs: config.connect_timeout_secs,
                    max_retries: 0,
                    max_concurrency: 64,
                    api_key: api_key.clone(),
                    ..HttpConfig::default()
                })
                .map_err(|e| bad(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        if config.backoff_max_ms < config.backoff_initial_ms {
            return Err(bad(format!(
                "backoff_max_ms ({}) is below backoff_initial_ms ({})",
                config.backoff_max_ms, config.backoff_initial_ms
            )));
        }
        Ok(Self {
            engines,
            config,
            next: AtomicUsize::new(0),
            jitter_state: AtomicU64::new(0x853C_49E6_748F_EA9B),
        })
    }

    /// The wait before retry `k` (1-based), jitter included.
    fn backoff(&self, k: u32) -> Duration {
        let base = self
            .config
            .backoff_initial_ms
            .saturating_mul(1u64 << (k - 1).min(32))
            .min(self.config.backoff_max_ms);
        let jitter = if self.config.jitter_ms == 0 {
            0
        } else {
            let s = self
                .jitter_state
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
            rlft_util::seed::mix64(s) % (self.config.jitter_ms + 1)
        };
        Duration::from_millis(base + jitter)
    }
}

/// Whether an error of the client may pass on retry.
fn retryable(e: &RolloutError) -> bool {
    match e {
        RolloutError::ServerUnreachable { .. } | RolloutError::Reply { .. } => true,
        RolloutError::Status { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

impl ChatModel for HttpChatModel {
    fn chat(&self, req: &ChatRequest) -> Result<String, LlmError> {
        let params = SamplingParams {
            n: 1,
            max_new_tokens: req.max_tokens,
            temperature: req.temperature,
            greedy: req.temperature == 0.0,
            stop: req.stop.clone(),
            seed: req.seed,
            ..SamplingParams::default()
        };
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let attempts = self.config.max_retries + 1;
        let mut last = String::new();
        for a in 0..attempts {
            if a > 0 {
                std::thread::sleep(self.backoff(a));
            }
            let engine = &self.engines[(start + a as usize) % self.engines.len()];
            match engine.chat_text(&req.messages, &params) {
                Ok(text) => return Ok(text),
                Err(e) if retryable(&e) => last = e.to_string(),
                Err(e) => return Err(LlmError::terminal(e.to_string())),
            }
        }
        Err(LlmError::retryable(format!(
            "gave up after {attempts} attempt(s): {last}"
        )))
    }

    fn model_id(&self) -> &str {
        &self.config.model
    }
}
