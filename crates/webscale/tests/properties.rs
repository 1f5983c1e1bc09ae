//! The twelve testable properties of spec webscale.md §6, with scripted models (no network).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use rlft_tasks::{QaMatch, TaskItem, Verifier};
use rlft_webscale::{
    BenchIndex, BenchItem, ChatRequest, DOMAINS, Document, FewshotLibrary, LlmError, Models,
    Pipeline, Progress, ReplyCache, ScriptedModel, Shard, Stats, WebscaleConfig, answer_leaks,
    doc_id, fixture_model, parse_object, read_outputs,
};

/// A plain English paragraph of `words` words with a founding sentence.
fn paragraph(name: &str, words: usize) -> String {
    let mut s = format!("The {name} Society was founded in 1900.");
    let filler = [
        "its", "members", "meet", "every", "week", "to", "talk", "about", "local", "history",
        "and", "old", "maps",
    ];
    let mut n = s.split_whitespace().count();
    let mut i = 0;
    while n < words {
        s.push(' ');
        s.push_str(filler[i % filler.len()]);
        i += 1;
        n += 1;
    }
    s.push('.');
    s
}

fn doc(text: &str, row: &str) -> Document {
    Document {
        doc_id: doc_id(text),
        source: "test".into(),
        source_row: row.into(),
        text: text.into(),
    }
}

fn config() -> WebscaleConfig {
    toml::from_str("out = \"unused\"\n[input]\npaths = [\"unused\"]").unwrap()
}

fn json(pairs: &[(&str, &str)]) -> String {
    let m: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    serde_json::Value::Object(m).to_string()
}

fn run(cfg: WebscaleConfig, models: Models, docs: Vec<Document>) -> rlft_webscale::RunOutput {
    Pipeline::new(cfg, models)
        .unwrap()
        .process(
            docs,
            &ReplyCache::in_memory(),
            Shard::default(),
            &Progress::default(),
        )
        .unwrap()
}

/// Property 1: documents under the threshold, empty or whitespace-only never reach a model.
#[test]
fn p1_prefilter_makes_no_call() {
    let counter = Arc::new(ScriptedModel::new("count", |_: &ChatRequest| {
        Ok("{}".into())
    }));
    let docs = vec![
        doc("", "a"),
        doc("   \n\t ", "b"),
        doc(&paragraph("Short", 49), "c"),
    ];
    let out = run(config(), Models::all(counter.clone()), docs);
    assert_eq!(counter.calls(), 0);
    assert_eq!(out.stats.rejected_docs.get("too_short"), Some(&3));
    // One word more and it reaches the filter.
    let out = run(
        config(),
        Models::all(counter.clone()),
        vec![doc(&paragraph("Long", 50), "d")],
    );
    assert!(counter.calls() > 0);
    assert_eq!(out.stats.input_docs, 1);
}

/// Property 2: record invariants, and `pretrain_text` is what the generator saw.
#[test]
fn p2_record_invariants() {
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let seen2 = seen.clone();
    let generator = fixture_model("generator");
    let recording = ScriptedModel::new("scripted-generator", move |r: &ChatRequest| {
        seen2
            .lock()
            .unwrap()
            .insert(r.section("document").unwrap_or("").to_string());
        rlft_webscale::ChatModel::chat(&generator, r)
    });
    let (mut models, _) = fixture_models();
    models.generator = Arc::new(recording);
    let out_dir = tmp("p2");
    let out = Pipeline::new(fixture_config(&out_dir), models)
        .unwrap()
        .run(Shard::default(), &Progress::default())
        .unwrap();
    assert!(!out.records.is_empty());
    let seen = seen.lock().unwrap();
    let mut per_doc: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &out.records {
        assert!(DOMAINS.contains(&r.domain.as_str()), "{}", r.domain);
        assert!(!r.persona.is_empty() && r.persona.trim() == r.persona);
        assert!(!r.question.trim().is_empty() && !r.answer.trim().is_empty());
        assert!(
            seen.contains(&r.pretrain_text),
            "pretrain_text differs from the generator's text"
        );
        *per_doc.entry(&r.doc_id).or_default() += 1;
    }
    assert!(per_doc.values().all(|&n| n <= 3));
    std::fs::remove_dir_all(&out_dir).unwrap();
}

