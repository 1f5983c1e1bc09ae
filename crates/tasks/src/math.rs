//! Final-answer math verification: extraction, LaTeX normalisation, numeric equivalence.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::Zero;
use serde::{Deserialize, Serialize};

use crate::error::TaskError;
use crate::extract::{AnswerSource, describe_sources, extract_answer, hash_answer, last_boxed};
use crate::item::TaskItem;
use crate::verifier::{Reason, Verdict, Verifier};

/// Settings of [`MathVerifier`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MathVerifierConfig {
    /// Where to look for the model's answer, in order. Default `[answer_tag, boxed, hash]`:
    /// an explicit `<answer>` tag wins over a `\boxed{}` written while thinking; `#### x`
    /// (GSM8K) comes last. rlft's choice.
    pub sources: Vec<AnswerSource>,
}

impl Default for MathVerifierConfig {
    fn default() -> Self {
        Self {
            sources: vec![
                AnswerSource::AnswerTag,
                AnswerSource::Boxed,
                AnswerSource::Hash,
            ],
        }
    }
}

/// Scores 1 if the extracted final answer is equivalent to the gold answer, else 0.
///
/// Both sides go through [`normalize_math_answer`]; numbers (integers, decimals, `a/b`,
/// `\frac{a}{b}`, thousands separators, trailing zeros) compare as exact rationals, anything
/// else as normalised text. The gold answer may itself be a full solution: its last
/// `\boxed{}` or its `#### x` is used when present (MATH `solution`, GSM8K `answer`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MathVerifier {
    config: MathVerifierConfig,
}

impl MathVerifier {
    /// A verifier with these settings.
    pub fn new(config: MathVerifierConfig) -> Self {
        Self { config }
    }
}

/// The gold answer inside a gold field: its last `\boxed{}`, else its `#### x`, else all of it.
pub fn gold_answer(gold: &str) -> &str {
    last_boxed(gold)
        .or_else(|| hash_answer(gold))
        .unwrap_or(gold)
        .trim()
}

/// Longest answer text kept in a [`Reason`], in characters.
const REASON_CHARS: usize = 200;

