//! [`ServeConfig`]: the address, the API key and every limit of the server.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ServeError;

/// Settings of [`Server`](crate::Server). Every limit has a default meant for a local model
/// on one machine, and `rlft serve` exposes each as a flag of the same name
/// (`max_n` → `--max-n`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to bind. Default `127.0.0.1:8000` (loopback only; vLLM's port). Port 0 picks a
    /// free port ([`ServerHandle::addr`](crate::ServerHandle::addr) tells which).
    pub addr: String,
    /// Model id served at `/v1/models` and required of a request's `model` when it names one;
    /// `None` uses the engine's. Default `None`.
    pub model_id: Option<String>,
    /// The API key every endpoint but `/health` requires (`Authorization: Bearer KEY`);
    /// `None`: no key. Default `None`. `rlft serve` reads it from the environment variable
    /// named by `--api-key-env`, never from the command line.
    #[serde(skip_serializing)]
    pub api_key: Option<String>,
    /// Largest `n` (completions per prompt). Default 64.
    pub max_n: usize,
    /// Most prompts in one `/v1/completions` request. Default 64.
    pub max_prompts: usize,
    /// Largest `max_tokens`; `None` allows up to the model's context. Default `None`. In every
    /// case prompt tokens + `max_tokens` must fit the context when the engine knows it.
    pub max_tokens_limit: Option<usize>,
    /// `max_tokens` of a request that gives none. Default 16: OpenAI `/v1/completions`.
    pub default_max_tokens: usize,
    /// Largest request body in bytes (after de-chunking); larger ones get 413. Default 8 MiB.
    pub max_body_bytes: usize,
    /// Largest request head (request line + headers) in bytes; larger ones get 431. At least
    /// 8192 (hyper's floor). Default 16 KiB.
    pub max_header_bytes: usize,
    /// Seconds a connection may take to send a request head, counted from when the server
    /// starts waiting for it (so it also closes idle keep-alive connections). Defeats
    /// slowloris clients. Default 10.
    pub head_timeout_secs: f64,
    /// Seconds a request may take from its head to its last response byte (body read,
    /// queueing and generation; a stream is ended with an error event). Default 600.
    pub request_timeout_secs: f64,
    /// Requests waiting for the engine; more get 429 with `Retry-After`. Default 256.
    pub max_queue: usize,
    /// Most requests decoded together in one batched pass. Default 64.
    pub max_batch_requests: usize,
    /// Milliseconds the scheduler waits for more requests after the first one of a batch
    /// arrives. Default 5.
    pub batch_window_ms: u64,
    /// Open connections; more are answered 503 with `Retry-After` and closed. Default 1024.
    pub max_connections: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8000".into(),
            model_id: None,
            api_key: None,
            max_n: 64,
            max_prompts: 64,
            max_tokens_limit: None,
            default_max_tokens: 16,
            max_body_bytes: 8 << 20,
            max_header_bytes: 16 << 10,
            head_timeout_secs: 10.0,
            request_timeout_secs: 600.0,
            max_queue: 256,
            max_batch_requests: 64,
            batch_window_ms: 5,
            max_connections: 1024,
        }
    }
}

impl ServeConfig {
    /// Loopback on a free port (tests and local use).
    pub fn loopback() -> Self {
        Self {
            addr: "127.0.0.1:0".into(),
            ..Self::default()
        }
    }

    /// Check every field.
    ///
    /// # Errors
    /// [`ServeError::Config`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), ServeError> {
        let bad = |field: &'static str, reason: String| Err(ServeError::Config { field, reason });
        for (field, v) in [
            ("max_n", self.max_n),
            ("max_prompts", self.max_prompts),
            ("max_body_bytes", self.max_body_bytes),
            ("max_queue", self.max_queue),
            ("max_batch_requests", self.max_batch_requests),
            ("max_connections", self.max_connections),
        ] {
            if v == 0 {
                return bad(field, "must be at least 1, got 0".into());
            }
        }
        if self.max_tokens_limit == Some(0) {
            return bad("max_tokens_limit", "must be at least 1, got 0".into());
        }
        if self.max_header_bytes < 8192 {
            return bad(
                "max_header_bytes",
                format!("must be at least 8192, got {}", self.max_header_bytes),
            );
        }
        for (field, v) in [
            ("head_timeout_secs", self.head_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
        ] {
            if !(v.is_finite() && v > 0.0 && v < 1e9) {
                return bad(field, format!("must be finite and > 0, got {v}"));
            }
        }
        if let Some(key) = &self.api_key
            && key.is_empty()
        {
            return bad("api_key", "is empty".into());
        }
        Ok(())
    }

    pub(crate) fn head_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.head_timeout_secs)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.request_timeout_secs)
    }

    /// The warning to print when the server would listen beyond loopback without an API key,
    /// `None` otherwise (an address that does not resolve gives none: binding reports it).
    pub fn exposure_warning(&self) -> Option<String> {
        if self.api_key.is_some() {
            return None;
        }
        let addrs: Vec<SocketAddr> = self.addr.to_socket_addrs().ok()?.collect();
        let open = addrs.iter().any(|a| !is_loopback(a.ip()));
        open.then(|| {
            format!(
                "warning: serving on {} without an API key: anyone who can reach this address \
                 can use the model (set --api-key-env NAME, or bind 127.0.0.1)",
                self.addr
            )
        })
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_zero_limits_are_named() {
        ServeConfig::default().validate().unwrap();
        let c = ServeConfig {
            max_queue: 0,
            ..ServeConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ServeError::Config {
                field: "max_queue",
                ..
            })
        ));
        let c = ServeConfig {
            max_header_bytes: 100,
            ..ServeConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("8192"));
        let c = ServeConfig {
            head_timeout_secs: f64::NAN,
            ..ServeConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn warns_only_beyond_loopback_without_a_key() {
        let at = |addr: &str, key: Option<&str>| ServeConfig {
            addr: addr.into(),
            api_key: key.map(String::from),
            ..ServeConfig::default()
        };
        assert_eq!(at("127.0.0.1:0", None).exposure_warning(), None);
        assert_eq!(at("[::1]:0", None).exposure_warning(), None);
        let w = at("0.0.0.0:0", None).exposure_warning().unwrap();
        assert!(w.contains("without an API key"), "{w}");
        assert_eq!(at("0.0.0.0:0", Some("k")).exposure_warning(), None);
    }
}
