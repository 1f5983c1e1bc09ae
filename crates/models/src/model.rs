//! The decoder shared by Qwen2, Qwen3 and Llama 3, laid out like transformers'
//! `modeling_qwen2.py` / `modeling_qwen3.py` / `modeling_llama.py`: embedding → N × (RMSNorm →
//! grouped-query attention with rotate-half RoPE → residual → RMSNorm → SwiGLU MLP →
//! residual) → RMSNorm → LM head.
//!
//! Field names equal the checkpoint's key segments (`model.layers.0.self_attn.q_proj`), so
//! burn-store's `PyTorchToBurnAdapter` maps Hugging Face tensors onto the module without a
//! rename table.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::activation::silu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Device, Int, Tensor, TensorData};

use crate::cache::KvCache;
use crate::config::ModelConfig;
use crate::{mask, rope};

/// Grouped-query self-attention (`self_attn`).
#[derive(Module, Debug)]
pub(crate) struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    /// Qwen3's per-head RMSNorm on queries (absent elsewhere).
    pub q_norm: Option<RmsNorm>,
    /// Qwen3's per-head RMSNorm on keys (absent elsewhere).
    pub k_norm: Option<RmsNorm>,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
}

impl Attention {
    fn new(c: &ModelConfig, device: &Device) -> Self {
        let h = c.hidden_size;
        let q = c.num_attention_heads * c.head_dim;
        let kv = c.num_key_value_heads * c.head_dim;
        let norm = || {
            c.qk_norm.then(|| {
                RmsNormConfig::new(c.head_dim)
                    .with_epsilon(c.rms_norm_eps)
                    .init(device)
            })
        };
        Self {
            q_proj: linear(h, q, c.qkv_bias, device),
            k_proj: linear(h, kv, c.qkv_bias, device),
            v_proj: linear(h, kv, c.qkv_bias, device),
            o_proj: linear(q, h, c.o_bias, device),
            q_norm: norm(),
            k_norm: norm(),
            num_heads: c.num_attention_heads,
            num_kv_heads: c.num_key_value_heads,
            head_dim: c.head_dim,
        }
    }

    /// `x`: `[batch, seq, hidden]`; `cos`/`sin`: `[batch, 1, seq, head_dim]`;
    /// `blocked`: `[batch, 1, seq, past + seq]`.
    fn forward(
        &self,
        x: Tensor<3>,
        cos: Tensor<4>,
        sin: Tensor<4>,
        blocked: Tensor<4, Bool>,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let [batch, seq, _] = x.dims();
        let (nh, nkv, hd) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let heads = |t: Tensor<3>, n: usize, norm: &Option<RmsNorm>| {
            let t = t.reshape([batch, seq, n, hd]);
            let t = match norm {
                Some(norm) => norm.forward(t),
                None => t,
            };
            t.swap_dims(1, 2)
        };
        let q = heads(self.q_proj.forward(x.clone()), nh, &self.q_norm);
        let k = heads(self.k_proj.forward(x.clone()), nkv, &self.k_norm);
        let v = heads(self.v_proj.forward(x), nkv, &None);
        let q = rope::apply_rotate_half(q, cos.clone(), sin.clone());
        let k = rope::apply_rotate_half(k, cos, sin);
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, k, v),
            None => (k, v),
        };
        let k = repeat_kv(k, nh / nkv);
        let v = repeat_kv(v, nh / nkv);
        let [_, _, keys, _] = k.dims();
        let blocked = blocked.expand([batch, nh, seq, keys]);
        let out = attention(
            q,
            k,
            v,
            Some(blocked),
            None,
            AttentionModuleOptions {
                scale: None,
                softcap: None,
                is_causal: false,
            },
        );
        self.o_proj
            .forward(out.swap_dims(1, 2).reshape([batch, seq, nh * hd]))
    }
}

/// `[b, kv, s, d]` → `[b, kv * groups, s, d]`, each key/value head serving `groups`
/// consecutive query heads (transformers `repeat_kv`).
fn repeat_kv(x: Tensor<4>, groups: usize) -> Tensor<4> {
    if groups == 1 {
        return x;
    }
    let [b, kv, s, d] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .expand([b, kv, groups, s, d])
        .reshape([b, kv * groups, s, d])
}

