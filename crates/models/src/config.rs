//! The resolved model configuration shared by all architectures, and `config.json` parsing.
//!
//! Each architecture file (`qwen2.rs`, `qwen3.rs`, `llama.rs`) mirrors its Hugging Face
//! config key for key and resolves it into [`ModelConfig`]; this file dispatches on
//! `model_type` and holds the pieces they share (rope parameters, token ids).

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ModelError, Result};
use crate::{llama, qwen2, qwen3};

/// The architectures this crate implements, named by their `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Qwen2 / Qwen2.5 / R1-Distill-Qwen: q/k/v projections carry a bias.
    Qwen2,
    /// Qwen3: per-head RMS norm on queries and keys, explicit `head_dim`.
    Qwen3,
    /// Llama 3: optional `llama3` rope scaling, optional attention / MLP biases.
    Llama,
}

impl Architecture {
    /// The `model_type` string of config.json.
    pub fn model_type(self) -> &'static str {
        match self {
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
            Self::Llama => "llama",
        }
    }

    /// The transformers class name written to `architectures` on export.
    pub fn hf_class(self) -> &'static str {
        match self {
            Self::Qwen2 => "Qwen2ForCausalLM",
            Self::Qwen3 => "Qwen3ForCausalLM",
            Self::Llama => "LlamaForCausalLM",
        }
    }
}

/// How rotary frequencies are rescaled for long contexts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE: `inv_freq[i] = theta^(-2i/head_dim)`.
    None,
    /// Llama 3.1 frequency-dependent scaling (transformers `_compute_llama3_parameters`).
    Llama3 {
        /// Divisor of the low frequencies.
        factor: f64,
        /// Wavelengths above `original / low_freq_factor` are divided by `factor`.
        low_freq_factor: f64,
        /// Wavelengths below `original / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// Context length of the unscaled model.
        original_max_position_embeddings: f64,
    },
}

/// A causal LM's shape and numerics, resolved from config.json (or a tiny preset).
///
/// Every field is explicit here; architecture-specific defaults were applied when the
/// Hugging Face config was resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Which architecture.
    pub architecture: Architecture,
    /// Vocabulary size (rows of `embed_tokens`).
    pub vocab_size: usize,
    /// Residual stream width.
    pub hidden_size: usize,
    /// SwiGLU inner width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention); divides `num_attention_heads`.
    pub num_key_value_heads: usize,
    /// Width of one attention head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// RoPE frequency scaling.
    pub rope_scaling: RopeScaling,
    /// Longest context the checkpoint was configured for (kept for export).
    pub max_position_embeddings: usize,
    /// Whether `lm_head` shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Whether q/k/v projections have a bias.
    pub qkv_bias: bool,
    /// Whether the output projection has a bias.
    pub o_bias: bool,
    /// Whether the MLP projections have a bias.
    pub mlp_bias: bool,
    /// Whether queries and keys get a per-head RMSNorm (Qwen3).
    pub qk_norm: bool,
    /// Beginning-of-sequence token id, if any.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token ids (config.json allows one or a list).
    pub eos_token_ids: Vec<u32>,
    /// Padding token id, if any.
    pub pad_token_id: Option<u32>,
}

