//! Task items and chat messages.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

/// One task: a prompt, its gold answer, and any further fields of its JSONL line.
///
/// The `id` is stable: it comes from the dataset's id field, or is a hash of the prompt text
/// when the line has none (see [`Dataset`](crate::Dataset)). Extra fields (for Countdown:
/// `nums`, `target`) stay in `meta`, so a verifier can read what it needs.
///
/// It serialises as one flat JSON object: `id`, `prompt`, `answer`, then the `meta` fields
/// (a `meta` field named `id`, `prompt` or `answer` is left out, so the object never has
/// duplicate keys).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TaskItem {
    /// Stable prompt id.
    pub id: String,
    /// The problem text shown to the model.
    pub prompt: String,
    /// The gold answer as text (numbers are written as JSON renders them).
    pub answer: String,
    /// All other fields of the source line, by name.
    #[serde(flatten)]
    pub meta: serde_json::Map<String, serde_json::Value>,
}

impl Serialize for TaskItem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        const OWN: [&str; 3] = ["id", "prompt", "answer"];
        let extra = self.meta.iter().filter(|(k, _)| !OWN.contains(&k.as_str()));
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("prompt", &self.prompt)?;
        map.serialize_entry("answer", &self.answer)?;
        for (k, v) in extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl TaskItem {
    /// An item with no extra fields.
    pub fn new(
        id: impl Into<String>,
        prompt: impl Into<String>,
        answer: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            prompt: prompt.into(),
            answer: answer.into(),
            meta: serde_json::Map::new(),
        }
    }

    /// Adds (or replaces) an extra field.
    pub fn with_meta(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.meta.insert(key.into(), value.into());
        self
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The system prompt.
    System,
    /// The user or the environment (task statement, feedback).
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The name chat templates use: `system`, `user` or `assistant`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its author.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl Message {
    /// A message with the given role and text.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}