/// A generator that leaks the answer into the question for every other document.
fn leaky_models() -> Models {
    let (mut m, _) = fixture_models();
    m.generator = Arc::new(ScriptedModel::new("leaky", |r: &ChatRequest| {
        let d = r.section("document").unwrap_or("");
        let (entity, year) = rlft_webscale::founding(d).unwrap_or_default();
        let q = if d.len().is_multiple_of(2) {
            format!("Was {entity} founded in {year}, Yes or no?")
        } else {
            format!("In what year was {entity} founded?")
        };
        let a = if d.len().is_multiple_of(2) {
            format!("Yes, {year}.")
        } else {
            year
        };
        Ok(json(&[("question", &q), ("answer", &a)]))
    }));
    m
}

fn fixture_docs() -> Vec<Document> {
    let mut cfg = fixture_config(&tmp("docs"));
    cfg.decontam.benchmarks.clear();
    let p = Pipeline::new(cfg, fixture_models().0).unwrap();
    p.read_input().unwrap()
}

/// Property 3: with the guard on, no accepted record's answer is a token run of its question.
#[test]
fn p3_leak_guard() {
    let docs = fixture_docs();
    let on = run(config(), leaky_models(), docs.clone());
    assert!(on.stats.failures.get("leak_guard").copied().unwrap_or(0) > 0);
    assert!(
        on.records
            .iter()
            .all(|r| !answer_leaks(&r.question, &r.answer))
    );
    let mut cfg = config();
    cfg.pipeline.leak_guard = false;
    let off = run(cfg, leaky_models(), docs);
    assert!(
        off.records
            .iter()
            .any(|r| answer_leaks(&r.question, &r.answer)),
        "the guard must be what removes them"
    );
}

/// Property 4: of the 8 flag combinations only (correct Y, leak N, context Y) is accepted;
/// malformed flags are parse errors.
#[test]
fn p4_checker_truth_table() {
    let text = paragraph("Harbour", 80);
    let outcome = |flags: serde_json::Value| {
        let (mut m, _) = fixture_models();
        let reply = flags.to_string();
        m.checker = Arc::new(ScriptedModel::new("c", move |_: &ChatRequest| {
            Ok(reply.clone())
        }));
        let mut cfg = config();
        cfg.pipeline.max_personas = 1;
        let out = run(cfg, m, vec![doc(&text, "1")]);
        (
            out.records.len(),
            out.failures
                .first()
                .map(|f| (f.reason.clone(), f.stage.clone())),
        )
    };
    for correct in ["Y", "N"] {
        for leak in ["Y", "N"] {
            for context in ["Y", "N"] {
                let (n, fail) = outcome(
                    serde_json::json!({"answer_correctness": correct, "info_leakage": leak, "has_context": context}),
                );
                let accept = (correct, leak, context) == ("Y", "N", "Y");
                assert_eq!(n == 1, accept, "{correct}{leak}{context}");
                if !accept {
                    assert_eq!(fail, Some(("checker_reject".into(), "s6".into())));
                }
            }
        }
    }
    for bad in [
        serde_json::json!({"answer_correctness": "maybe", "info_leakage": "N", "has_context": "Y"}),
        serde_json::json!({"answer_correctness": "Y", "has_context": "Y"}),
        serde_json::json!({"answer_correctness": 1, "info_leakage": "N", "has_context": "Y"}),
        serde_json::json!(["Y", "N", "Y"]),
    ] {
        let (n, fail) = outcome(bad.clone());
        assert_eq!(
            (n, fail),
            (0, Some(("parse_error".into(), "s6".into()))),
            "{bad}"
        );
    }
}

fn bench(items: &[&str]) -> BenchIndex {
    let mut b = BenchIndex::new(13);
    for (i, t) in items.iter().enumerate() {
        b.add(&BenchItem {
            bench: "b".into(),
            id: i.to_string(),
            text: t.to_string(),
        });
    }
    b
}

