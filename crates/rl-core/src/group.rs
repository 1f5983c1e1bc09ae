//! Prompt groups: one prompt, k sampled completions, their rewards.

use serde::{Deserialize, Serialize};

/// One sampled completion of a prompt, as a rollout engine returns it and a verifier scores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Completion {
    /// Generated token ids (without the prompt).
    pub token_ids: Vec<u32>,
    /// Log-probability of each generated token under the sampling policy, one per token. Empty
    /// when the engine did not report them (the trainer then recomputes old log-probs).
    #[serde(default)]
    pub logprobs: Vec<f32>,
    /// Decoded text of the completion.
    #[serde(default)]
    pub text: String,
    /// Scalar reward from the verifier. NaN marks a completion no reward function could score
    /// (TRL: every reward function returned `None`); it gets advantage 0.
    pub reward: f32,
    /// Whether generation ended on an end-of-sequence token or stop string (false: truncated at
    /// the token limit; TRL's `mask_truncated_completions` drops such rows from the loss).
    #[serde(default = "default_true")]
    pub finished: bool,
    /// The verifier's verdict, when one judged the completion (what prompt samplers observe
    /// and the `accuracy` metric counts); `None` when only a scalar reward is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct: Option<bool>,
    /// Per-token loss mask over `token_ids` (1 carries loss, 0 does not), for completions
    /// that hold tokens the policy did not write (the feedback turns of a multi-turn episode,
    /// SFT context). Empty (the default): every token carries loss.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss_mask: Vec<f32>,
}

fn default_true() -> bool {
    true
}

/// A prompt and the k completions sampled for it: the unit that group-relative advantage
/// estimators (GRPO, RLOO, Dr.GRPO) normalise over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PromptGroup {
    /// Index of the prompt in its dataset (the id samplers track).
    pub prompt_index: usize,
    /// Prompt token ids, after any chat template.
    pub prompt_ids: Vec<u32>,
    /// The sampled completions, k of them.
    pub completions: Vec<Completion>,
}

impl PromptGroup {
    /// Rewards of the completions, in order.
    pub fn rewards(&self) -> Vec<f32> {
        self.completions.iter().map(|c| c.reward).collect()
    }

    /// Number of completions whose reward is at least `threshold` (the "successes out of k"
    /// that prompt samplers observe). NaN rewards never count as successes.
    pub fn successes(&self, threshold: f32) -> usize {
        self.completions
            .iter()
            .filter(|c| c.reward >= threshold)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successes_ignore_nan_and_use_threshold() {
        let g = PromptGroup {
            completions: [1.0, 0.0, f32::NAN, 1.5]
                .into_iter()
                .map(|reward| Completion {
                    reward,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        assert_eq!(g.successes(1.0), 2);
        assert_eq!(g.successes(0.0), 3);
    }

    #[test]
    fn completion_json_defaults() {
        let c: Completion = serde_json::from_str(r#"{"token_ids":[1,2],"reward":1.0}"#).unwrap();
        assert!(c.finished);
        assert!(c.logprobs.is_empty());
    }
}
