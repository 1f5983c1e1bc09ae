//! What `train`, `sft`, `eval` and `serve` share: TOML configs, model and data sections,
//! prompt rendering, export and the progress bar.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::module::Module;
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use rlft_models::{
    CausalLm, ChatMessage, ChatTemplateOptions, ChatTokenizer, ExportOptions, LORA_TARGETS,
    LoadOptions, LoraConfig,
};
use rlft_rollout::{LocalConfig, LocalEngine, SamplingParams};
use rlft_tasks::{Dataset, DatasetConfig, SplitConfig, TaskItem};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Reads a TOML config. Unknown keys, wrong types and missing keys are errors that quote the
/// offending line of the file.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    // Capped (a config is small; `/dev/zero` is not one), BOM skipped, bad UTF-8 named by line.
    let text = rlft_util::lines::read_text(path, 16 << 20)
        .with_context(|| format!("reading config {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
}

/// `p` relative to the directory of the config file `config` (absolute paths unchanged).
pub fn resolve(config: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// `[model]`: a Hugging Face checkpoint directory and optional LoRA.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Directory with `config.json`, safetensors weights and the tokenizer files.
    pub path: PathBuf,
    /// LoRA adapters; absent: full finetuning.
    #[serde(default)]
    pub lora: Option<LoraSection>,
}

/// `[model.lora]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraSection {
    /// Rank r.
    pub rank: usize,
    /// Scale numerator α (update = α / r · A B).
    pub alpha: f64,
    /// Projections to adapt. Default all seven (q, k, v, o, gate, up, down).
    #[serde(default = "all_targets")]
    pub target_modules: Vec<String>,
    /// Seed of A's initialisation. Default 0.
    #[serde(default)]
    pub seed: u64,
}

fn all_targets() -> Vec<String> {
    LORA_TARGETS.iter().map(|s| s.to_string()).collect()
}

/// The run directory: `--out` if given (relative to the current directory), else the
/// config's `out` (relative to the config file).
pub fn out_dir(cli_out: Option<&Path>, config: &Path, file_out: &Path) -> PathBuf {
    cli_out.map_or_else(|| resolve(config, file_out), Path::to_path_buf)
}

/// The tokenizer and the model (f32, on `dev`) of a Hugging Face checkpoint directory.
pub fn load_checkpoint(dir: &Path, dev: &Device) -> anyhow::Result<(CausalLm, ChatTokenizer)> {
    let tok = ChatTokenizer::from_dir(dir)
        .with_context(|| format!("model {}: tokenizer", dir.display()))?;
    let model = CausalLm::from_pretrained(dir, dev, LoadOptions::default())
        .with_context(|| format!("model {}: weights", dir.display()))?;
    Ok((model, tok))
}

/// A local engine over the current policy (`valid()`: no graph is built while generating).
pub fn local_engine(
    tok: &ChatTokenizer,
    cfg: &LocalConfig,
    m: &CausalLm,
) -> rlft_trainer::Result<LocalEngine> {
    Ok(LocalEngine::new(m.valid(), Some(tok.clone()), cfg.clone())?)
}

/// Checks evaluation settings: n ≥ 1, every k in 1..=n, temperature finite and ≥ 0. `names`
/// spell the three settings as the user wrote them (config keys or flags).
pub fn check_eval(
    n: usize,
    ks: &[usize],
    temperature: f32,
    names: [&str; 3],
) -> anyhow::Result<()> {
    let [n_name, k_name, t_name] = names;
    if n == 0 {
        bail!("invalid value for {n_name}: must be ≥ 1, got 0");
    }
    if let Some(&k) = ks.iter().find(|&&k| k == 0 || k > n) {
        bail!("invalid value for {k_name}: each k must be in 1..={n_name} = {n}, got {k_name} {k}");
    }
    if !(temperature.is_finite() && temperature >= 0.0) {
        bail!("invalid value for {t_name}: must be finite and ≥ 0, got {temperature}");
    }
    Ok(())
}

/// Checks generation settings as a dry run must: `sampling` (its ranges, and
/// `max_new_tokens` ≥ 1) under the config key `key` (e.g. `train.sampling`), and the local
/// engine's `[engine]` settings.
pub fn check_generation(
    sampling: &SamplingParams,
    key: &str,
    engine: &LocalConfig,
) -> anyhow::Result<()> {
    let named = |prefix: &str, e: rlft_rollout::RolloutError| match e {
        rlft_rollout::RolloutError::InvalidParam { field, reason } => {
            anyhow::anyhow!("invalid config value for {prefix}.{field}: {reason}")
        }
        other => other.into(),
    };
    sampling.validate().map_err(|e| named(key, e))?;
    if sampling.max_new_tokens == 0 {
        bail!("invalid config value for {key}.max_new_tokens: must be ≥ 1, got 0");
    }
    engine.validate().map_err(|e| named("engine", e))
}

