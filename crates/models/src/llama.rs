//! Llama 3: the config as transformers' `models/llama/configuration_llama.py` writes it, and
//! what sets the architecture apart.
//!
//! Llama is the shared decoder of [`crate::CausalLm`] with optional biases
//! (`attention_bias` on all four attention projections, `mlp_bias` on the MLP), no QK-norm,
//! and Llama 3.1's `llama3` rope scaling.

use serde::Deserialize;

use crate::config::{Architecture, ModelConfig, OneOrMany, RopeJson, derived_head_dim};
use crate::error::Result;

/// `config.json` of a Llama checkpoint, key for key. Absent optional keys take the defaults
/// of transformers' `LlamaConfig`, named on each field.
#[derive(Debug, Clone, Deserialize)]
pub struct LlamaConfig {
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
    /// Key/value heads; default: `num_attention_heads`.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Default: `hidden_size / num_attention_heads` (transformers `LlamaConfig.head_dim`).
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Default false (transformers `LlamaConfig.attention_bias`).
    #[serde(default)]
    pub attention_bias: bool,
    /// Default false (transformers `LlamaConfig.mlp_bias`).
    #[serde(default)]
    pub mlp_bias: bool,
    /// Default 1e-6 (transformers `LlamaConfig.rms_norm_eps`).
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Default 2048 (transformers `LlamaConfig.max_position_embeddings`).
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// Default false (transformers `LlamaConfig.tie_word_embeddings`).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// BOS id, if any.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
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
    2048
}

impl LlamaConfig {
    /// Apply Llama's defaults.
    ///
    /// # Errors
    /// [`crate::ModelError::Config`] for a head count that does not divide the hidden size
    /// (when `head_dim` is absent); [`crate::ModelError::UnsupportedRope`] for rope types
    /// other than the default and `llama3`.
    pub fn resolve(self) -> Result<ModelConfig> {
        // transformers' LlamaConfig default rope_theta is 10000.0.
        let (rope_theta, rope_scaling) = self.rope.resolve(10000.0)?;
        let head_dim = match self.head_dim {
            Some(h) => h,
            None => derived_head_dim(self.hidden_size, self.num_attention_heads)?,
        };
        Ok(ModelConfig {
            architecture: Architecture::Llama,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads.unwrap_or(self.num_attention_heads),
            head_dim,
            rms_norm_eps: self.rms_norm_eps,
            rope_theta,
            rope_scaling,
            max_position_embeddings: self.max_position_embeddings,
            tie_word_embeddings: self.tie_word_embeddings,
            qkv_bias: self.attention_bias,
            o_bias: self.attention_bias,
            mlp_bias: self.mlp_bias,
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

/// A tiny Llama 3 for CPU tests and demos: 2 layers, hidden 64, 4 query heads sharing one
/// key-value head, `llama3` rope scaling (factor 8, original context 64), untied embeddings.
pub fn tiny(vocab_size: usize) -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Llama,
        vocab_size,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 1,
        head_dim: 16,
        rms_norm_eps: 1e-5,
        rope_theta: 500_000.0,
        rope_scaling: crate::RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 64.0,
        },
        max_position_embeddings: 2048,
        tie_word_embeddings: false,
        qkv_bias: false,
        o_bias: false,
        mlp_bias: false,
        qk_norm: false,
        bos_token_id: None,
        eos_token_ids: vec![],
        pad_token_id: None,
    }
}
