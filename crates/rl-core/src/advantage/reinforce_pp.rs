//! REINFORCE++: batch whitening of (optionally group-centred) rewards.

use super::{Advantages, finish};

/// verl `masked_whiten` of per-completion scores broadcast over their tokens:
/// mean and unbiased variance weighted by `lengths` (1 each when absent), then
/// (x − mean) / sqrt(var + ε). NaN scores are excluded and get 0.
pub(super) fn whiten(scores: Vec<f64>, lengths: Option<&[usize]>, eps: f32) -> Advantages {
    let w = |i: usize| lengths.map_or(1.0, |l| l[i] as f64);
    let (mut sw, mut swx) = (0.0, 0.0);
    for (i, &x) in scores.iter().enumerate().filter(|(_, x)| !x.is_nan()) {
        sw += w(i);
        swx += w(i) * x;
    }
    let mean = swx / sw;
    let ss: f64 = scores
        .iter()
        .enumerate()
        .filter(|(_, x)| !x.is_nan())
        .map(|(i, x)| w(i) * (x - mean).powi(2))
        .sum();
    // masked_var: mean of squares times the Bessel factor n/(n−1), n = number of tokens.
    let var = if sw > 1.0 {
        ss / sw * (sw / (sw - 1.0))
    } else {
        f64::NAN
    };
    let inv = 1.0 / (var + eps as f64).sqrt();
    finish(scores.into_iter().map(|x| (x - mean) * inv))
}