/// `base` set up for evaluation: `n` samples per prompt at `temperature`, greedy when it is 0.
pub fn eval_params(base: SamplingParams, n: usize, temperature: f32, seed: u64) -> SamplingParams {
    SamplingParams {
        n,
        temperature: if temperature == 0.0 { 1.0 } else { temperature },
        greedy: temperature == 0.0,
        seed: Some(seed),
        ..base
    }
}

impl ModelSection {
    /// Loads the tokenizer and the model (f32) onto `dev`, with LoRA attached if configured.
    pub fn load(&self, config: &Path, dev: &Device) -> anyhow::Result<(CausalLm, ChatTokenizer)> {
        let dir = resolve(config, &self.path);
        let (mut model, tok) =
            load_checkpoint(&dir, dev).with_context(|| format!("model.path {}", dir.display()))?;
        if let Some(l) = &self.lora {
            model = model.with_lora(&LoraConfig {
                rank: l.rank,
                alpha: l.alpha,
                target_modules: l.target_modules.clone(),
                seed: l.seed,
            })?;
        }
        Ok((model, tok))
    }
}

/// How a dataset prompt becomes model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PromptFormat {
    /// The tokenizer's chat template with one user message (after the optional system
    /// message) and the generation prompt, as TRL does for conversational data.
    #[default]
    Chat,
    /// The prompt text as it is.
    Raw,
}

/// The token ids of `prompt` in `format` (no special tokens added beyond what the template
/// writes, as TRL tokenizes rendered prompts).
pub fn encode_prompt(
    tok: &ChatTokenizer,
    format: PromptFormat,
    system: Option<&str>,
    prompt: &str,
) -> anyhow::Result<Vec<u32>> {
    let text = match format {
        PromptFormat::Raw => prompt.to_string(),
        PromptFormat::Chat => {
            let mut messages = Vec::new();
            if let Some(s) = system {
                messages.push(ChatMessage::new("system", s));
            }
            messages.push(ChatMessage::new("user", prompt));
            tok.apply_chat_template(
                &messages,
                &ChatTemplateOptions {
                    add_generation_prompt: true,
                    ..Default::default()
                },
            )?
        }
    };
    Ok(tok.encode(&text, false)?)
}

/// The token ids of a task item's prompt. A text prompt is encoded as [`encode_prompt`]
/// does; a conversational prompt ([`TaskItem::messages`]: verl's `prompt` column, TRL's
/// conversational format, a `messages` list) is rendered as it is through the model's chat
/// template with the generation prompt, after `system` when one is given.
///
/// # Errors
/// A conversation with `format = raw` (it needs the chat template), or with `system` set when
/// the conversation has its own system message; template and tokenizer errors.
pub fn encode_item(
    tok: &ChatTokenizer,
    format: PromptFormat,
    system: Option<&str>,
    item: &TaskItem,
) -> anyhow::Result<Vec<u32>> {
    let Some(conversation) = &item.messages else {
        return encode_prompt(tok, format, system, &item.prompt);
    };
    if format == PromptFormat::Raw {
        bail!(
            "invalid config value for data.format: item {} has a conversational prompt, which is rendered through the model's chat template; use format = \"chat\", got \"raw\"",
            item.id
        );
    }
    let has_system = conversation
        .first()
        .is_some_and(|m| m.role == rlft_tasks::Role::System);
    let mut messages = Vec::with_capacity(conversation.len() + 1);
    if let Some(s) = system {
        if has_system {
            bail!(
                "invalid config value for data.system_prompt: item {} has its own system message; remove data.system_prompt or the dataset's system messages",
                item.id
            );
        }
        messages.push(ChatMessage::new("system", s));
    }
    messages.extend(
        conversation
            .iter()
            .map(|m| ChatMessage::new(m.role.as_str(), m.content.as_str())),
    );
    let text = tok.apply_chat_template(
        &messages,
        &ChatTemplateOptions {
            add_generation_prompt: true,
            ..Default::default()
        },
    )?;
    Ok(tok.encode(&text, false)?)
}

/// `[data]` of `train`: a dataset file (JSONL or Parquet) of prompts and gold answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// The dataset: JSONL, or Parquet when the name ends in `.parquet` (verl's layout and
    /// the Hugging Face layouts TRL documents are read with the default field names).
    pub path: PathBuf,
    /// Field names (prompt_fields, answer_fields, id_fields, prompt_template); dotted names
    /// read nested columns (`reward_model.ground_truth`).
    #[serde(default)]
    pub fields: DatasetConfig,
    /// `chat` (default) or `raw`.
    #[serde(default)]
    pub format: PromptFormat,
    /// System message for the chat format.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Fraction held out for evaluation (hash split on ids). Default 0.
    #[serde(default)]
    pub test_fraction: f64,
    /// Seed of the split. Default 42.
    #[serde(default = "split_seed")]
    pub split_seed: u64,
    /// Longest prompt, in tokens; a longer one is an error naming its id. Default 1024.
    #[serde(default = "max_prompt_tokens")]
    pub max_prompt_tokens: usize,
}

fn split_seed() -> u64 {
    42
}

fn max_prompt_tokens() -> usize {
    1024
}

