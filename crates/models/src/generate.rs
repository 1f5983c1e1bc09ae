//! Greedy decoding with the KV cache, batched over left-padded prompts, stopping like
//! transformers' `generate(do_sample=False)`: a row that emits an EOS id is finished, and
//! decoding stops when every row is finished or after `max_new_tokens`.

use burn::tensor::{Int, Tensor, TensorData};

use crate::cache::KvCache;
use crate::error::{ModelError, Result};
use crate::model::{CausalLm, int_tensor};

/// Settings of [`greedy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreedyConfig {
    /// Most tokens to generate per prompt.
    pub max_new_tokens: usize,
    /// Ids that end a sequence (kept in the output).
    pub eos_token_ids: Vec<u32>,
    /// Id used to left-pad prompts.
    pub pad_token_id: u32,
}

/// Greedily continue each prompt; returns the new tokens of each row, ending at (and
/// including) its first EOS id, or after `max_new_tokens`.
///
/// # Errors
/// [`ModelError::Input`] for an empty prompt list, an empty prompt, or ids outside the
/// vocabulary.
pub fn greedy(
    model: &CausalLm,
    prompts: &[Vec<u32>],
    config: &GreedyConfig,
) -> Result<Vec<Vec<u32>>> {
    let vocab = model.config().vocab_size;
    if prompts.is_empty() {
        return Err(ModelError::Input {
            field: "prompts",
            reason: "no prompts given".into(),
        });
    }
    for (i, p) in prompts.iter().enumerate() {
        if p.is_empty() {
            return Err(ModelError::Input {
                field: "prompts",
                reason: format!("prompt {i} is empty"),
            });
        }
        if let Some(bad) = p
            .iter()
            .chain([&config.pad_token_id])
            .find(|&&t| t as usize >= vocab)
        {
            return Err(ModelError::Input {
                field: "prompts",
                reason: format!("token id {bad} is outside the vocabulary ({vocab})"),
            });
        }
    }
    let device = model.device();
    let batch = prompts.len();
    let width = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(batch);
    let mut mask = Vec::with_capacity(batch);
    for p in prompts {
        let pad = width - p.len();
        ids.push(
            std::iter::repeat_n(config.pad_token_id as i64, pad)
                .chain(p.iter().map(|&t| t as i64))
                .collect::<Vec<_>>(),
        );
        mask.push(
            std::iter::repeat_n(0i64, pad)
                .chain(std::iter::repeat_n(1, p.len()))
                .collect::<Vec<_>>(),
        );
    }
    let mut cache = KvCache::new();
    let mut out = vec![Vec::new(); batch];
    let mut done = vec![false; batch];
    let mut input = int_tensor(&ids, &device);
    for _ in 0..config.max_new_tokens {
        let logits = model.forward_cached(input, int_tensor(&mask, &device), &mut cache);
        let [_, seq, _] = logits.dims();
        let next = logits.narrow(1, seq - 1, 1).argmax(2).reshape([batch]);
        let next = next.into_data().convert::<i64>();
        let next = next.as_slice::<i64>().expect("converted to i64");
        let mut step = Vec::with_capacity(batch);
        for (b, &token) in next.iter().enumerate() {
            let token = if done[b] {
                config.pad_token_id
            } else {
                token as u32
            };
            if !done[b] {
                out[b].push(token);
                done[b] = config.eos_token_ids.contains(&token);
            }
            step.push(token as i64);
            mask[b].push(1);
        }
        if done.iter().all(|&d| d) {
            break;
        }
        input = Tensor::<2, Int>::from_data(TensorData::new(step, [batch, 1]), &device);
    }
    Ok(out)
}
