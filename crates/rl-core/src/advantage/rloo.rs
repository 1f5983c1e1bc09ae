//! RLOO: leave-one-out baseline within each group.

use super::{Advantages, finish};

/// A_i = r_i − mean of the other (non-NaN) rewards of the group. A completion that is the only
/// scorable one of its group has no baseline and gets 0, as do NaN rewards.
pub(super) fn rloo(rewards: &[f32], k: usize) -> Advantages {
    finish(rewards.chunks(k).flat_map(|g| {
        let valid: Vec<f64> = g
            .iter()
            .filter(|r| !r.is_nan())
            .map(|&r| r as f64)
            .collect();
        let (sum, n) = (valid.iter().sum::<f64>(), valid.len());
        g.iter().map(move |&r| {
            if r.is_nan() || n < 2 {
                f64::NAN
            } else {
                r as f64 - (sum - r as f64) / (n - 1) as f64
            }
        })
    }))
}
