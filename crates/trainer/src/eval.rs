//! Evaluation: mean pass@1 over n samples and unbiased pass@k.

use std::collections::BTreeMap;

use rlft_rollout::{RolloutEngine, SamplingParams};
use serde::{Deserialize, Serialize};

use crate::collect::Rewarder;
use crate::error::Result;
use crate::passk::pass_at_k;

/// Result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Prompts evaluated.
    pub prompts: usize,
    /// Samples per prompt.
    pub samples: usize,
    /// Mean over prompts of the fraction of correct samples (pass@1 averaged over n).
    pub pass1: f64,
    /// Mean unbiased pass@k for each requested k ≤ n.
    pub pass_at_k: BTreeMap<usize, f64>,
    /// Completion tokens generated.
    pub tokens: usize,
}

/// Generates `params.n` samples for each of `prompts` (prompt id, token ids) in chunks of
/// `chunk` prompts, scores them with `rewarder` and reports pass@1 and pass@k.
///
/// # Errors
/// Engine and rewarder errors.
pub fn evaluate(
    engine: &dyn RolloutEngine,
    prompts: &[(usize, Vec<u32>)],
    rewarder: &dyn Rewarder,
    params: &SamplingParams,
    ks: &[usize],
    chunk: usize,
) -> Result<EvalReport> {
    let n = params.n.max(1);
    let mut correct = Vec::with_capacity(prompts.len());
    let mut tokens = 0;
    for part in prompts.chunks(chunk.max(1)) {
        for g in engine.generate_groups(part, params)? {
            let mut c = 0;
            for comp in &g.completions {
                tokens += comp.token_ids.len();
                c += usize::from(rewarder.score(g.prompt_index, &comp.text)?.1);
            }
            correct.push(c);
        }
    }
    let m = correct.len().max(1) as f64;
    let pass1 = correct.iter().map(|&c| c as f64 / n as f64).sum::<f64>() / m;
    let pass_at = ks
        .iter()
        .filter(|&&k| k >= 1 && k <= n)
        .map(|&k| {
            let v = correct.iter().map(|&c| pass_at_k(n, c, k)).sum::<f64>() / m;
            (k, v)
        })
        .collect();
    Ok(EvalReport {
        prompts: prompts.len(),
        samples: n,
        pass1,
        pass_at_k: pass_at,
        tokens,
    })
}
