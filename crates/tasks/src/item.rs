//! Task items and chat messages.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize};

/// One task: a prompt, its gold answer, and any further fields of its source row.
///
/// The `id` is stable: it comes from the dataset's id field, or is a hash of the prompt when
/// the row has none (see [`Dataset`](crate::Dataset)). Extra fields (for Countdown: `nums`,
/// `target`; for verl's Parquet files: `data_source`, `extra_info`) stay in `meta`, so a
/// verifier can read what it needs.
///
/// A prompt is plain text or a conversation. A conversational prompt (TRL's conversational
/// format, verl's `prompt` column: a list of `{role, content}` messages) is kept in
/// [`messages`](TaskItem::messages) and is what the model sees, rendered through its chat
/// template; `prompt` then holds the text of its last user message, for verifiers,
/// environments and logs.
///
/// It serialises as one flat JSON object: `id`, `prompt` (the text, or the list of messages
/// for a conversation), `answer`, then the `meta` fields (a `meta` field named `id`, `prompt`
/// or `answer` is left out, so the object never has duplicate keys). Deserialising reads the
/// same shape back.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskItem {
    /// Stable prompt id.
    pub id: String,
    /// The problem text shown to the model; for a conversation, its last user message.
    pub prompt: String,
    /// The prompt as a conversation, when the source gave one; `None` for text prompts.
    pub messages: Option<Vec<Message>>,
    /// The gold answer as text (numbers are written as JSON renders them).
    pub answer: String,
    /// All other fields of the source row, by name.
    pub meta: serde_json::Map<String, serde_json::Value>,
}

impl Serialize for TaskItem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        const OWN: [&str; 3] = ["id", "prompt", "answer"];
        let extra = self.meta.iter().filter(|(k, _)| !OWN.contains(&k.as_str()));
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        match &self.messages {
            Some(m) => map.serialize_entry("prompt", m)?,
            None => map.serialize_entry("prompt", &self.prompt)?,
        }
        map.serialize_entry("answer", &self.answer)?;
        for (k, v) in extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TaskItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut meta = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let mut text = |key: &'static str| match meta.remove(key) {
            Some(serde_json::Value::String(s)) => Ok(s),
            Some(other) => Err(D::Error::custom(format!(
                "field `{key}` must be a string, found {other}"
            ))),
            None => Err(D::Error::missing_field(key)),
        };
        let id = text("id")?;
        let answer = text("answer")?;
        let (prompt, messages) = match meta.remove("prompt") {
            Some(serde_json::Value::String(s)) => (s, None),
            Some(list @ serde_json::Value::Array(_)) => {
                let messages = parse_messages(list).map_err(D::Error::custom)?;
                (last_user_text(&messages).to_string(), Some(messages))
            }
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "field `prompt` must be a string or a list of messages, found {other}"
                )));
            }
            None => return Err(D::Error::missing_field("prompt")),
        };
        Ok(Self {
            id,
            prompt,
            messages,
            answer,
            meta,
        })
    }
}

/// The text of the last user message of a conversation (empty if it has none).
pub(crate) fn last_user_text(messages: &[Message]) -> &str {
    messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map_or("", |m| m.content.as_str())
}

/// Reads a conversational prompt: a non-empty list of `{role, content}` objects with roles
/// `system`, `user` or `assistant` and string contents, whose last message is not the
/// assistant's (prompts are rendered with the generation prompt). Other keys of a message
/// must be null (columnar files fill absent keys with null). The error says which message
/// and what is wrong.
pub(crate) fn parse_messages(value: serde_json::Value) -> Result<Vec<Message>, String> {
    let serde_json::Value::Array(list) = value else {
        return Err(format!("expected a list of messages, found {value}"));
    };
    if list.is_empty() {
        return Err("the conversation has no messages".into());
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.into_iter().enumerate() {
        let serde_json::Value::Object(mut obj) = m else {
            return Err(format!(
                "message {i} must be a {{role, content}} object, found {m}"
            ));
        };
        let role = match obj.remove("role") {
            Some(serde_json::Value::String(r)) => match r.as_str() {
                "system" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                _ => {
                    return Err(format!(
                        "message {i}: role must be system, user or assistant, found {r:?}"
                    ));
                }
            },
            Some(other) => {
                return Err(format!("message {i}: role must be a string, found {other}"));
            }
            None => return Err(format!("message {i}: missing role")),
        };
        let content = match obj.remove("content") {
            Some(serde_json::Value::String(c)) => c,
            Some(other) => {
                return Err(format!(
                    "message {i}: content must be a string (text-only prompts), found {other}"
                ));
            }
            None => return Err(format!("message {i}: missing content")),
        };
        if let Some((k, v)) = obj.iter().find(|(_, v)| !v.is_null()) {
            return Err(format!(
                "message {i}: key {k:?} is not supported in prompts (found {v}); only role and content are read"
            ));
        }
        out.push(Message { role, content });
    }
    if out.last().is_some_and(|m| m.role == Role::Assistant) {
        return Err(format!(
            "message {}: a prompt must not end with an assistant message (prompts are rendered with the generation prompt)",
            out.len() - 1
        ));
    }
    if !out.iter().any(|m| m.role == Role::User) {
        return Err("the conversation has no user message".into());
    }
    Ok(out)
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
            messages: None,
            meta: serde_json::Map::new(),
        }
    }

    /// An item whose prompt is a conversation, with no extra fields; `prompt` is set to the
    /// text of its last user message.
    ///
    /// # Errors
    /// A message naming the problem when `messages` is empty, has no user message, or ends
    /// with an assistant message.
    pub fn chat(
        id: impl Into<String>,
        messages: Vec<Message>,
        answer: impl Into<String>,
    ) -> Result<Self, crate::TaskError> {
        let id = id.into();
        let value = serde_json::to_value(&messages).map_err(|e| crate::TaskError::BadItem {
            id: id.clone(),
            field: "messages".into(),
            reason: e.to_string(),
        })?;
        let messages = parse_messages(value).map_err(|reason| crate::TaskError::BadItem {
            id: id.clone(),
            field: "messages".into(),
            reason,
        })?;
        Ok(Self {
            prompt: last_user_text(&messages).to_string(),
            id,
            messages: Some(messages),
            answer: answer.into(),
            meta: serde_json::Map::new(),
        })
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