/// Property 5: decontamination at the n = 13 boundary, case and punctuation, short texts.
#[test]
fn p5_decontamination() {
    let words: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
    let item = words.join(" ");
    let b = bench(&[&item, "What is the capital of Freedonia?"]);
    let run_of = |n: usize| {
        format!(
            "unrelated start {} unrelated end here",
            words[5..5 + n].join(" ")
        )
    };
    assert_eq!(b.hit(&run_of(12)), None, "a 12-word shared run is kept");
    assert_eq!(
        b.hit(&run_of(13)).as_deref(),
        Some("b:0"),
        "a 13-word run is removed"
    );
    let shouted = format!(
        "PREFIX: {}!!",
        words[0..13]
            .iter()
            .map(|w| w.to_uppercase())
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        b.hit(&shouted).is_some(),
        "case and ASCII punctuation do not hide a match"
    );
    assert!(
        b.hit("what is THE capital of freedonia").is_some(),
        "short exact match after normalisation"
    );
    assert!(b.hit("what is the capital of freedonia today").is_none());
    // Through the pipeline: a planted item reproduced in a question is removed.
    let text = paragraph("Lantern", 80);
    let mut p = Pipeline::with_parts(
        config(),
        fixture_models().0,
        FewshotLibrary::builtin(),
        bench(&[
            "For students: The Lantern Society is a subject of this history. In what year was The Lantern Society founded?",
        ]),
    );
    let out = p
        .process(
            vec![doc(&text, "1")],
            &ReplyCache::in_memory(),
            Shard::default(),
            &Progress::default(),
        )
        .unwrap();
    // Both personas' questions share the 16 words after "For <persona>:" with the item.
    assert_eq!(out.records.len(), 0);
    assert_eq!(
        out.failures
            .iter()
            .filter(|f| f.reason == "decontam_hit")
            .count(),
        2
    );
    p = Pipeline::with_parts(
        config(),
        fixture_models().0,
        FewshotLibrary::builtin(),
        BenchIndex::new(13),
    );
    let out = p
        .process(
            vec![doc(&text, "1")],
            &ReplyCache::in_memory(),
            Shard::default(),
            &Progress::default(),
        )
        .unwrap();
    assert_eq!(out.records.len(), 2);
}

/// Property 6: the parser's lenient forms, and parse errors recorded with their stage.
#[test]
fn p6_parser() {
    for reply in [
        "```json\n{\"domain\": \"Math\", \"persona\": \"students\"}\n```",
        "{\"domain\": \"Math\", \"persona\": \"students\",}",
        "{'domain': 'Math', 'persona': 'students'}",
        "Here you go: {\"domain\": \"Math\", \"persona\": \"students\"} -- done",
    ] {
        let m = parse_object(reply).unwrap();
        assert_eq!(m["domain"], "Math", "{reply}");
    }
    let text = paragraph("Parser", 80);
    for (bad, stage_field) in [
        ("{\"domain\": \"Math\"}", "tagger"),
        ("[\"Math\"]", "tagger"),
        ("{\"question\": \"q\"}", "generator"),
        ("nonsense", "filter"),
    ] {
        let (mut m, _) = fixture_models();
        let reply = bad.to_string();
        let model = Arc::new(ScriptedModel::new("bad", move |_: &ChatRequest| {
            Ok(reply.clone())
        }));
        match stage_field {
            "tagger" => m.tagger = model,
            "generator" => m.generator = model,
            _ => m.filter = model,
        }
        let out = run(config(), m, vec![doc(&text, "1")]);
        let want = match stage_field {
            "filter" => "s2",
            "tagger" => "s3",
            _ => "s5",
        };
        assert!(out.records.is_empty());
        assert!(
            out.failures.iter().all(|f| f.reason == "parse_error"
                && f.stage == want
                && f.detail.starts_with(stage_field)),
            "{bad}: {:?}",
            out.failures
        );
    }
}

/// Property 7: twice on the same input and cache: same bytes, 0 calls the second time.
/// (Also in the fixture experiment, on disk.)
#[test]
fn p7_idempotent() {
    let docs = fixture_docs();
    let cache = ReplyCache::in_memory();
    let (m, h) = fixture_models();
    let p = Pipeline::new(config(), m).unwrap();
    let a = p
        .process(docs.clone(), &cache, Shard::default(), &Progress::default())
        .unwrap();
    let first = calls(&h).iter().sum::<usize>();
    let b = p
        .process(docs, &cache, Shard::default(), &Progress::default())
        .unwrap();
    assert!(first > 0);
    assert_eq!(calls(&h).iter().sum::<usize>(), first);
    assert_eq!(
        serde_json::to_string(&a.records).unwrap(),
        serde_json::to_string(&b.records).unwrap()
    );
    assert_eq!(
        serde_json::to_string(&a.failures).unwrap(),
        serde_json::to_string(&b.failures).unwrap()
    );
}

