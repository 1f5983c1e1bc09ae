//! Per-token estimators of KL(π_θ ‖ π_ref) from sampled tokens (Schulman's k1, k2, k3).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Which KL estimator the objective adds. With x = ℓ_ref − ℓ (log π_ref − log π_θ):
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KlEstimator {
    /// k1 = ℓ − ℓ_ref (verl `kl`).
    K1,
    /// k2 = ½(ℓ − ℓ_ref)² (verl `mse`).
    K2,
    /// k3 = eˣ − x − 1, unclamped (TRL). Default.
    #[default]
    K3,
    /// verl `low_var_kl`: k3 with x clamped to ±20 and the result clamped to ±10.
    K3Clamped,
}

/// Per-token KL estimate between the current log-probs `logps` and `ref_logps`, both `[B, T]`.
///
/// k3 is evaluated as a Taylor series for |x| < 0.1 so that it is ≥ 0 and exactly 0 only at
/// x = 0 in f32 (the direct formula cancels to a negative value for |x| near 1e-8); elsewhere
/// as eˣ − x − 1, which is what TRL computes.
pub fn kl_divergence(logps: Tensor<2>, ref_logps: Tensor<2>, estimator: KlEstimator) -> Tensor<2> {
    match estimator {
        KlEstimator::K1 => logps - ref_logps,
        KlEstimator::K2 => (logps - ref_logps).square() * 0.5,
        KlEstimator::K3 => k3(ref_logps - logps),
        KlEstimator::K3Clamped => k3((ref_logps - logps).clamp(-20.0, 20.0)).clamp(-10.0, 10.0),
    }
}

/// eˣ − x − 1 with a series near 0.
fn k3(x: Tensor<2>) -> Tensor<2> {
    const SMALL: f64 = 0.1;
    let small = x.clone().abs().lower_elem(SMALL);
    // Clamp the series' input so the branch that is not selected cannot overflow (its
    // gradient would turn 0·∞ into NaN).
    let xs = x.clone().clamp(-SMALL, SMALL);
    let poly = ((((xs.clone() / 720.0 + 1.0 / 120.0) * xs.clone() + 1.0 / 24.0) * xs.clone()
        + 1.0 / 6.0)
        * xs.clone()
        + 0.5)
        * xs.clone().square();
    let direct = x.clone().exp() - x - 1.0;
    direct.mask_where(small, poly)
}
