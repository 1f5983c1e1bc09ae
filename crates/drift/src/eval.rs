//! Multi-turn evaluation: multi@k, repeat rate and correction rate over any engine.

use std::collections::BTreeSet;

use rlft_rollout::SamplingParams;
use rlft_tasks::{EpisodeRecord, TaskItem};
use serde::{Deserialize, Serialize};

use crate::collect::EpisodeSetup;
use crate::error::Result;

/// The multi-turn scores of a set of episodes (one per problem).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiTurnReport {
    /// Problems (episodes) evaluated.
    pub problems: usize,
    /// `multi_at[k-1]` = fraction of problems first solved at a turn ≤ k, k = 1..=max_turns.
    pub multi_at: Vec<f64>,
    /// Problems first solved at turn t (`solved_at[t-1]`).
    pub solved_at: Vec<usize>,
    /// `correction_rate[t-2]` = problems solved at turn t / problems still unsolved after
    /// turn t−1, for t = 2..=max_turns (0 when none were unsolved).
    pub correction_rate: Vec<f64>,
    /// Problems solved at a turn ≥ 2 / problems not solved at turn 1.
    pub correction_rate_overall: f64,
    /// Of the executed answers after an episode's first, the fraction equal (normalised) to an
    /// earlier answer of the same episode.
    pub repeat_rate: f64,
    /// Assistant turns generated (engine completions).
    pub turns: usize,
    /// Completion tokens generated (0 when built from records alone).
    pub tokens: usize,
}

impl MultiTurnReport {
    /// Scores finished episode records, with multi@k for k = 1..=`max_turns`.
    pub fn from_records(records: &[EpisodeRecord], max_turns: usize) -> Self {
        let n = records.len();
        let mut solved_at = vec![0usize; max_turns];
        let (mut retries, mut repeats, mut turns) = (0usize, 0usize, 0usize);
        for r in records {
            turns += r.turns.len();
            if let Some(t) = r.solved_at.filter(|&t| t >= 1 && t <= max_turns) {
                solved_at[t - 1] += 1;
            }
            let mut seen = BTreeSet::new();
            for (i, a) in r.answer_norms().into_iter().enumerate() {
                if i > 0 {
                    retries += 1;
                    repeats += usize::from(seen.contains(a));
                }
                seen.insert(a);
            }
        }
        let frac = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let mut cum = 0;
        let multi_at = solved_at
            .iter()
            .map(|&s| {
                cum += s;
                frac(cum, n)
            })
            .collect();
        let mut unsolved = n - solved_at.first().copied().unwrap_or(0);
        let mut correction_rate = Vec::new();
        for &s in solved_at.iter().skip(1) {
            correction_rate.push(frac(s, unsolved));
            unsolved -= s;
        }
        let later: usize = solved_at.iter().skip(1).sum();
        Self {
            problems: n,
            multi_at,
            correction_rate_overall: frac(later, n - solved_at.first().copied().unwrap_or(0)),
            solved_at,
            correction_rate,
            repeat_rate: frac(repeats, retries),
            turns,
            tokens: 0,
        }
    }
}

/// Runs one episode per item (the same protocol as collection; pass greedy `params` for
/// DRIFT's evaluation) in chunks of `chunk` episodes and scores them.
///
/// # Errors
/// Engine, render and environment errors.
pub fn evaluate_multi_turn(
    setup: &EpisodeSetup<'_>,
    items: &[TaskItem],
    params: &SamplingParams,
    max_turns: usize,
    chunk: usize,
) -> Result<MultiTurnReport> {
    let mut records = Vec::with_capacity(items.len());
    let mut tokens = 0;
    let indexed: Vec<(usize, &TaskItem)> = items.iter().enumerate().collect();
    for part in indexed.chunks(chunk.max(1)) {
        for o in setup.run(part, params, max_turns)? {
            tokens += o
                .completions
                .iter()
                .map(|c| c.token_ids.len())
                .sum::<usize>();
            records.push(o.record);
        }
    }
    let mut report = MultiTurnReport::from_records(&records, max_turns);
    report.tokens = tokens;
    Ok(report)
}
