//! [`ScriptedModel`]: a chat model whose replies come from a rule, for tests and dry runs.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::chat::{ChatModel, ChatRequest, LlmError};

type Rule = dyn Fn(&ChatRequest) -> Result<String, LlmError> + Send + Sync;

/// A chat model that answers by a rule (a closure of the request) and counts its calls.
///
/// ```
/// use rlft_webscale::{ChatModel, ChatRequest, ScriptedModel};
/// let m = ScriptedModel::new("echo", |r: &ChatRequest| Ok(r.user_text().to_uppercase()));
/// assert_eq!(m.chat(&ChatRequest::user("hi", 1.0, 16))?, "HI");
/// assert_eq!(m.calls(), 1);
/// # Ok::<(), rlft_webscale::LlmError>(())
/// ```
pub struct ScriptedModel {
    id: String,
    rule: Box<Rule>,
    calls: AtomicUsize,
}

impl std::fmt::Debug for ScriptedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedModel")
            .field("id", &self.id)
            .field("calls", &self.calls())
            .finish()
    }
}

impl ScriptedModel {
    /// A model named `id` answering with `rule`.
    pub fn new(
        id: impl Into<String>,
        rule: impl Fn(&ChatRequest) -> Result<String, LlmError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            id: id.into(),
            rule: Box::new(rule),
            calls: AtomicUsize::new(0),
        }
    }

    /// Calls made so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl ChatModel for ScriptedModel {
    fn chat(&self, req: &ChatRequest) -> Result<String, LlmError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        (self.rule)(req)
    }

    fn model_id(&self) -> &str {
        &self.id
    }
}
