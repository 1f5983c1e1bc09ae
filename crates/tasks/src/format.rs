//! An optional format reward on top of any verifier.

use crate::error::TaskError;
use crate::item::TaskItem;
use crate::verifier::{Verdict, Verifier};

/// Gives `format_score` to wrong completions whose answer could at least be extracted.
///
/// Correct completions keep the inner score; completions with no extractable answer keep
/// the inner score too (0 for the built-in verifiers). With [`CountdownVerifier`] and 0.1
/// this is TinyZero's Countdown score (`format_score=0.1` in `countdown.py`), which DPS
/// trains on (spec dps.md §3: "1 / 0.1 format-only / 0").
///
/// [`CountdownVerifier`]: crate::CountdownVerifier
#[derive(Debug, Clone, PartialEq)]
pub struct FormatReward<V> {
    inner: V,
    format_score: f64,
}

impl<V: Verifier> FormatReward<V> {
    /// Wraps `inner`.
    pub fn new(inner: V, format_score: f64) -> Self {
        Self {
            inner,
            format_score,
        }
    }

    /// The wrapped verifier.
    pub fn inner(&self) -> &V {
        &self.inner
    }
}

impl<V: Verifier> Verifier for FormatReward<V> {
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError> {
        let mut v = self.inner.verify(item, completion)?;
        if !v.correct && v.answer.is_some() {
            v.score = self.format_score;
        }
        Ok(v)
    }

    fn name(&self) -> &str {
        self.inner.name()
    }
}
