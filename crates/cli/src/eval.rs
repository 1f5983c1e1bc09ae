//! `rlft eval`: pass@1 (mean over n samples) and unbiased pass@k of a Hugging Face checkpoint
//! on a JSONL dataset, scored by a verifier.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use rlft_models::{CausalLm, ChatTokenizer, LoadOptions};
use rlft_rollout::{LocalConfig, LocalEngine, SamplingParams};
use rlft_tasks::{Dataset, DatasetConfig, VerifierConfig};
use rlft_trainer::{VerifierRewarder, evaluate, write_json_atomic};

use crate::common::{PromptFormat, encode_prompt};
use crate::device::{Backend, device};

/// Options of `rlft eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Hugging Face checkpoint directory (config.json, safetensors, tokenizer).
    #[arg(long)]
    pub model: PathBuf,
    /// JSONL file with a prompt (`prompt`, `question` or `problem`) and a gold answer
    /// (`answer`, `solution` or `target`) per line.
    #[arg(long)]
    pub data: PathBuf,
    /// Verifier: a kind (`math`, `countdown`, `exact_match`) or a JSON object such as
    /// '{"kind":"exact_match","config":{"sources":["whole"]}}'.
    #[arg(long, default_value = "math")]
    pub verifier: String,
    /// How prompts become model input.
    #[arg(long, value_enum, default_value_t = PromptFormat::Chat)]
    pub format: PromptFormat,
    /// System message for the chat format.
    #[arg(long)]
    pub system_prompt: Option<String>,
    /// Samples per prompt.
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    /// k of pass@k (repeatable; each ≤ n).
    #[arg(long, default_values_t = [1])]
    pub k: Vec<usize>,
    /// Sampling temperature; 0 means greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Most new tokens per completion.
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the report (JSON) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub device: Backend,
}

/// Parses `--verifier`: a bare kind or a JSON object.
pub fn verifier_config(s: &str) -> anyhow::Result<VerifierConfig> {
    let json = if s.trim_start().starts_with('{') {
        s.to_string()
    } else {
        serde_json::json!({ "kind": s }).to_string()
    };
    serde_json::from_str(&json).with_context(|| format!("--verifier {s}"))
}

/// Runs `rlft eval` and returns the report as pretty JSON.
pub fn run(args: &EvalArgs) -> anyhow::Result<String> {
    if args.n == 0 {
        bail!("--n must be ≥ 1");
    }
    if let Some(&k) = args.k.iter().find(|&&k| k == 0 || k > args.n) {
        bail!("--k {k}: each k must be in 1..=n = {}", args.n);
    }
    if !(args.temperature.is_finite() && args.temperature >= 0.0) {
        bail!(
            "--temperature must be finite and ≥ 0, got {}",
            args.temperature
        );
    }
    let verifier = verifier_config(&args.verifier)?.build()?;
    let dev = device(args.device)?;
    let tok = ChatTokenizer::from_dir(&args.model)?;
    let model = CausalLm::from_pretrained(&args.model, &dev, LoadOptions::default())?;
    let data = Dataset::from_jsonl(&args.data, &DatasetConfig::default())?;
    if data.is_empty() {
        bail!("{}: no examples", args.data.display());
    }
    let prompts = data
        .items()
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let ids = encode_prompt(&tok, args.format, args.system_prompt.as_deref(), &it.prompt)
                .with_context(|| format!("encoding the prompt of item {}", it.id))?;
            Ok((i, ids))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rewarder = VerifierRewarder::new(&verifier, data.into_items());
    let engine = LocalEngine::new(model, Some(tok), LocalConfig::default())?;
    let params = SamplingParams {
        n: args.n,
        max_new_tokens: args.max_new_tokens,
        temperature: if args.temperature == 0.0 {
            1.0
        } else {
            args.temperature
        },
        greedy: args.temperature == 0.0,
        seed: Some(args.seed),
        ..SamplingParams::default()
    };
    let report = evaluate(&engine, &prompts, &rewarder, &params, &args.k, 64)?;
    if let Some(out) = &args.out {
        write_json_atomic(out, &report)?;
    }
    Ok(serde_json::to_string_pretty(&report)?)
}
