//! The run's TOML config (`rlft webscale run --config`), with every default's source.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::canonical_domain;
use crate::error::{Result, WebscaleError};
use crate::http::HttpChatConfig;
use crate::ingest::{InputConfig, sha256_hex};
use crate::prefilter::PrefilterConfig;

/// The four LLM stages, in pipeline order.
pub const LLM_STAGES: [&str; 4] = ["filter", "tagger", "generator", "checker"];

/// Where a stage's model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// An OpenAI-compatible server ([`HttpChatModel`](crate::HttpChatModel)). The default.
    #[default]
    Http,
    /// The local rlft model (`checkpoint`), through rlft-rollout's local engine; needs a
    /// binary built with the `local` feature (the `rlft` CLI is).
    Local,
    /// The fixture script ([`fixture_model`](crate::fixture_model)): for tests and dry runs.
    Scripted,
}

/// `[models.<stage>]`: one stage's model and sampling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// `http` (default), `local` or `scripted`.
    pub backend: Backend,
    /// Model name. Default: `gpt-4.1` for filter and generator, `gpt-4.1-mini` for tagger and
    /// checker (paper §3.1).
    pub model: Option<String>,
    /// Sampling temperature. Default 1.0: the reference run's CLI setting for every stage.
    pub temperature: f32,
    /// Most new tokens. Default 4096: the reference code.
    pub max_tokens: usize,
    /// HTTP settings (base URLs, key variable, timeouts, retries), flattened into this table.
    #[serde(flatten)]
    pub http: HttpSettings,
    /// Checkpoint directory for `backend = "local"` (relative to the config file).
    pub checkpoint: Option<PathBuf>,
}

/// The HTTP fields of [`ModelConfig`] (see [`HttpChatConfig`] for each default's source).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// See [`HttpChatConfig::base_urls`].
    pub base_urls: Vec<String>,
    /// See [`HttpChatConfig::api_key_env`].
    pub api_key_env: Option<String>,
    /// See [`HttpChatConfig::timeout_secs`].
    pub timeout_secs: f64,
    /// See [`HttpChatConfig::connect_timeout_secs`].
    pub connect_timeout_secs: f64,
    /// See [`HttpChatConfig::max_retries`].
    pub max_retries: u32,
    /// See [`HttpChatConfig::backoff_initial_ms`].
    pub backoff_initial_ms: u64,
    /// See [`HttpChatConfig::backoff_max_ms`].
    pub backoff_max_ms: u64,
    /// See [`HttpChatConfig::jitter_ms`].
    pub jitter_ms: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        let d = HttpChatConfig::default();
        Self {
            base_urls: d.base_urls,
            api_key_env: d.api_key_env,
            timeout_secs: d.timeout_secs,
            connect_timeout_secs: d.connect_timeout_secs,
            max_retries: d.max_retries,
            backoff_initial_ms: d.backoff_initial_ms,
            backoff_max_ms: d.backoff_max_ms,
            jitter_ms: d.jitter_ms,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Http,
            model: None,
            temperature: 1.0,
            max_tokens: 4096,
            http: HttpSettings::default(),
            checkpoint: None,
        }
    }
}

impl ModelConfig {
    /// The model name for `stage`.
    pub fn model_name(&self, stage: &str) -> String {
        match (&self.model, self.backend) {
            (Some(m), _) => m.clone(),
            (None, Backend::Scripted) => format!("scripted-{stage}"),
            (None, _) if matches!(stage, "tagger" | "checker") => "gpt-4.1-mini".into(),
            (None, _) => "gpt-4.1".into(),
        }
    }

    /// The HTTP client settings for `stage`.
    pub fn http_config(&self, stage: &str) -> HttpChatConfig {
        let h = &self.http;
        HttpChatConfig {
            base_urls: h.base_urls.clone(),
            model: self.model_name(stage),
            api_key_env: h.api_key_env.clone(),
            timeout_secs: h.timeout_secs,
            connect_timeout_secs: h.connect_timeout_secs,
            max_retries: h.max_retries,
            backoff_initial_ms: h.backoff_initial_ms,
            backoff_max_ms: h.backoff_max_ms,
            jitter_ms: h.jitter_ms,
        }
    }
}

