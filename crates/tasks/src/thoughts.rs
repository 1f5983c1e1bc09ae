//! Reasoning-behaviour counters: transition and reflection thoughts in a completion (spec
//! prerl.md §3, SEAL's keyword classifier, arXiv 2504.07986).
//!
//! A completion is split into thoughts at blank lines; each thought is lower-cased and is a
//! **transition** if it contains any of [`TRANSITION_KEYWORDS`] (checked first), else a
//! **reflection** if it contains any of [`REFLECTION_KEYWORDS`], else execution. Two matching
//! rules ([`KeywordMatch`]): plain substrings, as SEAL's (so "awaits" counts as "wait"), and
//! whole words (the keyword bounded by non-alphanumeric characters); spec §3 asks for both.
//! The counter is pure text, deterministic and case-insensitive.

use serde::{Deserialize, Serialize};

/// Keywords that make a thought a transition (spec prerl.md §3, item 2).
pub const TRANSITION_KEYWORDS: &[&str] = &[
    "alternatively",
    "think differently",
    "another way",
    "another approach",
    "another method",
    "another solution",
    "another strategy",
    "another technique",
];

/// Keywords that make a thought a reflection when it is not a transition (spec prerl.md §3,
/// item 3).
pub const REFLECTION_KEYWORDS: &[&str] = &[
    "wait",
    "verify",
    "make sure",
    "hold on",
    "think again",
    "'s correct",
    "'s incorrect",
    "let me check",
    "seems right",
];

/// How a keyword must occur in a thought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeywordMatch {
    /// Anywhere, as a substring (SEAL's rule). Default.
    #[default]
    Substring,
    /// As whole words: no letter or digit right before or after the keyword (on a side where
    /// the keyword itself ends in a letter or digit).
    Words,
}

impl KeywordMatch {
    fn found(self, haystack: &str, keyword: &str) -> bool {
        match self {
            Self::Substring => haystack.contains(keyword),
            Self::Words => haystack.match_indices(keyword).any(|(i, _)| {
                let before = haystack[..i].chars().next_back();
                let after = haystack[i + keyword.len()..].chars().next();
                // A keyword edge that is not a letter ("'s correct") needs no boundary there.
                let open = !keyword.starts_with(char::is_alphanumeric);
                let close = !keyword.ends_with(char::is_alphanumeric);
                (open || !before.is_some_and(char::is_alphanumeric))
                    && (close || !after.is_some_and(char::is_alphanumeric))
            }),
        }
    }
}

/// Thought counts of one completion (or sums over several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThoughtCounts {
    /// Thoughts containing a transition keyword.
    pub transition: usize,
    /// Thoughts containing a reflection keyword and no transition keyword.
    pub reflection: usize,
    /// All other non-empty thoughts.
    pub execution: usize,
}

impl ThoughtCounts {
    /// Counts the thoughts of `text`: split at blank lines (`\n\n`, also with `\r\n` line
    /// ends and whitespace-only lines between), empty thoughts skipped.
    ///
    /// ```
    /// use rlft_tasks::ThoughtCounts;
    ///
    /// let c = ThoughtCounts::of("2+2=4.\n\nWait, let me verify.\n\nAlternatively, wait: 4.");
    /// assert_eq!((c.transition, c.reflection, c.execution), (1, 1, 1));
    /// ```
    pub fn of(text: &str) -> Self {
        Self::of_with(text, KeywordMatch::Substring)
    }

    /// [`ThoughtCounts::of`] with the given matching rule.
    pub fn of_with(text: &str, rule: KeywordMatch) -> Self {
        let mut counts = Self::default();
        let text = text.replace("\r\n", "\n");
        let mut thought = String::new();
        let flush = |thought: &mut String, counts: &mut Self| {
            if !thought.trim().is_empty() {
                counts.add_thought(thought, rule);
            }
            thought.clear();
        };
        for line in text.split('\n') {
            if line.trim().is_empty() {
                flush(&mut thought, &mut counts);
            } else {
                if !thought.is_empty() {
                    thought.push('\n');
                }
                thought.push_str(line);
            }
        }
        flush(&mut thought, &mut counts);
        counts
    }

