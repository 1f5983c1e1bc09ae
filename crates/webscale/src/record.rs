//! The output records (spec §2, \[D\]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The checks an accepted record passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checks {
    /// Checker: the question carries its background.
    pub has_context: String,
    /// Checker: the answer is supported by the document.
    pub answer_correctness: String,
    /// Checker: the question gives the answer away.
    pub info_leakage: String,
    /// `pass` or `off`.
    pub leak_guard: String,
    /// `pass` or `off` (no benchmark files).
    pub decontam: String,
}

/// The model of each LLM stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageModels {
    /// S2.
    pub filter: String,
    /// S3.
    pub tagger: String,
    /// S5.
    pub generator: String,
    /// S6b.
    pub checker: String,
}

/// One accepted QA pair; the field order is the file's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// sha256 of `doc_id|persona_index|question`.
    pub id: String,
    /// The document's id.
    pub doc_id: String,
    /// Its corpus.
    pub source: String,
    /// Its row id in the corpus.
    pub source_row: String,
    /// The exact text the LLMs saw (after truncation).
    pub pretrain_text: String,
    /// Whether the document was truncated.
    pub truncated: bool,
    /// Whitespace words of `pretrain_text`.
    pub source_tokens: usize,
    /// One of the 10 domain labels.
    pub domain: String,
    /// The persona (trimmed).
    pub persona: String,
    /// 0, 1 or 2.
    pub persona_index: usize,
    /// The question.
    pub question: String,
    /// The gold answer.
    pub answer: String,
    /// What it passed.
    pub checks: Checks,
    /// Few-shot demonstration ids in the generator prompt.
    pub fewshot_ids: Vec<String>,
    /// Models of the stages.
    pub models: StageModels,
    /// Template hashes by stage.
    pub prompt_hashes: BTreeMap<String, String>,
    /// The pipeline's version.
    pub pipeline_version: String,
}

/// Stage of a failure.
pub const STAGES: [&str; 8] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];

/// Why a unit failed: the spec's reasons plus `duplicate` (S0) and `duplicate_question`
/// (S6, only with `pipeline.dedupe_questions`).
pub const REASONS: [&str; 12] = [
    "duplicate",
    "too_short",
    "lang",
    "llm_filter_reject",
    "parse_error",
    "api_error",
    "domain_invalid",
    "no_persona",
    "leak_guard",
    "checker_reject",
    "decontam_hit",
    "duplicate_question",
];

/// One failed unit: a document (`persona_index` null) or one persona of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The document's id.
    pub doc_id: String,
    /// Its corpus.
    pub source: String,
    /// Its row id.
    pub source_row: String,
    /// The persona, for S5–S7 failures.
    pub persona_index: Option<usize>,
    /// `s0` … `s7`.
    pub stage: String,
    /// One of [`REASONS`].
    pub reason: String,
    /// What went wrong in words (parse error, API error, benchmark item hit).
    pub detail: String,
    /// The model's reply, clipped to 2000 bytes ("" when there was none).
    pub raw_response: String,
    /// Whether a resumed run retries the unit.
    pub retryable: bool,
}

/// A training line `rlft train` reads as is (`id`, `prompt`, `answer`, `domain`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainLine {
    /// The record's id.
    pub id: String,
    /// The question (plus the configured instruction).
    pub prompt: String,
    /// The gold answer.
    pub answer: String,
    /// The domain.
    pub domain: String,
}

pub(crate) fn sort_records(r: &mut [Record]) {
    r.sort_by(|a, b| (&a.doc_id, a.persona_index, &a.id).cmp(&(&b.doc_id, b.persona_index, &b.id)));
}

pub(crate) fn sort_failures(f: &mut [Failure]) {
    f.sort_by(|a, b| {
        (
            &a.doc_id,
            a.persona_index,
            &a.stage,
            &a.source,
            &a.source_row,
            &a.reason,
        )
            .cmp(&(
                &b.doc_id,
                b.persona_index,
                &b.stage,
                &b.source,
                &b.source_row,
                &b.reason,
            ))
    });
}
