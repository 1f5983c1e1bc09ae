//! The host-side logits processor: temperature, min-p, top-k, top-p, greedy, and one seeded
//! draw per token.

use std::cmp::Ordering;

use rand::Rng;

use crate::error::{Result, RolloutError};
use crate::params::{LogprobMode, SamplingParams};

/// One sampled token and its log-probability (see [`LogprobMode`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampledToken {
    /// The token id.
    pub token: u32,
    /// Its log-probability under the configured [`LogprobMode`].
    pub logprob: f32,
}

/// Turns a row of logits into a token, as vLLM v1's sampler does.
///
/// With `z` the logits (NaN treated as −∞) and `T` the temperature:
/// 1. greedy (`greedy`, or `T = 0`): the first index of the largest logit; **no random number
///    is drawn**;
/// 2. otherwise `p = softmax(z / T)`;
/// 3. min-p: drop tokens with `p_i < min_p · max_j p_j`;
/// 4. top-k: keep the `k` most likely survivors (ties broken by lower id);
/// 5. top-p: in order of decreasing probability (ties by lower id), keep token `r` while the
///    renormalised mass of the tokens before it is below `top_p` (so at least one token stays,
///    and the kept set is the smallest prefix reaching `top_p`);
/// 6. draw `u` uniform in `[0, 1)` from one `next_u64` (53 high bits) and take the first kept
///    token, in id order, whose cumulative renormalised probability exceeds `u`.
///
/// Work is in f64. Without min-p, top-k or top-p nothing is sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSampler {
    greedy: bool,
    temperature: f64,
    top_k: Option<usize>,
    top_p: f64,
    min_p: f64,
    mode: LogprobMode,
}

impl TokenSampler {
    /// A sampler for `params` (validated here, so [`TokenSampler::sample`] only fails on bad
    /// logits).
    ///
    /// # Errors
    /// [`RolloutError::InvalidParam`] from [`SamplingParams::validate`].
    pub fn new(params: &SamplingParams) -> Result<Self> {
        params.validate()?;
        Ok(Self {
            greedy: params.is_greedy(),
            temperature: f64::from(params.temperature),
            top_k: params.top_k,
            top_p: f64::from(params.top_p),
            min_p: f64::from(params.min_p),
            mode: params.logprob_mode,
        })
    }

    /// Whether this sampler is greedy (draws nothing).
    pub fn is_greedy(&self) -> bool {
        self.greedy
    }

    /// Sample one token from `logits` (one row, vocabulary-sized).
    ///
    /// # Errors
    /// [`RolloutError::Model`] when `logits` is empty or has no finite value.
    pub fn sample(&self, logits: &[f32], rng: &mut dyn Rng) -> Result<SampledToken> {
        let z = finite_row(logits)?;
        if self.greedy {
            let token = argmax(&z);
            let logprob = match self.mode {
                LogprobMode::Processed => 0.0,
                LogprobMode::Temperature | LogprobMode::Raw => z[token] - log_sum_exp(&z),
            };
            return Ok(SampledToken {
                token: token as u32,
                logprob: logprob as f32,
            });
        }
        let kept = self.kept(&z);
        let mass: f64 = kept.weights.iter().sum();
        let u = uniform(rng) * mass;
        let mut cum = 0.0;
        let mut token = None;
        for (i, &w) in kept.weights.iter().enumerate() {
            if w > 0.0 {
                cum += w;
                token = Some(i);
                if cum > u {
                    break;
                }
            }
        }
        // `kept` always holds the most likely token, so `token` is set.
        let token = token.unwrap_or_else(|| argmax(&z));
        let logprob = match self.mode {
            LogprobMode::Temperature => kept.scaled[token] - kept.scaled_lse,
            LogprobMode::Processed => (kept.weights[token] / mass).ln(),
            LogprobMode::Raw => z[token] - log_sum_exp(&z),
        };
        Ok(SampledToken {
            token: token as u32,
            logprob: logprob as f32,
        })
    }

