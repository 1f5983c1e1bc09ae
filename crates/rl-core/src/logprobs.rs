//! Log-probabilities and entropies of tokens from logits.

use burn::tensor::{Int, Tensor, activation::log_softmax};

use crate::error::{CoreError, Result};

/// Log-probability of each target token under softmax(logits / temperature), computed as
/// `x[target] − logsumexp(x)` with the row maximum subtracted first, so logits of any
/// magnitude are safe. Only one full-vocabulary temporary (the shifted exponentials) is made.
///
/// # Shapes
/// `logits: [B, T, V]`, `targets: [B, T]` → `[B, T]`.
///
/// # Errors
/// [`CoreError::ShapeMismatch`] when `targets` is not `[B, T]`; [`CoreError::Config`] for a
/// temperature that is not finite and positive.
pub fn token_logprobs(
    logits: Tensor<3>,
    targets: Tensor<2, Int>,
    temperature: f32,
) -> Result<Tensor<2>> {
    let [b, t, _v] = logits.dims();
    check(&targets, [b, t], temperature)?;
    let x = if temperature == 1.0 {
        logits
    } else {
        logits / temperature as f64
    };
    let max = x.clone().max_dim(2).detach();
    let shifted = x - max;
    let picked = shifted
        .clone()
        .gather(2, targets.unsqueeze_dim::<3>(2))
        .squeeze_dim::<2>(2);
    let lse = shifted.exp().sum_dim(2).log().squeeze_dim::<2>(2);
    Ok(picked - lse)
}

/// Entropy of softmax(logits / temperature) at every position, `[B, T, V] → [B, T]`.
///
/// # Errors
/// [`CoreError::Config`] for a temperature that is not finite and positive.
pub fn token_entropy(logits: Tensor<3>, temperature: f32) -> Result<Tensor<2>> {
    check_temperature(temperature)?;
    let logp = log_softmax(logits / temperature as f64, 2);
    Ok((logp.clone().exp() * logp)
        .sum_dim(2)
        .squeeze_dim::<2>(2)
        .neg())
}

fn check(targets: &Tensor<2, Int>, expected: [usize; 2], temperature: f32) -> Result<()> {
    if targets.dims() != expected {
        return Err(CoreError::ShapeMismatch {
            what: "targets",
            expected: expected.to_vec(),
            found: targets.dims().to_vec(),
        });
    }
    check_temperature(temperature)
}

fn check_temperature(temperature: f32) -> Result<()> {
    if temperature.is_finite() && temperature > 0.0 {
        Ok(())
    } else {
        Err(CoreError::Config {
            field: "temperature",
            reason: format!("must be finite and > 0, got {temperature}"),
        })
    }
}
