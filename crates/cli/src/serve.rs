//! `rlft serve`: a Hugging Face checkpoint behind the OpenAI-compatible API
//! (`/v1/completions`, `/v1/chat/completions`, `/v1/models`, `/health`).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use rlft_rollout::{LocalConfig, LocalEngine, Server, ServerConfig};

use crate::common::load_checkpoint;
use crate::device::{Backend, device};

/// Options of `rlft serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Hugging Face checkpoint directory (config.json, safetensors, tokenizer).
    #[arg(long)]
    pub model: PathBuf,
    /// Address to bind; port 0 picks a free one (the printed URL tells which).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: String,
    /// Model id reported by the API (default: the directory name).
    #[arg(long)]
    pub model_id: Option<String>,
    /// Most rows (prompts × n) decoded together.
    #[arg(long, default_value_t = 256)]
    pub max_batch_rows: usize,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub device: Backend,
}

/// Serves until the process is stopped. Prints the base URL (`http://ADDR/v1`) on stdout
/// once the socket is bound.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let dev = device(args.device)?;
    let (model, tok) = load_checkpoint(&args.model, &dev)?;
    let model_id = args.model_id.clone().unwrap_or_else(|| {
        args.model
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
            .unwrap_or_else(|| "rlft-local".into())
    });
    let engine = LocalEngine::new(
        model,
        Some(tok),
        LocalConfig {
            max_batch_rows: args.max_batch_rows,
            model_id: model_id.clone(),
            ..LocalConfig::default()
        },
    )?;
    let handle = Server::new(
        engine,
        ServerConfig {
            addr: args.addr.clone(),
            model_id: Some(model_id),
            ..ServerConfig::default()
        },
    )
    .spawn()?;
    println!("{}", handle.base_url());
    std::io::stdout().flush()?;
    eprintln!(
        "serving {} at {}; stop with Ctrl-C",
        args.model.display(),
        handle.base_url()
    );
    loop {
        std::thread::park();
    }
}
