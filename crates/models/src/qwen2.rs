//! Qwen2 / Qwen2.5 (and R1-Distill-Qwen): the config as transformers'
//! `models/qwen2/configuration_qwen2.py` writes it, and what sets the architecture apart.
//!
//! Qwen2 is the shared decoder of [`crate::CausalLm`] with a bias on the q, k and v
//! projections (none on `o_proj` or the MLP), no QK-norm, `head_dim = hidden / heads`, plain
//! RoPE, and (for the small checkpoints) tied embeddings.

use serde::Deserialize;

use crate::config::{Architecture, ModelConfig, OneOrMany, RopeJson, config_err, derived_head_dim};
use crate::error::Result;

/// `config.json` of a Qwen2 checkpoint, key for key. Absent optional keys take the defaults
/// of transformers' `Qwen2Config`, named on each field.
#[derive(Debug, Clone, Deserialize)]
pub struct Qwen2Config {
    /// Vocabulary size (required).
    pub vocab_size: usize,
    /// Hidden size (required).
    pub hidden_size: usize,
    /// MLP inner size (required).
    pub intermediate_size: usize,
    /// Number of layers (required).
    pub num_hidden_layers: usize,
    /// Number of query heads (required).
    pub num_attention_heads: usize,
    /// Key/value heads; default: `num_attention_heads` (transformers `Qwen2Config`).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Default 1e-6 (transformers `Qwen2Config.rms_norm_eps`).
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Default 32768 (transformers `Qwen2Config.max_position_embeddings`).
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// Default false (transformers `Qwen2Config.tie_word_embeddings`).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Sliding-window attention is not implemented; `true` is an error. Default false.
    #[serde(default)]
    pub use_sliding_window: bool,
    /// BOS id, if any.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// EOS id(s), if any.
    #[serde(default)]
    eos_token_id: Option<OneOrMany>,
    /// PAD id, if any.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(flatten)]
    rope: RopeJson,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_max_pos() -> usize {
    32768
}

impl Qwen2Config {
    /// Apply Qwen2's fixed choices and defaults.
    ///
    /// # Errors
    /// [`crate::ModelError::Config`] for sliding windows or a head count that does not divide
    /// the hidden size; [`crate::ModelError::UnsupportedRope`] for rope types other than the
    /// default and `llama3`.
    pub fn resolve(self) -> Result<ModelConfig> {
        if self.use_sliding_window {
            return Err(config_err(
                "use_sliding_window",
                "sliding-window attention is not supported",
            ));
        }
        // transformers' Qwen2Config default rope_theta is 10000.0.
        let (rope_theta, rope_scaling) = self.rope.resolve(10000.0)?;
        Ok(ModelConfig {
            architecture: Architecture::Qwen2,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads.unwrap_or(self.num_attention_heads),
            head_dim: derived_head_dim(self.hidden_size, self.num_attention_heads)?,
            rms_norm_eps: self.rms_norm_eps,
            rope_theta,
            rope_scaling,
            max_position_embeddings: self.max_position_embeddings,
            tie_word_embeddings: self.tie_word_embeddings,
            qkv_bias: true,
            o_bias: false,
            mlp_bias: false,
            qk_norm: false,
            bos_token_id: self.bos_token_id,
            eos_token_ids: self
                .eos_token_id
                .map(OneOrMany::into_vec)
                .unwrap_or_default(),
            pad_token_id: self.pad_token_id,
        })
    }
}

/// A tiny Qwen2 for CPU tests and demos: 2 layers, hidden 64, 4 query / 2 key-value heads,
/// tied embeddings, for a vocabulary of `vocab_size` (e.g. a [`crate::CharTokenizer`]'s).
pub fn tiny(vocab_size: usize) -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Qwen2,
        vocab_size,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 16,
        rms_norm_eps: 1e-6,
        rope_theta: 10000.0,
        rope_scaling: crate::RopeScaling::None,
        max_position_embeddings: 2048,
        tie_word_embeddings: true,
        qkv_bias: true,
        o_bias: false,
        mlp_bias: false,
        qk_norm: false,
        bos_token_id: None,
        eos_token_ids: vec![],
        pad_token_id: None,
    }
}
