//! Exact-match verification after light, configurable normalisation.

use serde::{Deserialize, Serialize};

use crate::error::TaskError;
use crate::extract::{AnswerSource, describe_sources, extract_answer};
use crate::item::TaskItem;
use crate::math::clip;
use crate::verifier::{Reason, Verdict, Verifier};

/// What to do with whitespace before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Whitespace {
    /// Compare as is (after trimming the ends).
    Keep,
    /// Turn each run of whitespace into one space.
    Collapse,
    /// Delete all whitespace.
    Remove,
}

/// Settings of [`ExactMatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExactMatchConfig {
    /// Where to look for the answer, in order. Default `[answer_tag, boxed]`: DRIFT's
    /// `<answer>` tag, then a `\boxed{}`; add `whole` to compare whole completions.
    pub sources: Vec<AnswerSource>,
    /// Compare case-sensitively. Default false: DRIFT lower-cases both sides
    /// (`prompting.py`, spec drift.md §2.1).
    pub case_sensitive: bool,
    /// Whitespace handling. Default `remove`: DRIFT deletes all whitespace.
    pub whitespace: Whitespace,
    /// Delete the 32 ASCII punctuation characters (Python `string.punctuation`). Default
    /// false (DRIFT keeps them); the Webscale-RL leak guard normalises this way.
    pub strip_punctuation: bool,
}

impl Default for ExactMatchConfig {
    fn default() -> Self {
        Self {
            sources: vec![AnswerSource::AnswerTag, AnswerSource::Boxed],
            case_sensitive: false,
            whitespace: Whitespace::Remove,
            strip_punctuation: false,
        }
    }
}

impl ExactMatchConfig {
    /// Normalises one side as configured.
    pub fn normalize(&self, text: &str) -> String {
        let mut s: String = if self.case_sensitive {
            text.trim().to_string()
        } else {
            text.trim().to_lowercase()
        };
        if self.strip_punctuation {
            s.retain(|c| !c.is_ascii_punctuation());
        }
        match self.whitespace {
            Whitespace::Keep => s.trim().to_string(),
            Whitespace::Collapse => s.split_whitespace().collect::<Vec<_>>().join(" "),
            Whitespace::Remove => s.chars().filter(|c| !c.is_whitespace()).collect(),
        }
    }
}

/// Scores 1 iff the extracted answer equals the item's answer after normalisation.
///
/// With the default config this is DRIFT's data-generation verifier: lower-case, delete
/// whitespace, compare strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExactMatch {
    config: ExactMatchConfig,
}

impl ExactMatch {
    /// A verifier with these settings.
    pub fn new(config: ExactMatchConfig) -> Self {
        Self { config }
    }
}

/// The verdict of a string-equality verifier: the answer found in `completion` (first source
/// that yields one) against `gold`, both through `normalize`. An empty normalised gold matches
/// only when `empty_gold_matches`.
pub(crate) fn normalized_match(
    completion: &str,
    sources: &[AnswerSource],
    gold: &str,
    normalize: impl Fn(&str) -> String,
    empty_gold_matches: bool,
) -> Verdict {
    let Some((_, raw)) = extract_answer(completion, sources) else {
        return Verdict::wrong(
            None,
            Reason::NoAnswer {
                looked_for: describe_sources(sources),
            },
        );
    };
    let expected = normalize(gold);
    let found = normalize(raw);
    if (empty_gold_matches || !expected.is_empty()) && expected == found {
        Verdict::correct(raw)
    } else {
        Verdict::wrong(
            Some(raw.to_string()),
            Reason::Mismatch {
                expected: clip(&expected),
                found: clip(&found),
            },
        )
    }
}

impl Verifier for ExactMatch {
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError> {
        Ok(normalized_match(
            completion,
            &self.config.sources,
            &item.answer,
            |t| self.config.normalize(t),
            true,
        ))
    }

    fn name(&self) -> &str {
        "exact_match"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_default_ignores_case_and_whitespace_only() {
        let v = ExactMatch::default();
        let item = TaskItem::new("1", "q", "New York");
        assert!(
            v.verify(&item, "<answer> new  york </answer>")
                .unwrap()
                .correct
        );
        assert!(
            !v.verify(&item, "<answer>New-York</answer>")
                .unwrap()
                .correct
        );
        assert!(
            !v.verify(&item, "New York").unwrap().correct,
            "no tag, no answer"
        );
    }

    #[test]
    fn options_change_the_comparison() {
        let item = TaskItem::new("1", "q", "New York.");
        let strict = ExactMatch::new(ExactMatchConfig {
            sources: vec![AnswerSource::Whole],
            case_sensitive: true,
            whitespace: Whitespace::Keep,
            strip_punctuation: false,
        });
        assert!(strict.verify(&item, " New York. ").unwrap().correct);
        assert!(!strict.verify(&item, "new york.").unwrap().correct);
        assert!(!strict.verify(&item, "New  York.").unwrap().correct);
        let loose = ExactMatch::new(ExactMatchConfig {
            sources: vec![AnswerSource::Whole],
            whitespace: Whitespace::Collapse,
            strip_punctuation: true,
            ..Default::default()
        });
        assert!(loose.verify(&item, "new   york").unwrap().correct);
        assert!(!loose.verify(&item, "newyork").unwrap().correct);
    }
}