/// A model that serves `inner` for its first `ok` calls, then fails with `retryable`.
fn flaky(inner: ScriptedModel, ok: usize, retryable: bool) -> ScriptedModel {
    let n = AtomicUsize::new(0);
    let id = rlft_webscale::ChatModel::model_id(&inner).to_string();
    ScriptedModel::new(id, move |r: &ChatRequest| {
        if n.fetch_add(1, Ordering::SeqCst) < ok {
            rlft_webscale::ChatModel::chat(&inner, r)
        } else if retryable {
            Err(LlmError::retryable("503 from the test"))
        } else {
            Err(LlmError::terminal("400 from the test"))
        }
    })
}

/// Property 8: stop after k documents' worth of calls (the servers go away), resume, and the
/// output equals an uninterrupted run; retryable failures are retried, terminal ones not.
#[test]
fn p8_resume() {
    let clean_dir = tmp("p8-clean");
    let (m, _) = fixture_models();
    Pipeline::new(fixture_config(&clean_dir), m)
        .unwrap()
        .run(Shard::default(), &Progress::default())
        .unwrap();
    let clean = output_bytes(&clean_dir);

    for k in [0usize, 7, 20, 40] {
        let dir = tmp(&format!("p8-{k}"));
        let models = Models {
            filter: Arc::new(flaky(fixture_model("filter"), k, true)),
            tagger: Arc::new(flaky(fixture_model("tagger"), k, true)),
            generator: Arc::new(flaky(fixture_model("generator"), k, true)),
            checker: Arc::new(flaky(fixture_model("checker"), k, true)),
        };
        let mut cfg = fixture_config(&dir);
        cfg.concurrency.max_in_flight = 3;
        let broken = Pipeline::new(cfg, models)
            .unwrap()
            .run(Shard::default(), &Progress::default())
            .unwrap();
        assert!(broken.stats.retryable_failures > 0, "k = {k}");
        assert!(
            broken
                .failures
                .iter()
                .filter(|f| f.reason == "api_error")
                .all(|f| f.retryable)
        );
        assert_eq!(
            rlft_webscale::read_manifest(&dir).unwrap().status,
            "retryable_failures"
        );
        let (m, h) = fixture_models();
        let resumed = Pipeline::new(fixture_config(&dir), m)
            .unwrap()
            .run(Shard::default(), &Progress::default())
            .unwrap();
        assert_eq!(
            resumed.calls + broken.calls - broken_failed_calls(&broken),
            159,
            "k = {k}: each reply paid once"
        );
        assert_eq!(calls(&h).iter().sum::<usize>(), resumed.calls);
        assert_same(&output_bytes(&dir), &clean, &format!("k = {k}"));
        let ids: HashSet<&str> = resumed.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), resumed.records.len(), "no duplicate ids");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // A terminal failure is cached: the resumed run does not ask again and keeps it.
    let dir = tmp("p8-terminal");
    let (mut m, _) = fixture_models();
    m.checker = Arc::new(flaky(fixture_model("checker"), 10, false));
    let mut cfg = fixture_config(&dir);
    cfg.concurrency.max_in_flight = 1;
    let first = Pipeline::new(cfg, m)
        .unwrap()
        .run(Shard::default(), &Progress::default())
        .unwrap();
    let terminal = first
        .failures
        .iter()
        .filter(|f| f.reason == "api_error" && !f.retryable)
        .count();
    assert!(terminal > 0);
    let (m, h) = fixture_models();
    let again = Pipeline::new(fixture_config(&dir), m)
        .unwrap()
        .run(Shard::default(), &Progress::default())
        .unwrap();
    assert_eq!(calls(&h)[3], 0, "terminal failures are not retried");
    assert_eq!(
        again
            .failures
            .iter()
            .filter(|f| f.reason == "api_error" && !f.retryable)
            .count(),
        terminal
    );
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&clean_dir).unwrap();
}

/// Calls of a broken run that failed (and so were not cached).
fn broken_failed_calls(r: &rlft_webscale::RunOutput) -> usize {
    r.failures
        .iter()
        .filter(|f| f.reason == "api_error")
        .count()
}

