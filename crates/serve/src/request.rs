//! Reading a request body: strict JSON validation into prompts and [`SamplingParams`].
//!
//! A body is read as a JSON object and every field is taken by name, so that a field the
//! server does not know is a 400 naming it, a parameter it knows but does not implement
//! (`logit_bias`, penalties, tools, …) is a 400 saying so, and every value out of range is a
//! 400 naming its field. `null` counts as absent, as in OpenAI's API. Nothing here panics on
//! any input (fuzzed in `tests/fuzz.rs`).

use axum::http::StatusCode;
use rlft_rollout::{LogprobMode, Message, Prompt, SamplingParams};
use serde_json::{Map, Value};

use crate::config::ServeConfig;
use crate::error::ApiError;

/// Which endpoint a body was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/completions`.
    Completions,
    /// `POST /v1/chat/completions`.
    Chat,
}

/// Parameters the server knows but does not implement, with the value that means "off"
/// (accepted, as clients send defaults explicitly).
const UNSUPPORTED: &[(&str, Option<f64>)] = &[
    ("logit_bias", None),
    ("presence_penalty", Some(0.0)),
    ("frequency_penalty", Some(0.0)),
    ("repetition_penalty", Some(1.0)),
    ("best_of", Some(1.0)),
    ("suffix", None),
    ("tools", None),
    ("tool_choice", None),
    ("functions", None),
    ("function_call", None),
    ("parallel_tool_calls", None),
    ("response_format", None),
    ("use_beam_search", None),
    ("length_penalty", Some(1.0)),
    ("min_tokens", Some(0.0)),
    ("prompt_logprobs", None),
    ("guided_json", None),
    ("guided_regex", None),
    ("guided_choice", None),
    ("guided_grammar", None),
    ("audio", None),
    ("modalities", None),
    ("prediction", None),
    ("reasoning_effort", None),
    ("web_search_options", None),
];

/// Most stop strings in one request.
const MAX_STOPS: usize = 64;

/// Roles a chat message may have.
const ROLES: &[&str] = &["system", "user", "assistant", "tool"];

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The prompts (one for chat).
    pub prompts: Vec<Prompt>,
    /// How to sample; `max_new_tokens` is the request's or the server's default.
    pub params: SamplingParams,
    /// Whether `max_tokens` was given (else the default applies, cut to fit the context).
    pub max_tokens_given: bool,
    /// `"stream": true`.
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// Log-probs asked for: completions' `logprobs` (top count), chat's `top_logprobs` when
    /// `logprobs` is true.
    pub logprobs: Option<u32>,
    /// vLLM's `return_tokens_as_token_ids`.
    pub tokens_as_ids: bool,
}

fn bad(param: &str, message: String) -> ApiError {
    ApiError::invalid(param, message)
}

/// The fields of a body, taken out one by one; what is left at the end is unknown.
struct Fields(Map<String, Value>);

impl Fields {
    /// The value of `key`, `None` when absent or null.
    fn take(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key).filter(|v| !v.is_null())
    }

    fn count(&mut self, key: &str) -> Result<Option<u64>, ApiError> {
        self.take(key).map(|v| count(key, &v)).transpose()
    }

    fn float(&mut self, key: &str) -> Result<Option<f32>, ApiError> {
        self.take(key)
            .map(|v| {
                v.as_f64()
                    .filter(|x| x.is_finite() && x.abs() <= f64::from(f32::MAX))
                    .map(|x| x as f32)
                    .ok_or_else(|| bad(key, format!("{key} must be a number, got {}", short(&v))))
            })
            .transpose()
    }

    fn boolean(&mut self, key: &str) -> Result<Option<bool>, ApiError> {
        self.take(key)
            .map(|v| {
                v.as_bool().ok_or_else(|| {
                    bad(
                        key,
                        format!("{key} must be true or false, got {}", short(&v)),
                    )
                })
            })
            .transpose()
    }
}

/// A short rendering of a value for error messages.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() <= 60 {
        return s;
    }
    let mut end = 60;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A non-negative integer (an integral float such as `1e9` counts).
