//! The Countdown verifier: each given number exactly once, + − × ÷ and parentheses, exact
//! arithmetic, value equal to the target.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::TaskError;
use crate::expr::{ExprLimits, parse_expression};
use crate::extract::last_answer_tag;
use crate::item::TaskItem;
use crate::rational::Rational;
use crate::verifier::{Reason, Verdict, Verifier};

/// Settings of [`CountdownVerifier`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountdownVerifierConfig {
    /// Parser bounds.
    pub limits: ExprLimits,
    /// Item field holding the numbers. Default `"nums"`: Countdown-Tasks-3to4 and TinyZero.
    pub nums_field: String,
    /// Item field holding the target; when absent the item's answer is used. Default
    /// `"target"`: Countdown-Tasks-3to4 and TinyZero.
    pub target_field: String,
}

impl Default for CountdownVerifierConfig {
    fn default() -> Self {
        Self {
            limits: ExprLimits::default(),
            nums_field: "nums".into(),
            target_field: "target".into(),
        }
    }
}

/// A Countdown problem: reach `target` using each number exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountdownProblem {
    /// The given numbers.
    pub nums: Vec<u64>,
    /// The value to reach.
    pub target: i64,
}

impl CountdownProblem {
    /// Reads the problem from an item's `nums` and `target` fields (names from `config`),
    /// falling back to the item's answer for the target.
    ///
    /// # Errors
    /// [`TaskError::BadItem`] naming the field that is missing or not integral.
    pub fn from_item(item: &TaskItem, config: &CountdownVerifierConfig) -> Result<Self, TaskError> {
        let bad = |field: &str, reason: String| TaskError::BadItem {
            id: item.id.clone(),
            field: field.to_string(),
            reason,
        };
        let nums = match item.meta.get(&config.nums_field) {
            Some(Value::Array(xs)) => xs
                .iter()
                .map(|x| x.as_u64())
                .collect::<Option<Vec<u64>>>()
                .ok_or_else(|| {
                    bad(
                        &config.nums_field,
                        format!("expected non-negative integers, found {xs:?}"),
                    )
                })?,
            Some(other) => {
                return Err(bad(
                    &config.nums_field,
                    format!("expected an array, found {other}"),
                ));
            }
            None => return Err(bad(&config.nums_field, "missing".into())),
        };
        let target = match item.meta.get(&config.target_field) {
            Some(v) => v.as_i64().ok_or_else(|| {
                bad(
                    &config.target_field,
                    format!("expected an integer, found {v}"),
                )
            })?,
            None => item.answer.trim().parse::<i64>().map_err(|_| {
                bad(
                    "answer",
                    format!("expected an integer target, found {:?}", item.answer),
                )
            })?,
        };
        Ok(Self { nums, target })
    }

    /// Scores an expression (the text inside `<answer>`): correct iff it parses within
    /// `limits`, uses exactly the given numbers, and equals the target exactly.
    pub fn check(&self, expression: &str, limits: &ExprLimits) -> Verdict {
        let answer = Some(expression.to_string());
        let evaluated = match parse_expression(expression, limits) {
            Ok(e) => e,
            Err(error) => return Verdict::wrong(answer, Reason::BadExpression { error }),
        };
        let mut used = evaluated.numbers;
        used.sort_unstable();
        let mut expected = self.nums.clone();
        expected.sort_unstable();
        if used != expected {
            return Verdict::wrong(
                answer,
                Reason::WrongNumbers {
                    expected,
                    found: used,
                },
            );
        }
        if evaluated.value != Rational::int(i128::from(self.target)) {
            return Verdict::wrong(
                answer,
                Reason::WrongValue {
                    target: self.target,
                    value: evaluated.value.to_string(),
                },
            );
        }
        Verdict::correct(expression)
    }
}

/// Scores Countdown completions: the expression is the content of the last
/// `<answer>…</answer>` (as TinyZero's `countdown.py` extracts it), and the score is 1 if
/// it is a correct solution, else 0. Wrap it in [`FormatReward`](crate::FormatReward) with
/// 0.1 to get TinyZero's and DPS's shaped score (1 / 0.1 format-only / 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountdownVerifier {
    config: CountdownVerifierConfig,
}

impl CountdownVerifier {
    /// A verifier with these settings.
    pub fn new(config: CountdownVerifierConfig) -> Self {
        Self { config }
    }

    /// Its settings.
    pub fn config(&self) -> &CountdownVerifierConfig {
        &self.config
    }
}

impl Verifier for CountdownVerifier {
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError> {
        let problem = CountdownProblem::from_item(item, &self.config)?;
        Ok(match last_answer_tag(completion) {
            None => Verdict::wrong(
                None,
                Reason::NoAnswer {
                    looked_for: "<answer>…</answer>".into(),
                },
            ),
            Some(expr) => problem.check(expr.trim(), &self.config.limits),
        })
    }

    fn name(&self) -> &str {
        "countdown"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> TaskItem {
        TaskItem::new("cd1", "use 44 19 35 to make 98", "98")
            .with_meta("nums", serde_json::json!([44, 19, 35]))
            .with_meta("target", 98)
    }

    fn verify(text: &str) -> Verdict {
        CountdownVerifier::default().verify(&item(), text).unwrap()
    }

    #[test]
    fn correct_solution_scores_one() {
        let v = verify("<think>...</think><answer> 44 + 19 + 35 </answer>");
        assert!(v.correct);
        assert_eq!(v.score, 1.0);
        assert_eq!(v.reason, Reason::Correct);
    }

    #[test]
    fn each_failure_has_its_reason() {
        assert!(matches!(verify("44+19+35").reason, Reason::NoAnswer { .. }));
        assert_eq!(
            verify("<answer>44 + 19 + 35 + 0</answer>").reason,
            Reason::WrongNumbers {
                expected: vec![19, 35, 44],
                found: vec![0, 19, 35, 44]
            }
        );
        assert!(matches!(
            verify("<answer>44 + 54</answer>").reason,
            Reason::WrongNumbers { .. }
        ));
        assert_eq!(
            verify("<answer>44 - 19 + 35</answer>").reason,
            Reason::WrongValue {
                target: 98,
                value: "60".into()
            }
        );
        assert!(matches!(
            verify("<answer>44 + 19 + 35 = 98</answer>").reason,
            Reason::BadExpression { .. }
        ));
        let v = verify("<answer>44 / 19 * 35</answer>");
        assert_eq!(
            v.reason,
            Reason::WrongValue {
                target: 98,
                value: "1540/19".into()
            }
        );
        assert_eq!(v.answer.as_deref(), Some("44 / 19 * 35"));
    }

    #[test]
    fn target_falls_back_to_answer_and_bad_items_are_errors() {
        let mut it = item();
        it.meta.remove("target");
        assert!(
            CountdownVerifier::default()
                .verify(&it, "<answer>44+19+35</answer>")
                .unwrap()
                .correct
        );
        it.meta.remove("nums");
        assert!(matches!(
            CountdownVerifier::default().verify(&it, "<answer>1</answer>"),
            Err(TaskError::BadItem { .. })
        ));
        let bad = item().with_meta("nums", serde_json::json!([1, -2]));
        assert!(CountdownVerifier::default().verify(&bad, "").is_err());
    }
}