/// `[models]`: one model config per LLM stage (the paper uses the big model for S2 and S5,
/// the mini one for S3 and S6).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// S2 document filter.
    pub filter: ModelConfig,
    /// S3 domain and persona tagging.
    pub tagger: ModelConfig,
    /// S5 QA generation.
    pub generator: ModelConfig,
    /// S6b quality check.
    pub checker: ModelConfig,
}

impl ModelsConfig {
    /// The config of `stage` (one of [`LLM_STAGES`]).
    pub fn get(&self, stage: &str) -> &ModelConfig {
        match stage {
            "filter" => &self.filter,
            "tagger" => &self.tagger,
            "generator" => &self.generator,
            _ => &self.checker,
        }
    }
}

/// `[pipeline]`: what the stages do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageConfig {
    /// Ask the tagger for personas. Default true (reference `use_persona`); false uses the
    /// one persona "`<domain> instructor`".
    pub use_persona: bool,
    /// A fixed domain for every document (with `use_persona = false` the tagger is not
    /// called). Default none.
    pub domain: Option<String>,
    /// Most personas (QA pairs) per document. Default 3: the tagger prompt's cap.
    pub max_personas: usize,
    /// Demonstrations per generator prompt. Default 2: reference `num_fewshot`.
    pub num_fewshot: usize,
    /// A JSONL demonstration library (`id, domain, original_material, persona, question,
    /// answer`); default: the library shipped with the crate.
    pub fewshot_library: Option<PathBuf>,
    /// Run the deterministic leak guard before the checker. Default true (\[D\]).
    pub leak_guard: bool,
    /// Re-ask (with another seed) after an unparseable reply, this many times. Default 0:
    /// the reference code gives up on the unit.
    pub max_parse_retries: u32,
    /// Drop a QA whose normalised question repeats an earlier persona's of the same
    /// document (reason `duplicate_question`, stage s6; spec §5 \[D\]). Default false: the
    /// reference code keeps them.
    pub dedupe_questions: bool,
    /// Appended to the question in `train.jsonl`'s prompt. Default asks for the answer in
    /// `<answer>` tags, which the `qa_match` verifier reads first (\[D\]; the paper's RL
    /// prompt template is not published).
    pub train_instruction: String,
}

impl Default for StageConfig {
    fn default() -> Self {
        Self {
            use_persona: true,
            domain: None,
            max_personas: 3,
            num_fewshot: 2,
            fewshot_library: None,
            leak_guard: true,
            max_parse_retries: 0,
            dedupe_questions: false,
            train_instruction: "\n\nGive a short final answer inside <answer></answer>.".into(),
        }
    }
}

/// `[decontam]`: benchmark decontamination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecontamConfig {
    /// JSONL benchmark files (`{bench, id, text}` a line); none turns S7 off.
    pub benchmarks: Vec<PathBuf>,
    /// N-gram length in words. Default 13: lm-eval-harness.
    pub ngram: usize,
}

impl Default for DecontamConfig {
    fn default() -> Self {
        Self {
            benchmarks: Vec::new(),
            ngram: 13,
        }
    }
}

/// `[concurrency]`: how hard to push (never changes the output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// LLM requests in flight at once. Default 64 (\[D\]; the reference code runs 10 worker
    /// threads).
    pub max_in_flight: usize,
    /// Most requests started per second, all stages together; none = unlimited.
    pub requests_per_second: Option<f64>,
    /// Threads of the deterministic stages; 0 = all cores. Default 0.
    pub threads: usize,
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 64,
            requests_per_second: None,
            threads: 0,
        }
    }
}

/// The whole TOML file of `rlft webscale run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebscaleConfig {
    /// Output directory (relative to the config file).
    pub out: PathBuf,
    /// Seed of few-shot selection and of the model calls. Default 0 (\[D\]; the reference
    /// code's `--seed` is never used).
    #[serde(default)]
    pub seed: u64,
    /// `[input]`.
    pub input: InputConfig,
    /// `[prefilter]`.
    #[serde(default)]
    pub prefilter: PrefilterConfig,
    /// `[pipeline]`.
    #[serde(default)]
    pub pipeline: StageConfig,
    /// `[decontam]`.
    #[serde(default)]
    pub decontam: DecontamConfig,
    /// `[concurrency]`.
    #[serde(default)]
    pub concurrency: ConcurrencyConfig,
    /// `[models.filter]`, `[models.tagger]`, `[models.generator]`, `[models.checker]`.
    #[serde(default)]
    pub models: ModelsConfig,
}

