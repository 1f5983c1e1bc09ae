//! The pipeline: S0–S8 over documents, LLM stages concurrent, everything else exact.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use rlft_rollout::Message;
use serde::{Deserialize, Serialize};

use crate::cache::{Cached, ReplyCache, cache_key};
use crate::chat::{ChatModel, ChatRequest, LlmError};
use crate::config::{ModelConfig, WebscaleConfig};
use crate::decontam::{BenchIndex, bench_names};
use crate::domain::{DOMAINS, canonical_domain, clean_personas};
use crate::error::{Result, WebscaleError};
use crate::fewshot::{FewshotLibrary, render_fewshot, unit_seed};
use crate::ingest::{Document, dedupe, read_documents, sha256_hex, shard_of};
use crate::leak::{answer_leaks, leak_tokens};
use crate::parse::{ParseError, clip, parse_object, string_fields, yes_no};
use crate::prefilter::{PrefilterReject, prefilter, truncate, word_count};
use crate::prompts::{
    CHECKER_PROMPT, FILTER_PROMPT, GENERATOR_PROMPT, TAGGER_PROMPT, prompt_hash, render,
};
use crate::record::{Checks, Failure, Record, StageModels, TrainLine, sort_failures, sort_records};
use crate::stats::Stats;

/// The version written into every record and manifest.
pub const PIPELINE_VERSION: &str = concat!("rlft-webscale ", env!("CARGO_PKG_VERSION"));

/// Longest model reply kept in a failure record, bytes.
const MAX_RAW: usize = 2000;

/// The model of each LLM stage.
#[derive(Clone)]
pub struct Models {
    /// S2 document filter.
    pub filter: Arc<dyn ChatModel>,
    /// S3 tagger.
    pub tagger: Arc<dyn ChatModel>,
    /// S5 generator.
    pub generator: Arc<dyn ChatModel>,
    /// S6b checker.
    pub checker: Arc<dyn ChatModel>,
}

/// Builds a `backend = "local"` model: (stage, its config) → model.
pub type LocalBuilder<'a> = dyn FnMut(&str, &ModelConfig) -> Result<Arc<dyn ChatModel>> + 'a;

impl Models {
    /// The models `cfg.models` describes: HTTP and scripted ones here, local ones through
    /// `local` (the CLI loads checkpoints; pass `None` where no local model is available).
    ///
    /// # Errors
    /// [`WebscaleError::Model`] for a bad HTTP config or a local backend without a builder.
    pub fn from_config(
        cfg: &WebscaleConfig,
        mut local: Option<&mut LocalBuilder<'_>>,
    ) -> Result<Self> {
        let mut built: Vec<Arc<dyn ChatModel>> = Vec::new();
        for stage in crate::config::LLM_STAGES {
            let mc = cfg.models.get(stage);
            let m: Arc<dyn ChatModel> = match mc.backend {
                crate::config::Backend::Http => Arc::new(crate::http::HttpChatModel::new(
                    mc.http_config(stage),
                    stage,
                )?),
                crate::config::Backend::Scripted => Arc::new(crate::fixture::fixture_model(stage)),
                crate::config::Backend::Local => match local.as_mut() {
                    Some(b) => b(stage, mc)?,
                    None => {
                        return Err(WebscaleError::Model {
                            stage: stage.into(),
                            reason: "backend = \"local\" needs a binary built with the `local` feature (the rlft CLI)".into(),
                        });
                    }
                },
            };
            built.push(m);
        }
        let mut it = built.into_iter();
        let mut next = || {
            it.next()
                .ok_or_else(|| WebscaleError::config("models", "missing stage"))
        };
        Ok(Self {
            filter: next()?,
            tagger: next()?,
            generator: next()?,
            checker: next()?,
        })
    }

    /// The same model for every stage.
    pub fn all(model: Arc<dyn ChatModel>) -> Self {
        Self {
            filter: model.clone(),
            tagger: model.clone(),
            generator: model.clone(),
            checker: model,
        }
    }
}

