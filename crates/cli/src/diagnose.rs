//! `rlft diagnose`: diagnostics of a checkpoint. `alignment`: the cosine between the
//! parameter gradients of log P(y) (prompt removed, PreRL's marginal space) and log π(y|x)
//! on the model's own samples, overall and by completion position (spec prerl.md §1.8).

use std::path::{Path, PathBuf};

use burn::module::Module;
use clap::{Args, Subcommand};
use rlft_core::{Advantages, BatchOptions, PolicyBatch};
use rlft_prerl_dsrl::{PreRlConfig, gradient_alignment};
use rlft_rollout::{LocalConfig, LocalEngine, RolloutEngine, SamplingParams};
use rlft_trainer::write_json_atomic;

use crate::common::{DataSection, PromptFormat, load_checkpoint};
use crate::device::{Backend, device};

/// Options of `rlft diagnose`.
#[derive(Args, Debug, Clone)]
pub struct DiagnoseArgs {
    /// Which diagnostic.
    #[command(subcommand)]
    pub what: Diagnostic,
}

/// The diagnostics.
#[derive(Subcommand, Debug, Clone)]
pub enum Diagnostic {
    /// cos(∇log P(y), ∇log π(y|x)) over all parameters, on samples of the model.
    Alignment(AlignmentArgs),
}

/// Options of `rlft diagnose alignment`.
#[derive(Args, Debug, Clone)]
pub struct AlignmentArgs {
    /// Hugging Face checkpoint directory.
    #[arg(long)]
    pub model: PathBuf,
    /// JSONL file with prompts (`prompt`, `question` or `problem`).
    #[arg(long)]
    pub data: PathBuf,
    /// How prompts become model input.
    #[arg(long, value_enum, default_value_t = PromptFormat::Chat)]
    pub format: PromptFormat,
    /// System message for the chat format.
    #[arg(long)]
    pub system_prompt: Option<String>,
    /// Prompts used (the first ones of the file).
    #[arg(long, default_value_t = 8)]
    pub prompts: usize,
    /// Samples per prompt.
    #[arg(long, default_value_t = 2)]
    pub n: usize,
    /// Sampling (and scoring) temperature, > 0.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Most new tokens per sample.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// Completion positions reported one by one (each costs two backward passes).
    #[arg(long, default_value_t = 16)]
    pub positions: usize,
    /// The token that replaces the prompt; default `<|im_start|>`, else BOS.
    #[arg(long)]
    pub context_token: Option<u32>,
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

/// Runs `rlft diagnose` and returns the report as pretty JSON.
pub fn run(args: &DiagnoseArgs) -> anyhow::Result<String> {
    match &args.what {
        Diagnostic::Alignment(a) => alignment(a),
    }
}

fn alignment(args: &AlignmentArgs) -> anyhow::Result<String> {
    if args.prompts == 0 || args.n == 0 {
        anyhow::bail!("invalid value for --prompts / --n: must be ≥ 1");
    }
    if !(args.temperature.is_finite() && args.temperature > 0.0) {
        anyhow::bail!(
            "invalid value for --temperature: must be finite and > 0, got {}",
            args.temperature
        );
    }
    let dev = device(args.device)?.autodiff();
    let (model, tok) = load_checkpoint(&args.model, &dev)?;
    let data = DataSection::from_flags(&args.data, args.format, args.system_prompt.clone());
    let (data, _) = data.load(Path::new(""), &tok)?;
    let prompts: Vec<(usize, Vec<u32>)> = data.indexed().into_iter().take(args.prompts).collect();
    let scorer = PreRlConfig {
        context_token: args.context_token,
        ..PreRlConfig::default()
    }
    .scorer(Some(&tok))?;
    let engine = LocalEngine::new(model.valid(), Some(tok.clone()), LocalConfig::default())?;
    let params = SamplingParams {
        n: args.n,
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        seed: Some(args.seed),
        ..SamplingParams::default()
    };
    let groups = engine.generate_groups(&prompts, &params)?;
    let rows: usize = groups.iter().map(|g| g.completions.len()).sum();
    let all = Advantages {
        values: vec![1.0; rows],
        keep: vec![true; rows],
    };
    let batch = PolicyBatch::from_groups(&groups, &all, &BatchOptions::default())?;
    let report = gradient_alignment(
        &model,
        &batch,
        scorer,
        f64::from(args.temperature),
        args.positions,
        &dev,
    )?;
    if let Some(out) = &args.out {
        write_json_atomic(out, &report)?;
    }
    Ok(serde_json::to_string_pretty(&report)?)
}