impl WebscaleConfig {
    /// Reads a TOML file; relative paths in it become relative to its directory.
    ///
    /// # Errors
    /// [`WebscaleError::Io`]; [`WebscaleError::Config`] with TOML's message (field and line);
    /// [`validate`](Self::validate)'s errors.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| WebscaleError::io(path, e))?;
        let mut cfg: Self = toml::from_str(&text)
            .map_err(|e| WebscaleError::config(path.display().to_string(), e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        cfg.rebase(base);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Makes relative paths relative to `base`.
    pub fn rebase(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.out);
        self.input.paths.iter_mut().for_each(fix);
        self.decontam.benchmarks.iter_mut().for_each(fix);
        if let Some(p) = &mut self.pipeline.fewshot_library {
            fix(p);
        }
        for m in [
            &mut self.models.filter,
            &mut self.models.tagger,
            &mut self.models.generator,
            &mut self.models.checker,
        ] {
            if let Some(p) = &mut m.checkpoint {
                fix(p);
            }
        }
    }

    /// Checks ranges and combinations.
    ///
    /// # Errors
    /// [`WebscaleError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |f: &str, r: String| Err(WebscaleError::config(f, r));
        if self.input.paths.is_empty() {
            return bad("input.paths", "is empty".into());
        }
        if self.pipeline.max_personas == 0 {
            return bad("pipeline.max_personas", "must be at least 1".into());
        }
        if let Some(d) = &self.pipeline.domain
            && canonical_domain(d).is_none()
        {
            return bad(
                "pipeline.domain",
                format!("{d:?} is not one of the 10 domains"),
            );
        }
        if self.decontam.ngram == 0 {
            return bad("decontam.ngram", "must be at least 1".into());
        }
        if self.concurrency.max_in_flight == 0 {
            return bad("concurrency.max_in_flight", "must be at least 1".into());
        }
        if let Some(r) = self.concurrency.requests_per_second
            && !(r.is_finite() && r > 0.0)
        {
            return bad(
                "concurrency.requests_per_second",
                format!("must be > 0, got {r}"),
            );
        }
        for stage in LLM_STAGES {
            let m = self.models.get(stage);
            if !(m.temperature.is_finite() && m.temperature >= 0.0) {
                return bad(
                    &format!("models.{stage}.temperature"),
                    format!("must be ≥ 0, got {}", m.temperature),
                );
            }
            if m.max_tokens == 0 {
                return bad(
                    &format!("models.{stage}.max_tokens"),
                    "must be at least 1".into(),
                );
            }
            if m.backend == Backend::Http && m.http.base_urls.is_empty() {
                return bad(&format!("models.{stage}.base_urls"), "is empty".into());
            }
            if m.backend == Backend::Local && m.checkpoint.is_none() {
                return bad(
                    &format!("models.{stage}.checkpoint"),
                    "is required with backend = \"local\"".into(),
                );
            }
        }
        Ok(())
    }

    /// A hash of everything that decides the output (not paths, URLs, timeouts or
    /// concurrency), for the manifest: shards of one dataset must share it.
    pub fn output_hash(&self) -> String {
        let models: Vec<_> = LLM_STAGES
            .iter()
            .map(|s| {
                let m = self.models.get(s);
                serde_json::json!([s, m.model_name(s), m.temperature, m.max_tokens])
            })
            .collect();
        let v = serde_json::json!({
            "seed": self.seed,
            "input": [self.input.text_field, self.input.id_field, self.input.source_field, self.input.source],
            "prefilter": self.prefilter,
            "pipeline": [self.pipeline.use_persona, self.pipeline.domain, self.pipeline.max_personas,
                self.pipeline.num_fewshot, self.pipeline.leak_guard, self.pipeline.max_parse_retries,
                self.pipeline.dedupe_questions, self.pipeline.train_instruction],
            "ngram": self.decontam.ngram,
            "models": models,
        });
        sha256_hex(v.to_string().as_bytes())[..16].to_string()
    }
}