impl ModelConfig {
    /// Parse a Hugging Face `config.json` string.
    ///
    /// # Errors
    /// [`ModelError::Json`] (with `path` as given) if a required key is missing or mistyped,
    /// [`ModelError::UnsupportedModelType`], [`ModelError::UnsupportedRope`], or
    /// [`ModelError::Config`] when values are inconsistent.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let json_err = |source| ModelError::Json {
            path: path.to_path_buf(),
            source,
        };
        let value: Value = serde_json::from_str(text).map_err(json_err)?;
        let model_type = value
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| ModelError::Config {
                field: "model_type".into(),
                reason: format!("missing or not a string in {}", path.display()),
            })?
            .to_string();
        let config = match model_type.as_str() {
            "qwen2" => qwen2::Qwen2Config::deserialize(&value)
                .map_err(json_err)?
                .resolve()?,
            "qwen3" => qwen3::Qwen3Config::deserialize(&value)
                .map_err(json_err)?
                .resolve()?,
            "llama" => llama::LlamaConfig::deserialize(&value)
                .map_err(json_err)?
                .resolve()?,
            _ => return Err(ModelError::UnsupportedModelType { model_type }),
        };
        config.validate()?;
        Ok(config)
    }

    /// Read and parse `path` (a Hugging Face `config.json`).
    ///
    /// # Errors
    /// As [`ModelConfig::from_json_str`], plus [`ModelError::MissingFile`] / [`ModelError::Io`].
    pub fn from_file(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(ModelError::MissingFile {
                path: path.to_path_buf(),
                what: "model config",
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_str(&text, path)
    }

    /// Check the cross-field rules every architecture shares.
    ///
    /// # Errors
    /// [`ModelError::Config`] naming the offending field.
    pub fn validate(&self) -> Result<()> {
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
        ];
        for (field, v) in sizes {
            if v == 0 {
                return Err(config_err(field, "must be positive, got 0"));
            }
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return Err(config_err(
                "num_key_value_heads",
                format!(
                    "must divide num_attention_heads ({}), got {}",
                    self.num_attention_heads, self.num_key_value_heads
                ),
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(config_err(
                "head_dim",
                format!(
                    "rotary embeddings need an even head_dim, got {}",
                    self.head_dim
                ),
            ));
        }
        if !positive(self.rms_norm_eps) {
            return Err(config_err(
                "rms_norm_eps",
                format!("must be positive, got {}", self.rms_norm_eps),
            ));
        }
        if !positive(self.rope_theta) {
            return Err(config_err(
                "rope_theta",
                format!("must be positive, got {}", self.rope_theta),
            ));
        }
        if let RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } = self.rope_scaling
        {
            if !(factor > 0.0 && low_freq_factor > 0.0 && original_max_position_embeddings > 0.0) {
                return Err(config_err(
                    "rope_scaling",
                    "factor, low_freq_factor and original_max_position_embeddings must be positive",
                ));
            }
            if !positive(high_freq_factor - low_freq_factor) {
                return Err(config_err(
                    "rope_scaling.high_freq_factor",
                    format!(
                        "must exceed low_freq_factor ({low_freq_factor}), got {high_freq_factor}"
                    ),
                ));
            }
        }
        for (field, id) in [
            ("bos_token_id", self.bos_token_id),
            ("pad_token_id", self.pad_token_id),
        ] {
            if let Some(id) = id
                && id as usize >= self.vocab_size
            {
                return Err(config_err(
                    field,
                    format!("{id} is outside the vocabulary ({})", self.vocab_size),
                ));
            }
        }
        Ok(())
    }

    /// The Hugging Face `config.json` for this configuration (transformers 4.x key layout,
    /// which transformers 5 and vLLM also read). `dtype` is the `torch_dtype` to record.
    pub fn to_hf_json(&self, dtype: &str) -> Value {
        let eos = match self.eos_token_ids.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        let rope_scaling = match self.rope_scaling {
            RopeScaling::None => Value::Null,
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => json!({
                "rope_type": "llama3",
                "factor": factor,
                "low_freq_factor": low_freq_factor,
                "high_freq_factor": high_freq_factor,
                "original_max_position_embeddings": original_max_position_embeddings as u64,
            }),
        };
        let mut v = json!({
            "architectures": [self.architecture.hf_class()],
            "model_type": self.architecture.model_type(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": rope_scaling,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": eos,
            "pad_token_id": self.pad_token_id,
            "torch_dtype": dtype,
            "use_cache": true,
        });
        let obj = v.as_object_mut().expect("json! object literal");
        match self.architecture {
            Architecture::Qwen2 => {
                obj.insert("use_sliding_window".into(), json!(false));
            }
            Architecture::Qwen3 => {
                obj.insert("attention_bias".into(), json!(self.qkv_bias));
            }
            Architecture::Llama => {
                obj.insert("attention_bias".into(), json!(self.qkv_bias));
                obj.insert("mlp_bias".into(), json!(self.mlp_bias));
            }
        }
        v
    }

    /// Number of query heads sharing one key/value head.
    pub fn kv_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }
}

/// Whether `x` is a positive number (false for NaN).
pub(crate) fn positive(x: f64) -> bool {
    x > 0.0
}

pub(crate) fn config_err(field: &str, reason: impl Into<String>) -> ModelError {
    ModelError::Config {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// `eos_token_id` may be one id or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

impl OneOrMany {
    pub(crate) fn into_vec(self) -> Vec<u32> {
        match self {
            Self::One(x) => vec![x],
            Self::Many(v) => v,
        }
    }
}

/// Rope keys as config.json spells them: transformers 4 writes `rope_theta` and
/// `rope_scaling`, transformers 5 writes `rope_parameters` (which carries `rope_theta`).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RopeJson {
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_scaling: Option<Value>,
    #[serde(default)]
    pub rope_parameters: Option<Value>,
}

impl RopeJson {
    /// Resolve into (theta, scaling); `default_theta` is the architecture's default.
    pub(crate) fn resolve(&self, default_theta: f64) -> Result<(f64, RopeScaling)> {
        let (params, field) = match (&self.rope_parameters, &self.rope_scaling) {
            (Some(p), _) if !p.is_null() => (Some(p), "rope_parameters"),
            (_, Some(s)) if !s.is_null() => (Some(s), "rope_scaling"),
            _ => (None, "rope_scaling"),
        };
        let theta = params
            .and_then(|p| p.get("rope_theta"))
            .and_then(Value::as_f64)
            .or(self.rope_theta)
            .unwrap_or(default_theta);
        let Some(params) = params else {
            return Ok((theta, RopeScaling::None));
        };
        let rope_type = params
            .get("rope_type")
            .or_else(|| params.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let num = |key: &str| -> Result<f64> {
            params
                .get(key)
                .and_then(Value::as_f64)
                .ok_or_else(|| config_err(&format!("{field}.{key}"), "missing or not a number"))
        };
        let scaling = match rope_type {
            "default" => RopeScaling::None,
            "llama3" => RopeScaling::Llama3 {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: num("original_max_position_embeddings")?,
            },
            other => {
                return Err(ModelError::UnsupportedRope {
                    rope_type: other.to_string(),
                });
            }
        };
        Ok((theta, scaling))
    }
}

/// Divide `hidden` by `heads`, failing with a config error when it does not divide.
pub(crate) fn derived_head_dim(hidden: usize, heads: usize) -> Result<usize> {
    if heads == 0 || !hidden.is_multiple_of(heads) {
        return Err(config_err(
            "num_attention_heads",
            format!("must divide hidden_size ({hidden}) when head_dim is absent, got {heads}"),
        ));
    }
    Ok(hidden / heads)
}
