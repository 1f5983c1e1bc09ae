//! `rlft webscale run|merge|stats`: the Webscale-RL data engine (rlft-webscale), pretraining
//! documents to verifiable QA pairs; and the `llm_judge` verifier of `rlft train`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rlft_rollout::{LocalConfig, LocalEngine};
use rlft_tasks::{DynVerifier, TaskError, VerifierConfig};
use rlft_webscale::{
    ChatModel, EngineChatModel, HttpChatConfig, HttpChatModel, LlmJudge, MergeOptions, ModelConfig,
    Models, Pipeline, Progress, Shard, Stats, WebscaleConfig,
};
use serde::{Deserialize, Serialize};

use crate::common::load_checkpoint;
use crate::device::{Backend, device};

/// Options of `rlft webscale`.
#[derive(Args, Debug, Clone)]
pub struct WebscaleArgs {
    #[command(subcommand)]
    command: WebscaleCommand,
}

#[derive(Subcommand, Debug, Clone)]
enum WebscaleCommand {
    /// Run the pipeline on the config's documents (resumes from the output directory's reply
    /// cache).
    Run(RunArgs),
    /// Merge shard outputs into one dataset (global dedup, optional decontamination).
    Merge(MergeArgs),
    /// Print the stats of an output directory and check its accounting.
    Stats(StatsArgs),
}

/// `rlft webscale run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The run's TOML config (docs/webscale.md).
    #[arg(long)]
    pub config: PathBuf,
    /// Output directory, overriding the config's `out`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Process shard i of n (documents by id hash), e.g. `0/4`.
    #[arg(long, default_value = "0/1")]
    pub shard: Shard,
    /// Read the input and run the deterministic gates, print the plan, make no model call.
    #[arg(long)]
    pub dry_run: bool,
    /// Compute backend of `backend = "local"` models.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub device: Backend,
}

/// `rlft webscale merge`.
#[derive(Args, Debug, Clone)]
pub struct MergeArgs {
    /// Shard output directories.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Output directory of the merged dataset.
    #[arg(long)]
    pub out: PathBuf,
    /// Benchmark JSONL files to decontaminate against again (repeatable).
    #[arg(long = "benchmark")]
    pub benchmarks: Vec<PathBuf>,
    /// N-gram length (default: the shards').
    #[arg(long)]
    pub ngram: Option<usize>,
}

/// `rlft webscale stats`.
#[derive(Args, Debug, Clone)]
pub struct StatsArgs {
    /// An output directory of `run` or `merge`.
    pub dir: PathBuf,
}

/// Runs `rlft webscale …`; returns what to print on stdout.
pub fn run(args: &WebscaleArgs) -> anyhow::Result<String> {
    match &args.command {
        WebscaleCommand::Run(a) => run_pipeline(a),
        WebscaleCommand::Merge(a) => {
            let (manifest, stats) = rlft_webscale::merge(&MergeOptions {
                inputs: a.shards.clone(),
                out: a.out.clone(),
                benchmarks: a.benchmarks.clone(),
                ngram: a.ngram,
            })?;
            Ok(format!(
                "{}\n{}",
                summary(&stats),
                format_args!(
                    "merged {} shard(s), status {}: {}",
                    manifest.shards.len(),
                    manifest.status,
                    a.out.display()
                )
            ))
        }
        WebscaleCommand::Stats(a) => {
            let (records, failures) = rlft_webscale::read_outputs(&a.dir)?;
            let stats = Stats::from_outputs(&records, &failures);
            let path = a.dir.join("stats.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let on_disk: Stats = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            if on_disk != stats {
                bail!(
                    "{} does not match dataset.jsonl and failures.jsonl (edited or partial output?)",
                    path.display()
                );
            }
            Ok(summary(&stats))
        }
    }
}

/// A human summary of stats.
fn summary(s: &Stats) -> String {
    let mut out = format!(
        "input {} docs: {} accepted ({:.1}%), {} rejected; {} QA records; {} source words\n",
        s.input_docs,
        s.accepted_docs,
        100.0 * s.doc_accept_rate,
        s.input_docs - s.accepted_docs,
        s.records,
        s.source_tokens
    );
    out.push_str("rejected docs by reason:");
    for (k, v) in &s.rejected_docs {
        out.push_str(&format!(" {k}={v}"));
    }
    out.push_str("\nfailure records by reason:");
    for (k, v) in &s.failures {
        out.push_str(&format!(" {k}={v}"));
    }
    out.push_str("\nrecords by domain:");
    for (k, v) in &s.domains {
        out.push_str(&format!(" {k:?}={v}"));
    }
    if s.retryable_failures > 0 {
        out.push_str(&format!(
            "\n{} retryable failure(s): run again to retry them",
            s.retryable_failures
        ));
    }
    out
}