/// Live counters for a progress bar (all relaxed atomics).
#[derive(Debug, Default)]
pub struct Progress {
    /// Documents that reach the LLM stages.
    pub docs_total: AtomicUsize,
    /// Of those, done.
    pub docs_done: AtomicUsize,
    /// Documents with at least one QA so far.
    pub docs_accepted: AtomicUsize,
    /// Model calls made (cache misses).
    pub calls: AtomicUsize,
    /// Replies served by the cache.
    pub cache_hits: AtomicUsize,
}

/// Which slice of the input to process: `index` of `count` (by document id hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// 0-based.
    pub index: usize,
    /// At least 1.
    pub count: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    /// `i/n`, e.g. `0/4`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("want i/n, got {s:?}"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("bad shard index in {s:?}"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("bad shard count in {s:?}"))?;
        if count == 0 || index >= count {
            return Err(format!("need 0 ≤ i < n, got {s:?}"));
        }
        Ok(Self { index, count })
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Accepted QA pairs, sorted by `(doc_id, persona_index)`.
    pub records: Vec<Record>,
    /// Failed units, sorted by `(doc_id, persona_index, stage)`.
    pub failures: Vec<Failure>,
    /// Accounting.
    pub stats: Stats,
    /// Model calls made (cache misses).
    pub calls: usize,
    /// Replies served by the cache.
    pub cache_hits: usize,
}

/// `--dry-run`: what a run would do, without a model call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Input rows.
    pub input_docs: usize,
    /// Exact duplicates removed.
    pub duplicates: usize,
    /// Unique documents in this shard.
    pub shard_docs: usize,
    /// Rejected by S1 for length.
    pub too_short: usize,
    /// Rejected by S1 for language.
    pub lang: usize,
    /// Reaching the LLM stages.
    pub llm_docs: usize,
    /// Of those, truncated.
    pub truncated: usize,
    /// Most model calls: `llm_docs · (2 + 2 · max_personas)`.
    pub max_calls: usize,
    /// Benchmark items indexed.
    pub bench_items: usize,
}

/// A document past S1.
struct Ready<'a> {
    doc: &'a Document,
    text: &'a str,
    truncated: bool,
    tokens: usize,
}

/// Spaces request starts at `1 / rate` seconds.
struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    fn wait(&self) {
        let slot = {
            let Ok(mut next) = self.next.lock() else {
                return;
            };
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
    }
}

/// Shared state of one run.
struct Ctx<'a> {
    cache: &'a ReplyCache,
    limiter: Option<RateLimiter>,
    progress: &'a Progress,
    fatal: Mutex<Option<WebscaleError>>,
    abort: AtomicBool,
}

/// The Webscale-RL pipeline.
pub struct Pipeline {
    cfg: WebscaleConfig,
    models: Models,
    library: FewshotLibrary,
    bench: BenchIndex,
    hashes: BTreeMap<String, String>,
    stage_models: StageModels,
}

/// The outcome of one unit.
enum Unit {
    Ok(Box<Record>),
    Fail(Failure),
}

impl Pipeline {
    /// A pipeline for `cfg` with these models; reads the few-shot library and the benchmark
    /// files the config names.
    ///
    /// # Errors
    /// [`WebscaleError`] from reading those files.
    pub fn new(cfg: WebscaleConfig, models: Models) -> Result<Self> {
        let library = match &cfg.pipeline.fewshot_library {
            Some(p) => FewshotLibrary::from_file(p)?,
            None => FewshotLibrary::builtin(),
        };
        let bench = BenchIndex::from_files(&cfg.decontam.benchmarks, cfg.decontam.ngram)?;
        Ok(Self::with_parts(cfg, models, library, bench))
    }

