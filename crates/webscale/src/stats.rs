//! Stats and accounting, computed from the output files alone (so a merge recomputes them).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::record::{Failure, Record};

/// `stats.json`.
///
/// Accounting: `input_docs == accepted_docs + Σ rejected_docs` always. An input row is
/// accepted when its document produced at least one record; otherwise it is rejected for the
/// reason of its first failure (document-level first, then the lowest persona index);
/// duplicate rows count as `duplicate`. `failures` counts failure records by reason, the
/// rows of `failures.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Input rows.
    pub input_docs: usize,
    /// Rows whose document gave at least one record.
    pub accepted_docs: usize,
    /// Rejected rows by reason.
    pub rejected_docs: BTreeMap<String, usize>,
    /// Records (accepted QA pairs).
    pub records: usize,
    /// Failure records by reason.
    pub failures: BTreeMap<String, usize>,
    /// Failure records by stage.
    pub failures_by_stage: BTreeMap<String, usize>,
    /// Failure records a resumed run retries.
    pub retryable_failures: usize,
    /// Words of the source documents of accepted docs, each document once (the paper's RL
    /// token count, §3 Fig. 4).
    pub source_tokens: u64,
    /// Records by domain.
    pub domains: BTreeMap<String, usize>,
    /// Records by source.
    pub sources: BTreeMap<String, usize>,
    /// Accepted documents that were truncated.
    pub truncated_docs: usize,
    /// `accepted_docs / input_docs` (0 when there is no input).
    pub doc_accept_rate: f64,
}

impl Stats {
    /// Stats of a run's records and failures.
    pub fn from_outputs(records: &[Record], failures: &[Failure]) -> Self {
        let mut accepted: BTreeMap<&str, (usize, bool)> = BTreeMap::new();
        let mut domains = BTreeMap::new();
        let mut sources = BTreeMap::new();
        for r in records {
            accepted.insert(&r.doc_id, (r.source_tokens, r.truncated));
            *domains.entry(r.domain.clone()).or_insert(0) += 1;
            *sources.entry(r.source.clone()).or_insert(0) += 1;
        }
        let mut rejected_docs: BTreeMap<String, usize> = BTreeMap::new();
        let mut failures_by_reason = BTreeMap::new();
        let mut by_stage = BTreeMap::new();
        let mut retryable = 0;
        let mut first: BTreeMap<&str, &Failure> = BTreeMap::new();
        for f in failures {
            *failures_by_reason.entry(f.reason.clone()).or_insert(0) += 1;
            *by_stage.entry(f.stage.clone()).or_insert(0) += 1;
            retryable += usize::from(f.retryable);
            if f.reason == "duplicate" {
                *rejected_docs.entry(f.reason.clone()).or_insert(0) += 1;
                continue;
            }
            if accepted.contains_key(f.doc_id.as_str()) {
                continue;
            }
            let e = first.entry(&f.doc_id).or_insert(f);
            if (f.persona_index, &f.stage) < (e.persona_index, &e.stage) {
                *e = f;
            }
        }
        for f in first.values() {
            *rejected_docs.entry(f.reason.clone()).or_insert(0) += 1;
        }
        let accepted_docs = accepted.len();
        let input_docs = accepted_docs + rejected_docs.values().sum::<usize>();
        Self {
            input_docs,
            accepted_docs,
            rejected_docs,
            records: records.len(),
            failures: failures_by_reason,
            failures_by_stage: by_stage,
            retryable_failures: retryable,
            source_tokens: accepted.values().map(|v| v.0 as u64).sum(),
            domains,
            sources,
            truncated_docs: accepted.values().filter(|v| v.1).count(),
            doc_accept_rate: if input_docs == 0 {
                0.0
            } else {
                accepted_docs as f64 / input_docs as f64
            },
        }
    }

    /// Documents that produced records, for checks.
    pub fn accepted_doc_ids(records: &[Record]) -> BTreeSet<&str> {
        records.iter().map(|r| r.doc_id.as_str()).collect()
    }
}