/// Property 9: input order, LLM concurrency and worker threads never change the bytes.
#[test]
fn p9_order_independent() {
    let base = tmp("p9-base");
    let (m, _) = fixture_models();
    Pipeline::new(fixture_config(&base), m)
        .unwrap()
        .run(Shard::default(), &Progress::default())
        .unwrap();
    let want = output_bytes(&base);
    // Shuffled input (a fixed permutation of the lines).
    let input = std::fs::read_to_string(fixtures().join("docs.jsonl")).unwrap();
    let mut lines: Vec<&str> = input.lines().collect();
    lines.reverse();
    let n = lines.len();
    lines.swap(0, n / 2);
    let shuffled = base.join("shuffled.jsonl");
    std::fs::write(&shuffled, lines.join("\n")).unwrap();
    for (in_flight, threads, shuffle) in [(1, 1, false), (64, 4, false), (7, 2, true), (2, 3, true)]
    {
        let dir = tmp(&format!("p9-{in_flight}-{threads}-{shuffle}"));
        let mut cfg = fixture_config(&dir);
        cfg.concurrency.max_in_flight = in_flight;
        cfg.concurrency.threads = threads;
        if shuffle {
            cfg.input.paths = vec![shuffled.clone()];
        }
        let (m, _) = fixture_models();
        Pipeline::new(cfg, m)
            .unwrap()
            .run(Shard::default(), &Progress::default())
            .unwrap();
        assert_same(
            &output_bytes(&dir),
            &want,
            &format!("in_flight {in_flight}, threads {threads}, shuffled {shuffle}"),
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::remove_dir_all(&base).unwrap();
}

/// Property 10: few-shot selection is a function of (seed, doc_id, persona_index).
#[test]
fn p10_seeded_fewshot() {
    let lib = FewshotLibrary::builtin();
    let ids = |seed: u64, d: &str, k: usize| {
        lib.select("Math", 2, seed, d, k)
            .iter()
            .map(|e| e.id.clone())
            .collect::<Vec<_>>()
    };
    let d = doc_id("some document");
    assert_eq!(ids(0, &d, 1), ids(0, &d, 1));
    assert_eq!(ids(0, &d, 1).len(), 2);
    assert_eq!(
        lib.select("Math", 10, 0, &d, 0).len(),
        lib.domain("Math").len(),
        "min(n, len)"
    );
    let docs = fixture_docs();
    let fewshot = |seed: u64| {
        let mut cfg = config();
        cfg.seed = seed;
        run(cfg, fixture_models().0, docs.clone())
            .records
            .into_iter()
            .map(|r| (r.id, r.fewshot_ids))
            .collect::<Vec<_>>()
    };
    let (a, a2, b) = (fewshot(0), fewshot(0), fewshot(1));
    assert_eq!(a, a2);
    assert!(
        a.iter().zip(&b).any(|(x, y)| x.1 != y.1),
        "another seed changes at least one unit"
    );
}

/// Property 11: accounting balances, failure files match stats, source tokens once per doc.
#[test]
fn p11_accounting() {
    let dir = tmp("p11");
    let (m, _) = fixture_models();
    let out = Pipeline::new(fixture_config(&dir), m)
        .unwrap()
        .run(Shard::default(), &Progress::default())
        .unwrap();
    let s = &out.stats;
    assert_eq!(s.input_docs, 30);
    assert_eq!(
        s.input_docs,
        s.accepted_docs + s.rejected_docs.values().sum::<usize>()
    );
    let (records, failures) = read_outputs(&dir).unwrap();
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    for f in &failures {
        *by_reason.entry(f.reason.clone()).or_default() += 1;
    }
    assert_eq!(by_reason, s.failures);
    assert_eq!(s.failures.values().sum::<usize>(), failures.len());
    let per_doc: BTreeMap<&str, usize> = records
        .iter()
        .map(|r| (r.doc_id.as_str(), r.source_tokens))
        .collect();
    assert_eq!(
        s.source_tokens,
        per_doc.values().map(|&t| t as u64).sum::<u64>()
    );
    let per_record: u64 = records.iter().map(|r| r.source_tokens as u64).sum();
    assert!(
        per_record > s.source_tokens,
        "counted once per document, not per QA"
    );
    assert_eq!(Stats::accepted_doc_ids(&records).len(), s.accepted_docs);
    let unique: BTreeSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(unique.len(), records.len());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Property 12: the normalised-match reward.
#[test]
fn p12_reward_fallback() {
    let v = QaMatch::default();
    let item = TaskItem::new("1", "How tall is the tower?", "Forty meters.");
    assert_eq!(v.verify(&item, "forty meters").unwrap().score, 1.0);
    assert_eq!(v.verify(&item, "fifty meters").unwrap().score, 0.0);
}
