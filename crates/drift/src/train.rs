//! Weighted rows → SFT examples for the shared learner (rlft-trainer's `SftTrainer`).

use rlft_models::ChatTokenizer;
use rlft_trainer::{LossTurns, SftExample, render_conversation};

use crate::error::{DriftError, Result};
use crate::row::DriftRow;
use crate::weights::Weighted;

/// One SFT example per weighted row: the conversation rendered through the model's chat
/// template ([`render_conversation`]), loss on the last assistant turn (DRIFT's released
/// training, [`LossTurns::Last`]) or on all of them, the row's weight as the example weight.
/// Feedback, system and task tokens never carry loss. The loss mask marks the trained turns'
/// tokens including their end-of-turn token, so a pad id equal to EOS does not mask the
/// trained EOS (spec §7 item 7); every partial rendering is checked to be a token prefix of the
/// whole (§7 item 8).
///
/// # Errors
/// [`DriftError::Config`] naming the row's `prompt_id` and position when its conversation
/// cannot be rendered.
pub fn examples(
    rows: &[DriftRow],
    weighted: &[Weighted],
    tokenizer: &ChatTokenizer,
    turns: LossTurns,
) -> Result<Vec<SftExample>> {
    weighted
        .iter()
        .map(|w| {
            let row = rows.get(w.row).ok_or_else(|| DriftError::Config {
                field: "weights",
                reason: format!("row {} out of range for {} rows", w.row, rows.len()),
            })?;
            let r = render_conversation(tokenizer, &row.messages, turns).map_err(|e| {
                DriftError::Config {
                    field: "messages",
                    reason: format!("row {} (prompt_id {:?}): {e}", w.row, row.prompt_id),
                }
            })?;
            Ok(r.into_example(w.weight as f32))
        })
        .collect()
}
