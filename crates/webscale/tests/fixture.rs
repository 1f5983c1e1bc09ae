//! The CPU fixture experiment of spec webscale.md §6: 24 hand-written documents plus six
//! edge cases through the whole pipeline with the fixture script, exact expected counts.
//!
//! Expected, by hand from `scripts/webscale_fixture.py` and `src/fixture.rs`:
//! - 30 input rows: 24 documents, 1 empty (e1), 1 under 50 words (e2), 1 German (e3),
//!   1 of 200K characters (e4), 1 exact duplicate of d01 (e5), 1 boilerplate page (e6).
//! - S0 drops e5 (duplicate); S1 drops e1, e2 (too_short) and e3 (lang); S2 drops e6
//!   (llm_filter_reject); S3 drops d19 (domain "Astrology": domain_invalid).
//! - 24 documents reach S5: d20 (comma inside a persona: 3 personas), d01 d03 d05 d07 d09
//!   d15 ("Notably": 3 personas) and 16 more with 2: 3 + 18 + 32 = 55 persona units.
//! - Of those, d21's 2 units copy the planted benchmark sentence (decontam_hit ×2, so d21 is
//!   rejected), d22 persona 1 leaks its answer (leak_guard), d24 persona 0 gets an
//!   unparseable reply (parse_error), d18 persona 0 is rejected by the checker
//!   (checker_reject); d23's fenced JSON with a trailing comma parses.
//! - Records: 55 − 5 = 50; accepted documents 23; rejected rows 7.
//! - Calls: filter 26 (30 − 4 before S2), tagger 25, generator 55, checker 53 (55 minus the
//!   leak-guarded and unparseable units): 159.

mod common;

use std::collections::BTreeMap;

use common::*;
use rlft_webscale::{Pipeline, Progress, Shard, Stats, read_outputs};

fn map(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn fixture_experiment_exact_counts() {
    let out = tmp("fixture");
    let (models, handles) = fixture_models();
    let pipeline = Pipeline::new(fixture_config(&out), models).unwrap();
    let run = pipeline
        .run(Shard::default(), &Progress::default())
        .unwrap();
    assert_eq!(calls(&handles), vec![26, 25, 55, 53]);
    assert_eq!(run.calls, 159);

    let s = &run.stats;
    assert_eq!(s.input_docs, 30);
    assert_eq!(s.accepted_docs, 23);
    assert_eq!(s.records, 50);
    assert_eq!(
        s.rejected_docs,
        map(&[
            ("duplicate", 1),
            ("too_short", 2),
            ("lang", 1),
            ("llm_filter_reject", 1),
            ("domain_invalid", 1),
            ("decontam_hit", 1),
        ])
    );
    assert_eq!(
        s.failures,
        map(&[
            ("duplicate", 1),
            ("too_short", 2),
            ("lang", 1),
            ("llm_filter_reject", 1),
            ("domain_invalid", 1),
            ("decontam_hit", 2),
            ("leak_guard", 1),
            ("parse_error", 1),
            ("checker_reject", 1),
        ])
    );
    assert_eq!(
        s.input_docs,
        s.accepted_docs + s.rejected_docs.values().sum::<usize>()
    );
    assert!(s.domains.len() >= 6, "{:?}", s.domains);

    // The files say the same.
    let (records, failures) = read_outputs(&out).unwrap();
    assert_eq!(Stats::from_outputs(&records, &failures), *s);
    let on_disk: Stats =
        serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap()).unwrap();
    assert_eq!(on_disk, *s);
    // Planted item and leaky QA absent; the duplicate processed once; the long doc truncated.
    assert!(
        records
            .iter()
            .all(|r| !r.question.contains("lighthouse keeper"))
    );
    assert!(
        records
            .iter()
            .all(|r| !(r.source_row == "d22" && r.persona_index == 1))
    );
    assert!(failures.iter().any(|f| f.source_row == "d21"
        && f.reason == "decontam_hit"
        && f.detail.contains("fixture-qa:b1")));
    assert_eq!(records.iter().filter(|r| r.source_row == "d01").count(), 3);
    assert!(records.iter().all(|r| r.source_row != "e5"));
    let long: Vec<_> = records.iter().filter(|r| r.source_row == "e4").collect();
    assert_eq!(long.len(), 2);
    assert!(
        long.iter()
            .all(|r| r.truncated && r.pretrain_text.chars().count() <= 20_000)
    );
    assert_eq!(s.truncated_docs, 1);
    // Comma inside a persona: split into three, trimmed.
    let d20: Vec<&str> = records
        .iter()
        .filter(|r| r.source_row == "d20")
        .map(|r| r.persona.as_str())
        .collect();
    assert_eq!(d20, vec!["students", "aged 10-12", "teachers"]);
    // Reasons are recorded with the reply.
    let parse = failures.iter().find(|f| f.reason == "parse_error").unwrap();
    assert_eq!(
        (
            parse.source_row.as_str(),
            parse.persona_index,
            parse.stage.as_str()
        ),
        ("d24", Some(0), "s5")
    );
    assert!(parse.raw_response.contains("not able"));
    // The manifest.
    let m = rlft_webscale::read_manifest(&out).unwrap();
    assert_eq!(
        (m.status.as_str(), m.records, m.failures, m.input_docs),
        ("complete", 50, 11, 30)
    );
    assert_eq!(m.bench_items, 3);

    // Rerun: 0 calls, same bytes.
    let before = output_bytes(&out);
    let (models, handles) = fixture_models();
    let again = Pipeline::new(fixture_config(&out), models)
        .unwrap()
        .run(Shard::default(), &Progress::default())
        .unwrap();
    assert_eq!(calls(&handles), vec![0, 0, 0, 0]);
    assert_eq!((again.calls, again.cache_hits), (0, 159));
    assert_eq!(output_bytes(&out), before);
    std::fs::remove_dir_all(&out).unwrap();
}