    /// A pipeline from parts already loaded.
    pub fn with_parts(
        cfg: WebscaleConfig,
        models: Models,
        library: FewshotLibrary,
        bench: BenchIndex,
    ) -> Self {
        let hashes = [
            ("filter", FILTER_PROMPT),
            ("tagger", TAGGER_PROMPT),
            ("generator", GENERATOR_PROMPT),
            ("checker", CHECKER_PROMPT),
        ]
        .into_iter()
        .map(|(k, t)| (k.to_string(), prompt_hash(t)))
        .collect();
        let stage_models = StageModels {
            filter: models.filter.model_id().to_string(),
            tagger: models.tagger.model_id().to_string(),
            generator: models.generator.model_id().to_string(),
            checker: models.checker.model_id().to_string(),
        };
        Self {
            cfg,
            models,
            library,
            bench,
            hashes,
            stage_models,
        }
    }

    /// The config.
    pub fn config(&self) -> &WebscaleConfig {
        &self.cfg
    }

    /// The benchmark index.
    pub fn bench(&self) -> &BenchIndex {
        &self.bench
    }

    fn pool(&self) -> Result<rayon::ThreadPool> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.cfg.concurrency.threads)
            .build()
            .map_err(|e| WebscaleError::config("concurrency.threads", e.to_string()))
    }

    /// Reads the configured input.
    ///
    /// # Errors
    /// As [`read_documents`].
    pub fn read_input(&self) -> Result<Vec<Document>> {
        let pool = self.pool()?;
        pool.install(|| read_documents(&self.cfg.input))
    }

    /// S0 and S1 only: what a run would do.
    ///
    /// # Errors
    /// Reading the input.
    pub fn plan(&self, shard: Shard) -> Result<Plan> {
        let docs = self.read_input()?;
        let input_docs = docs.len();
        let (kept, dups) = dedupe(docs);
        let kept: Vec<Document> = kept
            .into_iter()
            .filter(|d| shard_of(&d.doc_id, shard.count) == shard.index)
            .collect();
        let pool = self.pool()?;
        let gates: Vec<std::result::Result<bool, PrefilterReject>> = pool.install(|| {
            kept.par_iter()
                .map(|d| {
                    prefilter(&d.text, &self.cfg.prefilter)
                        .map(|()| truncate(&d.text, self.cfg.prefilter.max_doc_chars).1)
                })
                .collect()
        });
        let count = |r: PrefilterReject| gates.iter().filter(|g| **g == Err(r)).count();
        let llm_docs = gates.iter().filter(|g| g.is_ok()).count();
        Ok(Plan {
            input_docs,
            duplicates: dups.len(),
            shard_docs: kept.len(),
            too_short: count(PrefilterReject::TooShort),
            lang: count(PrefilterReject::Lang),
            llm_docs,
            truncated: gates.iter().filter(|g| **g == Ok(true)).count(),
            max_calls: llm_docs * (2 + 2 * self.cfg.pipeline.max_personas),
            bench_items: self.bench.len(),
        })
    }

    /// Runs on the configured input and writes `dataset.jsonl`, `train.jsonl`,
    /// `failures.jsonl`, `stats.json` and `manifest.json` into `out` (atomically), with the
    /// reply cache at `out/cache/replies.jsonl`. Running again resumes: cached replies are
    /// reused, failed calls retried.
    ///
    /// # Errors
    /// Reading the input, writing the outputs or the cache.
    pub fn run(&self, shard: Shard, progress: &Progress) -> Result<RunOutput> {
        let out = &self.cfg.out;
        std::fs::create_dir_all(out).map_err(|e| WebscaleError::io(out, e))?;
        let cache = ReplyCache::open(&out.join("cache").join("replies.jsonl"))?;
        let docs = self.read_input()?;
        let result = self.process(docs, &cache, shard, progress)?;
        write_outputs(
            out,
            &result.records,
            &result.failures,
            &self.manifest_extra(shard, &result),
        )?;
        Ok(result)
    }

    fn manifest_extra(&self, shard: Shard, r: &RunOutput) -> Manifest {
        Manifest {
            pipeline_version: PIPELINE_VERSION.into(),
            config_hash: self.cfg.output_hash(),
            shards: vec![shard],
            status: if r.stats.retryable_failures == 0 {
                "complete".into()
            } else {
                "retryable_failures".into()
            },
            input_docs: r.stats.input_docs,
            records: r.records.len(),
            failures: r.failures.len(),
            benchmarks: bench_names(&self.bench),
            bench_items: self.bench.len(),
            ngram: self.cfg.decontam.ngram,
            train_instruction: self.cfg.pipeline.train_instruction.clone(),
            files: BTreeMap::new(),
        }
    }

    /// The pipeline on `docs` (raw input rows, any order) with `cache`; nothing written
    /// but the cache.
    ///
    /// # Errors
    /// A cache write failure, or a bad `concurrency.threads`.
    pub fn process(
        &self,
        docs: Vec<Document>,
        cache: &ReplyCache,
        shard: Shard,
        progress: &Progress,
    ) -> Result<RunOutput> {
        let pool = self.pool()?;
        let mut failures = Vec::new();
        // S0
        let (kept, dups) = dedupe(docs);
        let in_shard = |d: &Document| shard_of(&d.doc_id, shard.count) == shard.index;
        for d in dups.iter().filter(|d| in_shard(d)) {
            failures.push(fail(
                d,
                None,
                "s0",
                "duplicate",
                format!("same text as another row (doc_id {})", d.doc_id),
                String::new(),
                false,
            ));
        }
        let kept: Vec<Document> = kept.into_iter().filter(in_shard).collect();
        // S1
        let gated: Vec<std::result::Result<Ready<'_>, PrefilterReject>> = pool.install(|| {
            kept.par_iter()
                .map(|doc| {
                    prefilter(&doc.text, &self.cfg.prefilter)?;
                    let (text, truncated) = truncate(&doc.text, self.cfg.prefilter.max_doc_chars);
                    Ok(Ready {
                        doc,
                        text,
                        truncated,
                        tokens: word_count(text),
                    })
                })
                .collect()
        });
        let mut ready = Vec::new();
        for (doc, g) in kept.iter().zip(gated) {
            match g {
                Ok(r) => ready.push(r),
                Err(PrefilterReject::TooShort) => failures.push(fail(
                    doc,
                    None,
                    "s1",
                    "too_short",
                    format!(
                        "{} words < min_tokens {}",
                        word_count(&doc.text),
                        self.cfg.prefilter.min_tokens
                    ),
                    String::new(),
                    false,
                )),
                Err(PrefilterReject::Lang) => failures.push(fail(
                    doc,
                    None,
                    "s1",
                    "lang",
                    format!("language not in {:?}", self.cfg.prefilter.languages),
                    String::new(),
                    false,
                )),
            }
        }
        // S2–S6, concurrent.
        let ctx = Ctx {
            cache,
            limiter: self
                .cfg
                .concurrency
                .requests_per_second
                .map(|r| RateLimiter {
                    interval: Duration::from_secs_f64(1.0 / r),
                    next: Mutex::new(Instant::now()),
                }),
            progress,
            fatal: Mutex::new(None),
            abort: AtomicBool::new(false),
        };
        progress.docs_total.store(ready.len(), Ordering::Relaxed);
        let slots: Vec<Mutex<Vec<Unit>>> = ready.iter().map(|_| Mutex::new(Vec::new())).collect();
        let next = AtomicUsize::new(0);
        let workers = self.cfg.concurrency.max_in_flight.min(ready.len()).max(1);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    while !ctx.abort.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(r) = ready.get(i) else { break };
                        let units = self.document(r, &ctx);
                        if units.iter().any(|u| matches!(u, Unit::Ok(_))) {
                            progress.docs_accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Ok(mut slot) = slots[i].lock() {
                            *slot = units;
                        }
                        progress.docs_done.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        if let Some(e) = ctx.fatal.lock().ok().and_then(|mut f| f.take()) {
            return Err(e);
        }
        let mut candidates = Vec::new();
        for slot in slots {
            for u in slot.into_inner().unwrap_or_default() {
                match u {
                    Unit::Ok(r) => candidates.push(*r),
                    Unit::Fail(f) => failures.push(f),
                }
            }
        }
        // S7
        let mut records = Vec::with_capacity(candidates.len());
        if self.bench.is_empty() {
            records = candidates;
        } else {
            let hits: Vec<Option<String>> = pool.install(|| {
                candidates
                    .par_iter()
                    .map(|r| {
                        self.bench
                            .hit(&r.question)
                            .or_else(|| self.bench.hit(&format!("{} {}", r.question, r.answer)))
                    })
                    .collect()
            });
            for (r, hit) in candidates.into_iter().zip(hits) {
                match hit {
                    Some(item) => failures.push(Failure {
                        doc_id: r.doc_id.clone(),
                        source: r.source.clone(),
                        source_row: r.source_row.clone(),
                        persona_index: Some(r.persona_index),
                        stage: "s7".into(),
                        reason: "decontam_hit".into(),
                        detail: format!(
                            "{}-gram match with benchmark item {item}",
                            self.cfg.decontam.ngram
                        ),
                        raw_response: clip(&format!("{}\n{}", r.question, r.answer), MAX_RAW),
                        retryable: false,
                    }),
                    None => records.push(r),
                }
            }
        }
        // S8 order.
        sort_records(&mut records);
        sort_failures(&mut failures);
        let stats = Stats::from_outputs(&records, &failures);
        Ok(RunOutput {
            records,
            failures,
            stats,
            calls: progress.calls.load(Ordering::Relaxed),
            cache_hits: progress.cache_hits.load(Ordering::Relaxed),
        })
    }

    /// One model call through the cache and the rate limiter.
    fn call(
        &self,
        stage: &str,
        model: &dyn ChatModel,
        mc: &ModelConfig,
        prompt: String,
        seed: u64,
        ctx: &Ctx<'_>,
    ) -> std::result::Result<String, LlmError> {
        let req = ChatRequest {
            messages: vec![Message::new("user", prompt)],
            temperature: mc.temperature,
            max_tokens: mc.max_tokens,
            seed: Some(seed),
            stop: Vec::new(),
        };
        let key = cache_key(stage, model.model_id(), &req);
        match ctx.cache.get(&key) {
            Some(Cached::Reply(reply)) => {
                ctx.progress.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(reply);
            }
            Some(Cached::Terminal(e)) => {
                ctx.progress.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Err(LlmError::terminal(e));
            }
            None => {}
        }
        if ctx.abort.load(Ordering::Relaxed) {
            return Err(LlmError::retryable("the run is stopping"));
        }
        if let Some(l) = &ctx.limiter {
            l.wait();
        }
        ctx.progress.calls.fetch_add(1, Ordering::Relaxed);
        let (result, cached) = match model.chat(&req) {
            Ok(reply) => (Ok(reply.clone()), Cached::Reply(reply)),
            Err(e) if e.retryable => return Err(e),
            Err(e) => (Err(e.clone()), Cached::Terminal(e.message)),
        };
        if let Err(e) = ctx.cache.put(key, cached) {
            ctx.abort.store(true, Ordering::Relaxed);
            if let Ok(mut f) = ctx.fatal.lock() {
                f.get_or_insert(e);
            }
            return Err(LlmError::retryable("the reply cache cannot be written"));
        }
        result
    }

    /// Call + parse with `max_parse_retries` re-asks (each with its own seed). On failure:
    /// (reason, detail, raw reply, retryable).
    fn ask<T>(
        &self,
        stage: &str,
        unit: u64,
        doc_id: &str,
        prompt: &str,
        ctx: &Ctx<'_>,
        parse: impl Fn(&str) -> std::result::Result<T, ParseError>,
    ) -> std::result::Result<(T, String), (String, String, String, bool)> {
        let (model, mc): (&dyn ChatModel, &ModelConfig) = match stage {
            "filter" => (&*self.models.filter, &self.cfg.models.filter),
            "tagger" => (&*self.models.tagger, &self.cfg.models.tagger),
            "generator" => (&*self.models.generator, &self.cfg.models.generator),
            _ => (&*self.models.checker, &self.cfg.models.checker),
        };
        let mut last = None;
        for attempt in 0..=self.cfg.pipeline.max_parse_retries {
            let seed = unit_seed(self.cfg.seed, doc_id, (unit << 8) | u64::from(attempt));
            let reply = match self.call(stage, model, mc, prompt.to_string(), seed, ctx) {
                Ok(r) => r,
                Err(e) => return Err(("api_error".into(), e.message, String::new(), e.retryable)),
            };
            match parse(&reply) {
                Ok(v) => return Ok((v, reply)),
                Err(e) => last = Some((e.0, reply)),
            }
        }
        let (detail, raw) = last.unwrap_or_default();
        Err((
            "parse_error".into(),
            format!("{stage}: {detail}"),
            clip(&raw, MAX_RAW),
            false,
        ))
    }

    /// S2–S6 of one document.
    fn document(&self, r: &Ready<'_>, ctx: &Ctx<'_>) -> Vec<Unit> {
        let doc = r.doc;
        let id = &doc.doc_id;
        let p = &self.cfg.pipeline;
        let fail_doc =
            |stage: &str, (reason, detail, raw, retryable): (String, String, String, bool)| {
                vec![Unit::Fail(fail(
                    doc, None, stage, &reason, detail, raw, retryable,
                ))]
            };
        // S2
        let filter_prompt = render(FILTER_PROMPT, &[("document", r.text)]);
        let qualified = self.ask("filter", 1, id, &filter_prompt, ctx, |reply| {
            let m = parse_object(reply)?;
            let v = string_fields(&m, &["qualified"])?;
            yes_no(&v[0], "qualified")
        });
        match qualified {
            Err(e) => return fail_doc("s2", e),
            Ok((false, raw)) => {
                return fail_doc(
                    "s2",
                    (
                        "llm_filter_reject".into(),
                        "qualified = N".into(),
                        clip(&raw, MAX_RAW),
                        false,
                    ),
                );
            }
            Ok((true, _)) => {}
        }
        // S3
        let fixed = p.domain.as_deref().and_then(canonical_domain);
        let (domain, personas) = if let (Some(d), false) = (fixed, p.use_persona) {
            (d, vec![format!("{d} instructor")])
        } else {
            let tag_prompt = render(
                TAGGER_PROMPT,
                &[("document", r.text), ("domains", &DOMAINS.join(", "))],
            );
            let tags = self.ask("tagger", 2, id, &tag_prompt, ctx, |reply| {
                let m = parse_object(reply)?;
                let v = string_fields(&m, &["domain", "persona"])?;
                Ok((v[0].clone(), v[1].clone()))
            });
            let ((raw_domain, raw_personas), raw) = match tags {
                Err(e) => return fail_doc("s3", e),
                Ok(t) => t,
            };
            let domain = match fixed.or_else(|| canonical_domain(&raw_domain)) {
                Some(d) => d,
                None => {
                    return fail_doc(
                        "s3",
                        (
                            "domain_invalid".into(),
                            format!(
                                "domain {:?} is not one of the 10 labels",
                                clip(&raw_domain, 80)
                            ),
                            clip(&raw, MAX_RAW),
                            false,
                        ),
                    );
                }
            };
            let personas = if p.use_persona {
                clean_personas(&raw_personas, p.max_personas)
            } else {
                vec![format!("{domain} instructor")]
            };
            if personas.is_empty() {
                return fail_doc(
                    "s3",
                    (
                        "no_persona".into(),
                        "no persona after cleaning".into(),
                        clip(&raw, MAX_RAW),
                        false,
                    ),
                );
            }
            (domain, personas)
        };
        // S4–S6 per persona.
        let mut units = Vec::new();
        let mut seen_questions: HashSet<Vec<String>> = HashSet::new();
        for (k, persona) in personas.iter().enumerate() {
            let pfail =
                |stage: &str, (reason, detail, raw, retryable): (String, String, String, bool)| {
                    Unit::Fail(fail(doc, Some(k), stage, &reason, detail, raw, retryable))
                };
            let shots = self
                .library
                .select(domain, p.num_fewshot, self.cfg.seed, id, k);
            let fewshot = render_fewshot(&shots);
            let gen_prompt = render(
                GENERATOR_PROMPT,
                &[
                    ("persona", persona),
                    ("fewshot", &fewshot),
                    ("document", r.text),
                ],
            );
            let qa = self.ask(
                "generator",
                3 + 2 * k as u64,
                id,
                &gen_prompt,
                ctx,
                |reply| {
                    let m = parse_object(reply)?;
                    let v = string_fields(&m, &["question", "answer"])?;
                    let (q, a) = (v[0].trim().to_string(), v[1].trim().to_string());
                    if q.is_empty() || a.is_empty() {
                        return Err(ParseError("empty question or answer".into()));
                    }
                    Ok((q, a))
                },
            );
            let ((question, answer), raw) = match qa {
                Err(e) => {
                    units.push(pfail("s5", e));
                    continue;
                }
                Ok(v) => v,
            };
            // S6a
            if p.leak_guard && answer_leaks(&question, &answer) {
                units.push(pfail(
                    "s6",
                    (
                        "leak_guard".into(),
                        "the normalised answer occurs in the normalised question".into(),
                        clip(&raw, MAX_RAW),
                        false,
                    ),
                ));
                continue;
            }
            if p.dedupe_questions && !seen_questions.insert(leak_tokens(&question)) {
                units.push(pfail(
                    "s6",
                    (
                        "duplicate_question".into(),
                        "an earlier persona of this document asked the same question".into(),
                        clip(&raw, MAX_RAW),
                        false,
                    ),
                ));
                continue;
            }
            // S6b
            let check_prompt = render(
                CHECKER_PROMPT,
                &[
                    ("document", r.text),
                    ("question", &question),
                    ("answer", &answer),
                ],
            );
            let flags = self.ask(
                "checker",
                4 + 2 * k as u64,
                id,
                &check_prompt,
                ctx,
                |reply| {
                    let m = parse_object(reply)?;
                    let v =
                        string_fields(&m, &["has_context", "answer_correctness", "info_leakage"])?;
                    Ok([
                        yes_no(&v[0], "has_context")?,
                        yes_no(&v[1], "answer_correctness")?,
                        yes_no(&v[2], "info_leakage")?,
                    ])
                },
            );
            let ([context, correct, leak], raw) = match flags {
                Err(e) => {
                    units.push(pfail("s6", e));
                    continue;
                }
                Ok(v) => v,
            };
            if !(correct && !leak && context) {
                units.push(pfail(
                    "s6",
                    (
                        "checker_reject".into(),
                        format!(
                            "has_context={}, answer_correctness={}, info_leakage={}",
                            yn(context),
                            yn(correct),
                            yn(leak)
                        ),
                        clip(&raw, MAX_RAW),
                        false,
                    ),
                ));
                continue;
            }
            let rid = sha256_hex(format!("{id}|{k}|{question}").as_bytes());
            units.push(Unit::Ok(Box::new(Record {
                id: rid,
                doc_id: id.clone(),
                source: doc.source.clone(),
                source_row: doc.source_row.clone(),
                pretrain_text: r.text.to_string(),
                truncated: r.truncated,
                source_tokens: r.tokens,
                domain: domain.to_string(),
                persona: persona.clone(),
                persona_index: k,
                question,
                answer,
                checks: Checks {
                    has_context: "Y".into(),
                    answer_correctness: "Y".into(),
                    info_leakage: "N".into(),
                    leak_guard: if p.leak_guard { "pass" } else { "off" }.into(),
                    decontam: if self.bench.is_empty() { "off" } else { "pass" }.into(),
                },
                fewshot_ids: shots.iter().map(|e| e.id.clone()).collect(),
                models: self.stage_models.clone(),
                prompt_hashes: self.hashes.clone(),
                pipeline_version: PIPELINE_VERSION.into(),
            })));
        }
        units
    }
}