fn run_pipeline(a: &RunArgs) -> anyhow::Result<String> {
    let mut cfg = WebscaleConfig::from_file(&a.config)?;
    if let Some(out) = &a.out {
        cfg.out = out.clone();
    }
    if a.dry_run {
        // No model is built: only the deterministic stages run.
        let judge_free = Models::all(Arc::new(rlft_webscale::ScriptedModel::new(
            "dry-run",
            |_: &_| Err(rlft_webscale::LlmError::terminal("dry run")),
        )));
        let plan = Pipeline::new(cfg, judge_free)?.plan(a.shard)?;
        return Ok(serde_json::to_string_pretty(&plan)?);
    }
    let mut loaded: HashMap<PathBuf, Arc<dyn ChatModel>> = HashMap::new();
    let dev_choice = a.device;
    let mut local = |stage: &str, mc: &ModelConfig| -> rlft_webscale::Result<Arc<dyn ChatModel>> {
        let bad = |reason: String| rlft_webscale::WebscaleError::Model {
            stage: stage.into(),
            reason,
        };
        let path = mc
            .checkpoint
            .clone()
            .ok_or_else(|| bad("checkpoint is required".into()))?;
        if let Some(m) = loaded.get(&path) {
            return Ok(m.clone());
        }
        let dev = device(dev_choice).map_err(|e| bad(format!("{e:#}")))?;
        let (model, tok) = load_checkpoint(&path, &dev).map_err(|e| bad(format!("{e:#}")))?;
        let id = mc.model_name(stage);
        let engine = LocalEngine::new(
            model,
            Some(tok),
            LocalConfig {
                model_id: id.clone(),
                ..LocalConfig::default()
            },
        )
        .map_err(|e| bad(e.to_string()))?;
        let m: Arc<dyn ChatModel> = Arc::new(EngineChatModel::new(engine, id));
        loaded.insert(path, m.clone());
        Ok(m)
    };
    let models = Models::from_config(&cfg, Some(&mut local))?;
    let out_dir = cfg.out.clone();
    let pipeline = Pipeline::new(cfg, models)?;
    let progress = Arc::new(Progress::default());
    let done = Arc::new(AtomicBool::new(false));
    let bar_thread = std::io::stderr().is_terminal().then(|| {
        let (p, d) = (progress.clone(), done.clone());
        std::thread::spawn(move || draw(&p, &d))
    });
    let result = pipeline.run(a.shard, &progress);
    done.store(true, Ordering::Relaxed);
    if let Some(t) = bar_thread {
        let _ = t.join();
    }
    let out = result?;
    Ok(format!(
        "{}\n{} model call(s), {} cached repl(ies)\n{}",
        summary(&out.stats),
        out.calls,
        out.cache_hits,
        out_dir.display()
    ))
}

/// The progress bar: documents, calls, accept rate, ETA.
fn draw(p: &Progress, done: &AtomicBool) {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "webscale [{bar:30}] {pos}/{len} docs {elapsed_precise} eta {eta} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    let t0 = Instant::now();
    while !done.load(Ordering::Relaxed) {
        let total = p.docs_total.load(Ordering::Relaxed) as u64;
        let n = p.docs_done.load(Ordering::Relaxed) as u64;
        let acc = p.docs_accepted.load(Ordering::Relaxed) as f64;
        bar.set_length(total);
        bar.set_position(n);
        bar.set_message(format!(
            "calls {} cached {} accept {:.0}% {:.1} docs/s",
            p.calls.load(Ordering::Relaxed),
            p.cache_hits.load(Ordering::Relaxed),
            if n == 0 { 0.0 } else { 100.0 * acc / n as f64 },
            n as f64 / t0.elapsed().as_secs_f64().max(1e-9)
        ));
        std::thread::sleep(Duration::from_millis(200));
    }
    bar.finish_and_clear();
}

/// `[verifier]` of `rlft train`: any rlft-tasks verifier, or `kind = "llm_judge"` (an
/// OpenAI-compatible judge model, the Webscale-RL paper's reward).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TrainVerifier {
    /// `math`, `countdown`, `exact_match`, `qa_match`, ….
    Task(VerifierConfig),
    /// `llm_judge`.
    LlmJudge(LlmJudgeConfig),
}

/// `[verifier] kind = "llm_judge"`: the judge's server and model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmJudgeConfig {
    /// Always `llm_judge`.
    pub kind: String,
    /// Server, model, key variable, timeouts and retries (rlft-webscale's
    /// [`HttpChatConfig`]; its defaults, e.g. vLLM's `http://127.0.0.1:8000/v1`).
    #[serde(flatten)]
    pub http: HttpChatConfig,
    /// Most tokens per verdict. Default 512 (\[D\]).
    #[serde(default = "judge_tokens")]
    pub max_tokens: usize,
}

fn judge_tokens() -> usize {
    512
}

impl<'de> Deserialize<'de> for TrainVerifier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let table = toml::Table::deserialize(d)?;
        if table.get("kind").and_then(|k| k.as_str()) == Some("llm_judge") {
            toml::Value::Table(table)
                .try_into()
                .map(Self::LlmJudge)
                .map_err(D::Error::custom)
        } else {
            toml::Value::Table(table)
                .try_into()
                .map(Self::Task)
                .map_err(D::Error::custom)
        }
    }
}

impl TrainVerifier {
    /// Builds the verifier.
    ///
    /// # Errors
    /// [`TaskError::Config`] naming the bad field.
    pub fn build(&self) -> Result<DynVerifier, TaskError> {
        match self {
            Self::Task(c) => c.build(),
            Self::LlmJudge(c) => {
                let model = HttpChatModel::new(c.http.clone(), "verifier").map_err(|e| {
                    TaskError::Config {
                        field: "verifier".into(),
                        reason: e.to_string(),
                    }
                })?;
                Ok(Box::new(LlmJudge::new(Arc::new(model), c.max_tokens)))
            }
        }
    }
}