pub(crate) fn clip(s: &str) -> String {
    match s.char_indices().nth(REASON_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl Verifier for MathVerifier {
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError> {
        let gold = normalize_math_answer(gold_answer(&item.answer));
        if gold.is_empty() {
            return Err(TaskError::BadItem {
                id: item.id.clone(),
                field: "answer".into(),
                reason: format!("expected a non-empty gold answer, found {:?}", item.answer),
            });
        }
        let Some((_, raw)) = extract_answer(completion, &self.config.sources) else {
            return Ok(Verdict::wrong(
                None,
                Reason::NoAnswer {
                    looked_for: describe_sources(&self.config.sources),
                },
            ));
        };
        let found = normalize_math_answer(raw);
        Ok(if found == gold {
            Verdict::correct(raw)
        } else {
            Verdict::wrong(
                Some(raw.to_string()),
                Reason::Mismatch {
                    expected: clip(&gold),
                    found: clip(&found),
                },
            )
        })
    }

    fn name(&self) -> &str {
        "math"
    }
}

/// Whether two final answers are equivalent under [`normalize_math_answer`].
pub fn math_equivalent(a: &str, b: &str) -> bool {
    normalize_math_answer(a) == normalize_math_answer(b)
}

/// Normalises a final answer to a canonical string.
///
/// Steps, in order (after Hendrycks MATH's `strip_string`, extended):
/// 1. unwrap a `\boxed{}`; drop `$`, `\!`, `\left`, `\right`, degree marks, `%`, LaTeX
///    spacing (`\,` `\;` `\:` `\ ` `~`) and `{,}`; `\dfrac`/`\tfrac` become `\frac`;
///    Unicode minus becomes `-`;
/// 2. drop trailing units: a trailing `\text{…}`/`\mbox{…}`/`\mathrm{…}` after other
///    content, or words after a number and a space (`5 cm`); unwrap the remaining `\text{…}`;
/// 3. remove whitespace, a short left-hand side (`x=5` → `5`), a trailing period; add a
///    leading zero (`.5` → `0.5`); brace `\sqrt2` and `\frac12`;
/// 4. drop thousands separators (`1,234,567`);
/// 5. if the result is a number (integer, decimal, `a/b`, `\frac{a}{b}`, with a sign), write
///    it as the reduced fraction `p/q` or the integer `p`, so `0.50`, `1/2` and `\frac12`
///    all become `1/2`.
///
/// Runs in time linear in the input apart from a bounded number of unwrapping passes.
pub fn normalize_math_answer(answer: &str) -> String {
    let mut s = last_boxed(answer).unwrap_or(answer).trim().to_string();
    for (from, to) in [
        ("\n", " "),
        ("\\!", ""),
        ("\\\\", "\\"),
        ("tfrac", "frac"),
        ("dfrac", "frac"),
        ("\\left", ""),
        ("\\right", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("°", ""),
        ("\\$", ""),
        ("$", ""),
        ("\\%", ""),
        ("%", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\:", ""),
        ("\\ ", " "),
        ("~", " "),
        ("{,}", ""),
        ("−", "-"),
    ] {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    s = strip_units(s.trim());
    s.retain(|c| !c.is_whitespace());
    if let Some((lhs, rhs)) = s.split_once('=')
        && lhs.chars().count() <= 2
        && !rhs.contains('=')
    {
        s = rhs.to_string();
    }
    while s.ends_with('.') {
        s.pop();
    }
    if s.starts_with('.') {
        s.insert(0, '0');
    }
    s = s.replace("{.", "{0.").replace("-.", "-0.");
    s = brace_short_args(&s, "\\sqrt", 1);
    s = brace_short_args(&s, "\\frac", 2);
    if is_thousands(&s) {
        s.retain(|c| c != ',');
    }
    match parse_value(&s, 0) {
        Some(r) => r.to_string(),
        None => s,
    }
}

const TEXT_COMMANDS: [&str; 4] = ["\\text{", "\\textbf{", "\\mbox{", "\\mathrm{"];

/// The index just past the `}` matching the `{` at `open`, if any.
fn group_end(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in s.bytes().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn strip_units(s: &str) -> String {
    let mut s = s.to_string();
    // Trailing text groups after other content are units: "5\text{ cm}" -> "5".
    for _ in 0..8 {
        let trimmed = s.trim_end();
        let tail = TEXT_COMMANDS
            .iter()
            .filter_map(|cmd| trimmed.rfind(cmd).map(|i| (i, cmd.len())))
            .max();
        match tail {
            Some((i, len))
                if group_end(trimmed, i + len - 1) == Some(trimmed.len())
                    && !trimmed[..i].trim().is_empty() =>
            {
                s = trimmed[..i].trim_end().to_string();
            }
            _ => break,
        }
    }
    // Remaining text groups are unwrapped: "\text{(A)}" -> "(A)".
    for _ in 0..32 {
        let Some((i, len)) = TEXT_COMMANDS
            .iter()
            .filter_map(|cmd| s.find(cmd).map(|i| (i, cmd.len())))
            .min()
        else {
            break;
        };
        let open = i + len - 1;
        let Some(end) = group_end(&s, open) else {
            break;
        };
        s = format!("{}{}{}", &s[..i], &s[open + 1..end - 1], &s[end..]);
    }
    // Words after a number and a space are units: "5 cm", "12 m/s", "3 apples".
    if let Some((head, tail)) = s.split_once(char::is_whitespace) {
        let tail = tail.trim();
        let numeric_head = head.chars().any(|c| c.is_ascii_digit())
            && head
                .chars()
                .all(|c| c.is_ascii_digit() || ".,-+/".contains(c));
        let wordy_tail = tail.chars().next().is_some_and(char::is_alphabetic)
            && tail
                .chars()
                .all(|c| c.is_alphanumeric() || c.is_whitespace() || "^./".contains(c));
        if numeric_head && wordy_tail {
            return head.to_string();
        }
    }
    s
}

/// Braces the first `n_args` single-character arguments of `cmd`: `\frac12` → `\frac{1}{2}`.
fn brace_short_args(s: &str, cmd: &str, n_args: usize) -> String {
    if !s.contains(cmd) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(i) = rest.find(cmd) {
        out.push_str(&rest[..i + cmd.len()]);
        rest = &rest[i + cmd.len()..];
        // Another command name (`\fracture`) is left alone.
        if rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
            continue;
        }
        for _ in 0..n_args {
            match rest.chars().next() {
                Some('{') => match group_end(rest, 0) {
                    Some(end) => {
                        out.push_str(&rest[..end]);
                        rest = &rest[end..];
                    }
                    None => break,
                },
                Some(c) if c != '\\' && c != '}' => {
                    out.push('{');
                    out.push(c);
                    out.push('}');
                    rest = &rest[c.len_utf8()..];
                }
                _ => break,
            }
        }
    }
    out.push_str(rest);
    out
}

/// `^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$`
fn is_thousands(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let groups: Vec<&str> = int.split(',').collect();
    groups.len() >= 2
        && (1..=3).contains(&groups[0].len())
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && groups[1..].iter().all(|g| g.len() == 3)
}

/// Most digits in one decimal that [`parse_value`] turns into a rational. Values are exact
/// at any size up to this (big-integer rationals), so `1267650600228229401496703205376.0`
/// equals `1267650600228229401496703205376` (2^100); the cap bounds the work per answer.
const MAX_DIGITS: usize = 4096;
/// Deepest `\frac` nesting [`parse_value`] follows.
const MAX_FRAC_DEPTH: usize = 4;

/// Parses a number: `[+-]` then a decimal, `a/b`, `\frac{a}{b}` or `{x}`.
fn parse_value(s: &str, depth: usize) -> Option<BigRational> {
    if depth > MAX_FRAC_DEPTH || s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('-') {
        return Some(-parse_value(rest, depth + 1)?);
    }
    if let Some(rest) = s.strip_prefix('+') {
        return parse_value(rest, depth + 1);
    }
    if s.starts_with('{') && group_end(s, 0) == Some(s.len()) {
        return parse_value(&s[1..s.len() - 1], depth + 1);
    }
    if s.starts_with("\\frac{") {
        let num_end = group_end(s, 5)?;
        let num = &s[6..num_end - 1];
        let den_part = &s[num_end..];
        if !den_part.starts_with('{') || group_end(den_part, 0) != Some(den_part.len()) {
            return None;
        }
        let den = &den_part[1..den_part.len() - 1];
        return checked_div(parse_value(num, depth + 1)?, parse_value(den, depth + 1)?);
    }
    if let Some((a, b)) = s.split_once('/') {
        return checked_div(parse_decimal(a)?, parse_decimal(b)?);
    }
    parse_decimal(s)
}

/// `a / b`, or `None` when `b` is 0 (a ratio with a zero denominator would panic).
fn checked_div(a: BigRational, b: BigRational) -> Option<BigRational> {
    (!b.is_zero()).then(|| a / b)
}

/// `\d+(\.\d*)?` or `\.\d+`, exactly.
fn parse_decimal(s: &str) -> Option<BigRational> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    let digits = int.len() + frac.len();
    if digits == 0
        || digits > MAX_DIGITS
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mantissa: BigInt = format!("{int}{frac}").parse().ok()?;
    let scale = num_traits::pow(BigInt::from(10u8), frac.len());
    Some(BigRational::new(mantissa, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_many_spellings_are_equal() {
        for (a, b) in [
            ("\\frac{1}{2}", "0.5"),
            ("\\dfrac12", "1/2"),
            ("\\tfrac{1}{2}", ".5"),
            ("2.50", "5/2"),
            ("2.0", "2"),
            ("1,234,567", "1234567"),
            ("1{,}000", "1000"),
            ("1\\,000", "1000"),
            ("-\\frac{3}{4}", "-0.75"),
            ("\\frac{-3}{4}", "-.75"),
            ("$5$", "5"),
            ("5\\text{ cm}", "5"),
            ("5 cm", "5"),
            ("12 m/s", "12"),
            ("x = 3", "3"),
            ("90^\\circ", "90"),
            ("50\\%", "50"),
            ("\\boxed{7}", "7"),
            ("\\frac{\\frac{1}{2}}{2}", "0.25"),
            ("−4", "-4"),
            ("7.", "7"),
            // Exact at any size (issue 18): 2^100, and a 40-digit rational.
            (
                "\\boxed{1267650600228229401496703205376.0}",
                "1267650600228229401496703205376",
            ),
            (
                "\\frac{2535301200456458802993406410752}{2}",
                "1267650600228229401496703205376",
            ),
            (
                "1234567890123456789012345678901234567890/10",
                "123456789012345678901234567890123456789",
            ),
        ] {
            assert!(
                math_equivalent(a, b),
                "{a} vs {b}: {} vs {}",
                normalize_math_answer(a),
                normalize_math_answer(b)
            );
        }
    }

    #[test]
    fn different_values_and_non_numbers_stay_apart() {
        for (a, b) in [
            ("1/2", "0.51"),
            ("1,23", "123"),
            ("1,2345", "12345"),
            ("\\sqrt{2}", "2"),
            ("5x", "5"),
            ("(1,2)", "(1,3)"),
            ("2", "-2"),
            // One unit apart in the 31st digit: no longer compared as strings or rounded.
            (
                "1267650600228229401496703205376.0",
                "1267650600228229401496703205377",
            ),
            ("1/0", "2/0"),
        ] {
            assert!(!math_equivalent(a, b), "{a} vs {b}");
        }
        assert!(math_equivalent("\\sqrt2", "\\sqrt{2}"));
        assert!(math_equivalent("\\text{(A)}", "(A)"));
        assert!(math_equivalent("\\left( 1, 2 \\right)", "(1,2)"));
    }

    #[test]
    fn verifier_extracts_and_reports() {
        let v = MathVerifier::default();
        let item = TaskItem::new("g1", "q", "Natalia sold 48/2 = 24 clips.\n#### 72");
        assert!(
            v.verify(&item, "so the answer is \\boxed{72}")
                .unwrap()
                .correct
        );
        assert!(v.verify(&item, "<answer>72.00</answer>").unwrap().correct);
        let wrong = v.verify(&item, "#### 71").unwrap();
        assert_eq!(
            wrong.reason,
            Reason::Mismatch {
                expected: "72".into(),
                found: "71".into()
            }
        );
        assert_eq!(wrong.score, 0.0);
        let none = v.verify(&item, "seventy-two").unwrap();
        assert!(matches!(none.reason, Reason::NoAnswer { .. }));
        assert!(none.answer.is_none());
        let empty_gold = TaskItem::new("g2", "q", "  ");
        assert!(matches!(
            v.verify(&empty_gold, "x"),
            Err(TaskError::BadItem { .. })
        ));
    }

    #[test]
    fn gold_from_math_solution_uses_last_box() {
        assert_eq!(gold_answer("so $x=\\boxed{\\frac{3}{4}}$."), "\\frac{3}{4}");
        assert_eq!(gold_answer("42"), "42");
    }
}