fn yn(b: bool) -> &'static str {
    if b { "Y" } else { "N" }
}

fn fail(
    doc: &Document,
    persona: Option<usize>,
    stage: &str,
    reason: &str,
    detail: String,
    raw: String,
    retryable: bool,
) -> Failure {
    Failure {
        doc_id: doc.doc_id.clone(),
        source: doc.source.clone(),
        source_row: doc.source_row.clone(),
        persona_index: persona,
        stage: stage.into(),
        reason: reason.into(),
        detail,
        raw_response: raw,
        retryable,
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`PIPELINE_VERSION`].
    pub pipeline_version: String,
    /// [`WebscaleConfig::output_hash`].
    pub config_hash: String,
    /// The shards this output covers (one for a run, all for a merge).
    pub shards: Vec<Shard>,
    /// `complete`, or `retryable_failures` when a rerun would retry some units.
    pub status: String,
    /// Input rows.
    pub input_docs: usize,
    /// Lines of `dataset.jsonl`.
    pub records: usize,
    /// Lines of `failures.jsonl`.
    pub failures: usize,
    /// Benchmarks decontaminated against.
    pub benchmarks: Vec<String>,
    /// Benchmark items indexed.
    pub bench_items: usize,
    /// N-gram length of S7.
    pub ngram: usize,
    /// Appended to each question in `train.jsonl`.
    pub train_instruction: String,
    /// sha256 of each output file.
    pub files: BTreeMap<String, String>,
}

