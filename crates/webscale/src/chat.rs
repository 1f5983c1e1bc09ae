//! The [`ChatModel`] trait every LLM stage calls, its request and error types, and the
//! adapter over any rlft-rollout engine.

use std::sync::Mutex;

use rlft_rollout::{Message, Prompt, RolloutEngine, SamplingParams};
use serde::{Deserialize, Serialize};

/// One chat completion request: what a stage sends to its model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation (the pipeline sends one user message).
    pub messages: Vec<Message>,
    /// Sampling temperature.
    pub temperature: f32,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Sampling seed, derived from the run seed and the unit (sent as OpenAI's `seed`).
    pub seed: Option<u64>,
    /// Stop strings.
    pub stop: Vec<String>,
}

impl ChatRequest {
    /// A one-user-message request.
    pub fn user(text: impl Into<String>, temperature: f32, max_tokens: usize) -> Self {
        Self {
            messages: vec![Message::new("user", text)],
            temperature,
            max_tokens,
            seed: None,
            stop: Vec::new(),
        }
    }

    /// The content of the last user message ("" when there is none).
    pub fn user_text(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.as_str())
            .unwrap_or("")
    }

    /// The text between the first `<name>` line and the last `</name>` line of the user
    /// message: the pipeline's prompts delimit the document, question and answer this way.
    pub fn section(&self, name: &str) -> Option<&str> {
        let text = self.user_text();
        let open = format!("<{name}>\n");
        let close = format!("\n</{name}>");
        let start = text.find(&open)? + open.len();
        let end = text.rfind(&close)?;
        (end >= start).then(|| &text[start..end])
    }
}

/// Why a model call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LlmError {
    /// What happened (status, URL, attempts).
    pub message: String,
    /// Whether trying again later may succeed (rate limits, 5xx, timeouts, unreachable
    /// servers). A retryable failure is not cached, so a resumed run retries the unit.
    pub retryable: bool,
}

impl LlmError {
    /// A failure that may pass.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that will not pass by retrying.
    pub fn terminal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

/// A chat model: messages in, text out.
///
/// # Contract
/// - `chat` may be called from many threads at once (the pipeline keeps up to
///   `max_in_flight` calls running); implementations retry transient failures themselves and
///   return [`LlmError`] with `retryable` set when they give up on one.
/// - `model_id` names the model in the reply cache key and in the output records; two models
///   with the same id and the same request must be interchangeable.
///
/// Implemented by [`HttpChatModel`](crate::HttpChatModel) (OpenAI-compatible servers),
/// [`EngineChatModel`] (any rlft-rollout engine, e.g. the local model) and
/// [`ScriptedModel`](crate::ScriptedModel) (tests); also for `&M`, `Box<M>` and `Arc<M>`.
pub trait ChatModel: Send + Sync {
    /// One completion of `req`.
    ///
    /// # Errors
    /// [`LlmError`] when no reply could be had.
    fn chat(&self, req: &ChatRequest) -> Result<String, LlmError>;

    /// The model's name.
    fn model_id(&self) -> &str;
}

impl<M: ChatModel + ?Sized> ChatModel for &M {
    fn chat(&self, req: &ChatRequest) -> Result<String, LlmError> {
        (**self).chat(req)
    }
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
}

impl<M: ChatModel + ?Sized> ChatModel for Box<M> {
    fn chat(&self, req: &ChatRequest) -> Result<String, LlmError> {
        (**self).chat(req)
    }
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
}

impl<M: ChatModel + ?Sized> ChatModel for std::sync::Arc<M> {
    fn chat(&self, req: &ChatRequest) -> Result<String, LlmError> {
        (**self).chat(req)
    }
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
}

/// A [`ChatModel`] over any rlft-rollout [`RolloutEngine`]: the local rlft model
/// (`LocalEngine`, feature `local`), a `BigramEngine`, or an `HttpEngine`. Calls are
/// serialised (one generation at a time), as a local engine uses the whole device.
pub struct EngineChatModel<E> {
    engine: Mutex<E>,
    id: String,
}

impl<E: RolloutEngine + Send> EngineChatModel<E> {
    /// Wraps `engine`; `id` names it in the cache and the records.
    pub fn new(engine: E, id: impl Into<String>) -> Self {
        Self {
            engine: Mutex::new(engine),
            id: id.into(),
        }
    }
}

impl<E: RolloutEngine + Send> ChatModel for EngineChatModel<E> {
    fn chat(&self, req: &ChatRequest) -> Result<String, LlmError> {
        let params = SamplingParams {
            n: 1,
            max_new_tokens: req.max_tokens,
            temperature: req.temperature,
            greedy: req.temperature == 0.0,
            stop: req.stop.clone(),
            seed: req.seed,
            ..SamplingParams::default()
        };
        let engine = self
            .engine
            .lock()
            .map_err(|_| LlmError::terminal("the engine lock is poisoned"))?;
        let out = engine
            .generate(&[Prompt::Chat(req.messages.clone())], &params)
            .map_err(|e| LlmError::terminal(e.to_string()))?;
        out.into_iter()
            .next()
            .and_then(|c| c.into_iter().next())
            .map(|c| c.text)
            .ok_or_else(|| LlmError::terminal("the engine returned no completion"))
    }

    fn model_id(&self) -> &str {
        &self.id
    }
}
