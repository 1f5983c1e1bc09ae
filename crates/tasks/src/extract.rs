//! Answer extraction from completions: `<answer>…</answer>`, `\boxed{…}`, `#### x`, and
//! DRIFT's `<think>…</think> <answer>…</answer>` turn format.
//!
//! Every function here runs in time linear (or `n log n`) in the input and uses no recursion,
//! so megabytes of text or of nested braces cannot overflow the stack or stall a verifier.

use serde::{Deserialize, Serialize};

/// A place an answer can be taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerSource {
    /// The last `<answer>…</answer>` pair, with matches found left to right without overlap
    /// (Python `re.findall(r"<answer>(.*?)</answer>", s, re.S)[-1]`, as in TinyZero's
    /// Countdown scorer).
    AnswerTag,
    /// The content of the last complete `\boxed{…}` or `\fbox{…}` (nested braces allowed),
    /// or `\boxed x` up to the next `$` or end of text (Hendrycks MATH
    /// `last_boxed_only_string`).
    Boxed,
    /// The text after the last `####` up to the end of its line (GSM8K).
    Hash,
    /// The whole completion, trimmed.
    Whole,
}

impl AnswerSource {
    /// How the source is written in reasons.
    pub fn describe(self) -> &'static str {
        match self {
            AnswerSource::AnswerTag => "<answer>…</answer>",
            AnswerSource::Boxed => "\\boxed{…}",
            AnswerSource::Hash => "#### …",
            AnswerSource::Whole => "the whole text",
        }
    }

    /// Extracts from this source, trimmed; `None` if absent or empty.
    pub fn extract(self, text: &str) -> Option<&str> {
        let found = match self {
            AnswerSource::AnswerTag => last_answer_tag(text),
            AnswerSource::Boxed => last_boxed(text),
            AnswerSource::Hash => hash_answer(text),
            AnswerSource::Whole => Some(text),
        }?;
        let found = found.trim();
        (!found.is_empty()).then_some(found)
    }
}

/// Tries `sources` in order and returns the first answer found with its source.
pub fn extract_answer<'t>(
    text: &'t str,
    sources: &[AnswerSource],
) -> Option<(AnswerSource, &'t str)> {
    sources
        .iter()
        .find_map(|&s| s.extract(text).map(|a| (s, a)))
}

/// Joins source descriptions for a [`Reason::NoAnswer`](crate::Reason::NoAnswer).
pub(crate) fn describe_sources(sources: &[AnswerSource]) -> String {
    sources
        .iter()
        .map(|s| s.describe())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The content of the last `<answer>…</answer>` match (leftmost, non-overlapping, lazy).
pub fn last_answer_tag(text: &str) -> Option<&str> {
    const OPEN: &str = "<answer>";
    const CLOSE: &str = "</answer>";
    let mut pos = 0;
    let mut last = None;
    while let Some(o) = text[pos..].find(OPEN) {
        let start = pos + o + OPEN.len();
        let Some(c) = text[start..].find(CLOSE) else {
            break;
        };
        last = Some(&text[start..start + c]);
        pos = start + c + CLOSE.len();
    }
    last
}

/// The text after the last `####`, up to the end of that line.
pub fn hash_answer(text: &str) -> Option<&str> {
    let i = text.rfind("####")?;
    let rest = &text[i + 4..];
    Some(rest.split('\n').next().unwrap_or(rest))
}

/// The content of the last complete `\boxed{…}` / `\fbox{…}`, or of a `\boxed x` form.
pub fn last_boxed(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    // Candidate openings: the byte index of the `{` after `\boxed` / `\fbox`, or of the
    // space in `\boxed `.
    let mut braced: Vec<usize> = Vec::new();
    let mut spaced: Vec<usize> = Vec::new();
    for (i, _) in text.match_indices('\\') {
        let rest = &bytes[i + 1..];
        for kw in [&b"boxed"[..], &b"fbox"[..]] {
            if rest.starts_with(kw) {
                let after = i + 1 + kw.len();
                match bytes.get(after) {
                    Some(b'{') => braced.push(after),
                    Some(b' ') if kw == b"boxed" => spaced.push(after),
                    _ => {}
                }
            }
        }
    }
    if braced.is_empty() && spaced.is_empty() {
        return None;
    }
    // One pass with an explicit stack finds the matching `}` of each candidate.
    let mut closes: Vec<(usize, usize)> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' => stack.push(i),
            b'}' => {
                if let Some(open) = stack.pop() {
                    // `braced` is sorted, so a binary search tells whether `open` is one.
                    if braced.binary_search(&open).is_ok() {
                        closes.push((open, i));
                    }
                }
            }
            _ => {}
        }
    }
    let best_braced = closes.iter().max_by_key(|(open, _)| *open).copied();
    let best_spaced = spaced.last().copied();
    match (best_braced, best_spaced) {
        (Some((open, _)), Some(sp)) if sp > open => Some(spaced_content(text, sp)),
        (Some((open, close)), _) => Some(&text[open + 1..close]),
        (None, Some(sp)) => Some(spaced_content(text, sp)),
        (None, None) => None,
    }
}

