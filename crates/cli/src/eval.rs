//! `rlft eval`: pass@1 (mean over n samples) and unbiased pass@k of a Hugging Face checkpoint
//! on a JSONL or Parquet dataset, scored by a verifier; `--samples` writes every sample and a
//! report of the first failures.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use rlft_rollout::{LocalConfig, LocalEngine, SamplingParams};
use rlft_tasks::VerifierConfig;
use rlft_trainer::{evaluate, pass_at_k_svg, write_atomic, write_json_atomic};

use crate::common::{DataSection, PromptFormat, check_eval, eval_params, load_checkpoint};
use crate::device::{Backend, device};
use crate::samples::{FIRST_FAILURES, Recorder, failures_markdown, write_samples};

/// Options of `rlft eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Hugging Face checkpoint directory (config.json, safetensors, tokenizer).
    #[arg(long)]
    pub model: PathBuf,
    /// Dataset: JSONL, or Parquet (`.parquet`), with a prompt (`prompt`, `question`,
    /// `problem` or `messages`; text or chat messages) and a gold answer (`answer`,
    /// `solution`, `target` or verl's `reward_model.ground_truth`) per row.
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
    /// A range of k, `A..B`: every power of two in A..=B and B itself, added to `--k` (e.g.
    /// `--n 256 --k-range 1..256` for a pass@k curve).
    #[arg(long, value_parser = parse_k_range)]
    pub k_range: Option<(usize, usize)>,
    /// Also write the pass@k curve (k on a log axis) as an SVG here.
    #[arg(long)]
    pub curve: Option<PathBuf>,
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
    /// Write every sample here as JSONL: id, sample index, prompt (as the model saw it),
    /// completion, gold answer, extracted answer, verdict, reason and score.
    #[arg(long)]
    pub samples: Option<PathBuf>,
    /// With `--samples`: write a Markdown report listing the first failures here. Default:
    /// the samples path with the extension `.md`.
    #[arg(long, requires = "samples")]
    pub report: Option<PathBuf>,
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

/// Parses `--k-range A..B` (1 ≤ A ≤ B).
fn parse_k_range(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected A..B, e.g. 1..256, got {s:?}"))?;
    let b = b.strip_prefix('=').unwrap_or(b);
    let parse = |x: &str| {
        x.trim()
            .parse::<usize>()
            .map_err(|e| format!("{x:?} in {s:?}: {e}"))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    if a == 0 || a > b {
        return Err(format!("need 1 ≤ A ≤ B, got {s:?}"));
    }
    Ok((a, b))
}

/// The k of `--k` and `--k-range`, sorted and without duplicates.
pub fn eval_ks(k: &[usize], range: Option<(usize, usize)>) -> Vec<usize> {
    let mut ks = k.to_vec();
    if let Some((a, b)) = range {
        ks.extend(
            std::iter::successors(Some(1usize), |&x| x.checked_mul(2))
                .take_while(|&x| x <= b)
                .filter(|&x| x >= a),
        );
        ks.extend([a, b]);
    }
    ks.sort_unstable();
    ks.dedup();
    ks
}

/// Runs `rlft eval` and returns the report as pretty JSON.
pub fn run(args: &EvalArgs) -> anyhow::Result<String> {
    if let Some((_, b)) = args.k_range
        && b > args.n
    {
        anyhow::bail!(
            "invalid value for --k-range: the top of the range must be ≤ --n = {}, got {b}",
            args.n
        );
    }
    let ks = eval_ks(&args.k, args.k_range);
    check_eval(
        args.n,
        &ks,
        args.temperature,
        ["--n", "--k", "--temperature"],
    )?;
    let verifier = verifier_config(&args.verifier)?.build()?;
    let dev = device(args.device)?;
    let (model, tok) = load_checkpoint(&args.model, &dev)?;
    let data = DataSection::from_flags(&args.data, args.format, args.system_prompt.clone());
    // Relative to the current directory (no config file to resolve against).
    let (data, _) = data.load(Path::new(""), &tok)?;
    let prompts = data.indexed();
    let recorder = Recorder::new(verifier.as_ref(), &data.items);
    let engine = LocalEngine::new(model, Some(tok.clone()), LocalConfig::default())?;
    let base = SamplingParams {
        max_new_tokens: args.max_new_tokens,
        ..SamplingParams::default()
    };
    let params = eval_params(base, args.n, args.temperature, args.seed);
    let report = evaluate(&engine, &prompts, &recorder, &params, &ks, 64)?;
    if let Some(out) = &args.out {
        write_json_atomic(out, &report)?;
    }
    if let Some(path) = &args.samples {
        let rows = recorder.rows(&tok, &data.prompt_ids)?;
        write_samples(path, &rows)?;
        let md_path = args
            .report
            .clone()
            .unwrap_or_else(|| path.with_extension("md"));
        let name = |p: &Path| {
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().to_string())
        };
        let md = format!(
            "# rlft eval\n\n| | value |\n|---|---|\n| model | {} |\n| data | {} |\n| prompts | {} |\n| samples per prompt | {} |\n| pass@1 | {:.2}% |\n| samples | [{}]({}) |\n\n## First failures\n\n{}",
            args.model.display(),
            args.data.display(),
            report.prompts,
            report.samples,
            100.0 * report.pass1,
            name(path),
            name(path),
            failures_markdown(&rows, FIRST_FAILURES)
        );
        write_atomic(&md_path, md.as_bytes())?;
    }
    if let Some(path) = &args.curve {
        let name = args.model.display().to_string();
        let points: Vec<(usize, f64)> = report.pass_at_k.iter().map(|(&k, &v)| (k, v)).collect();
        let title = format!("pass@k, {} samples per prompt", report.samples);
        write_atomic(path, pass_at_k_svg(&[(name, points)], &title).as_bytes())?;
    }
    Ok(serde_json::to_string_pretty(&report)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_ranges_are_powers_of_two_and_the_ends() {
        assert_eq!(
            eval_ks(&[1], parse_k_range("1..256").ok()),
            [1, 2, 4, 8, 16, 32, 64, 128, 256]
        );
        assert_eq!(
            eval_ks(&[5, 1], parse_k_range("3..=20").ok()),
            [1, 3, 4, 5, 8, 16, 20]
        );
        assert!(parse_k_range("0..4").is_err());
        assert!(parse_k_range("8..4").is_err());
        assert!(parse_k_range("4").is_err());
    }
}