fn count(key: &str, v: &Value) -> Result<u64, ApiError> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    match v.as_f64() {
        Some(x) if x >= 0.0 && x.fract() == 0.0 && x < 1.8e19 => Ok(x as u64),
        _ => Err(bad(
            key,
            format!("{key} must be a non-negative integer, got {}", short(v)),
        )),
    }
}

fn token_id(key: &str, v: &Value) -> Result<u32, ApiError> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            bad(
                key,
                format!("{key} must hold token ids (u32), got {}", short(v)),
            )
        })
}

fn token_ids(key: &str, v: &[Value]) -> Result<Vec<u32>, ApiError> {
    v.iter().map(|x| token_id(key, x)).collect()
}

/// Why [`check_request`] refused a body: the HTTP status the server answers, the field, and
/// the message.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    /// 400, or 404 for a `model` the server does not serve.
    pub status: u16,
    /// The offending field, when there is one.
    pub param: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Check a request body as the server does before tokenizing (the prompt against the
/// model's context is checked after): for clients that want to validate offline, and for
/// fuzzing.
///
/// # Errors
/// [`RequestError`] naming the field.
pub fn check_request(
    endpoint: Endpoint,
    body: &[u8],
    config: &ServeConfig,
    model_id: &str,
) -> Result<ParsedRequest, RequestError> {
    parse_request(endpoint, body, config, model_id).map_err(|e| RequestError {
        status: e.status.as_u16(),
        param: e.param,
        message: e.message,
    })
}

/// Read and validate a request body sent to `endpoint`, against the limits of `config`.
/// Prompt length against the context is checked later, once the prompt is tokenized.
///
/// # Errors
/// An [`ApiError`] (400, or 404 for a `model` the server does not serve) naming the field.
pub(crate) fn parse_request(
    endpoint: Endpoint,
    body: &[u8],
    config: &ServeConfig,
    model_id: &str,
) -> Result<ParsedRequest, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("malformed request body: {e}"),
        )
    })?;
    let Value::Object(map) = value else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed request body: expected a JSON object",
        ));
    };
    let mut f = Fields(map);
    for &(key, neutral) in UNSUPPORTED {
        if let Some(v) = f.take(key) {
            let is_neutral = match (&v, neutral) {
                (Value::Object(m), None) => m.is_empty(),
                (Value::Array(a), None) => a.is_empty(),
                (Value::Bool(false), None) => true,
                (_, Some(n)) => v.as_f64() == Some(n),
                _ => false,
            };
            if !is_neutral {
                return Err(bad(
                    key,
                    format!("{key} is not supported by this server (rlft serve)"),
                ));
            }
        }
    }
    if let Some(model) = f.take("model") {
        let name = model.as_str().unwrap_or_default();
        if name != model_id {
            return Err(ApiError {
                param: Some("model".into()),
                ..ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "the model {} does not exist; this server serves {model_id:?}",
                        short(&model)
                    ),
                )
            });
        }
    }
    let prompts = match endpoint {
        Endpoint::Completions => prompts(f.take("prompt"))?,
        Endpoint::Chat => vec![Prompt::Chat(messages(f.take("messages"))?)],
    };
    if prompts.len() > config.max_prompts {
        return Err(bad(
            "prompt",
            format!(
                "at most {} prompts per request (--max-prompts), got {}",
                config.max_prompts,
                prompts.len()
            ),
        ));
    }
    let n = f.count("n")?.unwrap_or(1);
    if n == 0 || n > config.max_n as u64 {
        return Err(bad(
            "n",
            format!("n must be in 1..={} (--max-n), got {n}", config.max_n),
        ));
    }
    let max_tokens = match endpoint {
        Endpoint::Completions => f.count("max_tokens")?,
        Endpoint::Chat => {
            let newer = f.count("max_completion_tokens")?;
            newer.or(f.count("max_tokens")?)
        }
    };
    if let (Some(m), Some(limit)) = (max_tokens, config.max_tokens_limit)
        && m > limit as u64
    {
        return Err(bad(
            "max_tokens",
            format!("max_tokens must be at most {limit} (--max-tokens-limit), got {m}"),
        ));
    }
    let max_new_tokens = match max_tokens {
        Some(m) => usize::try_from(m).map_err(|_| {
            bad(
                "max_tokens",
                format!("max_tokens {m} does not fit this machine"),
            )
        })?,
        None => config.default_max_tokens,
    };
    let stop = match f.take("stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("stop", "stop must be a string or a list of strings".into()))?,
        Some(v) => {
            return Err(bad(
                "stop",
                format!(
                    "stop must be a string or a list of strings, got {}",
                    short(&v)
                ),
            ));
        }
    };
    if stop.len() > MAX_STOPS {
        return Err(bad(
            "stop",
            format!("at most {MAX_STOPS} stop strings, got {}", stop.len()),
        ));
    }
    let stop_token_ids = match f.take("stop_token_ids") {
        None => Vec::new(),
        Some(Value::Array(a)) => token_ids("stop_token_ids", &a)?,
        Some(v) => {
            return Err(bad(
                "stop_token_ids",
                format!(
                    "stop_token_ids must be a list of token ids, got {}",
                    short(&v)
                ),
            ));
        }
    };
    let top_k = match f.take("top_k") {
        None => None,
        Some(v) => match v.as_i64() {
            Some(k) if k <= 0 => None,
            Some(k) => Some(usize::try_from(k).unwrap_or(usize::MAX)),
            None => {
                return Err(bad(
                    "top_k",
                    format!("top_k must be an integer, got {}", short(&v)),
                ));
            }
        },
    };
    let logprob_mode = match f.take("logprobs_mode") {
        None => LogprobMode::default(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            bad(
                "logprobs_mode",
                format!(
                    "logprobs_mode must be \"temperature\", \"processed\" or \"raw\", got {}",
                    short(&v)
                ),
            )
        })?,
    };
    let params = SamplingParams {
        n: n as usize,
        max_new_tokens,
        temperature: f.float("temperature")?.unwrap_or(1.0),
        top_p: f.float("top_p")?.unwrap_or(1.0),
        top_k,
        min_p: f.float("min_p")?.unwrap_or(0.0),
        greedy: false,
        stop_token_ids,
        stop,
        ignore_eos: f.boolean("ignore_eos")?.unwrap_or(false),
        include_stop_str_in_output: f.boolean("include_stop_str_in_output")?.unwrap_or(false),
        seed: f.count("seed")?,
        logprob_mode,
    };
    params.validate().map_err(|e| match e {
        rlft_rollout::RolloutError::InvalidParam { field, .. } => bad(field, e.to_string()),
        other => ApiError::new(StatusCode::BAD_REQUEST, other.to_string()),
    })?;
    let stream = f.boolean("stream")?.unwrap_or(false);
    let include_usage = match f.take("stream_options") {
        None => false,
        Some(Value::Object(mut m)) => {
            let usage = m.remove("include_usage").filter(|v| !v.is_null());
            if let Some(k) = m.keys().next() {
                return Err(bad(
                    "stream_options",
                    format!("unknown field `stream_options.{k}`"),
                ));
            }
            match usage {
                None => false,
                Some(Value::Bool(b)) => b,
                Some(v) => {
                    return Err(bad(
                        "stream_options",
                        format!(
                            "stream_options.include_usage must be true or false, got {}",
                            short(&v)
                        ),
                    ));
                }
            }
        }
        Some(v) => {
            return Err(bad(
                "stream_options",
                format!("stream_options must be an object, got {}", short(&v)),
            ));
        }
    };
    let logprobs = match endpoint {
        Endpoint::Completions => {
            let top = f.count("logprobs")?;
            if f.boolean("echo")? == Some(true) {
                return Err(bad("echo", "echo is not supported by this server".into()));
            }
            top.map(|t| u32::try_from(t).unwrap_or(u32::MAX))
        }
        Endpoint::Chat => {
            let on = f.boolean("logprobs")?.unwrap_or(false);
            let top = f.count("top_logprobs")?.unwrap_or(0);
            on.then(|| u32::try_from(top).unwrap_or(u32::MAX))
        }
    };
    if stream && logprobs.is_some() {
        return Err(bad(
            "logprobs",
            "logprobs with stream is not supported by this server".into(),
        ));
    }
    let tokens_as_ids = f.boolean("return_tokens_as_token_ids")?.unwrap_or(false);
    // An end-user id: recorded by OpenAI, no effect on generation.
    let _ = f.take("user");
    if let Some(key) = f.0.keys().next() {
        let key = key.clone();
        return Err(bad(&key, format!("unknown field `{key}`")));
    }
    Ok(ParsedRequest {
        endpoint,
        prompts,
        params,
        max_tokens_given: max_tokens.is_some(),
        stream,
        include_usage,
        logprobs,
        tokens_as_ids,
    })
}

