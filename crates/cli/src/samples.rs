//! Evaluation outputs to read: every sample an evaluation scored (prompt, completion,
//! extracted answer, verdict, reason, score) as JSONL, and a Markdown list of the first
//! failures. Written by `rlft eval --samples` and by `rlft train`'s held-out evaluation.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use rlft_models::ChatTokenizer;
use rlft_tasks::{Reason, TaskItem, Verifier};
use rlft_trainer::{Rewarder, TrainerError};
use serde::{Deserialize, Serialize};

/// How many failures a report lists.
pub const FIRST_FAILURES: usize = 10;

/// One scored completion, one line of a samples file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    /// The task item's id.
    pub id: String,
    /// Which of the prompt's n samples (0-based).
    pub sample: usize,
    /// The prompt exactly as the model saw it (the rendered chat template included).
    pub prompt: String,
    /// The completion's text.
    pub completion: String,
    /// The gold answer.
    pub answer: String,
    /// The answer the verifier extracted from the completion, if any.
    pub extracted: Option<String>,
    /// `correct` or `wrong`.
    pub verdict: String,
    /// Why, in words (e.g. `expected "7", found "8"`).
    pub reason: String,
    /// Why, as the verifier's structured reason (`kind` plus its fields).
    pub detail: Reason,
    /// The reward the verifier gave.
    pub score: f64,
}

/// A [`Rewarder`] that scores like `rlft_trainer::VerifierRewarder` (the verdict's score and
/// correctness) and keeps every verdict, so an evaluation's samples can be written out.
pub struct Recorder<'a> {
    verifier: &'a dyn Verifier,
    items: &'a [TaskItem],
    verdicts: RefCell<Vec<(usize, String, rlft_tasks::Verdict)>>,
}

impl<'a> Recorder<'a> {
    /// Scores prompt `i` against `items[i]` with `verifier`.
    pub fn new(verifier: &'a dyn Verifier, items: &'a [TaskItem]) -> Self {
        Self {
            verifier,
            items,
            verdicts: RefCell::new(Vec::new()),
        }
    }

    /// The samples scored so far, in scoring order, with their prompts decoded from
    /// `prompt_ids` (special tokens kept, so the chat template shows).
    pub fn rows(
        &self,
        tok: &ChatTokenizer,
        prompt_ids: &[Vec<u32>],
    ) -> anyhow::Result<Vec<SampleRow>> {
        let verdicts = self.verdicts.borrow();
        let mut counts = vec![0usize; self.items.len()];
        let mut prompts: Vec<Option<String>> = vec![None; self.items.len()];
        let mut rows = Vec::with_capacity(verdicts.len());
        for (i, text, v) in verdicts.iter() {
            let item = &self.items[*i];
            let prompt = match &prompts[*i] {
                Some(p) => p.clone(),
                None => {
                    let ids = prompt_ids
                        .get(*i)
                        .with_context(|| format!("no prompt tokens for item {}", item.id))?;
                    let p = tok.decode(ids, false)?;
                    prompts[*i] = Some(p.clone());
                    p
                }
            };
            rows.push(SampleRow {
                id: item.id.clone(),
                sample: counts[*i],
                prompt,
                completion: text.clone(),
                answer: item.answer.clone(),
                extracted: v.answer.clone(),
                verdict: if v.correct { "correct" } else { "wrong" }.to_string(),
                reason: v.reason.to_string(),
                detail: v.reason.clone(),
                score: v.score,
            });
            counts[*i] += 1;
        }
        Ok(rows)
    }
}

impl Rewarder for Recorder<'_> {
    fn score(&self, prompt_index: usize, text: &str) -> rlft_trainer::Result<(f32, bool)> {
        let item = self.items.get(prompt_index).ok_or_else(|| {
            TrainerError::InvalidBatch(format!(
                "prompt index {prompt_index} out of range for {} task items",
                self.items.len()
            ))
        })?;
        let v = self.verifier.verify(item, text)?;
        let scored = (v.score as f32, v.correct);
        self.verdicts
            .borrow_mut()
            .push((prompt_index, text.to_string(), v));
        Ok(scored)
    }
}

