//! `kind = "http"`: a reward function behind a URL (a Python function served over HTTP, a
//! reward-model server).
//!
//! Protocol: `POST <url>` with `{"items": [{"prompt", "completion", "answer", "meta"}, …]}`;
//! the reply is `{"scores": [number | null, …]}`, one per item in order (`null`: no score).

use rlft_rollout::{HttpConfig, HttpEngine};
use serde::{Deserialize, Serialize};

use super::{RewardFunction, RewardRequest, WireItem, WireReply, WireRequest, check_reply};
use crate::error::{Result, TrainerError};

fn default_timeout() -> f64 {
    60.0
}
fn default_retries() -> u32 {
    2
}
fn default_batch() -> usize {
    64
}

/// Settings of [`HttpReward`] (`[[reward]] kind = "http"`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRewardConfig {
    /// The URL posted to, e.g. `http://127.0.0.1:8000/reward`. Required.
    pub url: String,
    /// Per-request timeout (connect to last byte), seconds. Default 60.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Retries after a connection error, a timeout, a 5xx or a 429 (attempts = 1 + retries),
    /// with the HTTP engine's backoff (0.5 s doubling). Default 2 (openai-python's).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Completions per request. Default 64.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Sent as `Authorization: Bearer <key>` when set. Default none.
    #[serde(default)]
    pub api_key: Option<String>,
}

impl std::fmt::Debug for HttpRewardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRewardConfig")
            .field("url", &self.url)
            .field("timeout_s", &self.timeout_s)
            .field("retries", &self.retries)
            .field("batch_size", &self.batch_size)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl HttpRewardConfig {
    /// Settings for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout_s: default_timeout(),
            retries: default_retries(),
            batch_size: default_batch(),
            api_key: None,
        }
    }
}

/// A reward function that POSTs batches of completions as JSON and reads scores back, over
/// rlft-rollout's HTTP client (timeouts, retries with backoff).
#[derive(Debug)]
pub struct HttpReward {
    config: HttpRewardConfig,
    client: HttpEngine,
}

impl HttpReward {
    /// A client for `config`.
    ///
    /// # Errors
    /// [`TrainerError::Config`] for a zero batch size or a bad URL or timeout.
    pub fn new(config: HttpRewardConfig) -> Result<Self> {
        super::check_batch_and_timeout(config.batch_size, config.timeout_s)?;
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            return Err(TrainerError::Config {
                field: "reward.url",
                reason: format!("must start with http:// or https://, got {:?}", config.url),
            });
        }
        let http = HttpConfig {
            timeout_secs: config.timeout_s,
            connect_timeout_secs: config.timeout_s.min(5.0),
            max_retries: config.retries,
            api_key: config.api_key.clone(),
            ..HttpConfig::new(config.url.clone())
        };
        let client = HttpEngine::new(http)?;
        Ok(Self { config, client })
    }
}

impl RewardFunction for HttpReward {
    fn score_batch(&self, batch: &[RewardRequest<'_>]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(self.config.batch_size) {
            let body = WireRequest {
                items: chunk.iter().map(WireItem::from).collect(),
            };
            let reply: WireReply =
                self.client
                    .post_json(&body)
                    .map_err(|e| TrainerError::Reward {
                        name: self.config.url.clone(),
                        reason: e.to_string(),
                    })?;
            out.extend(check_reply(&self.config.url, reply, chunk.len())?);
        }
        Ok(out)
    }
}
