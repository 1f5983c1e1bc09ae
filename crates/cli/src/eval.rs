//! `rlft eval`: pass@1 (mean over n samples) and unbiased pass@k of a Hugging Face checkpoint
//! on a JSONL dataset, scored by a verifier.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use rlft_rollout::{LocalConfig, LocalEngine, SamplingParams};
use rlft_tasks::{DatasetConfig, VerifierConfig};
use rlft_trainer::{VerifierRewarder, evaluate, write_json_atomic};

use crate::common::{DataSection, PromptFormat, check_eval, eval_params, load_checkpoint};
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
    check_eval(
        args.n,
        &args.k,
        args.temperature,
        ["--n", "--k", "--temperature"],
    )?;
    let verifier = verifier_config(&args.verifier)?.build()?;
    let dev = device(args.device)?;
    let (model, tok) = load_checkpoint(&args.model, &dev)?;
    let data = DataSection {
        path: args.data.clone(),
        fields: DatasetConfig::default(),
        format: args.format,
        system_prompt: args.system_prompt.clone(),
        test_fraction: 0.0,
        split_seed: 0,
        max_prompt_tokens: usize::MAX,
    };
    // Relative to the current directory (no config file to resolve against).
    let (data, _) = data.load(Path::new(""), &tok)?;
    let prompts = data.indexed();
    let rewarder = VerifierRewarder::new(&verifier, data.items);
    let engine = LocalEngine::new(model, Some(tok), LocalConfig::default())?;
    let base = SamplingParams {
        max_new_tokens: args.max_new_tokens,
        ..SamplingParams::default()
    };
    let params = eval_params(base, args.n, args.temperature, args.seed);
    let report = evaluate(&engine, &prompts, &rewarder, &params, &args.k, 64)?;
    if let Some(out) = &args.out {
        write_json_atomic(out, &report)?;
    }
    Ok(serde_json::to_string_pretty(&report)?)
}
