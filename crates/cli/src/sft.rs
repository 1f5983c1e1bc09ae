//! `rlft sft --config sft.toml`: supervised (or weighted, DRIFT-style) finetuning of a Hugging
//! Face checkpoint on a JSONL file of prompt / completion pairs, exporting safetensors.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use rlft_models::ChatTokenizer;
use rlft_tasks::Message;
use rlft_trainer::{
    LossTurns, SftConfig, SftExample, SftTrainer, read_log, render_conversation, write_json_atomic,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::{
    ModelSection, Progress, PromptFormat, encode_prompt, export, load_toml, out_dir, resolve,
};
use crate::device::{Backend, device};
use crate::runs::{self, Graceful, Interrupted, RunFlags};

/// Options of `rlft sft`.
#[derive(Args, Debug, Clone)]
pub struct SftArgs {
    /// The run's TOML config (format: docs/cli.md).
    #[arg(long)]
    pub config: PathBuf,
    /// Run directory, overriding the config's `out` (relative to the current directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stop after this many optimiser steps in this invocation; running again resumes.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// `--force-resume`, `--restart`, `--nan-policy`.
    #[command(flatten)]
    pub run: RunFlags,
}

/// The TOML file of `rlft sft`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftFile {
    /// Run directory (relative to the config file).
    pub out: PathBuf,
    /// `flex` (default), `wgpu` or `cuda`, as compiled in.
    #[serde(default)]
    pub device: Backend,
    /// The checkpoint to finetune.
    pub model: ModelSection,
    /// The examples.
    pub data: SftData,
    /// Epochs, batch size, accumulation, optimiser, loss normalisation, seed.
    #[serde(default)]
    pub sft: SftConfig,
}

/// `[data]` of `sft`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftData {
    /// The JSONL file.
    pub path: PathBuf,
    /// Field holding the prompt. Default `prompt`.
    #[serde(default = "prompt")]
    pub prompt_field: String,
    /// Field holding the target completion. Default `completion`.
    #[serde(default = "completion")]
    pub completion_field: String,
    /// Field holding a per-example weight (DRIFT's normalised exp(R/β)); absent: weight 1.
    #[serde(default)]
    pub weight_field: Option<String>,
    /// Field holding a whole conversation (a list of `{role, content}` messages, as DRIFT's
    /// JSONL has it in `messages`). When set, `prompt_field` / `completion_field` are not
    /// read: the conversation is rendered through the model's chat template and
    /// `loss_turns` of its assistant messages carry loss.
    #[serde(default)]
    pub messages_field: Option<String>,
    /// With `messages_field`: `last` (default, DRIFT) or `all` assistant turns carry loss.
    #[serde(default)]
    pub loss_turns: LossTurns,
    /// `chat` (default) or `raw`.
    #[serde(default)]
    pub format: PromptFormat,
    /// System message for the chat format.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Longest prompt + completion, in tokens; a longer example is an error naming its line.
    /// Default 2048.
    #[serde(default = "max_tokens")]
    pub max_tokens: usize,
}

fn prompt() -> String {
    "prompt".into()
}

fn completion() -> String {
    "completion".into()
}

fn max_tokens() -> usize {
    2048
}

/// What `summary.json` of an SFT run holds.
#[derive(Debug, Serialize)]
pub struct SftSummary {
    /// Examples trained on.
    pub examples: usize,
    /// Optimiser steps.
    pub steps: usize,
    /// NLL of the first and last step.
    pub nll_first: f64,
    /// NLL of the last step.
    pub nll_last: f64,
    /// Seconds.
    pub seconds: f64,
    /// The exported Hugging Face checkpoint.
    pub model: PathBuf,
}

