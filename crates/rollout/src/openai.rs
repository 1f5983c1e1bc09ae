//! The OpenAI-compatible wire format (`/v1/completions`, `/v1/chat/completions`), with vLLM's
//! extra sampling fields, as the HTTP engine writes requests and reads replies. Readers are
//! lenient: unknown fields are ignored and most fields are optional, as servers differ
//! (rlft-serve, on the other side, reads requests strictly).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::params::LogprobMode;
use crate::prompt::Message;

/// `prompt` of `/v1/completions`: text, token ids, or a batch of either.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum PromptField {
    Text(String),
    Ids(Vec<u32>),
    Texts(Vec<String>),
    IdsBatch(Vec<Vec<u32>>),
}

/// `stop`: one string or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum StopField {
    One(String),
    Many(Vec<String>),
}

/// Sampling fields common to both endpoints (OpenAI's, then vLLM's extras).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CommonParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// Chat's newer name for `max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// vLLM: 0 or −1 disable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_token_ids: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_eos: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_stop_str_in_output: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_tokens_as_token_ids: Option<bool>,
    /// rlft extension: which log-probs to report (vLLM fixes this per server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs_mode: Option<LogprobMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

/// Body of `POST /v1/completions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CompletionRequest {
    pub prompt: PromptField,
    #[serde(flatten)]
    pub common: CommonParams,
    /// Number of top alternatives per token; any value asks for the sampled tokens' log-probs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
}

/// Body of `POST /v1/chat/completions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChatRequest {
    pub messages: Vec<Message>,
    #[serde(flatten)]
    pub common: CommonParams,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
}

/// Token counts of a reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Usage {
    #[serde(default)]
    pub prompt_tokens: usize,
    #[serde(default)]
    pub completion_tokens: usize,
    #[serde(default)]
    pub total_tokens: usize,
}

/// Reply of `/v1/completions` (choices `C` = [`CompletionChoice`]) or `/v1/chat/completions`
/// ([`ChatChoice`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Response<C> {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    pub choices: Vec<C>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// Reply of `/v1/completions`.
pub(crate) type CompletionResponse = Response<CompletionChoice>;

/// One choice of a completion reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CompletionChoice {
    pub index: usize,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub logprobs: Option<CompletionLogprobs>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// Legacy-completions log-probs: parallel lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CompletionLogprobs {
    #[serde(default)]
    pub tokens: Vec<String>,
    #[serde(default)]
    pub token_logprobs: Vec<Option<f32>>,
    #[serde(default)]
    pub top_logprobs: Option<Vec<Option<BTreeMap<String, f32>>>>,
    #[serde(default)]
    pub text_offset: Vec<usize>,
}

/// Reply of `/v1/chat/completions`.
pub(crate) type ChatResponse = Response<ChatChoice>;

/// One choice of a chat reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChatChoice {
    pub index: usize,
    pub message: ChatMessageOut,
    #[serde(default)]
    pub logprobs: Option<ChatLogprobs>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The assistant message of a chat choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChatMessageOut {
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub content: Option<String>,
}

/// Chat log-probs: one entry per token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChatLogprobs {
    #[serde(default)]
    pub content: Option<Vec<ChatTokenLogprob>>,
}

/// One token of chat log-probs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChatTokenLogprob {
    pub token: String,
    #[serde(default)]
    pub logprob: Option<f32>,
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
    #[serde(default)]
    pub top_logprobs: Vec<TopLogprob>,
}

/// An alternative in chat `top_logprobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TopLogprob {
    pub token: String,
    pub logprob: f32,
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
}

/// `/v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ModelList {
    #[serde(default)]
    pub object: String,
    pub data: Vec<ModelCard>,
}

/// One model of `/v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ModelCard {
    pub id: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub owned_by: String,
}

/// The id in a `token_id:N` token, if it is one.
pub(crate) fn parse_token_id(token: &str) -> Option<u32> {
    token.strip_prefix("token_id:")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_forms_parse() {
        let p = |s: &str| serde_json::from_str::<PromptField>(s).unwrap();
        assert_eq!(p(r#""hi""#), PromptField::Text("hi".into()));
        assert_eq!(p("[1,2]"), PromptField::Ids(vec![1, 2]));
        assert_eq!(
            p(r#"["a","b"]"#),
            PromptField::Texts(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            p("[[1],[2,3]]"),
            PromptField::IdsBatch(vec![vec![1], vec![2, 3]])
        );
    }

    #[test]
    fn token_ids_round_trip() {
        assert_eq!(parse_token_id("token_id:42"), Some(42));
        assert_eq!(parse_token_id("token_id:x"), None);
        assert_eq!(parse_token_id("hello"), None);
    }

    #[test]
    fn flattened_request_reads_vllm_fields_and_ignores_unknown_ones() {
        let r: CompletionRequest = serde_json::from_str(
            r#"{"model":"m","prompt":"x","n":2,"top_k":-1,"stop":"\n","user":"u","logprobs":0}"#,
        )
        .unwrap();
        assert_eq!(r.common.n, Some(2));
        assert_eq!(r.common.top_k, Some(-1));
        assert_eq!(r.common.stop, Some(StopField::One("\n".into())));
        assert_eq!(r.logprobs, Some(0));
    }
}