    /// The probabilities a draw follows (after temperature and truncation, renormalised); a
    /// point mass on the argmax when greedy.
    ///
    /// # Errors
    /// [`RolloutError::Model`] when `logits` is empty or has no finite value.
    pub fn distribution(&self, logits: &[f32]) -> Result<Vec<f64>> {
        let z = finite_row(logits)?;
        if self.greedy {
            let mut p = vec![0.0; z.len()];
            p[argmax(&z)] = 1.0;
            return Ok(p);
        }
        let kept = self.kept(&z);
        let mass: f64 = kept.weights.iter().sum();
        Ok(kept.weights.iter().map(|w| w / mass).collect())
    }

    /// Unnormalised weights `exp(z/T − max)` of the kept tokens (0 for dropped ones).
    fn kept(&self, z: &[f64]) -> Kept {
        let scaled: Vec<f64> = z.iter().map(|&x| x / self.temperature).collect();
        let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut weights: Vec<f64> = scaled.iter().map(|&s| (s - max).exp()).collect();
        let total: f64 = weights.iter().sum();
        let scaled_lse = max + total.ln();
        // min-p: p_i ≥ min_p · p_max ⇔ w_i ≥ min_p (the largest weight is exp(0) = 1).
        if self.min_p > 0.0 {
            for w in &mut weights {
                if *w < self.min_p {
                    *w = 0.0;
                }
            }
        }
        let truncate_k = self
            .top_k
            .filter(|&k| k < weights.iter().filter(|&&w| w > 0.0).count());
        if truncate_k.is_some() || self.top_p < 1.0 {
            let snap = weights.clone();
            let by_weight = |a: &usize, b: &usize| -> Ordering {
                snap[*b]
                    .partial_cmp(&snap[*a])
                    .unwrap_or(Ordering::Equal)
                    .then(a.cmp(b))
            };
            let mut order: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0.0).collect();
            if let Some(k) = truncate_k {
                order.select_nth_unstable_by(k - 1, by_weight);
                for &i in &order[k..] {
                    weights[i] = 0.0;
                }
                order.truncate(k);
            }
            if self.top_p < 1.0 {
                order.sort_unstable_by(by_weight);
                let mass: f64 = order.iter().map(|&i| weights[i]).sum();
                let mut before = 0.0;
                for &i in &order {
                    if before / mass >= self.top_p {
                        weights[i] = 0.0;
                    } else {
                        before += weights[i];
                    }
                }
            }
        }
        Kept {
            weights,
            scaled,
            scaled_lse,
        }
    }
}

struct Kept {
    weights: Vec<f64>,
    scaled: Vec<f64>,
    scaled_lse: f64,
}

/// The row in f64 with NaN as −∞; an error when nothing finite is left.
fn finite_row(logits: &[f32]) -> Result<Vec<f64>> {
    let z: Vec<f64> = logits
        .iter()
        .map(|&x| {
            if x.is_nan() {
                f64::NEG_INFINITY
            } else {
                f64::from(x)
            }
        })
        .collect();
    if !z.iter().any(|x| x.is_finite()) {
        return Err(RolloutError::Model {
            reason: format!(
                "a row of {} logits has no finite value (empty, NaN or −∞ everywhere)",
                logits.len()
            ),
        });
    }
    Ok(z)
}

/// First index of the largest value (+∞ counts as largest).
fn argmax(z: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in z.iter().enumerate() {
        if x > z[best] {
            best = i;
        }
    }
    best
}

fn log_sum_exp(z: &[f64]) -> f64 {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + z.iter().map(|&x| (x - max).exp()).sum::<f64>().ln()
}

