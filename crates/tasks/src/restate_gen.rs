//! The (a+b) mod 10 restatement task of spec prerl.md §7.2: a toy where the response first
//! restates the prompt, so later tokens see the same information with or without it (the
//! regime where log P(y) and log π(y|x) are aligned).
//!
//! Prompt `"{a}+{b}="` (digits 0–9). Response grammar `{a}{b}{s1}{d1}` then optionally
//! `W{s2}{d2}` (a "reflection": wait and retry once), then EOS; only the **last digit** is
//! graded against (a + b) mod 10. The SFT traces teach three strategies: `A` (45 %) answers
//! correctly only when a + b is even, `B` (8 %) only when it is odd, `C` (47 %) is buggy
//! (always (a + b + 5) mod 10); after a wrong first attempt a trace waits and retries with a
//! fresh strategy 15 % of the time (spec §7.2's shares).

use serde::{Deserialize, Serialize};

use crate::error::TaskError;
use crate::generate::{below, rng};
use crate::item::TaskItem;
use crate::verifier::{Reason, Verdict, Verifier};

/// The retry marker in a response.
pub const RESTATE_WAIT: char = 'W';
/// The strategy symbols, in the order of [`RestateConfig::strategy_probs`].
pub const RESTATE_STRATEGIES: [char; 3] = ['A', 'B', 'C'];

/// Settings of the restatement task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestateConfig {
    /// Pairs (a, b) trained on by RL; the other 100 − `train_pairs` are held out. Default 70
    /// (spec §7.2).
    pub train_pairs: usize,
    /// Seed of the split. Default 0.
    pub seed: u64,
    /// SFT probabilities of strategies A, B, C. Default 0.45 / 0.08 / 0.47 (spec §7.2).
    pub strategy_probs: [f64; 3],
    /// Probability that an SFT trace waits and retries after a wrong first attempt. Default
    /// 0.15 (spec §7.2).
    pub retry_prob: f64,
}

impl Default for RestateConfig {
    fn default() -> Self {
        Self {
            train_pairs: 70,
            seed: 0,
            strategy_probs: [0.45, 0.08, 0.47],
            retry_prob: 0.15,
        }
    }
}

/// The task: a train / held-out split of the 100 pairs, SFT traces and grading.
#[derive(Debug, Clone, PartialEq)]
pub struct RestateTask {
    cfg: RestateConfig,
    /// Pairs RL trains on.
    pub train: Vec<(u8, u8)>,
    /// Held-out pairs.
    pub test: Vec<(u8, u8)>,
}

impl RestateConfig {
    /// Checks the fields.
    ///
    /// # Errors
    /// [`TaskError::Config`] naming the field.
    pub fn validate(&self) -> Result<(), TaskError> {
        let err = |field: &str, reason: String| {
            Err(TaskError::Config {
                field: format!("restate.{field}"),
                reason,
            })
        };
        if !(1..100).contains(&self.train_pairs) {
            return err(
                "train_pairs",
                format!("must be in 1..=99, got {}", self.train_pairs),
            );
        }
        let sum: f64 = self.strategy_probs.iter().sum();
        if self
            .strategy_probs
            .iter()
            .any(|p| !p.is_finite() || *p < 0.0)
            || (sum - 1.0).abs() > 1e-9
        {
            return err(
                "strategy_probs",
                format!("must be ≥ 0 and sum to 1, got {:?}", self.strategy_probs),
            );
        }
        if !(0.0..=1.0).contains(&self.retry_prob) {
            return err(
                "retry_prob",
                format!("must be in [0, 1], got {}", self.retry_prob),
            );
        }
        Ok(())
    }

    /// The split: all 100 pairs shuffled by `seed` (Fisher–Yates with portable draws).
    ///
    /// # Errors
    /// As [`RestateConfig::validate`].
    pub fn generate(&self) -> Result<RestateTask, TaskError> {
        self.validate()?;
        let mut pairs: Vec<(u8, u8)> = (0..100u8).map(|i| (i / 10, i % 10)).collect();
        let mut r = rng(self.seed);
        for i in (1..pairs.len()).rev() {
            let j = below(&mut r, i as u64 + 1) as usize;
            pairs.swap(i, j);
        }
        let test = pairs.split_off(self.train_pairs);
        Ok(RestateTask {
            cfg: self.clone(),
            train: pairs,
            test,
        })
    }
}

/// The digit strategy `s` (0 = A, 1 = B, 2 = C) writes for (a, b).
pub fn restate_digit(a: u8, b: u8, s: usize) -> u8 {
    let sum = (a + b) % 10;
    let even = (a + b).is_multiple_of(2);
    match s {
        0 if even => sum,
        1 if !even => sum,
        0 | 1 => (sum + 1) % 10,
        _ => (sum + 5) % 10,
    }
}

/// The prompt of (a, b).
pub fn restate_prompt(a: u8, b: u8) -> String {
    format!("{a}+{b}=")
}

/// Whether `completion`'s last character is the digit (a + b) mod 10.
pub fn restate_correct(a: u8, b: u8, completion: &str) -> bool {
    completion
        .trim_end()
        .chars()
        .last()
        .and_then(|c| c.to_digit(10))
        .is_some_and(|d| d as u8 == (a + b) % 10)
}

