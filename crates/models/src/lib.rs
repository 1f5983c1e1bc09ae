//! Qwen2, Qwen3 and Llama 3 causal language models on Burn that load and export Hugging Face
//! checkpoints at logit parity with transformers.
//!
//! - [`CausalLm`]: the model. [`CausalLm::from_pretrained`] reads a checkpoint directory
//!   (`config.json` + single-file or sharded safetensors, f32/bf16/f16);
//!   [`CausalLm::forward`] gives logits for padded batches, [`CausalLm::token_log_probs`] the
//!   log-probs of given targets without keeping full-vocabulary log-softmaxes,
//!   [`CausalLm::forward_cached`] decodes incrementally with an explicit [`KvCache`], and
//!   [`CausalLm::save_pretrained`] writes the Hugging Face layout back.
//! - [`ModelConfig`]: the resolved config; [`qwen2`], [`qwen3`] and [`llama`] mirror each
//!   architecture's `config.json` and offer tiny presets for CPU work.
//! - [`ChatTokenizer`]: `tokenizer.json` through the `tokenizers` crate plus the chat
//!   template rendered with minijinja as transformers renders it; [`CharTokenizer`] writes a
//!   character-level tokenizer in the same format.
//! - [`LoraConfig`] / [`CausalLm::with_lora`]: Burn's built-in LoRA, merged on export.
//!
//! The library chooses no backend: everything takes a `&Device`.
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor, TensorData};
//! use rlft_models::{CausalLm, CharTokenizer, qwen2};
//!
//! let device = Device::flex();
//! let chars = CharTokenizer::ascii();
//! let model = CausalLm::new(&qwen2::tiny(chars.vocab_size()), &device);
//! let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![10i64, 11, 12], [1, 3]), &device);
//! let mask = Tensor::<2, Int>::ones([1, 3], &device);
//! let logits = model.forward(ids, mask);
//! assert_eq!(logits.dims(), [1, 3, chars.vocab_size()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cache;
mod char_tokenizer;
mod chat;
mod checkpoint;
mod config;
mod error;
mod generate;
mod init;
pub mod llama;
mod lora;
mod mask;
mod model;
pub mod qwen2;
pub mod qwen3;
pub mod rope;
mod tokenizer;

pub use cache::KvCache;
pub use char_tokenizer::{CHATML_TEMPLATE, CharTokenizer};
pub use chat::{ChatTemplate, ChatTemplateOptions};
pub use checkpoint::{ExportOptions, LoadOptions, weight_files};
pub use config::{Architecture, ModelConfig, RopeScaling};
pub use error::{ModelError, Result};
pub use generate::{GreedyConfig, greedy};
pub use lora::{LORA_TARGETS, LoraConfig};
pub use model::CausalLm;
pub use tokenizer::{ChatMessage, ChatTokenizer};
