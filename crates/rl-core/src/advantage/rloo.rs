//! RLOO: leave-one-out baseline within each group.

use super::groups::{GroupIndex, SingletonGroups};
use super::{Advantages, finish};

/// A_i = r_i − mean of the other (non-NaN) rewards of the group. A completion that is the only
/// scorable one of its group has no baseline and gets 0, as do NaN rewards; under
/// [`SingletonGroups::Verl`] a group of one row has baseline 0 (verl), so A = r.
pub(super) fn rloo(
    rewards: &[f32],
    groups: &GroupIndex,
    singletons: SingletonGroups,
) -> Advantages {
    let mut out = vec![f64::NAN; rewards.len()];
    for rows in groups.groups() {
        if rows.len() == 1 && singletons == SingletonGroups::Verl {
            out[rows[0]] = rewards[rows[0]] as f64;
            continue;
        }
        let valid: Vec<f64> = rows
            .iter()
            .map(|&i| rewards[i])
            .filter(|r| !r.is_nan())
            .map(|r| r as f64)
            .collect();
        let (sum, n) = (valid.iter().sum::<f64>(), valid.len());
        for &i in rows {
            let r = rewards[i];
            if !r.is_nan() && n >= 2 {
                out[i] = r as f64 - (sum - r as f64) / (n - 1) as f64;
            }
        }
    }
    finish(out.into_iter())
}