/// Whether `completion` contains the retry marker (the toy's reflection).
pub fn restate_reflects(completion: &str) -> bool {
    completion.contains(RESTATE_WAIT)
}

impl RestateTask {
    /// Task items of `pairs` (id `"{a}{b}"`, prompt `"{a}+{b}="`, answer the digit).
    pub fn items(pairs: &[(u8, u8)]) -> Vec<TaskItem> {
        pairs
            .iter()
            .map(|&(a, b)| {
                TaskItem::new(
                    format!("{a}{b}"),
                    restate_prompt(a, b),
                    ((a + b) % 10).to_string(),
                )
            })
            .collect()
    }

    /// `count` SFT traces over all 100 pairs, as (prompt, completion) text, drawn with
    /// `seed`.
    pub fn sft_traces(&self, count: usize, seed: u64) -> Vec<(String, String)> {
        let mut r = rng(seed);
        let draw = |r: &mut dyn rand::Rng| -> usize {
            let u = below(r, 1 << 53) as f64 / (1u64 << 53) as f64;
            let mut acc = 0.0;
            for (i, p) in self.cfg.strategy_probs.iter().enumerate() {
                acc += p;
                if u < acc {
                    return i;
                }
            }
            2
        };
        (0..count)
            .map(|_| {
                let i = below(&mut r, 100) as u8;
                let (a, b) = (i / 10, i % 10);
                let s1 = draw(&mut r);
                let d1 = restate_digit(a, b, s1);
                let mut text = format!("{a}{b}{}{d1}", RESTATE_STRATEGIES[s1]);
                let u = below(&mut r, 1 << 53) as f64 / (1u64 << 53) as f64;
                if d1 != (a + b) % 10 && u < self.cfg.retry_prob {
                    let s2 = draw(&mut r);
                    let d2 = restate_digit(a, b, s2);
                    text.push_str(&format!("{RESTATE_WAIT}{}{d2}", RESTATE_STRATEGIES[s2]));
                }
                (restate_prompt(a, b), text)
            })
            .collect()
    }
}

/// Grades a restatement response: correct when its last character is the item's answer
/// digit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestateVerifier;

impl Verifier for RestateVerifier {
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError> {
        let last = completion.trim_end().chars().last().map(String::from);
        Ok(match &last {
            Some(l) if *l == item.answer => Verdict::correct(l.clone()),
            _ => Verdict::wrong(
                last.clone(),
                Reason::Mismatch {
                    expected: item.answer.clone(),
                    found: last.unwrap_or_default(),
                },
            ),
        })
    }

    fn name(&self) -> &str {
        "restate"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_covers_every_pair_once_and_is_seeded() {
        let t = RestateConfig::default().generate().unwrap();
        assert_eq!((t.train.len(), t.test.len()), (70, 30));
        let mut all: Vec<_> = t.train.iter().chain(&t.test).copied().collect();
        all.sort();
        assert_eq!(
            all,
            (0..100u8).map(|i| (i / 10, i % 10)).collect::<Vec<_>>()
        );
        assert_eq!(RestateConfig::default().generate().unwrap(), t);
        let other = RestateConfig {
            seed: 1,
            ..RestateConfig::default()
        };
        assert_ne!(other.generate().unwrap().train, t.train);
        let bad = RestateConfig {
            retry_prob: 2.0,
            ..RestateConfig::default()
        };
        assert!(bad.generate().is_err());
    }

    #[test]
    fn strategies_answer_as_specified_and_traces_follow_the_grammar() {
        assert_eq!(restate_digit(2, 4, 0), 6);
        assert_eq!(restate_digit(2, 3, 0), 6);
        assert_eq!(restate_digit(2, 3, 1), 5);
        assert_eq!(restate_digit(9, 9, 2), 3);
        let t = RestateConfig::default().generate().unwrap();
        let traces = t.sft_traces(4000, 3);
        let mut retries = 0;
        for (p, c) in &traces {
            let (a, b) = (p.as_bytes()[0] - b'0', p.as_bytes()[2] - b'0');
            assert!(c.starts_with(&format!("{a}{b}")), "{p} {c}");
            assert!(c.len() == 4 || c.len() == 7, "{c}");
            if restate_reflects(c) {
                retries += 1;
                assert!(
                    !restate_correct(a, b, &c[..4]),
                    "retry only after a wrong try"
                );
            }
        }
        // P(wrong first) ≈ 0.47 + 0.5·0.45 + 0.5·0.08 ≈ 0.735; × 0.15 ≈ 0.11.
        let share = retries as f64 / traces.len() as f64;
        assert!((0.08..0.14).contains(&share), "{share}");
        let item = &RestateTask::items(&[(3, 9)])[0];
        assert!(RestateVerifier.verify(item, "39A2").unwrap().correct);
        assert!(!RestateVerifier.verify(item, "39A3").unwrap().correct);
        assert!(!RestateVerifier.verify(item, "").unwrap().correct);
        assert!(restate_correct(3, 9, "39C7WB2"));
    }
}