fn jsonl<T: Serialize>(rows: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rows {
        // Serialising these plain structs cannot fail.
        if let Ok(line) = serde_json::to_vec(r) {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
    }
    out
}

/// The training lines of `records` (prompt = question + `instruction`).
pub fn train_lines(records: &[Record], instruction: &str) -> Vec<TrainLine> {
    records
        .iter()
        .map(|r| TrainLine {
            id: r.id.clone(),
            prompt: format!("{}{instruction}", r.question),
            answer: r.answer.clone(),
            domain: r.domain.clone(),
        })
        .collect()
}

/// Writes the five output files atomically (`manifest.json` last); the manifest's
/// `train_instruction` is appended to each question in `train.jsonl`.
///
/// # Errors
/// [`WebscaleError::Io`].
pub fn write_outputs(
    out: &Path,
    records: &[Record],
    failures: &[Failure],
    manifest: &Manifest,
) -> Result<()> {
    let instruction = manifest.train_instruction.as_str();
    let stats = Stats::from_outputs(records, failures);
    let mut stats_bytes = serde_json::to_vec_pretty(&stats).unwrap_or_default();
    stats_bytes.push(b'\n');
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("dataset.jsonl", jsonl(records)),
        ("train.jsonl", jsonl(&train_lines(records, instruction))),
        ("failures.jsonl", jsonl(failures)),
        ("stats.json", stats_bytes),
    ];
    let mut manifest = manifest.clone();
    for (name, bytes) in &files {
        let path = out.join(name);
        rlft_util::fs::write_atomic(&path, bytes).map_err(|e| WebscaleError::io(&path, e))?;
        manifest.files.insert(name.to_string(), sha256_hex(bytes));
    }
    let mut m = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    m.push(b'\n');
    let path = out.join("manifest.json");
    rlft_util::fs::write_atomic(&path, m).map_err(|e| WebscaleError::io(&path, e))
}
