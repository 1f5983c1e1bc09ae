//! What an engine is asked to continue.

use serde::{Deserialize, Serialize};

/// One chat message (OpenAI `messages[i]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message from `role` with `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A prompt in the form the caller has it.
///
/// - [`Tokens`](Prompt::Tokens): ids after any chat template, what a local engine runs on and
///   what the trainer stores; sent to servers as a list of ints on `/v1/completions` (vLLM,
///   SGLang and llama.cpp accept it).
/// - [`Text`](Prompt::Text): raw text, continued as is (`/v1/completions`; a local engine
///   encodes it with its tokenizer, adding the tokenizer's special tokens such as BOS).
/// - [`Chat`](Prompt::Chat): a conversation; the chat template is applied with a generation
///   prompt (`/v1/chat/completions`; a local engine renders its tokenizer's template and
///   encodes the result without adding special tokens, as transformers does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// Token ids.
    Tokens(Vec<u32>),
    /// Raw text.
    Text(String),
    /// Chat messages, to be rendered by the chat template.
    Chat(Vec<Message>),
}

impl Prompt {
    /// A one-message chat from the user.
    pub fn user(content: impl Into<String>) -> Self {
        Self::Chat(vec![Message::new("user", content)])
    }
}

impl From<Vec<u32>> for Prompt {
    fn from(ids: Vec<u32>) -> Self {
        Self::Tokens(ids)
    }
}

impl From<&str> for Prompt {
    fn from(text: &str) -> Self {
        Self::Text(text.to_string())
    }
}

impl From<String> for Prompt {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}
