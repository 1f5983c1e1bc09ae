//! The tokenizer of a checkpoint directory: `tokenizer.json` through the `tokenizers` crate
//! (no network features), special tokens and the chat template from
//! `tokenizer_config.json` (or `chat_template.jinja`, where transformers 5 puts it).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::chat::{ChatTemplate, ChatTemplateOptions};
use crate::error::{ModelError, Result};

/// Names of the special tokens passed to chat templates, as transformers'
/// `special_tokens_map` spells them.
const SPECIAL_NAMES: [&str; 6] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "pad_token",
    "sep_token",
    "cls_token",
];

/// A Hugging Face tokenizer with its special tokens and chat template.
#[derive(Debug, Clone)]
pub struct ChatTokenizer {
    tokenizer: tokenizers::Tokenizer,
    path: PathBuf,
    special: Vec<(&'static str, String)>,
    template: Option<ChatTemplate>,
    config_path: PathBuf,
}

/// One chat message with a role and text content. Templates also accept richer messages
/// (tool calls, reasoning); pass any `Serialize` type to
/// [`ChatTokenizer::apply_chat_template`] for those.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message from `role` with `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

impl ChatTokenizer {
    /// Load `tokenizer.json` and (if present) `tokenizer_config.json` /
    /// `chat_template.jinja` from a checkpoint directory.
    ///
    /// # Errors
    /// [`ModelError::MissingFile`] without `tokenizer.json`; [`ModelError::Tokenizer`] when it
    /// does not parse; [`ModelError::Json`] for a malformed tokenizer config;
    /// [`ModelError::ChatTemplate`] when the template does not compile.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(ModelError::MissingFile {
                path,
                what: "tokenizer",
            });
        }
        let tokenizer =
            tokenizers::Tokenizer::from_file(&path).map_err(|e| ModelError::Tokenizer {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let config_path = dir.join("tokenizer_config.json");
        let config: Value = if config_path.exists() {
            let text = std::fs::read_to_string(&config_path).map_err(|source| ModelError::Io {
                path: config_path.clone(),
                source,
            })?;
            serde_json::from_str(&text).map_err(|source| ModelError::Json {
                path: config_path.clone(),
                source,
            })?
        } else {
            Value::Object(Default::default())
        };
        let special = SPECIAL_NAMES
            .iter()
            .filter_map(|name| token_content(config.get(*name)?).map(|s| (*name, s)))
            .collect();
        let mut source = template_source(&config);
        let jinja = dir.join("chat_template.jinja");
        if source.is_none() && jinja.exists() {
            source = Some(
                std::fs::read_to_string(&jinja).map_err(|source| ModelError::Io {
                    path: jinja.clone(),
                    source,
                })?,
            );
        }
        let template = source.as_deref().map(ChatTemplate::new).transpose()?;
        Ok(Self {
            tokenizer,
            path,
            special,
            template,
            config_path,
        })
    }

    /// Wrap an in-memory tokenizer with the given special tokens (`("eos_token", "</s>")`)
    /// and optional chat template source.
    ///
    /// # Errors
    /// [`ModelError::ChatTemplate`] when the template does not compile.
    pub fn from_parts(
        tokenizer: tokenizers::Tokenizer,
        special: &[(&'static str, &str)],
        chat_template: Option<&str>,
    ) -> Result<Self> {
        Ok(Self {
            tokenizer,
            path: PathBuf::from("<memory>"),
            special: special
                .iter()
                .map(|(k, v)| (*k, (*v).to_string()))
                .collect(),
            template: chat_template.map(ChatTemplate::new).transpose()?,
            config_path: PathBuf::from("<memory>"),
        })
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text`; `add_special_tokens` applies the post-processor (e.g. a BOS), as
    /// transformers' `encode` does by default.
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] when encoding fails.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(text, add_special_tokens)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| self.err(e))
    }

    /// Text of `ids`.
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] when decoding fails.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.tokenizer
            .decode(ids, skip_special_tokens)
            .map_err(|e| self.err(e))
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The text of a special token by its config name (`"eos_token"`), if set.
    pub fn special_token(&self, name: &str) -> Option<&str> {
        self.special
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    fn special_id(&self, name: &str) -> Option<u32> {
        self.tokenizer.token_to_id(self.special_token(name)?)
    }

    /// Id of `bos_token`, if set.
    pub fn bos_token_id(&self) -> Option<u32> {
        self.special_id("bos_token")
    }

    /// Id of `eos_token`, if set.
    pub fn eos_token_id(&self) -> Option<u32> {
        self.special_id("eos_token")
    }

    /// Id of `pad_token`, if set.
    pub fn pad_token_id(&self) -> Option<u32> {
        self.special_id("pad_token")
    }

    /// Render the chat template, as transformers' `apply_chat_template(..., tokenize=False)`.
    ///
    /// # Errors
    /// [`ModelError::NoChatTemplate`] when the tokenizer has none;
    /// [`ModelError::ChatTemplate`] when rendering fails.
    pub fn apply_chat_template<M: Serialize>(
        &self,
        messages: &[M],
        options: &ChatTemplateOptions,
    ) -> Result<String> {
        let template = self
            .template
            .as_ref()
            .ok_or_else(|| ModelError::NoChatTemplate {
                path: self.config_path.clone(),
            })?;
        let special: Vec<(&str, &str)> =
            self.special.iter().map(|(k, v)| (*k, v.as_str())).collect();
        template.render(messages, &special, options)
    }

    fn err(&self, e: tokenizers::Error) -> ModelError {
        ModelError::Tokenizer {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}

/// A special token in tokenizer_config.json is a string or an `AddedToken` map.
fn token_content(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// `chat_template` is a string, or a list of `{name, template}` of which `default` is used.
fn template_source(config: &Value) -> Option<String> {
    match config.get("chat_template")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template")?.as_str().map(str::to_string)),
        _ => None,
    }
}