/// `prompt`: text, token ids, or a non-empty list of either.
fn prompts(v: Option<Value>) -> Result<Vec<Prompt>, ApiError> {
    let form = || "prompt must be a string, a list of strings, token ids or lists of token ids";
    let out = match v {
        None => return Err(bad("prompt", "prompt is required".into())),
        Some(Value::String(s)) => vec![Prompt::Text(s)],
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(bad("prompt", "prompt is an empty list".into()));
        }
        Some(Value::Array(a)) => match &a[0] {
            Value::String(_) => a
                .iter()
                .map(|x| x.as_str().map(|s| Prompt::Text(s.to_string())))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("prompt", form().into()))?,
            Value::Number(_) => vec![Prompt::Tokens(token_ids("prompt", &a)?)],
            Value::Array(_) => a
                .iter()
                .map(|x| match x {
                    Value::Array(ids) => token_ids("prompt", ids).map(Prompt::Tokens),
                    _ => Err(bad("prompt", form().into())),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(bad("prompt", form().into())),
        },
        Some(_) => return Err(bad("prompt", form().into())),
    };
    Ok(out)
}

/// `messages`: a non-empty list of `{role, content}`; content is text or text parts.
fn messages(v: Option<Value>) -> Result<Vec<Message>, ApiError> {
    let list = match v {
        None => return Err(bad("messages", "messages is required".into())),
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(bad("messages", "messages is empty".into()));
        }
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(bad(
                "messages",
                format!("messages must be a list, got {}", short(&v)),
            ));
        }
    };
    list.into_iter()
        .enumerate()
        .map(|(i, m)| {
            let Value::Object(mut m) = m else {
                return Err(bad(
                    "messages",
                    format!("messages[{i}] must be an object with role and content"),
                ));
            };
            let role = match m.remove("role") {
                Some(Value::String(r)) if ROLES.contains(&r.as_str()) => r,
                Some(r) => {
                    return Err(bad(
                        "messages",
                        format!(
                            "messages[{i}].role: unknown role {} (expected one of {})",
                            short(&r),
                            ROLES.join(", ")
                        ),
                    ));
                }
                None => return Err(bad("messages", format!("messages[{i}].role is required"))),
            };
            let content = match m.remove("content") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s,
                Some(Value::Array(parts)) => text_parts(i, &parts)?,
                Some(v) => {
                    return Err(bad(
                        "messages",
                        format!(
                            "messages[{i}].content must be text or a list of text parts, got {}",
                            short(&v)
                        ),
                    ));
                }
            };
            // `name` labels a participant; chat templates here do not render it.
            let _ = m.remove("name");
            if let Some(k) = m.keys().next() {
                return Err(bad(
                    "messages",
                    format!("unknown field `messages[{i}].{k}`"),
                ));
            }
            Ok(Message::new(role, content))
        })
        .collect()
}

