//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong when reading configs, checkpoints and tokenizers, or when a
/// caller passes inconsistent inputs.
///
/// Messages are lowercase and name the file, field or tensor involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A required file is absent.
    #[error("missing {what}: {path} does not exist")]
    MissingFile {
        /// The path that was looked up.
        path: PathBuf,
        /// What the file was supposed to provide (e.g. "tokenizer").
        what: &'static str,
    },
    /// A JSON file (config, tokenizer config, shard index) is malformed or lacks a field.
    #[error("invalid json in {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error, which names the missing or mistyped field and its line.
        #[source]
        source: serde_json::Error,
    },
    /// A config value is out of range or inconsistent with another.
    #[error("invalid config field `{field}`: {reason}")]
    Config {
        /// The config key.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `model_type` names an architecture this crate does not implement.
    #[error("unsupported model_type `{model_type}` (supported: qwen2, qwen3, llama)")]
    UnsupportedModelType {
        /// The value found in config.json.
        model_type: String,
    },
    /// The rope scaling type is not implemented.
    #[error("unsupported rope type `{rope_type}` (supported: default, llama3)")]
    UnsupportedRope {
        /// The value found in config.json.
        rope_type: String,
    },
    /// A safetensors file is truncated, corrupt or unreadable.
    #[error("cannot read safetensors file {path}: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// Tensors the model needs are absent from the checkpoint.
    #[error("checkpoint is missing {} tensor(s): {}", names.len(), names.join(", "))]
    MissingTensors {
        /// Hugging Face names of the absent tensors.
        names: Vec<String>,
    },
    /// The checkpoint holds tensors the model has no place for.
    #[error("checkpoint has {} unused tensor(s): {}", names.len(), names.join(", "))]
    UnusedTensors {
        /// Hugging Face names of the unused tensors.
        names: Vec<String>,
    },
    /// A tensor's shape differs from the one the config implies.
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Hugging Face name of the tensor.
        name: String,
        /// Shape implied by config.json (Hugging Face layout).
        expected: Vec<usize>,
        /// Shape in the checkpoint (Hugging Face layout).
        found: Vec<usize>,
    },
    /// A tensor's dtype cannot be loaded into the parameter (e.g. an integer weight).
    #[error("tensor `{name}` has dtype {found}, expected {expected}")]
    DTypeMismatch {
        /// Hugging Face name of the tensor.
        name: String,
        /// The dtype the parameter needs.
        expected: String,
        /// The dtype stored in the checkpoint.
        found: String,
    },
    /// Loading kept the checkpoint's dtypes, and they differ between tensors.
    #[error("checkpoint mixes float dtypes ({found}); load with a target dtype to cast them")]
    MixedDTypes {
        /// The dtypes found.
        found: String,
    },
    /// Any other per-tensor failure reported by the store.
    #[error("cannot load tensor `{name}`: {message}")]
    TensorLoad {
        /// Hugging Face name of the tensor.
        name: String,
        /// The store's message.
        message: String,
    },
    /// The tokenizer file could not be parsed or used.
    #[error("tokenizer error ({path}): {message}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// The tokenizers crate's message.
        message: String,
    },
    /// The chat template failed to compile or render.
    #[error("chat template error: {message}")]
    ChatTemplate {
        /// minijinja's message, with the template line when known.
        message: String,
    },
    /// The tokenizer config has no chat template.
    #[error("no chat_template in {path}")]
    NoChatTemplate {
        /// The tokenizer config that was read.
        path: PathBuf,
    },
    /// Inputs passed by the caller are inconsistent (e.g. an empty prompt).
    #[error("invalid input `{field}`: {reason}")]
    Input {
        /// The argument.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