/// SwiGLU MLP (`mlp`): `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub(crate) struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl Mlp {
    fn new(c: &ModelConfig, device: &Device) -> Self {
        Self {
            gate_proj: linear(c.hidden_size, c.intermediate_size, c.mlp_bias, device),
            up_proj: linear(c.hidden_size, c.intermediate_size, c.mlp_bias, device),
            down_proj: linear(c.intermediate_size, c.hidden_size, c.mlp_bias, device),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = silu(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }
}

/// One pre-norm decoder layer (`model.layers.N`).
#[derive(Module, Debug)]
pub(crate) struct DecoderLayer {
    pub self_attn: Attention,
    pub mlp: Mlp,
    pub input_layernorm: RmsNorm,
    pub post_attention_layernorm: RmsNorm,
}

/// The decoder stack without the LM head (`model`).
#[derive(Module, Debug)]
pub(crate) struct Backbone {
    pub embed_tokens: Embedding,
    pub layers: Vec<DecoderLayer>,
    pub norm: RmsNorm,
}

/// A Qwen2, Qwen3 or Llama 3 causal language model.
///
/// Build one from a Hugging Face checkpoint with
/// [`CausalLm::from_pretrained`](crate::CausalLm::from_pretrained), or with random weights
/// from a [`ModelConfig`] with [`CausalLm::new`]. The forward works on plain and autodiff
/// devices; padded batches (left or right) take an attention mask, from which position ids
/// are derived as `cumsum(mask) - 1`.
#[derive(Module, Debug)]
pub struct CausalLm {
    pub(crate) model: Backbone,
    /// Absent when the embeddings are tied.
    pub(crate) lm_head: Option<Linear>,
    #[module(skip)]
    pub(crate) config: ModelConfig,
    #[module(skip)]
    pub(crate) inv_freq: Vec<f32>,
}

/// Number of sequence positions whose full-vocabulary logits
/// [`CausalLm::token_log_probs`] materialises at once.
const LOG_PROB_CHUNK: usize = 64;

impl CausalLm {
    /// A model with freshly initialised (random) weights on `device`, drawn from the device's
    /// RNG (call `device.seed(..)` first for a reproducible model). The config is trusted to
    /// be valid (see [`ModelConfig::validate`]).
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        let c = config;
        let layers = (0..c.num_hidden_layers)
            .map(|_| DecoderLayer {
                self_attn: Attention::new(c, device),
                mlp: Mlp::new(c, device),
                input_layernorm: norm(c, device),
                post_attention_layernorm: norm(c, device),
            })
            .collect();
        Self {
            model: Backbone {
                embed_tokens: EmbeddingConfig::new(c.vocab_size, c.hidden_size).init(device),
                layers,
                norm: norm(c, device),
            },
            lm_head: (!c.tie_word_embeddings)
                .then(|| linear(c.hidden_size, c.vocab_size, false, device)),
            config: c.clone(),
            inv_freq: rope::inv_freq(c),
        }
    }

    /// The configuration this model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.model.embed_tokens.weight.val().device()
    }

    /// The float dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.model.embed_tokens.weight.val().dtype()
    }

    /// Final hidden states (after the last norm) for `input_ids`, appending to `cache` when
    /// given.
    ///
    /// # Shapes
    /// - `input_ids`: `[batch, seq]`
    /// - `attention_mask`: `[batch, cached + seq]`, 1 for tokens, 0 for padding
    /// - output: `[batch, seq, hidden]`
    ///
    /// # Panics
    /// If the mask's width is not `cached + seq`, or the batch sizes differ.
    pub fn hidden_states(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let past = cache.as_ref().map_or(0, |c| c.len());
        let [mask_batch, total] = attention_mask.dims();
        assert_eq!(
            mask_batch, batch,
            "attention_mask batch differs from input_ids"
        );
        assert_eq!(
            total,
            past + seq,
            "attention_mask must cover the {past} cached and {seq} new positions"
        );
        let device = input_ids.device();
        let (_, _, host) = mask::host_mask(attention_mask);
        let masks = mask::build(&host, batch, total, past, &device);
        let mut x = self.model.embed_tokens.forward(input_ids);
        let (cos, sin) = rope::cos_sin(&self.inv_freq, masks.positions, x.dtype(), &device);
        for (i, layer) in self.model.layers.iter().enumerate() {
            let h = layer.input_layernorm.forward(x.clone());
            let layer_cache = cache.as_deref_mut().map(|c| (c, i));
            let h = layer.self_attn.forward(
                h,
                cos.clone(),
                sin.clone(),
                masks.blocked.clone(),
                layer_cache,
            );
            x = x + h;
            let h = layer
                .mlp
                .forward(layer.post_attention_layernorm.forward(x.clone()));
            x = x + h;
        }
        if let Some(cache) = cache {
            cache.len = total;
        }
        self.model.norm.forward(x)
    }

    /// Project hidden states to vocabulary logits (the LM head, or the transposed embedding
    /// when tied).
    ///
    /// # Shapes
    /// `[batch, seq, hidden]` → `[batch, seq, vocab]`
    pub fn lm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => {
                let [batch, seq, width] = hidden.dims();
                let w = self.model.embed_tokens.weight.val(); // [vocab, hidden]
                let [vocab, _] = w.dims();
                hidden
                    .reshape([batch * seq, width])
                    .matmul(w.transpose())
                    .reshape([batch, seq, vocab])
            }
        }
    }

    /// Logits for every position.
    ///
    /// # Shapes
    /// - `input_ids`, `attention_mask`: `[batch, seq]`
    /// - output: `[batch, seq, vocab]`
    ///
    /// # Panics
    /// If the shapes of `input_ids` and `attention_mask` differ.
    pub fn forward(&self, input_ids: Tensor<2, Int>, attention_mask: Tensor<2, Int>) -> Tensor<3> {
        self.lm_head(self.hidden_states(input_ids, attention_mask, None))
    }

    /// Logits of the new positions, reading and extending `cache`. Call it first with the
    /// prompt (prefill), then with one token per sequence per step.
    ///
    /// # Shapes
    /// - `input_ids`: `[batch, new]`
    /// - `attention_mask`: `[batch, cached + new]`
    /// - output: `[batch, new, vocab]`
    ///
    /// # Panics
    /// If the mask's width is not `cache.len() + new`.
    pub fn forward_cached(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
        cache: &mut KvCache,
    ) -> Tensor<3> {
        self.lm_head(self.hidden_states(input_ids, attention_mask, Some(cache)))
    }

    /// Log-probabilities of `targets` under the model, `log_softmax(logits / temperature)`
    /// gathered at each target, without keeping the full `[batch, seq, vocab]` log-softmax:
    /// logits are formed 64 positions at a time and reduced in f32 as
    /// `logit[target] - logsumexp(logits)`.
    ///
    /// `targets[b, t]` is usually `input_ids[b, t + 1]`; values at padded positions are
    /// computed but meaningless.
    ///
    /// # Shapes
    /// - `input_ids`, `attention_mask`, `targets`: `[batch, seq]`
    /// - output: `[batch, seq]` (f32)
    ///
    /// # Panics
    /// If shapes differ or `temperature` is not positive.
    pub fn token_log_probs(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
        targets: Tensor<2, Int>,
        temperature: f64,
    ) -> Tensor<2> {
        self.score_chunks(input_ids, attention_mask, targets, temperature, None)
            .0
    }

    /// [`CausalLm::token_log_probs`] plus the entropy of softmax(logits / temperature) at
    /// every position, `[batch, seq]`, computed in the same 64-position chunks (TRL's
    /// `entropy_from_logits`). With `entropy_grad` false the entropy is detached (a metric and
    /// no extra graph); true keeps it differentiable (an entropy bonus).
    ///
    /// # Panics
    /// As [`CausalLm::token_log_probs`].
    pub fn token_log_probs_and_entropy(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
        targets: Tensor<2, Int>,
        temperature: f64,
        entropy_grad: bool,
    ) -> (Tensor<2>, Tensor<2>) {
        let (lp, h) = self.score_chunks(
            input_ids,
            attention_mask,
            targets,
            temperature,
            Some(entropy_grad),
        );
        (lp, h.expect("entropy requested"))
    }

    fn score_chunks(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
        targets: Tensor<2, Int>,
        temperature: f64,
        entropy: Option<bool>,
    ) -> (Tensor<2>, Option<Tensor<2>>) {
        assert!(temperature > 0.0, "temperature must be positive");
        assert_eq!(
            targets.dims(),
            input_ids.dims(),
            "targets must match input_ids"
        );
        let hidden = self.hidden_states(input_ids, attention_mask, None);
        let [batch, seq, _] = hidden.dims();
        let mut parts = Vec::with_capacity(seq.div_ceil(LOG_PROB_CHUNK));
        let mut ent = Vec::new();
        let mut start = 0;
        while start < seq {
            let len = LOG_PROB_CHUNK.min(seq - start);
            let logits = self
                .lm_head(hidden.clone().narrow(1, start, len))
                .cast(DType::F32);
            let logits = if temperature == 1.0 {
                logits
            } else {
                logits / temperature
            };
            let max = logits.clone().max_dim(2).detach();
            let shifted = logits - max;
            let lse = shifted.clone().exp().sum_dim(2).log();
            if let Some(grad) = entropy {
                // H = lse − Σ p · shifted, p = exp(shifted − lse).
                let (x, l) = if grad {
                    (shifted.clone(), lse.clone())
                } else {
                    (shifted.clone().detach(), lse.clone().detach())
                };
                let p = (x.clone() - l.clone()).exp();
                ent.push((l - (p * x).sum_dim(2)).reshape([batch, len]));
            }
            let t = targets
                .clone()
                .narrow(1, start, len)
                .reshape([batch, len, 1]);
            parts.push((shifted.gather(2, t) - lse).reshape([batch, len]));
            start += len;
        }
        (Tensor::cat(parts, 1), entropy.map(|_| Tensor::cat(ent, 1)))
    }
}

fn linear(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out).with_bias(bias).init(device)
}

fn norm(c: &ModelConfig, device: &Device) -> RmsNorm {
    RmsNormConfig::new(c.hidden_size)
        .with_epsilon(c.rms_norm_eps)
        .init(device)
}

/// Build a `[batch, seq]` integer tensor from rows of equal length.
pub(crate) fn int_tensor(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
    let batch = rows.len();
    let seq = rows.first().map_or(0, Vec::len);
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [batch, seq]), device)
}
