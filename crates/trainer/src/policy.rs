//! Scoring a [`PolicyBatch`] with a causal LM: the log-probs of its completion tokens.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rlft_core::PolicyBatch;
use rlft_models::CausalLm;

use crate::error::{Result, TrainerError};

/// Log-probabilities of every completion token of `batch` under `model`, `[B, T]`, aligned with
/// `batch.completion_ids`: position `t` is log p(c_t | prompt, c_<t) under
/// softmax(logits / temperature). The prompt (left-padded) and completion (right-padded) are
/// concatenated into one row and scored in one forward; the result is tracked by autodiff
/// when the model is.
///
/// # Errors
/// [`TrainerError::InvalidBatch`] for an inconsistent batch or one without prompt tokens (the
/// first completion token needs a position to be predicted from).
pub fn completion_logprobs(
    model: &CausalLm,
    batch: &PolicyBatch,
    temperature: f64,
    device: &Device,
) -> Result<Tensor<2>> {
    let (ids, mask, targets) = inputs(batch, device)?;
    let all = model.token_log_probs(ids, mask, targets, temperature);
    Ok(all.narrow(1, batch.prompt_len - 1, batch.completion_len))
}

/// [`completion_logprobs`] and the policy's entropy at the same positions, `[B, T]`, from the
/// same forward pass. The entropy is detached unless `entropy_grad` (an entropy bonus).
///
/// # Errors
/// As [`completion_logprobs`].
pub fn completion_logprobs_and_entropy(
    model: &CausalLm,
    batch: &PolicyBatch,
    temperature: f64,
    device: &Device,
    entropy_grad: bool,
) -> Result<(Tensor<2>, Tensor<2>)> {
    let (ids, mask, targets) = inputs(batch, device)?;
    let (lp, h) = model.token_log_probs_and_entropy(ids, mask, targets, temperature, entropy_grad);
    let (p, t) = (batch.prompt_len, batch.completion_len);
    Ok((lp.narrow(1, p - 1, t), h.narrow(1, p - 1, t)))
}

/// Token ids, attention mask and next-token targets of prompt ‖ completion rows.
fn inputs(
    batch: &PolicyBatch,
    device: &Device,
) -> Result<(Tensor<2, Int>, Tensor<2, Int>, Tensor<2, Int>)> {
    batch
        .validate()
        .map_err(|e| TrainerError::InvalidBatch(e.to_string()))?;
    let (b, p, t) = (batch.rows, batch.prompt_len, batch.completion_len);
    if p == 0 || t == 0 {
        return Err(TrainerError::InvalidBatch(format!(
            "need at least one prompt and one completion position, got prompt_len {p}, completion_len {t}"
        )));
    }
    let w = p + t;
    let mut ids = Vec::with_capacity(b * w);
    let mut mask = Vec::with_capacity(b * w);
    let mut targets = Vec::with_capacity(b * w);
    for r in 0..b {
        let row_ids: Vec<i64> = batch.prompt_ids[r * p..(r + 1) * p]
            .iter()
            .chain(&batch.completion_ids[r * t..(r + 1) * t])
            .map(|&x| x as i64)
            .collect();
        mask.extend(
            batch.prompt_mask[r * p..(r + 1) * p]
                .iter()
                .chain(&batch.completion_mask[r * t..(r + 1) * t])
                .map(|&m| i64::from(m > 0.0)),
        );
        targets.extend(row_ids.iter().skip(1).copied());
        targets.push(0);
        ids.extend(row_ids);
    }
    let int = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [b, w]), device);
    Ok((int(ids), int(mask), int(targets)))
}
