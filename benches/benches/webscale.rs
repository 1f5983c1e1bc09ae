//! Webscale-RL data engine throughput (rlft-webscale).
//!
//! `cargo bench -p rlft-benches --bench webscale`
//!
//! - `webscale/ingest_prefilter_dedup`: S0 + S1 on a synthetic JSONL corpus (12,000
//!   documents of ~1.5 KB English text recombined from the fixture's sentences, 5% exact
//!   duplicates, 5% too short): read and
//!   parse the file, `sha256(NFC(text))` ids, dedup, word count, language gate, truncation.
//!   Throughput in input bytes.
//! - `webscale/decontam_13gram`: S7 against a 100,000-item benchmark index (items of 20–60
//!   words): every candidate QA (question, then question + answer) checked. Throughput in
//!   candidate bytes.
//! - `webscale/end_to_end`: 200 documents through S0–S8 with every LLM stage on a loopback
//!   OpenAI-compatible stand-in that answers at once (the fixture script), 64 requests in
//!   flight, in-memory reply cache (every call a miss). Throughput in documents.
//!
//! The deterministic stages run on all cores (rayon); pin with `taskset -c 0,1` to measure
//! the 2-core figure.

#[path = "../../crates/webscale/tests/common/server.rs"]
mod server;

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rlft_webscale::{
    BenchIndex, BenchItem, Document, InputConfig, Models, Pipeline, PrefilterConfig, Progress,
    ReplyCache, Shard, WebscaleConfig, dedupe, doc_id, prefilter, read_documents, truncate,
};
use server::{Reply, StandIn, fixture_reply};

/// Sentences of the fixture documents (invented English encyclopedia prose).
fn sentences() -> Vec<String> {
    let docs = include_str!("../../crates/webscale/fixtures/docs.jsonl");
    let mut out = Vec::new();
    for line in docs.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_str().unwrap_or("");
        if id.starts_with('d') {
            for s in v["text"].as_str().unwrap().split(". ") {
                out.push(s.trim_end_matches('.').to_string());
            }
        }
    }
    out
}

/// Deterministic English text of about `n` words: fixture sentences in a seeded order.
fn text(pool: &[String], seed: u64, n: usize) -> String {
    let mut s = String::with_capacity(n * 7);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut words = 0;
    while words < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let sent = &pool[(x % pool.len() as u64) as usize];
        if !s.is_empty() {
            s.push_str(". ");
        }
        s.push_str(sent);
        words += sent.split_whitespace().count();
    }
    s.push('.');
    s
}

fn corpus(pool: &[String], path: &std::path::Path) -> u64 {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..12_000u64 {
        let body = match i % 20 {
            0 => text(pool, i - (i % 40), 260), // duplicates of an earlier document
            1 => text(pool, i, 20),             // too short
            _ => text(pool, i, 260),
        };
        writeln!(f, "{}", serde_json::json!({"id": i, "text": body})).unwrap();
    }
    f.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn deterministic(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("rlft-bench-webscale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("corpus.jsonl");
    let pool = sentences();
    let bytes = corpus(&pool, &path);
    let input = InputConfig {
        paths: vec![path.clone()],
        ..InputConfig::default()
    };
    let pf = PrefilterConfig::default();
    let mut g = c.benchmark_group("webscale");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("ingest_prefilter_dedup", |b| {
        b.iter(|| {
            use rayon::prelude::*;
            let docs = read_documents(&input).unwrap();
            let (kept, _dups) = dedupe(docs);
            let passed = kept
                .par_iter()
                .filter(|d| prefilter(&d.text, &pf).is_ok())
                .map(|d| truncate(&d.text, pf.max_doc_chars).0.len())
                .count();
            black_box(passed)
        })
    });

    let mut index = BenchIndex::new(13);
    for i in 0..100_000u64 {
        index.add(&BenchItem {
            bench: "synthetic".into(),
            id: i.to_string(),
            text: text(&pool, 1_000_000 + i, 20 + (i % 41) as usize),
        });
    }
    let candidates: Vec<String> = (0..40_000u64)
        .map(|i| {
            format!(
                "In what year was it founded, given that {}? {}",
                text(&pool, 5_000_000 + i, 25),
                i % 2000
            )
        })
        .collect();
    let refs: Vec<&str> = candidates.iter().map(String::as_str).collect();
    let cand_bytes: u64 = candidates.iter().map(|c| c.len() as u64).sum();
    g.throughput(Throughput::Bytes(cand_bytes));
    g.bench_function("decontam_13gram", |b| {
        b.iter(|| {
            // Question alone, then question + answer (both are candidate text).
            let hits = index.hits(&refs);
            black_box(hits.iter().filter(|h| h.is_some()).count())
        })
    });
    g.finish();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn end_to_end(c: &mut Criterion) {
    let pool = sentences();
    let server = StandIn::start(
        "127.0.0.1:0",
        Arc::new(|_: usize, req: &serde_json::Value| Reply::Text(fixture_reply(req))),
    );
    let url = server.base_url();
    let mut toml_text = String::from("out = \"unused\"\n[input]\npaths = [\"unused\"]\n");
    for stage in ["filter", "tagger", "generator", "checker"] {
        toml_text.push_str(&format!(
            "[models.{stage}]\nmodel = \"scripted-{stage}\"\nbase_urls = [\"{url}\"]\n"
        ));
    }
    let cfg: WebscaleConfig = toml::from_str(&toml_text).unwrap();
    let models = Models::from_config(&cfg, None).unwrap();
    let pipeline = Pipeline::new(cfg, models).unwrap();
    let docs: Vec<Document> = (0..200u64)
        .map(|i| {
            let t = format!(
                "The Guild Number {i} was founded in 18{:02}. {}",
                i % 100,
                text(&pool, i, 120)
            );
            Document {
                doc_id: doc_id(&t),
                source: "bench".into(),
                source_row: i.to_string(),
                text: t,
            }
        })
        .collect();
    let mut g = c.benchmark_group("webscale");
    g.sample_size(10);
    g.throughput(Throughput::Elements(docs.len() as u64));
    g.bench_function("end_to_end", |b| {
        b.iter(|| {
            let out = pipeline
                .process(
                    docs.clone(),
                    &ReplyCache::in_memory(),
                    Shard::default(),
                    &Progress::default(),
                )
                .unwrap();
            assert!(out.records.len() >= docs.len(), "{}", out.records.len());
            black_box(out.records.len())
        })
    });
    g.finish();
}

criterion_group!(benches, deterministic, end_to_end);
criterion_main!(benches);