/// Writes `rows` as JSONL, atomically.
pub fn write_samples(path: &Path, rows: &[SampleRow]) -> anyhow::Result<()> {
    rlft_tasks::write_jsonl(path, rows)
        .with_context(|| format!("writing samples {}", path.display()))
}

/// Markdown: how many samples were wrong, then a table of the first `limit` failures (id,
/// sample, gold answer, extracted answer, reason, the completion's start) in file order.
pub fn failures_markdown(rows: &[SampleRow], limit: usize) -> String {
    let wrong: Vec<&SampleRow> = rows.iter().filter(|r| r.verdict != "correct").collect();
    let mut md = format!("{} of {} samples wrong.\n", wrong.len(), rows.len());
    if wrong.is_empty() {
        return md;
    }
    let shown = wrong.len().min(limit);
    let _ = writeln!(
        md,
        "\nThe first {shown}:\n\n| id | sample | answer | extracted | reason | completion |\n|---|---|---|---|---|---|"
    );
    for r in wrong.iter().take(limit) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&r.id, 40),
            r.sample,
            cell(&r.answer, 40),
            r.extracted
                .as_deref()
                .map_or("–".to_string(), |a| cell(a, 40)),
            cell(&r.reason, 80),
            cell(&r.completion, 120)
        );
    }
    md
}

/// Text for one Markdown table cell: at most `max` characters (an ellipsis marks a cut),
/// newlines shown as `⏎`, pipes and backticks escaped.
fn cell(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push('⏎'),
            '\r' => {}
            '|' => out.push_str("\\|"),
            '`' => out.push_str("\\`"),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        "\"\"".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlft_tasks::ExactMatch;

    fn row(id: &str, verdict: &str, completion: &str) -> SampleRow {
        SampleRow {
            id: id.into(),
            sample: 0,
            prompt: "p".into(),
            completion: completion.into(),
            answer: "7".into(),
            extracted: None,
            verdict: verdict.into(),
            reason: "no answer found".into(),
            detail: Reason::Correct,
            score: 0.0,
        }
    }

    #[test]
    fn failures_are_listed_in_order_up_to_the_limit_and_escaped() {
        let rows = vec![
            row("a", "correct", "7"),
            row("b", "wrong", "x | y\nz"),
            row("c", "wrong", ""),
            row("d", "wrong", "w"),
        ];
        let md = failures_markdown(&rows, 2);
        assert!(md.starts_with("3 of 4 samples wrong.\n"), "{md}");
        assert!(
            md.contains("| b | 0 | 7 | – | no answer found | x \\| y⏎z |"),
            "{md}"
        );
        assert!(
            md.contains("| c | 0 | 7 | – | no answer found | \"\" |"),
            "{md}"
        );
        assert!(!md.contains("| d |"), "{md}");
        assert!(!md.contains("| a |"), "{md}");
        assert_eq!(failures_markdown(&rows[..1], 2), "0 of 1 samples wrong.\n");
        assert_eq!(cell("abcdef", 3), "abc…");
    }

    #[test]
    fn the_recorder_scores_as_the_verifier_and_keeps_every_verdict() {
        let items = vec![TaskItem::new("x", "q", "7"), TaskItem::new("y", "r", "8")];
        let verifier = ExactMatch::default();
        let rec = Recorder::new(&verifier, &items);
        assert_eq!(rec.score(0, "<answer>7</answer>").unwrap(), (1.0, true));
        assert_eq!(rec.score(1, "<answer>7</answer>").unwrap(), (0.0, false));
        assert!(!rec.score(0, "nothing").unwrap().1);
        assert!(rec.score(2, "7").is_err());
        let v = rec.verdicts.borrow();
        assert_eq!(v.len(), 3);
        assert_eq!(
            v[1].2.reason.to_string(),
            verifier
                .verify(&items[1], "<answer>7</answer>")
                .unwrap()
                .reason
                .to_string()
        );
    }
}