/// Text parts `[{"type": "text", "text": …}]` joined; other part types are unsupported.
fn text_parts(i: usize, parts: &[Value]) -> Result<String, ApiError> {
    let mut out = String::new();
    for (j, p) in parts.iter().enumerate() {
        match (p.get("type").and_then(Value::as_str), p.get("text")) {
            (Some("text"), Some(Value::String(t))) => out.push_str(t),
            (Some(kind), _) if kind != "text" => {
                return Err(bad(
                    "messages",
                    format!("messages[{i}].content[{j}]: {kind} parts are not supported"),
                ));
            }
            _ => {
                return Err(bad(
                    "messages",
                    format!(
                        "messages[{i}].content[{j}] must be {{\"type\": \"text\", \"text\": …}}"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(endpoint: Endpoint, body: &str) -> Result<ParsedRequest, ApiError> {
        parse_request(endpoint, body.as_bytes(), &ServeConfig::default(), "m")
    }

    fn err(endpoint: Endpoint, body: &str) -> ApiError {
        parse(endpoint, body).unwrap_err()
    }

    #[test]
    fn fields_become_sampling_params() {
        let r = parse(
            Endpoint::Completions,
            r#"{"model":"m","prompt":["a","b"],"n":2,"max_tokens":1e2,"top_k":-1,"stop":"x",
                "seed":3,"temperature":0.5,"logprobs":0,"user":"u","presence_penalty":0}"#,
        )
        .unwrap();
        assert_eq!(r.prompts.len(), 2);
        assert_eq!(
            (r.params.n, r.params.max_new_tokens, r.params.top_k),
            (2, 100, None)
        );
        assert_eq!((r.params.seed, r.logprobs), (Some(3), Some(0)));
        assert_eq!(r.params.stop, vec!["x".to_string()]);
        let r = parse(
            Endpoint::Chat,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_completion_tokens":4,"stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .unwrap();
        assert_eq!(
            r.prompts,
            vec![Prompt::Chat(vec![Message::new("user", "hi")])]
        );
        assert!(r.stream && r.include_usage && r.max_tokens_given);
    }

    #[test]
    fn limits_name_their_field_and_flag() {
        let e = err(
            Endpoint::Completions,
            r#"{"prompt":"a","n":18446744073709551615}"#,
        );
        assert_eq!((e.status.as_u16(), e.param.as_deref()), (400, Some("n")));
        assert!(e.message.contains("--max-n"), "{}", e.message);
        let config = ServeConfig {
            max_tokens_limit: Some(100),
            ..ServeConfig::default()
        };
        let e = parse_request(
            Endpoint::Completions,
            br#"{"prompt":"a","max_tokens":1e9}"#,
            &config,
            "m",
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        let e = err(Endpoint::Completions, r#"{"prompt":"a","max_tokens":-1}"#);
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
    }

    #[test]
    fn unknown_and_unsupported_fields_are_400s_that_say_which() {
        let e = err(Endpoint::Completions, r#"{"prompt":"a","temprature":1}"#);
        assert_eq!(e.param.as_deref(), Some("temprature"));
        assert!(e.message.contains("unknown field `temprature`"));
        let e = err(
            Endpoint::Chat,
            r#"{"messages":[{"role":"user","content":"x"}],"logit_bias":{"1":5}}"#,
        );
        assert_eq!(e.param.as_deref(), Some("logit_bias"));
        assert!(e.message.contains("not supported"), "{}", e.message);
        let e = err(
            Endpoint::Completions,
            r#"{"prompt":"a","frequency_penalty":0.5}"#,
        );
        assert!(e.message.contains("frequency_penalty is not supported"));
        let e = err(
            Endpoint::Chat,
            r#"{"messages":[{"role":"wizard","content":"x"}]}"#,
        );
        assert!(
            e.message.contains("unknown role \"wizard\""),
            "{}",
            e.message
        );
        let e = err(
            Endpoint::Chat,
            r#"{"messages":[{"role":"user","content":"x","extra":1}]}"#,
        );
        assert!(e.message.contains("messages[0].extra"), "{}", e.message);
        let e = err(Endpoint::Completions, r#"{"prompt":"a","model":"other"}"#);
        assert_eq!(e.status.as_u16(), 404);
        assert!(e.message.contains("other"));
        let e = err(
            Endpoint::Completions,
            r#"{"prompt":"a","stream":true,"logprobs":1}"#,
        );
        assert!(e.message.contains("not supported"));
    }

    #[test]
    fn malformed_bodies_and_prompts() {
        for body in [
            "{not json",
            "[1]",
            "null",
            r#"{"prompt":[]}"#,
            r#"{"prompt":[1,"a"]}"#,
            r#"{"prompt":[4294967296]}"#,
            r#"{}"#,
        ] {
            let e = err(Endpoint::Completions, body);
            assert_eq!(e.status.as_u16(), 400, "{body}");
        }
        assert_eq!(
            err(Endpoint::Chat, r#"{"messages":[]}"#).status.as_u16(),
            400
        );
        assert_eq!(
            err(Endpoint::Completions, r#"{"prompt":"a","top_p":2}"#)
                .param
                .as_deref(),
            Some("top_p")
        );
    }
}