/// Items with their prompt token ids.
pub struct Encoded {
    /// The task items.
    pub items: Vec<TaskItem>,
    /// Token ids of each item's prompt.
    pub prompt_ids: Vec<Vec<u32>>,
}

impl Encoded {
    /// (prompt index, token ids) pairs, as `evaluate` takes them.
    pub fn indexed(&self) -> Vec<(usize, Vec<u32>)> {
        self.prompt_ids.iter().cloned().enumerate().collect()
    }
}

impl DataSection {
    /// The data of a command that takes it from flags (`rlft eval`, `rlft diagnose`): every
    /// row of `path` (relative to the current directory), field names found as in configs, no
    /// held-out split and no prompt-length cap.
    pub fn from_flags(path: &Path, format: PromptFormat, system_prompt: Option<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            fields: DatasetConfig::default(),
            format,
            system_prompt,
            test_fraction: 0.0,
            split_seed: 0,
            max_prompt_tokens: usize::MAX,
        }
    }

    /// Train and held-out items, encoded.
    pub fn load(
        &self,
        config: &Path,
        tok: &ChatTokenizer,
    ) -> anyhow::Result<(Encoded, Option<Encoded>)> {
        let path = resolve(config, &self.path);
        let data = Dataset::from_path(&path, &self.fields)?;
        if data.is_empty() {
            bail!("data.path {}: no examples", path.display());
        }
        let (train, test) = if self.test_fraction > 0.0 {
            let split = data.split(&SplitConfig {
                test_fraction: self.test_fraction,
                seed: self.split_seed,
            })?;
            (split.train.into_items(), Some(split.test.into_items()))
        } else {
            (data.into_items(), None)
        };
        if train.is_empty() {
            bail!(
                "data.test_fraction {} leaves no training items",
                self.test_fraction
            );
        }
        let enc = |items: Vec<TaskItem>| -> anyhow::Result<Encoded> {
            let prompt_ids = items
                .iter()
                .map(|it| {
                    let ids = encode_item(tok, self.format, self.system_prompt.as_deref(), it)
                    .with_context(|| format!("encoding the prompt of item {}", it.id))?;
                    if ids.len() > self.max_prompt_tokens {
                        bail!(
                            "item {} of {}: prompt has {} tokens, more than data.max_prompt_tokens = {}",
                            it.id,
                            path.display(),
                            ids.len(),
                            self.max_prompt_tokens
                        );
                    }
                    Ok(ids)
                })
                .collect::<anyhow::Result<_>>()?;
            Ok(Encoded { items, prompt_ids })
        };
        let test = match test {
            Some(t) if !t.is_empty() => Some(enc(t)?),
            _ => None,
        };
        Ok((enc(train)?, test))
    }
}

/// Tokenizer and generation files copied next to exported weights.
const TOKENIZER_FILES: [&str; 7] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
    "vocab.json",
    "merges.txt",
];

/// Writes `model` (LoRA merged) as a Hugging Face checkpoint in `dst` with the tokenizer files
/// of `src`. The directory is assembled under a temporary name and renamed into place.
pub fn export(model: &CausalLm, src: &Path, dst: &Path) -> anyhow::Result<()> {
    let name = dst
        .file_name()
        .context("export path has no final component")?
        .to_string_lossy()
        .to_string();
    let tmp = dst.with_file_name(format!(".{name}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    model.save_pretrained(&tmp, ExportOptions::default())?;
    for f in TOKENIZER_FILES {
        let from = src.join(f);
        if from.exists() {
            std::fs::copy(&from, tmp.join(f))
                .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
        }
    }
    if dst.exists() {
        std::fs::remove_dir_all(dst).with_context(|| format!("replacing {}", dst.display()))?;
    }
    std::fs::rename(&tmp, dst).with_context(|| format!("renaming into {}", dst.display()))?;
    Ok(())
}

/// A progress bar on a terminal; a plain line every ~5% otherwise (logs, CI).
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    label: String,
    start: u64,
    t0: std::time::Instant,
}

impl Progress {
    /// A bar for steps `start..total`.
    pub fn new(label: &str, start: u64, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta} {msg}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            b.set_prefix(label.to_string());
            b.set_position(start);
            b
        });
        Self {
            bar,
            total,
            label: label.to_string(),
            start,
            t0: std::time::Instant::now(),
        }
    }

    /// Step `pos` done, with a status message.
    pub fn set(&self, pos: u64, msg: String) {
        match &self.bar {
            Some(b) => {
                b.set_position(pos);
                b.set_message(msg);
            }
            None => {
                let every = (self.total / 20).max(1);
                if pos.is_multiple_of(every) || pos == self.total {
                    let done = pos.saturating_sub(self.start).max(1) as f64;
                    let secs = self.t0.elapsed().as_secs_f64();
                    let eta = secs / done * self.total.saturating_sub(pos) as f64;
                    eprintln!(
                        "{} {pos}/{}  {secs:.0}s, eta {eta:.0}s  {msg}",
                        self.label, self.total
                    );
                }
            }
        }
    }

    /// Leaves the bar at its last state.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}
