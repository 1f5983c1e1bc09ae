//! `rlft serve`: a Hugging Face checkpoint behind the OpenAI-compatible API
//! (`/v1/completions`, `/v1/chat/completions`, `/v1/models`, `/health`, `/metrics`), served
//! by rlft-serve with its batching scheduler, streaming and limits.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use rlft_rollout::{LocalConfig, LocalEngine};
use rlft_serve::{ServeConfig, Server};

use crate::common::load_checkpoint;
use crate::device::{Backend, device};

/// Options of `rlft serve`. Each limit's default is [`ServeConfig`]'s.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Hugging Face checkpoint directory (config.json, safetensors, tokenizer).
    #[arg(long)]
    pub model: PathBuf,
    /// Address to bind; port 0 picks a free one (the printed URL tells which). Binding beyond
    /// loopback without --api-key-env prints a warning.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: String,
    /// Model id reported by the API (default: the directory name).
    #[arg(long)]
    pub model_id: Option<String>,
    /// Name of an environment variable holding the API key every endpoint but /health then
    /// requires (`Authorization: Bearer KEY`).
    #[arg(long, value_name = "NAME")]
    pub api_key_env: Option<String>,
    /// Most rows (prompts × n) decoded together.
    #[arg(long, default_value_t = 256)]
    pub max_batch_rows: usize,
    /// Largest n (completions per prompt).
    #[arg(long, default_value_t = ServeConfig::default().max_n)]
    pub max_n: usize,
    /// Most prompts in one /v1/completions request.
    #[arg(long, default_value_t = ServeConfig::default().max_prompts)]
    pub max_prompts: usize,
    /// Largest max_tokens (default: up to the model's context; prompt + max_tokens must always
    /// fit the context).
    #[arg(long)]
    pub max_tokens_limit: Option<usize>,
    /// max_tokens of a request that gives none.
    #[arg(long, default_value_t = ServeConfig::default().default_max_tokens)]
    pub default_max_tokens: usize,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = ServeConfig::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Largest request head (request line + headers), bytes (≥ 8192).
    #[arg(long, default_value_t = ServeConfig::default().max_header_bytes)]
    pub max_header_bytes: usize,
    /// Seconds a client may take to send a request head (also closes idle connections).
    #[arg(long, default_value_t = ServeConfig::default().head_timeout_secs)]
    pub head_timeout_secs: f64,
    /// Seconds a whole request may take (body, queue and generation).
    #[arg(long, default_value_t = ServeConfig::default().request_timeout_secs)]
    pub request_timeout_secs: f64,
    /// Requests waiting for the engine; more get 429 with Retry-After.
    #[arg(long, default_value_t = ServeConfig::default().max_queue)]
    pub max_queue: usize,
    /// Most requests decoded together in one batched pass.
    #[arg(long, default_value_t = ServeConfig::default().max_batch_requests)]
    pub max_batch_requests: usize,
    /// Milliseconds the scheduler waits for more requests to join a batch.
    #[arg(long, default_value_t = ServeConfig::default().batch_window_ms)]
    pub batch_window_ms: u64,
    /// Open connections; more get 503 with Retry-After.
    #[arg(long, default_value_t = ServeConfig::default().max_connections)]
    pub max_connections: usize,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub device: Backend,
}

impl ServeArgs {
    /// The server settings these flags give (the API key read from the environment).
    fn config(&self, model_id: String) -> anyhow::Result<ServeConfig> {
        let api_key = match &self.api_key_env {
            None => None,
            Some(name) => Some(std::env::var(name).with_context(|| {
                format!("--api-key-env {name}: the environment variable {name} is not set")
            })?),
        };
        Ok(ServeConfig {
            addr: self.addr.clone(),
            model_id: Some(model_id),
            api_key,
            max_n: self.max_n,
            max_prompts: self.max_prompts,
            max_tokens_limit: self.max_tokens_limit,
            default_max_tokens: self.default_max_tokens,
            max_body_bytes: self.max_body_bytes,
            max_header_bytes: self.max_header_bytes,
            head_timeout_secs: self.head_timeout_secs,
            request_timeout_secs: self.request_timeout_secs,
            max_queue: self.max_queue,
            max_batch_requests: self.max_batch_requests,
            batch_window_ms: self.batch_window_ms,
            max_connections: self.max_connections,
        })
    }
}

/// Serves until the process is stopped. Prints the base URL (`http://ADDR/v1`) on stdout
/// once the socket is bound.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let model_id = args.model_id.clone().unwrap_or_else(|| {
        args.model
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
            .unwrap_or_else(|| "rlft-local".into())
    });
    let config = args.config(model_id.clone())?;
    config.validate()?;
    let dev = device(args.device)?;
    let (model, tok) = load_checkpoint(&args.model, &dev)?;
    let engine = LocalEngine::new(
        model,
        Some(tok),
        LocalConfig {
            max_batch_rows: args.max_batch_rows,
            model_id,
            ..LocalConfig::default()
        },
    )?;
    if let Some(warning) = config.exposure_warning() {
        eprintln!("{warning}");
    }
    let handle = Server::new(engine, config).spawn()?;
    println!("{}", handle.base_url());
    std::io::stdout().flush()?;
    eprintln!(
        "serving {} at {}; stop with Ctrl-C",
        args.model.display(),
        handle.base_url()
    );
    handle.wait();
    Ok(())
}