/// Parquet input (the committed `docs.parquet`, written by pyarrow from the same 24
/// documents) reads to the same documents as the JSONL rows, and a config can name it.
#[test]
fn parquet_input_matches_jsonl() {
    use rlft_webscale::{InputConfig, read_documents};
    let parquet = read_documents(&InputConfig {
        paths: vec![fixtures().join("docs.parquet")],
        source: Some("fixture".into()),
        ..InputConfig::default()
    })
    .unwrap();
    assert_eq!(parquet.len(), 24);
    let jsonl = read_documents(&InputConfig {
        paths: vec![fixtures().join("docs.jsonl")],
        ..InputConfig::default()
    })
    .unwrap();
    for d in &parquet {
        let j = jsonl.iter().find(|j| j.source_row == d.source_row).unwrap();
        assert_eq!(j, d);
    }
    // A missing text column is an error naming the file and the column.
    let err = read_documents(&InputConfig {
        paths: vec![fixtures().join("docs.parquet")],
        text_field: "body".into(),
        ..InputConfig::default()
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("docs.parquet:1") && err.to_string().contains("body"),
        "{err}"
    );
}

/// The language gate: the fixture's German text fails, English passes with or without the
/// fast path.
#[test]
fn language_gate() {
    use rlft_webscale::{PrefilterConfig, PrefilterReject, prefilter};
    let docs = rlft_webscale::read_documents(&rlft_webscale::InputConfig {
        paths: vec![fixtures().join("docs.jsonl")],
        ..Default::default()
    })
    .unwrap();
    let german = docs.iter().find(|d| d.source_row == "e3").unwrap();
    let english = docs.iter().find(|d| d.source_row == "d07").unwrap();
    let cfg = PrefilterConfig::default();
    assert_eq!(prefilter(&german.text, &cfg), Err(PrefilterReject::Lang));
    assert_eq!(prefilter(&english.text, &cfg), Ok(()));
    let only_german = PrefilterConfig {
        languages: vec!["deu".into()],
        ..cfg.clone()
    };
    assert_eq!(prefilter(&german.text, &only_german), Ok(()));
    assert_eq!(
        prefilter(&english.text, &only_german),
        Err(PrefilterReject::Lang)
    );
    let off = PrefilterConfig {
        languages: vec![],
        ..cfg
    };
    assert_eq!(prefilter(&german.text, &off), Ok(()));
}

/// `requests_per_second` spaces call starts (a lower bound on the wall time; the output is
/// unchanged).
#[test]
fn rate_limit_spaces_calls() {
    let out = tmp("rate");
    let mut cfg = fixture_config(&out);
    cfg.concurrency.requests_per_second = Some(400.0);
    let (models, _) = fixture_models();
    let t0 = std::time::Instant::now();
    let run = Pipeline::new(cfg, models)
        .unwrap()
        .run(Shard::default(), &Progress::default())
        .unwrap();
    assert_eq!(run.calls, 159);
    assert!(
        t0.elapsed().as_secs_f64() >= 158.0 / 400.0,
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(run.records.len(), 50);
    std::fs::remove_dir_all(&out).unwrap();
}
