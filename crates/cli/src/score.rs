//! `rlft score`: per-token log-probs of texts or token ids under a checkpoint.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::tensor::{Int, Tensor, TensorData};
use clap::Args;
use rlft_models::{CausalLm, ChatTokenizer, LoadOptions};
use serde_json::{Value, json};

use crate::device::{Backend, device};

/// Options of `rlft score`.
#[derive(Args, Debug, Clone)]
pub struct ScoreArgs {
    /// Hugging Face model directory (config.json, safetensors, tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
    /// JSONL input: each line holds `"text"` (tokenized with special tokens, as
    /// transformers' `tokenizer(text)` does) or `"token_ids"`.
    #[arg(long)]
    pub input: PathBuf,
    /// Output JSONL (written atomically); standard output when absent.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub device: Backend,
}

/// Reads the input's token ids, naming the line of any malformed entry.
fn read_inputs(args: &ScoreArgs, tok: Option<&ChatTokenizer>) -> anyhow::Result<Vec<Vec<u32>>> {
    let f = std::fs::File::open(&args.input)
        .with_context(|| format!("opening {}", args.input.display()))?;
    let mut out = Vec::new();
    for line in rlft_util::lines::Lines::new(std::io::BufReader::new(f)) {
        let (n, line) = line.with_context(|| format!("reading {}", args.input.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{n}: malformed JSON", args.input.display()))?;
        let ids = if let Some(ids) = v.get("token_ids") {
            ids.as_array()
                .with_context(|| {
                    format!("{}:{n}: token_ids must be an array", args.input.display())
                })?
                .iter()
                .map(|x| {
                    x.as_u64()
                        .and_then(|x| u32::try_from(x).ok())
                        .with_context(|| {
                            format!(
                                "{}:{n}: token_ids holds {x}, not a token id",
                                args.input.display()
                            )
                        })
                })
                .collect::<anyhow::Result<Vec<u32>>>()?
        } else if let Some(text) = v.get("text") {
            let text = text
                .as_str()
                .with_context(|| format!("{}:{n}: text must be a string", args.input.display()))?;
            let tok = tok.with_context(|| {
                format!(
                    "{}:{n}: \"text\" needs a tokenizer.json in the model directory",
                    args.input.display()
                )
            })?;
            tok.encode(text, true)
                .with_context(|| format!("{}:{n}: tokenizing", args.input.display()))?
        } else {
            bail!(
                "{}:{n}: a line needs \"text\" or \"token_ids\"",
                args.input.display()
            );
        };
        out.push(ids);
    }
    Ok(out)
}

/// Runs `score`.
pub fn run(args: &ScoreArgs) -> anyhow::Result<()> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let dev = device(args.device)?;
    let model = CausalLm::from_pretrained(&args.model, &dev, LoadOptions::default())
        .with_context(|| format!("loading {}", args.model.display()))?;
    let tok = if args.model.join("tokenizer.json").exists() {
        Some(ChatTokenizer::from_dir(&args.model)?)
    } else {
        None
    };
    let inputs = read_inputs(args, tok.as_ref())?;
    let vocab = model.config().vocab_size;
    if let Some((i, id)) = inputs
        .iter()
        .enumerate()
        .find_map(|(i, ids)| ids.iter().find(|&&t| t as usize >= vocab).map(|&t| (i, t)))
    {
        bail!(
            "input {}: token id {id} is outside the vocabulary of {vocab}",
            i + 1
        );
    }
    let mut text = String::new();
    for chunk in inputs.chunks(args.batch) {
        let width = chunk.iter().map(Vec::len).max().unwrap_or(0);
        if width == 0 {
            for _ in chunk {
                text.push_str(&json!({"token_ids": [], "logprobs": []}).to_string());
                text.push('\n');
            }
            continue;
        }
        let b = chunk.len();
        let (mut ids, mut mask, mut tg) = (Vec::new(), Vec::new(), Vec::new());
        for seq in chunk {
            for j in 0..width {
                ids.push(seq.get(j).map_or(0, |&t| t as i64));
                mask.push(i64::from(j < seq.len().max(1)));
                tg.push(seq.get(j + 1).map_or(0, |&t| t as i64));
            }
        }
        let t = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [b, width]), &dev);
        let lp: Vec<f32> = model
            .token_log_probs(t(ids), t(mask), t(tg), 1.0)
            .into_data()
            .try_to_vec()
            .map_err(|e| anyhow::anyhow!("reading log-probs: {e:?}"))?;
        for (r, seq) in chunk.iter().enumerate() {
            // logprobs[j] = log p(token j | tokens < j); the first token has no context.
            let mut lps: Vec<Value> = vec![Value::Null];
            lps.extend((1..seq.len()).map(|j| json!(lp[r * width + j - 1])));
            lps.truncate(seq.len());
            text.push_str(&json!({"token_ids": seq, "logprobs": lps}).to_string());
            text.push('\n');
        }
    }
    match &args.output {
        Some(path) => rlft_trainer::write_atomic(path, text.as_bytes())?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(())
}