    fn add_thought(&mut self, thought: &str, rule: KeywordMatch) {
        let lower = thought.to_lowercase();
        if TRANSITION_KEYWORDS.iter().any(|k| rule.found(&lower, k)) {
            self.transition += 1;
        } else if REFLECTION_KEYWORDS.iter().any(|k| rule.found(&lower, k)) {
            self.reflection += 1;
        } else {
            self.execution += 1;
        }
    }
}

impl std::ops::Add for ThoughtCounts {
    type Output = Self;

    /// The element-wise sum.
    fn add(self, other: Self) -> Self {
        Self {
            transition: self.transition + other.transition,
            reflection: self.reflection + other.reflection,
            execution: self.execution + other.execution,
        }
    }
}

/// Mean transition and reflection thoughts per completion over `texts` (0 for none), with
/// SEAL's substring matching.
pub fn mean_thoughts<'a>(texts: impl IntoIterator<Item = &'a str>) -> (f64, f64) {
    mean_thoughts_with(texts, KeywordMatch::Substring)
}

/// [`mean_thoughts`] with the given matching rule.
pub fn mean_thoughts_with<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    rule: KeywordMatch,
) -> (f64, f64) {
    let (mut sum, mut n) = (ThoughtCounts::default(), 0usize);
    for t in texts {
        sum = sum + ThoughtCounts::of_with(t, rule);
        n += 1;
    }
    let n = n.max(1) as f64;
    (sum.transition as f64 / n, sum.reflection as f64 / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P10: deterministic, case-insensitive, transition before reflection.
    #[test]
    fn transition_takes_precedence_and_case_does_not_matter() {
        let text = "WAIT.\n\nAlternatively, wait.\n\nAnother Approach\n\nx = 1";
        let c = ThoughtCounts::of(text);
        assert_eq!(
            c,
            ThoughtCounts {
                transition: 2,
                reflection: 1,
                execution: 1
            }
        );
        assert_eq!(c, ThoughtCounts::of(text));
        assert_eq!(ThoughtCounts::of(&text.to_lowercase()), c);
        assert_eq!(ThoughtCounts::of(&text.to_uppercase()), c);
    }

    #[test]
    fn blank_lines_split_and_single_newlines_do_not() {
        let c = ThoughtCounts::of("a\nwait\nb\r\n  \r\nc\n\n\n\n");
        assert_eq!((c.transition, c.reflection, c.execution), (0, 1, 1));
        assert_eq!(ThoughtCounts::of(""), ThoughtCounts::default());
        // Substring matching, as SEAL's: "awaits" counts; whole words do not count it.
        assert_eq!(ThoughtCounts::of("it awaits").reflection, 1);
        assert_eq!(
            ThoughtCounts::of_with("it awaits", KeywordMatch::Words).reflection,
            0
        );
        assert_eq!(
            ThoughtCounts::of_with("Wait, no.", KeywordMatch::Words).reflection,
            1
        );
        assert_eq!(
            ThoughtCounts::of_with("wait", KeywordMatch::Words).reflection,
            1
        );
        assert_eq!(
            ThoughtCounts::of_with("that's correct!", KeywordMatch::Words).reflection,
            1
        );
        assert_eq!(
            ThoughtCounts::of_with("alternatively2", KeywordMatch::Words),
            ThoughtCounts {
                execution: 1,
                ..ThoughtCounts::default()
            }
        );
        assert_eq!(ThoughtCounts::of("That's correct").reflection, 1);
    }

    #[test]
    fn means_are_per_completion() {
        let (t, r) = mean_thoughts(["wait\n\nwait", "alternatively", "", "x"]);
        assert_eq!((t, r), (0.25, 0.5));
        assert_eq!(mean_thoughts([]), (0.0, 0.0));
    }
}
