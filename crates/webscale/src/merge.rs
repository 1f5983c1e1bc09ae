//! `rlft webscale merge`: shard outputs into one dataset, with global dedup and
//! decontamination.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::decontam::{BenchIndex, bench_names};
use crate::error::{Result, WebscaleError};
use crate::parse::clip;
use crate::pipeline::{Manifest, write_outputs};
use crate::record::{Failure, Record, sort_failures, sort_records};
use crate::stats::Stats;

/// What to merge.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MergeOptions {
    /// Shard output directories (each with `manifest.json`, `dataset.jsonl`,
    /// `failures.jsonl`).
    pub inputs: Vec<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Benchmark files to decontaminate against (again); none keeps the shards' S7.
    pub benchmarks: Vec<PathBuf>,
    /// N-gram length; default the shards'.
    pub ngram: Option<usize>,
}

fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| WebscaleError::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| WebscaleError::Input {
                path: path.to_path_buf(),
                line: i + 1,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Reads a run's `manifest.json`.
///
/// # Errors
/// [`WebscaleError::Io`] or [`WebscaleError::Input`].
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| WebscaleError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| WebscaleError::Input {
        path,
        line: e.line(),
        reason: e.to_string(),
    })
}

/// A run's records and failures.
///
/// # Errors
/// [`WebscaleError::Io`] or [`WebscaleError::Input`].
pub fn read_outputs(dir: &Path) -> Result<(Vec<Record>, Vec<Failure>)> {
    Ok((
        read_jsonl(&dir.join("dataset.jsonl"))?,
        read_jsonl(&dir.join("failures.jsonl"))?,
    ))
}

/// Merges shard outputs: the shards must share the config hash and not overlap. A document
/// id found in more than one shard (shards made from different inputs) keeps the first
/// shard's (in shard order) results; the other copies count as `duplicate` rows. With
/// `benchmarks`, every record is checked again (`decontam_hit`, stage s7).
///
/// # Errors
/// [`WebscaleError::Merge`] for shards that do not belong together; reading or writing.
pub fn merge(opts: &MergeOptions) -> Result<(Manifest, Stats)> {
    if opts.inputs.is_empty() {
        return Err(WebscaleError::Merge {
            reason: "no shard directories given".into(),
        });
    }
    let mut shards = Vec::new();
    for dir in &opts.inputs {
        let m = read_manifest(dir)?;
        let (r, f) = read_outputs(dir)?;
        shards.push((dir.clone(), m, r, f));
    }
    let first = shards[0].1.clone();
    for (dir, m, _, _) in &shards {
        if m.config_hash != first.config_hash {
            return Err(WebscaleError::Merge {
                reason: format!(
                    "{} was made with config hash {}, {} with {}",
                    dir.display(),
                    m.config_hash,
                    opts.inputs[0].display(),
                    first.config_hash
                ),
            });
        }
    }
    shards.sort_by(|a, b| a.1.shards.cmp(&b.1.shards).then_with(|| a.0.cmp(&b.0)));
    let mut covered = BTreeSet::new();
    for (dir, m, _, _) in &shards {
        for s in &m.shards {
            if !covered.insert((s.index, s.count)) {
                return Err(WebscaleError::Merge {
                    reason: format!(
                        "shard {}/{} appears twice (again in {})",
                        s.index,
                        s.count,
                        dir.display()
                    ),
                });
            }
        }
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut records = Vec::new();
    let mut failures = Vec::new();
    for (_, _, recs, fails) in shards.iter() {
        let docs: BTreeSet<&str> = recs
            .iter()
            .map(|r| r.doc_id.as_str())
            .chain(
                fails
                    .iter()
                    .filter(|f| f.reason != "duplicate")
                    .map(|f| f.doc_id.as_str()),
            )
            .collect();
        let mut dup_here = BTreeSet::new();
        for d in &docs {
            if seen.contains(*d) {
                dup_here.insert(d.to_string());
            }
        }
        for r in recs {
            if !dup_here.contains(&r.doc_id) {
                records.push(r.clone());
            }
        }
        for f in fails {
            if f.reason == "duplicate" || !dup_here.contains(&f.doc_id) {
                failures.push(f.clone());
            }
        }
        for d in &dup_here {
            let (source, source_row) = recs
                .iter()
                .find(|r| &r.doc_id == d)
                .map(|r| (r.source.clone(), r.source_row.clone()))
                .or_else(|| {
                    fails
                        .iter()
                        .find(|f| &f.doc_id == d)
                        .map(|f| (f.source.clone(), f.source_row.clone()))
                })
                .unwrap_or_default();
            failures.push(Failure {
                doc_id: d.clone(),
                source,
                source_row,
                persona_index: None,
                stage: "s0".into(),
                reason: "duplicate".into(),
                detail: "the same document is in an earlier shard".into(),
                raw_response: String::new(),
                retryable: false,
            });
        }
        seen.extend(docs.into_iter().map(str::to_string));
    }
    let ngram = opts.ngram.unwrap_or(first.ngram);
    let mut manifest = first.clone();
    if !opts.benchmarks.is_empty() {
        let bench = BenchIndex::from_files(&opts.benchmarks, ngram)?;
        let mut kept = Vec::with_capacity(records.len());
        for r in records {
            let hit = bench
                .hit(&r.question)
                .or_else(|| bench.hit(&format!("{} {}", r.question, r.answer)));
            match hit {
                Some(item) => failures.push(Failure {
                    doc_id: r.doc_id.clone(),
                    source: r.source.clone(),
                    source_row: r.source_row.clone(),
                    persona_index: Some(r.persona_index),
                    stage: "s7".into(),
                    reason: "decontam_hit".into(),
                    detail: format!("{ngram}-gram match with benchmark item {item} (merge)"),
                    raw_response: clip(&format!("{}\n{}", r.question, r.answer), 2000),
                    retryable: false,
                }),
                None => kept.push(r),
            }
        }
        records = kept;
        let mut names: BTreeSet<String> = manifest.benchmarks.iter().cloned().collect();
        names.extend(bench_names(&bench));
        manifest.benchmarks = names.into_iter().collect();
        manifest.bench_items = manifest.bench_items.max(bench.len());
        manifest.ngram = ngram;
    }
    sort_records(&mut records);
    sort_failures(&mut failures);
    let stats = Stats::from_outputs(&records, &failures);
    manifest.shards = shards.iter().flat_map(|s| s.1.shards.clone()).collect();
    manifest.status =
        if shards.iter().all(|s| s.1.status == "complete") && stats.retryable_failures == 0 {
            "complete".into()
        } else {
            "retryable_failures".into()
        };
    manifest.input_docs = stats.input_docs;
    manifest.records = records.len();
    manifest.failures = failures.len();
    manifest.files.clear();
    std::fs::create_dir_all(&opts.out).map_err(|e| WebscaleError::io(&opts.out, e))?;
    write_outputs(&opts.out, &records, &failures, &manifest)?;
    let manifest = read_manifest(&opts.out)?;
    Ok((manifest, stats))
}
