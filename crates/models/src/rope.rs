//! Rotary position embeddings in the **rotate-half** (NeoX) layout that Hugging Face Qwen and
//! Llama use, with the `llama3` frequency scaling.
//!
//! Burn's `nn::RotaryEncoding` rotates interleaved pairs `(x[2i], x[2i+1])` (GPT-J layout);
//! HF checkpoints pair `x[i]` with `x[i + d/2]`. Using the wrong one gives plausible but wrong
//! logits, so this file names the layout and keeps a slow scalar reference
//! ([`rope_rotate_half_slow`]) that the tests compare the tensor version against.

use burn::tensor::{DType, Device, Int, Tensor, TensorData};

use crate::config::{ModelConfig, RopeScaling};

/// Inverse frequencies `inv_freq[i]`, `i < head_dim / 2`, after rope scaling.
///
/// Default: `theta^(-2i / head_dim)`. `llama3` (transformers `_compute_llama3_parameters`):
/// with `wavelen = 2π / inv_freq`, wavelengths longer than `original / low_freq_factor` are
/// divided by `factor`, those shorter than `original / high_freq_factor` are kept, and those in
/// between are interpolated with `smooth = (original / wavelen - low) / (high - low)`.
pub fn inv_freq(config: &ModelConfig) -> Vec<f32> {
    let dim = config.head_dim;
    // transformers computes the exponent in float32: arange(0, dim, 2).float() / dim.
    let base: Vec<f32> = (0..dim / 2)
        .map(|i| {
            let exponent = (2 * i) as f32 / dim as f32;
            1.0 / (config.rope_theta as f32).powf(exponent)
        })
        .collect();
    match config.rope_scaling {
        RopeScaling::None => base,
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: old,
        } => {
            let (factor, low, high, old) = (
                factor as f32,
                low_freq_factor as f32,
                high_freq_factor as f32,
                old as f32,
            );
            let low_freq_wavelen = old / low;
            let high_freq_wavelen = old / high;
            base.into_iter()
                .map(|f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    let scaled = if wavelen > low_freq_wavelen {
                        f / factor
                    } else {
                        f
                    };
                    let medium = wavelen >= high_freq_wavelen && wavelen <= low_freq_wavelen;
                    if medium {
                        let smooth = (old / wavelen - low) / (high - low);
                        (1.0 - smooth) * scaled / factor + smooth * scaled
                    } else {
                        scaled
                    }
                })
                .collect()
        }
    }
}

/// `cos` and `sin` tables for the given positions, each `[batch, 1, seq, head_dim]`, laid out
/// as `cat(freqs, freqs)` (rotate-half).
///
/// # Shapes
/// - `positions`: `[batch, seq]`
pub fn cos_sin(
    inv_freq: &[f32],
    positions: Tensor<2, Int>,
    dtype: DType,
    device: &Device,
) -> (Tensor<4>, Tensor<4>) {
    let [batch, seq] = positions.dims();
    let half = inv_freq.len();
    let inv = Tensor::<1>::from_data(TensorData::new(inv_freq.to_vec(), [half]), device)
        .reshape([1, 1, half]);
    let pos = positions.float().reshape([batch, seq, 1]);
    let freqs = pos.mul(inv); // [batch, seq, half], f32 as in transformers
    let emb = Tensor::cat(vec![freqs.clone(), freqs], 2).reshape([batch, 1, seq, 2 * half]);
    (emb.clone().cos().cast(dtype), emb.sin().cast(dtype))
}

/// Apply rotate-half RoPE: `x * cos + rotate_half(x) * sin`, with
/// `rotate_half([x1, x2]) = [-x2, x1]` over the two halves of the last axis.
///
/// # Shapes
/// - `x`: `[batch, heads, seq, head_dim]`; `cos`, `sin`: `[batch, 1, seq, head_dim]`
pub fn apply_rotate_half(x: Tensor<4>, cos: Tensor<4>, sin: Tensor<4>) -> Tensor<4> {
    let [_, _, _, d] = x.dims();
    let x1 = x.clone().narrow(3, 0, d / 2);
    let x2 = x.clone().narrow(3, d / 2, d / 2);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos + rotated * sin
}

/// Scalar reference of rotate-half RoPE for one head vector at one position, written from
/// the formula: for `i < d/2`, `y[i] = x[i] cos(p f_i) - x[i + d/2] sin(p f_i)` and
/// `y[i + d/2] = x[i + d/2] cos(p f_i) + x[i] sin(p f_i)`.
pub fn rope_rotate_half_slow(x: &[f32], position: usize, inv_freq: &[f32]) -> Vec<f32> {
    let half = x.len() / 2;
    let mut y = vec![0.0; x.len()];
    for i in 0..half {
        let angle = position as f32 * inv_freq[i];
        let (s, c) = angle.sin_cos();
        y[i] = x[i] * c - x[i + half] * s;
        y[i + half] = x[i + half] * c + x[i] * s;
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llama;

    #[test]
    fn rotate_half_matches_slow_reference() {
        let device = Device::flex();
        let config = llama::tiny(10);
        let inv = inv_freq(&config);
        let d = config.head_dim;
        let (batch, heads, seq) = (2, 3, 5);
        let n = batch * heads * seq * d;
        let values: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let x = Tensor::<4>::from_data(
            TensorData::new(values.clone(), [batch, heads, seq, d]),
            &device,
        );
        // Row 1 is left-padded by two: positions 1, 1, 0, 1, 2.
        let positions: Vec<i64> = vec![0, 1, 2, 3, 4, 1, 1, 0, 1, 2];
        let pos =
            Tensor::<2, Int>::from_data(TensorData::new(positions.clone(), [batch, seq]), &device);
        let (cos, sin) = cos_sin(&inv, pos, DType::F32, &device);
        let got = apply_rotate_half(x, cos, sin)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for b in 0..batch {
            for h in 0..heads {
                for s in 0..seq {
                    let off = ((b * heads + h) * seq + s) * d;
                    let want = rope_rotate_half_slow(
                        &values[off..off + d],
                        positions[b * seq + s] as usize,
                        &inv,
                    );
                    for k in 0..d {
                        assert!((got[off + k] - want[k]).abs() < 1e-5, "b{b} h{h} s{s} k{k}");
                    }
                }
            }
        }
    }

    #[test]
    fn llama3_scaling_keeps_high_and_divides_low_frequencies() {
        let config = llama::tiny(10);
        let plain = inv_freq(&ModelConfig {
            rope_scaling: RopeScaling::None,
            ..config.clone()
        });
        let scaled = inv_freq(&config);
        // Highest frequency (wavelength 2π < 64/4) is kept; the lowest is divided by 8.
        assert_eq!(scaled[0], plain[0]);
        let last = plain.len() - 1;
        assert!((scaled[last] - plain[last] / 8.0).abs() <= plain[last] * 1e-6);
    }
}