/// Uniform in `[0, 1)` from the 53 high bits of one `next_u64`.
fn uniform(rng: &mut dyn Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{SeedableRng, TryRng};

    use super::*;

    /// An RNG that panics when used: proves a code path draws nothing (rand_distr's idea).
    struct VoidRng;

    impl TryRng for VoidRng {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            panic!("VoidRng used")
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            panic!("VoidRng used")
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Infallible> {
            panic!("VoidRng used")
        }
    }

    fn sampler(f: impl FnOnce(&mut SamplingParams)) -> TokenSampler {
        let mut p = SamplingParams::default();
        f(&mut p);
        TokenSampler::new(&p).unwrap()
    }

    #[test]
    fn greedy_draws_nothing_and_takes_first_max() {
        let logits = [0.5, 2.0, -1.0, 2.0, f32::NAN];
        for s in [
            sampler(|p| p.greedy = true),
            sampler(|p| p.temperature = 0.0),
        ] {
            let out = s.sample(&logits, &mut VoidRng).unwrap();
            assert_eq!(out.token, 1);
            // Raw log-softmax of logit 2.0 among [0.5, 2, -1, 2].
            let lse = (0.5f64.exp() + 2.0 * 2.0f64.exp() + (-1.0f64).exp()).ln();
            assert!((f64::from(out.logprob) - (2.0 - lse)).abs() < 1e-6);
        }
        let s = sampler(|p| {
            p.greedy = true;
            p.logprob_mode = LogprobMode::Processed;
        });
        assert_eq!(s.sample(&logits, &mut VoidRng).unwrap().logprob, 0.0);
    }

    #[test]
    fn sampling_draws_exactly_one_u64_per_token() {
        let s = sampler(|p| p.top_p = 0.9);
        let mut a = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut b = a.clone();
        s.sample(&[0.0, 1.0, 2.0], &mut a).unwrap();
        b.next_u64();
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn bad_logits_are_an_error_not_a_panic() {
        let s = sampler(|_| {});
        for row in [&[][..], &[f32::NAN, f32::NAN][..], &[f32::NEG_INFINITY][..]] {
            assert!(matches!(
                s.sample(row, &mut Xoshiro256PlusPlus::seed_from_u64(0)),
                Err(RolloutError::Model { .. })
            ));
        }
    }

    #[test]
    fn logprob_modes() {
        let logits = [1.0f32, 0.0, -1.0, -3.0];
        let z: Vec<f64> = logits.iter().map(|&x| f64::from(x)).collect();
        let t = 0.7;
        let lsm = |scale: f64, i: usize| {
            let s: Vec<f64> = z.iter().map(|x| x / scale).collect();
            s[i] - log_sum_exp(&s)
        };
        for seed in 0..20 {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let mut rng2 = rng.clone();
            let mut rng3 = rng.clone();
            let temp = sampler(|p| {
                p.temperature = t as f32;
                p.top_k = Some(2);
            });
            let a = temp.sample(&logits, &mut rng).unwrap();
            assert!((f64::from(a.logprob) - lsm(t, a.token as usize)).abs() < 1e-6);
            let raw = sampler(|p| {
                p.temperature = t as f32;
                p.top_k = Some(2);
                p.logprob_mode = LogprobMode::Raw;
            });
            let b = raw.sample(&logits, &mut rng2).unwrap();
            assert_eq!(a.token, b.token);
            assert!((f64::from(b.logprob) - lsm(1.0, b.token as usize)).abs() < 1e-6);
            let processed = sampler(|p| {
                p.temperature = t as f32;
                p.top_k = Some(2);
                p.logprob_mode = LogprobMode::Processed;
            });
            let c = processed.sample(&logits, &mut rng3).unwrap();
            assert_eq!(a.token, c.token);
            // Renormalised over the top two tokens {0, 1}.
            let two = [z[0] / t, z[1] / t];
            let expect = two[c.token as usize] - log_sum_exp(&two);
            assert!((f64::from(c.logprob) - expect).abs() < 1e-6);
        }
    }

    #[test]
    fn value_stability() {
        // Pins the stream: a change here changes every seeded rollout.
        let s = sampler(|p| p.temperature = 1.0);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(213);
        let tokens: Vec<u32> = (0..12)
            .map(|_| s.sample(&[0.0, 0.5, 1.0, 1.5], &mut rng).unwrap().token)
            .collect();
        assert_eq!(tokens, PINNED);
    }

    const PINNED: [u32; 12] = [3, 3, 0, 3, 1, 1, 3, 1, 2, 0, 2, 3];
}