/// Reads the examples, naming the line and field of anything malformed.
fn read_examples(
    data: &SftData,
    path: &std::path::Path,
    tok: &ChatTokenizer,
    eos: u32,
) -> anyhow::Result<Vec<SftExample>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for line in rlft_util::lines::Lines::new(std::io::BufReader::new(f)) {
        let (n, line) = line.with_context(|| format!("reading {}", path.display()))?;
        let line = line.as_str();
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{n}", path.display());
        let row: serde_json::Map<String, Value> =
            serde_json::from_str(line).with_context(|| format!("{}: not a JSON object", at()))?;
        let field = |name: &str| -> anyhow::Result<&str> {
            match row.get(name) {
                Some(Value::String(s)) => Ok(s),
                Some(other) => bail!("{}: field `{name}` must be a string, got {other}", at()),
                None => bail!("{}: missing field `{name}`", at()),
            }
        };
        let weight = match &data.weight_field {
            None => 1.0,
            Some(w) => match row.get(w).and_then(Value::as_f64) {
                Some(x) if (x as f32).is_finite() && x >= 0.0 => x as f32,
                Some(x) => bail!(
                    "{}: field `{w}` must be finite and ≥ 0 (at most {:e}, the f32 range), got {x}",
                    at(),
                    f32::MAX
                ),
                None => bail!("{}: field `{w}` missing or not a number", at()),
            },
        };
        let example = if let Some(mf) = &data.messages_field {
            let value = row
                .get(mf)
                .with_context(|| format!("{}: missing field `{mf}`", at()))?;
            let messages: Vec<Message> = serde_json::from_value(value.clone()).with_context(|| {
                format!(
                    "{}: field `{mf}` must be a list of {{role: system|user|assistant, content}} messages",
                    at()
                )
            })?;
            render_conversation(tok, &messages, data.loss_turns)
                .with_context(at)?
                .into_example(weight)
        } else {
            let p = field(&data.prompt_field)?;
            let c = field(&data.completion_field)?;
            let prompt_ids = encode_prompt(tok, data.format, data.system_prompt.as_deref(), p)
                .with_context(at)?;
            let mut completion_ids = tok.encode(c, false).with_context(at)?;
            completion_ids.push(eos);
            SftExample {
                prompt_ids,
                completion_ids,
                loss_mask: Vec::new(),
                weight,
            }
        };
        let len = example.prompt_ids.len() + example.completion_ids.len();
        if len > data.max_tokens {
            bail!(
                "{}: {len} tokens, more than data.max_tokens = {}",
                at(),
                data.max_tokens
            );
        }
        out.push(example);
    }
    if out.is_empty() {
        bail!("{}: no examples", path.display());
    }
    Ok(out)
}

/// Runs `rlft sft` and returns the path of `summary.json`.
pub fn run(args: &SftArgs) -> anyhow::Result<PathBuf> {
    let t0 = Instant::now();
    let file: SftFile = load_toml(&args.config)?;
    let mut cfg = file.sft.clone();
    cfg.validate()
        .with_context(|| format!("config {}", args.config.display()))?;
    let out = out_dir(args.out.as_deref(), &args.config, &file.out);
    let model_dir = resolve(&args.config, &file.model.path);
    rlft_trainer::check_out_dir(&out, &model_dir)?;
    let stop = runs::stop_flag();
    let dev = device(file.device)?.autodiff();
    let (model, tok) = file.model.load(&args.config, &dev)?;
    let eos = model
        .config()
        .eos_token_ids
        .first()
        .copied()
        .or_else(|| tok.eos_token_id())
        .context("the model has no EOS token (config.json eos_token_id or tokenizer eos_token)")?;
    if let Some(pad) = tok.pad_token_id() {
        cfg.pad_id = pad;
    }
    let data_path = resolve(&args.config, &file.data.path);
    let examples = read_examples(&file.data, &data_path, &tok, eos)?;
    let fp = runs::fingerprint(&file, &[], &[("model", &model_dir), ("data", &data_path)])?;
    // Lock and fingerprint check first: a refused attempt leaves config.json as it was.
    let _guard = runs::open_run(&out, &[&model_dir], &fp, &args.run)?;
    write_json_atomic(&out.join("config.json"), &file)?;
    args.run.apply_nan_policy(&mut cfg.optim);
    let mut trainer = SftTrainer::open(cfg.clone(), &out, model, &examples, &dev)?.with_stop(stop);
    let total = trainer.total_steps();
    eprintln!(
        "rlft sft: {} examples, {} epochs, {} optimiser steps → {}{}",
        examples.len(),
        cfg.epochs,
        total,
        out.display(),
        if trainer.step() > 0 {
            format!(" (resuming after step {})", trainer.step())
        } else {
            String::new()
        }
    );
    let bar = Progress::new("sft", trainer.step() as u64, total as u64);
    let graceful = Graceful::new();
    trainer.run(args.max_steps, |r| {
        let nll = r.get("nll").unwrap_or(f64::NAN);
        bar.set(r.step as u64 + 1, format!("nll {nll:.4}"));
    })?;
    bar.finish();
    drop(graceful);
    let steps = trainer.step();
    if runs::interrupted() && steps < total {
        return Err(Interrupted {
            step: steps,
            total,
            dir: out,
        }
        .into());
    }
    if steps < total {
        eprintln!("stopped after step {steps} of {total}; run the same command again to resume");
        return Ok(out.join("latest.json"));
    }
    let records = read_log(&out.join("metrics.jsonl"))?;
    let nll =
        |r: Option<&rlft_trainer::StepRecord>| r.and_then(|r| r.get("nll")).unwrap_or(f64::NAN);
    let (first, last) = (nll(records.first()), nll(records.last()));
    let model = trainer.into_model();
    let final_dir = out.join("final");
    export(&model, &resolve(&args.config, &file.model.path), &final_dir)?;
    let summary = SftSummary {
        examples: examples.len(),
        steps,
        nll_first: first,
        nll_last: last,
        seconds: t0.elapsed().as_secs_f64(),
        model: final_dir,
    };
    eprintln!(
        "sft: nll {:.4} → {:.4} in {steps} steps, {:.0}s",
        first, last, summary.seconds
    );
    let path = out.join("summary.json");
    write_json_atomic(&path, &summary)?;
    Ok(path)
}
