//! # rlft-drift
//!
//! DRIFT (Mu et al., "Decoupled Rollouts and Importance-Weighted Fine-Tuning for Efficient
//! Multi-Turn Optimization", 2026): sample multi-turn "try again" episodes **once** from a
//! fixed reference policy, weight each trajectory by exp(R/β) normalised within its prompt's
//! group, and fine-tune with weighted SFT on the last assistant turn. Spec: drift.md.
//!
//! - [`collect`]: K episodes per prompt through any engine (local model, or vLLM / SGLang /
//!   `rlft serve` over HTTP) with rlft-rollout's episode runner, written as [`DriftRow`]s in
//!   the released JSONL shape, in atomic, resumable shards.
//! - [`ReturnConfig`]: R = Σ_t γ^(t−1)·r_t + P_fmt − P_rep from a row's stored fields.
//! - [`weigh`] / [`group_weights`]: w = K·softmax(R/β) per prompt (β = ∞ uniform; RFT mode).
//! - [`examples`]: weighted rows → rlft-trainer `SftExample`s for `SftTrainer`.
//! - [`evaluate_multi_turn`] / [`MultiTurnReport`]: multi@k, repeat and correction rates.
//!
//! The spec's worked example (§2.2): wrong "5", wrong "5", then correct at turn 3 gives
//! R = 0.81 − 0.5·(1 − 2/3) = 0.643, and a group's weights sum to K:
//!
//! ```
//! use std::path::Path;
//! use rlft_drift::{DriftRow, WeightConfig, weigh};
//!
//! let line = |id: &str, rewards: &str, answers: &str| format!(
//!     r#"{{"prompt_id":"{id}","messages":[{{"role":"user","content":"q"}},{{"role":"assistant","content":"<answer>x</answer>"}}],"turn_rewards":{rewards},"answer_norms":{answers},"format_penalty":0.0}}"#);
//! let rows = [
//!     line("p", r#"{"t1":0,"t2":0,"t3":1,"t4":0,"t5":0}"#, r#"["5","5","7"]"#),
//!     line("p", r#"{"t1":1}"#, r#"["7"]"#),
//!     line("p", r#"{"t1":0,"t2":0,"t3":0,"t4":0,"t5":0}"#, r#"["5","5","5","5","5"]"#),
//! ];
//! let rows: Vec<DriftRow> = rows.iter().enumerate()
//!     .map(|(i, l)| DriftRow::parse(l, Path::new("data.jsonl"), i + 1))
//!     .collect::<Result<_, _>>()?;
//! let cfg = WeightConfig::default(); // β = 0.1, γ = 0.9, λ = 0.5
//! let w = weigh(&rows, &cfg)?;
//! assert!((w[0].ret - (0.81 - 0.5 / 3.0)).abs() < 1e-12);
//! assert!((w[2].ret + 0.4).abs() < 1e-12);
//! assert!((w.iter().map(|x| x.weight).sum::<f64>() - 3.0).abs() < 1e-9);
//! assert!(w[1].weight > w[0].weight && w[0].weight > w[2].weight);
//!
//! // Rejected: β ≤ 0, and a line that is not JSON, named by file and line.
//! assert!(weigh(&rows, &WeightConfig { beta: 0.0, ..cfg }).is_err());
//! let e = DriftRow::parse("{oops", Path::new("data.jsonl"), 7).unwrap_err();
//! assert!(e.to_string().starts_with("data.jsonl:7:"));
//! # Ok::<(), rlft_drift::DriftError>(())
//! ```
#![doc(test(attr(deny(warnings))))]

mod collect;
mod error;
mod eval;
mod returns;
mod row;
mod train;
mod weights;

pub use collect::{
    CollectConfig, CollectSummary, EpisodeSetup, MANIFEST, Progress, collect, shard_path,
};
pub use error::{DriftError, Result};
pub use eval::{MultiTurnReport, evaluate_multi_turn};
pub use returns::{ReturnConfig, discounted_success, repetition_penalty, succeeded, turn_number};
pub use row::{DriftRow, jsonl_files, prompt_ids, read_rows, write_rows};
pub use train::examples;
pub use weights::{
    FilterOrder, NORMALISER_EPS, WeightConfig, WeightMode, Weighted, group_weights, weigh,
};
