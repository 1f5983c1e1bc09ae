//! The [`Verifier`] trait, its verdict, and the closure adapter.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{ExprError, TaskError};
use crate::item::TaskItem;

/// Why a completion got its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The answer is correct.
    Correct,
    /// No answer could be extracted from the completion.
    NoAnswer {
        /// Where the verifier looked, e.g. `<answer>…</answer>, \boxed{…}`.
        looked_for: String,
    },
    /// An answer was found but differs from the gold one.
    Mismatch {
        /// The gold answer after normalisation.
        expected: String,
        /// The extracted answer after normalisation.
        found: String,
    },
    /// A Countdown expression that does not parse or evaluate.
    BadExpression {
        /// The parser's verdict.
        error: ExprError,
    },
    /// A Countdown expression that does not use each given number exactly once.
    WrongNumbers {
        /// The given numbers, sorted.
        expected: Vec<u64>,
        /// The numbers the expression uses, sorted.
        found: Vec<u64>,
    },
    /// A Countdown expression whose value is not the target.
    WrongValue {
        /// The target.
        target: i64,
        /// The expression's exact value, as `p` or `p/q`.
        value: String,
    },
    /// Free text from a custom verifier.
    Other {
        /// The message.
        message: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Correct => write!(f, "correct"),
            Reason::NoAnswer { looked_for } => {
                write!(f, "no answer found (looked for {looked_for})")
            }
            Reason::Mismatch { expected, found } => {
                write!(f, "expected {expected:?}, found {found:?}")
            }
            Reason::BadExpression { error } => write!(f, "bad expression: {error}"),
            Reason::WrongNumbers { expected, found } => {
                write!(
                    f,
                    "numbers must be {expected:?} each used once, found {found:?}"
                )
            }
            Reason::WrongValue { target, value } => {
                write!(f, "expression equals {value}, target is {target}")
            }
            Reason::Other { message } => write!(f, "{message}"),
        }
    }
}

/// A verifier's judgement of one completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The reward, usually in `[0, 1]`.
    pub score: f64,
    /// Whether the answer is correct. This is separate from `score` because shaped rewards
    /// (a format reward) can be positive for wrong answers; samplers and multi-turn episodes
    /// use `correct`.
    pub correct: bool,
    /// The answer extracted from the completion, before normalisation, if one was found.
    pub answer: Option<String>,
    /// Why.
    pub reason: Reason,
}

impl Verdict {
    /// Score 1, correct.
    pub fn correct(answer: impl Into<String>) -> Self {
        Self {
            score: 1.0,
            correct: true,
            answer: Some(answer.into()),
            reason: Reason::Correct,
        }
    }

    /// Score 0, not correct, with the extracted answer (if any) and a reason.
    pub fn wrong(answer: Option<String>, reason: Reason) -> Self {
        Self {
            score: 0.0,
            correct: false,
            answer,
            reason,
        }
    }
}

/// Scores a completion for a task item.
///
/// # Contract
/// - `verify` never panics, whatever the completion: arbitrary Unicode, megabytes of text,
///   thousands of nested braces or parentheses all get a [`Verdict`] (score 0 and a
///   [`Reason`] when nothing sensible is found). The built-in verifiers are property-tested
///   for this.
/// - `Err` is only for an item the verifier cannot use (a Countdown item without `nums`);
///   it says nothing about the completion.
/// - The same inputs give the same verdict: verifiers hold no hidden state.
///
/// # Implementing
/// Implement `verify`; `name` is optional. The trait is object-safe, so a config can choose a
/// verifier at run time as `Box<dyn Verifier>` (or `Box<dyn Verifier + Send + Sync>` to share
/// across threads); it is implemented for `&V`, `Box<V>` and `Arc<V>`, and [`FnVerifier`]
/// wraps a closure.
pub trait Verifier {
    /// Scores `completion` (the model's text, without the prompt) for `item`.
    ///
    /// # Errors
    /// [`TaskError::BadItem`] if the item lacks what this verifier needs.
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError>;

    /// A short name for logs. Default `"verifier"`.
    fn name(&self) -> &str {
        "verifier"
    }
}

impl<V: Verifier + ?Sized> Verifier for &V {
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError> {
        (**self).verify(item, completion)
    }
    fn name(&self) -> &str {
        (**self).name()
    }
}

impl<V: Verifier + ?Sized> Verifier for Box<V> {
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError> {
        (**self).verify(item, completion)
    }
    fn name(&self) -> &str {
        (**self).name()
    }
}

impl<V: Verifier + ?Sized> Verifier for std::sync::Arc<V> {
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError> {
        (**self).verify(item, completion)
    }
    fn name(&self) -> &str {
        (**self).name()
    }
}

/// A verifier from a closure `Fn(&TaskItem, &str) -> Verdict`.
///
/// ```
/// use rlft_tasks::{FnVerifier, Reason, TaskItem, Verdict, Verifier};
/// let v = FnVerifier::new(|item: &TaskItem, text: &str| {
///     if text.trim() == item.answer {
///         Verdict::correct(text.trim())
///     } else {
///         Verdict::wrong(None, Reason::Other { message: "no".into() })
///     }
/// });
/// let item = TaskItem::new("q1", "1+1?", "2");
/// assert!(v.verify(&item, " 2 ")?.correct);
/// # Ok::<(), rlft_tasks::TaskError>(())
/// ```
pub struct FnVerifier<F> {
    f: F,
    name: String,
}

impl<F: Fn(&TaskItem, &str) -> Verdict> FnVerifier<F> {
    /// Wraps `f`; its name is `"fn"`.
    pub fn new(f: F) -> Self {
        Self {
            f,
            name: "fn".to_string(),
        }
    }

    /// Sets the name reported by [`Verifier::name`].
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl<F> fmt::Debug for FnVerifier<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnVerifier")
            .field("name", &self.name)
            .finish()
    }
}

impl<F: Fn(&TaskItem, &str) -> Verdict> Verifier for FnVerifier<F> {
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError> {
        Ok((self.f)(item, completion))
    }
    fn name(&self) -> &str {
        &self.name
    }
}
