//! Sampling parameters: what a request asks of any engine.

use serde::{Deserialize, Serialize};

use crate::error::{Result, RolloutError};

/// Which log-probability of each sampled token an engine reports.
///
/// Let `z` be the model's logits at a step, `T` the temperature and `S` the set of tokens left
/// after min-p, top-k and top-p. For the sampled token `t`:
///
/// | mode | reported value | equals |
/// |---|---|---|
/// | [`Temperature`](Self::Temperature) (default) | `log_softmax(z / T)[t]` | TRL's ℓ: `CausalLm::token_log_probs(.., T)` of rlft-models, vLLM's `processed_logprobs` when no truncation is set |
/// | [`Processed`](Self::Processed) | `log(softmax(z / T)[t] / Σ_{s∈S} softmax(z / T)[s])` | the exact distribution sampled from; vLLM's `--logprobs-mode processed_logprobs` |
/// | [`Raw`](Self::Raw) | `log_softmax(z)[t]` | vLLM's default `raw_logprobs` |
///
/// Greedy decoding has no temperature: `Temperature` and `Raw` then report `log_softmax(z)[t]`,
/// `Processed` reports 0 (the processed distribution is a point mass).
///
/// An HTTP engine cannot choose this on vLLM, whose mode is a server flag (`--logprobs-mode`,
/// default `raw_logprobs`); start vLLM with `--logprobs-mode processed_logprobs` to get the
/// temperature-scaled values RL needs. This crate's own server honours the field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogprobMode {
    /// `log_softmax(logits / temperature)` at the sampled token, before any truncation.
    #[default]
    Temperature,
    /// The log-probability under the truncated, renormalised distribution actually sampled.
    Processed,
    /// `log_softmax(logits)` at the sampled token, ignoring temperature.
    Raw,
}

/// How to sample: k completions per prompt, the logits processor, stops, length and seed.
///
/// Processing order (vLLM v1's): temperature → min-p → top-k → top-p, then one draw. See
/// [`TokenSampler`](crate::TokenSampler) for the exact rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingParams {
    /// Completions per prompt (k). Default 1: OpenAI API `n`.
    pub n: usize,
    /// Most tokens to generate per completion. Default 16: OpenAI `/v1/completions`
    /// `max_tokens` and vLLM `SamplingParams.max_tokens`.
    pub max_new_tokens: usize,
    /// Softmax temperature; 0 means greedy. Default 1.0: OpenAI API and TRL
    /// `GRPOConfig.temperature`.
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of most likely tokens whose probability reaches
    /// `top_p`. Default 1.0 (off): OpenAI API.
    pub top_p: f32,
    /// Keep only the `top_k` most likely tokens; `None` keeps all. Default `None`: vLLM
    /// `top_k = 0` (disabled).
    pub top_k: Option<usize>,
    /// Drop tokens whose probability is below `min_p` times the most likely token's.
    /// Default 0.0 (off): vLLM `min_p`.
    pub min_p: f32,
    /// Always take the most likely token (draws no randomness). Default false.
    pub greedy: bool,
    /// Token ids that end a completion (kept in `token_ids`, left out of `text`), in addition
    /// to the model's EOS ids. Default empty: vLLM `stop_token_ids`.
    pub stop_token_ids: Vec<u32>,
    /// Strings that end a completion; the text is cut before the first one found. Default
    /// empty: OpenAI API `stop`.
    pub stop: Vec<String>,
    /// Keep generating past the model's EOS ids (stop ids and strings still apply). Default
    /// false: vLLM `ignore_eos`.
    pub ignore_eos: bool,
    /// Keep the matched stop string at the end of `text`. Default false: vLLM
    /// `include_stop_str_in_output`.
    pub include_stop_str_in_output: bool,
    /// Seed of the whole request. Completion `j` of prompt `i` draws from its own stream,
    /// derived from `(seed, i, j)` by [`stream_rng`](crate::stream_rng), so results do not depend
    /// on batching, chunking or thread scheduling. `None`: the engine picks (the local engines
    /// derive it from their own seed and a call counter, so a run is still reproducible).
    /// Default `None`: OpenAI API `seed`.
    pub seed: Option<u64>,
    /// Which log-probabilities to report. Default [`LogprobMode::Temperature`] (TRL's ℓ).
    pub logprob_mode: LogprobMode,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            n: 1,
            max_new_tokens: 16,
            temperature: 1.0,
            top_p: 1.0,
            top_k: None,
            min_p: 0.0,
            greedy: false,
            stop_token_ids: Vec::new(),
            stop: Vec::new(),
            ignore_eos: false,
            include_stop_str_in_output: false,
            seed: None,
            logprob_mode: LogprobMode::Temperature,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding of `max_new_tokens` tokens, one completion per prompt.
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            greedy: true,
            max_new_tokens,
            ..Self::default()
        }
    }

    /// Whether decoding is greedy (`greedy`, or a temperature of 0 as in the OpenAI API).
    pub fn is_greedy(&self) -> bool {
        self.greedy || self.temperature == 0.0
    }

    /// Check every field's range.
    ///
    /// # Errors
    /// [`RolloutError::InvalidParam`] naming the first field out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: String| Err(RolloutError::InvalidParam { field, reason });
        if self.n == 0 {
            return bad("n", "must be at least 1, got 0".into());
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad(
                "temperature",
                format!("must be finite and ≥ 0, got {}", self.temperature),
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", format!("must be in (0, 1], got {}", self.top_p));
        }
        if self.top_k == Some(0) {
            return bad(
                "top_k",
                "must be at least 1 (use None to disable), got 0".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min_p", format!("must be in [0, 1], got {}", self.min_p));
        }
        if let Some(i) = self.stop.iter().position(String::is_empty) {
            return bad("stop", format!("stop string {i} is empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_partial_toml_style_json_loads() {
        SamplingParams::default().validate().unwrap();
        let p: SamplingParams = serde_json::from_str(r#"{"n": 4, "top_k": 5}"#).unwrap();
        assert_eq!((p.n, p.top_k, p.max_new_tokens), (4, Some(5), 16));
        assert!(serde_json::from_str::<SamplingParams>(r#"{"temprature": 1}"#).is_err());
    }

    #[test]
    fn validate_names_the_field() {
        let cases: [(SamplingParams, &str); 6] = [
            (
                SamplingParams {
                    n: 0,
                    ..Default::default()
                },
                "n",
            ),
            (
                SamplingParams {
                    temperature: -1.0,
                    ..Default::default()
                },
                "temperature",
            ),
            (
                SamplingParams {
                    temperature: f32::NAN,
                    ..Default::default()
                },
                "temperature",
            ),
            (
                SamplingParams {
                    top_p: 0.0,
                    ..Default::default()
                },
                "top_p",
            ),
            (
                SamplingParams {
                    top_k: Some(0),
                    ..Default::default()
                },
                "top_k",
            ),
            (
                SamplingParams {
                    min_p: 1.5,
                    ..Default::default()
                },
                "min_p",
            ),
        ];
        for (p, field) in cases {
            match p.validate() {
                Err(RolloutError::InvalidParam { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected InvalidParam, got {other:?}"),
            }
        }
        let p = SamplingParams {
            stop: vec!["".into()],
            ..Default::default()
        };
        assert!(matches!(
            p.validate(),
            Err(RolloutError::InvalidParam { field: "stop", .. })
        ));
    }

    #[test]
    fn zero_temperature_is_greedy() {
        assert!(
            SamplingParams {
                temperature: 0.0,
                ..Default::default()
            }
            .is_greedy()
        );
        assert!(!SamplingParams::default().is_greedy());
    }
}