fn spaced_content(text: &str, space: usize) -> &str {
    let rest = &text[space + 1..];
    rest.split('$').next().unwrap_or(rest)
}

/// A model turn in DRIFT's format, after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinkAnswer<'t> {
    /// The thinking text, trimmed.
    pub think: &'t str,
    /// The answer text, trimmed.
    pub answer: &'t str,
}

/// Parses `<think>T</think>\s*<answer>A</answer>` like DRIFT's
/// `re.search(r"<think>(.*?)</think>\s*<answer>(.*?)</answer>", s, re.S)`: the leftmost
/// `<think>`, the first `</think>` after it that is followed (after whitespace) by
/// `<answer>` and a later `</answer>`, and the first `</answer>` after that.
pub fn parse_think_answer(text: &str) -> Option<ThinkAnswer<'_>> {
    const T_OPEN: &str = "<think>";
    const T_CLOSE: &str = "</think>";
    const A_OPEN: &str = "<answer>";
    const A_CLOSE: &str = "</answer>";
    let s = text.find(T_OPEN)? + T_OPEN.len();
    // Any later `<think>` start can only use a subset of the `</think>`s this one can, so
    // the leftmost start decides the match.
    let mut pos = s;
    while let Some(e) = text[pos..].find(T_CLOSE) {
        let e = pos + e;
        let after = &text[e + T_CLOSE.len()..];
        let trimmed = after.trim_start_matches(is_regex_space);
        if let Some(body) = trimmed.strip_prefix(A_OPEN) {
            // If no `</answer>` follows here, none follows any later `</think>` either.
            let c = body.find(A_CLOSE)?;
            return Some(ThinkAnswer {
                think: text[s..e].trim(),
                answer: body[..c].trim(),
            });
        }
        pos = e + T_CLOSE.len();
    }
    None
}

/// Python's `\s` for `str` patterns: Unicode whitespace.
fn is_regex_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_tag_takes_last_non_overlapping_match() {
        assert_eq!(
            last_answer_tag("<answer>1</answer> x <answer>2</answer>"),
            Some("2")
        );
        assert_eq!(
            last_answer_tag("<answer>a<answer>b</answer>"),
            Some("a<answer>b")
        );
        assert_eq!(last_answer_tag("<answer>1</answer><answer>2"), Some("1"));
        assert_eq!(last_answer_tag("no tags"), None);
    }

    #[test]
    fn boxed_handles_nesting_and_truncation() {
        assert_eq!(last_boxed(r"so \boxed{\frac{1}{2}}."), Some(r"\frac{1}{2}"));
        assert_eq!(last_boxed(r"\boxed{1} then \boxed{2}"), Some("2"));
        // The last one is truncated, so the previous complete one wins.
        assert_eq!(last_boxed(r"\boxed{1} then \boxed{2"), Some("1"));
        assert_eq!(last_boxed(r"\fbox{7}"), Some("7"));
        assert_eq!(last_boxed(r"$\boxed 5$"), Some("5"));
        assert_eq!(last_boxed(r"\boxed{}"), Some(""));
        assert_eq!(AnswerSource::Boxed.extract(r"\boxed{ }"), None);
        assert_eq!(last_boxed(r"\boxedx{1}"), None);
    }

    #[test]
    fn hash_answer_reads_to_end_of_line() {
        assert_eq!(hash_answer("work\n#### 72\nmore"), Some(" 72"));
        assert_eq!(AnswerSource::Hash.extract("#### 1,234"), Some("1,234"));
    }

    #[test]
    fn extract_answer_follows_source_order() {
        let text = r"\boxed{3} <answer>4</answer>";
        let tag_first = [AnswerSource::AnswerTag, AnswerSource::Boxed];
        assert_eq!(
            extract_answer(text, &tag_first),
            Some((AnswerSource::AnswerTag, "4"))
        );
        let boxed_first = [AnswerSource::Boxed, AnswerSource::AnswerTag];
        assert_eq!(
            extract_answer(text, &boxed_first),
            Some((AnswerSource::Boxed, "3"))
        );
    }

    #[test]
    fn think_answer_matches_drift_regex() {
        let t = parse_think_answer("<think> a </think>\n <answer> 12 </answer>").unwrap();
        assert_eq!((t.think, t.answer), ("a", "12"));
        // The lazy think group extends to a later </think> that is followed by <answer>.
        let t = parse_think_answer("<think>x</think> y </think><answer>5</answer>").unwrap();
        assert_eq!((t.think, t.answer), ("x</think> y", "5"));
        assert!(parse_think_answer("<think>x</think> <answer>5").is_none());
        assert!(parse_think_answer("<answer>5</answer>").is_none());
        assert!(parse_think_answer("<think>x</think> text <answer>5</answer>").is_none());
    }
}
