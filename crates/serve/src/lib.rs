//! # rlft-serve
//!
//! The OpenAI-compatible server over any rlft [`RolloutEngine`](rlft_rollout::RolloutEngine)
//! (the local Burn engine in `rlft serve`), on a maintained async HTTP stack: axum routes and
//! middleware on tokio, hyper's HTTP/1 connections (keep-alive, pipelining, chunked bodies, a
//! deadline and a size cap for every request head).
//!
//! - [`Server`] / [`ServerHandle`]: bind, serve on background threads, shut down.
//! - [`ServeConfig`]: the address, an optional API key, and every limit (`n`, `max_tokens`,
//!   prompt + `max_tokens` against the model's context, body and head sizes, the head and
//!   whole-request deadlines, the queue, connections), each with a documented default.
//! - A scheduler: one engine thread takes queued requests, waits a few milliseconds for more,
//!   and decodes them together through [`RolloutEngine::generate_many`](rlft_rollout::RolloutEngine::generate_many)
//!   (one batched pass on the local engine). A client that disconnects stops its rows within
//!   one decode step; a full queue answers 429 with `Retry-After`.
//! - `"stream": true` answers as server-sent events (OpenAI's chunk format, `[DONE]` last);
//!   `GET /metrics` is Prometheus text.
//!
//! ```
//! use rlft_rollout::{BigramEngine, HttpConfig, HttpEngine, Prompt, RolloutEngine, SamplingParams};
//! use rlft_serve::{ServeConfig, Server};
//!
//! let engine = || BigramEngine::fit("hello world\nhold the door\n", 0.5, 0);
//! let server = Server::new(engine()?, ServeConfig::loopback()).spawn()?;
//! let http = HttpEngine::new(HttpConfig::new(server.base_url()))?;
//! let params = SamplingParams { n: 2, max_new_tokens: 8, seed: Some(1), ..Default::default() };
//! let prompts = [Prompt::Text("ho".into())];
//! // Over HTTP, the same completions as the engine gives directly.
//! assert_eq!(http.generate(&prompts, &params)?, engine()?.generate(&prompts, &params)?);
//! server.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod error;
mod generate;
mod metrics;
mod request;
mod routes;
mod scheduler;
mod server;

pub use config::ServeConfig;
pub use error::ServeError;
pub use request::{Endpoint, ParsedRequest, RequestError, check_request};
pub use server::{Server, ServerHandle};
