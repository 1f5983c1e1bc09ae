//! [`QaMatch`]: the deterministic reward for Webscale-RL question-answer pairs.

use serde::{Deserialize, Serialize};

use crate::error::TaskError;
use crate::extract::AnswerSource;
use crate::item::TaskItem;
use crate::verifier::{Verdict, Verifier};

/// Settings of [`QaMatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QaMatchConfig {
    /// Where to look for the answer, in order. Default `[answer_tag, boxed, whole]`: the
    /// `<answer>` tag rlft-webscale's training prompt asks for, a `\boxed{}`, else the whole
    /// completion.
    pub sources: Vec<AnswerSource>,
}

impl Default for QaMatchConfig {
    fn default() -> Self {
        Self {
            sources: vec![
                AnswerSource::AnswerTag,
                AnswerSource::Boxed,
                AnswerSource::Whole,
            ],
        }
    }
}

/// SQuAD v1.1's `normalize_answer` (`evaluate-v1.1.py`): lower-case, delete the 32 ASCII
/// punctuation characters, delete the words `a`, `an`, `the`, collapse whitespace.
///
/// ```
/// assert_eq!(rlft_tasks::normalize_qa_answer("The  Forty meters."), "forty meters");
/// ```
pub fn normalize_qa_answer(text: &str) -> String {
    let mut s = text.to_lowercase();
    s.retain(|c| !c.is_ascii_punctuation());
    s.split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Scores 1 iff the extracted answer equals the gold answer after
/// [`normalize_qa_answer`] (SQuAD exact match): the cheap, deterministic stand-in for the
/// LLM judge of the Webscale-RL paper (spec webscale.md §4 `AnswerJudge`). It is strict on
/// purpose: "Forty meters." matches "forty meters" but not "40 meters".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QaMatch {
    config: QaMatchConfig,
}

impl QaMatch {
    /// A verifier with these settings.
    pub fn new(config: QaMatchConfig) -> Self {
        Self { config }
    }
}

impl Verifier for QaMatch {
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError> {
        Ok(crate::exact::normalized_match(
            completion,
            &self.config.sources,
            &item.answer,
            normalize_qa_answer,
            false,
        ))
    }

    fn name(&self) -> &str {
        "qa_match"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec webscale.md §6 property 12.
    #[test]
    fn forty_meters() {
        let v = QaMatch::default();
        let item = TaskItem::new("1", "How long is the bridge?", "Forty meters.");
        assert_eq!(v.verify(&item, "forty meters").unwrap().score, 1.0);
        assert_eq!(v.verify(&item, "fifty meters").unwrap().score, 0.0);
        assert_eq!(
            v.verify(&item, "It is long. <answer>The forty meters</answer>")
                .unwrap()
                .score,
            1.0
        );
        assert_eq!(
            v.verify(&item, "<answer>40 meters</answer>").unwrap().score,
            0.0
        );
        let empty = TaskItem::new("2", "q", "the");
        assert!(!v.verify(&empty, "a").unwrap().correct);
    }
}
