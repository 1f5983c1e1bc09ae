//! `POST /v1/completions` and `POST /v1/chat/completions`: read and check the request,
//! tokenize it, queue it for the engine thread, and answer in one JSON body or as an SSE
//! stream.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use rlft_core::Completion;
use rlft_rollout::{GenerationRequest, Prompt, RolloutError};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::ApiError;
use crate::request::{Endpoint, ParsedRequest, parse_request};
use crate::routes::App;
use crate::scheduler::{CancelOnDrop, Job, JobEvent, Submit};

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) async fn completions(State(app): State<Arc<App>>, body: Body) -> Response {
    generate(app, Endpoint::Completions, body).await
}

pub(crate) async fn chat(State(app): State<Arc<App>>, body: Body) -> Response {
    generate(app, Endpoint::Chat, body).await
}

async fn generate(app: Arc<App>, endpoint: Endpoint, body: Body) -> Response {
    match try_generate(app, endpoint, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// A checked request with its prompts as token ids (when the engine has a tokenizer).
struct Ready {
    parsed: ParsedRequest,
    prompt_tokens: usize,
}

async fn try_generate(app: Arc<App>, endpoint: Endpoint, body: Body) -> Result<Response, ApiError> {
    let start = Instant::now();
    let deadline = start + app.config.request_timeout();
    let limit = app.config.max_body_bytes;
    let bytes = tokio::time::timeout_at(deadline.into(), axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| timeout(&app))?
        .map_err(|e| {
            // axum wraps http-body-util's `LengthLimitError` ("length limit exceeded").
            let mut too_big = false;
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = source {
                too_big |= s.to_string().contains("length limit");
                source = s.source();
            }
            if too_big {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the request body is over the limit of {limit} bytes (--max-body-bytes)"
                    ),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                )
            }
        })?;
    // Parsing a large body and tokenizing a long prompt are CPU work: keep them off the
    // async workers so that /health stays quick.
    let ready = {
        let app = app.clone();
        tokio::task::spawn_blocking(move || prepare(&app, endpoint, &bytes))
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("request preparation failed: {e}"),
                )
            })??
    };
    let Ready {
        parsed,
        prompt_tokens,
    } = ready;
    let request = GenerationRequest {
        prompts: parsed.prompts.clone(),
        params: parsed.params.clone(),
    };
    let (job, rx, guard) = Job::new(request, parsed.stream);
    match app.scheduler.submit(job) {
        Ok(()) => {}
        Err(Submit::Full) => {
            app.metrics.rejected();
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "the server's queue is full ({} requests waiting, --max-queue); retry later",
                    app.config.max_queue
                ),
            )
            .retry_after(1));
        }
        Err(Submit::Closed) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            )
            .retry_after(1));
        }
    }
    let reply = Reply {
        app,
        parsed,
        prompt_tokens,
        id: match endpoint {
            Endpoint::Completions => format!("cmpl-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            Endpoint::Chat => format!("chatcmpl-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
        },
        created: now(),
    };
    if reply.parsed.stream {
        return Ok(reply.stream(rx, guard, deadline).into_response());
    }
    let out = wait_done(&reply.app, rx, guard, deadline).await?;
    Ok(axum::Json(reply.body(&out)).into_response())
}

/// Parse, then tokenize and check the prompts against the context.
fn prepare(app: &App, endpoint: Endpoint, bytes: &[u8]) -> Result<Ready, ApiError> {
    let mut parsed = parse_request(endpoint, bytes, &app.config, &app.model_id)?;
    let mut prompt_tokens = 0;
    if let Some(tok) = app.engine.tokenizer() {
        let mut ids = Vec::with_capacity(parsed.prompts.len());
        for p in &parsed.prompts {
            let encoded = match p {
                Prompt::Tokens(t) => Ok(t.clone()),
                Prompt::Text(text) => tok.encode(text, true),
                Prompt::Chat(messages) => tok
                    .apply_chat_template(messages)
                    .and_then(|t| tok.encode(&t, false)),
            };
            let field = match endpoint {
                Endpoint::Completions => "prompt",
                Endpoint::Chat => "messages",
            };
            ids.push(encoded.map_err(|e| ApiError::invalid(field, e.to_string()))?);
        }
        prompt_tokens = ids.iter().map(Vec::len).sum();
        if let Some(context) = app.engine.context_len() {
            let m = parsed.params.max_new_tokens;
            if let Some(long) = ids.iter().map(Vec::len).max()
                && long.saturating_add(m) > context
            {
                return Err(ApiError::invalid(
                    "max_tokens",
                    format!(
                        "the prompt has {long} tokens and max_tokens is {m}: together more than \
                         the model's context of {context} tokens"
                    ),
                ));
            }
        }
        parsed.prompts = ids.into_iter().map(Prompt::Tokens).collect();
    }
    Ok(Ready {
        parsed,
        prompt_tokens,
    })
}

fn timeout(app: &App) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the request took longer than {} s (--request-timeout-secs)",
            app.config.request_timeout_secs
        ),
    )
}

/// HTTP status of an engine error: the request's fault (400) or the server's (500).
fn engine_error(e: &RolloutError) -> ApiError {
    let status = match e {
        RolloutError::InvalidParam { .. }
        | RolloutError::InvalidPrompt { .. }
        | RolloutError::NoTokenizer { .. }
        | RolloutError::Tokenizer { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.to_string())
}

/// Wait for a non-streaming job's result; dropping this future (the client left) drops the
/// receiver and the guard, which cancels the job.
async fn wait_done(
    app: &App,
    mut rx: UnboundedReceiver<JobEvent>,
    guard: CancelOnDrop,
    deadline: Instant,
) -> Result<Vec<Vec<Completion>>, ApiError> {
    let _guard = guard;
    loop {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Err(_) => return Err(timeout(app)),
            Ok(None) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the engine stopped before answering",
                ));
            }
            Ok(Some(JobEvent::Delta { .. })) => {}
            Ok(Some(JobEvent::Done(result))) => return result.map_err(|e| engine_error(&e)),
        }
    }
}

/// What an answer needs besides the completions.
struct Reply {
    app: Arc<App>,
    parsed: ParsedRequest,
    prompt_tokens: usize,
    id: String,
    created: u64,
}

fn finish_reason(c: &Completion) -> &'static str {
    if c.finished { "stop" } else { "length" }
}

impl Reply {
    fn n(&self) -> usize {
        self.parsed.params.n
    }

    fn usage(&self, out: &[Vec<Completion>]) -> Value {
        let completion: usize = out.iter().flatten().map(|c| c.token_ids.len()).sum();
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        })
    }

    fn token_string(&self, id: u32) -> String {
        if !self.parsed.tokens_as_ids
            && let Some(t) = self.app.engine.token_text(id)
        {
            return t;
        }
        format!("token_id:{id}")
    }

    /// The whole answer of a non-streaming request.
    fn body(&self, out: &[Vec<Completion>]) -> Value {
        match self.parsed.endpoint {
            Endpoint::Completions => self.completions_body(out),
            Endpoint::Chat => self.chat_body(out),
        }
    }

    fn completions_body(&self, out: &[Vec<Completion>]) -> Value {
        let mut choices = Vec::new();
        for (i, group) in out.iter().enumerate() {
            for (j, c) in group.iter().enumerate() {
                let logprobs = self.parsed.logprobs.map(|top| {
                    let tokens: Vec<String> = c
                        .token_ids
                        .iter()
                        .map(|&id| self.token_string(id))
                        .collect();
                    let mut offset = 0;
                    let text_offset: Vec<usize> = tokens
                        .iter()
                        .map(|t| {
                            let o = offset;
                            offset += t.len();
                            o
                        })
                        .collect();
                    // The engine reports the sampled token only, so that is the top list.
                    let top_logprobs: Option<Vec<BTreeMap<String, f32>>> = (top > 0).then(|| {
                        tokens
                            .iter()
                            .zip(&c.logprobs)
                            .map(|(t, &lp)| BTreeMap::from([(t.clone(), lp)]))
                            .collect()
                    });
                    json!({
                        "tokens": tokens,
                        "token_logprobs": c.logprobs,
                        "top_logprobs": top_logprobs,
                        "text_offset": text_offset,
                    })
                });
                choices.push(json!({
                    "index": i * self.n() + j,
                    "text": c.text,
                    "logprobs": logprobs,
                    "finish_reason": finish_reason(c),
                }));
            }
        }
        json!({
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.app.model_id,
            "choices": choices,
            "usage": self.usage(out),
        })
    }

    fn chat_body(&self, out: &[Vec<Completion>]) -> Value {
        let choices: Vec<Value> = out
            .first()
            .map(|g| g.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(j, c)| {
                let logprobs = self.parsed.logprobs.map(|top| {
                    let content: Vec<Value> = c
                        .token_ids
                        .iter()
                        .zip(&c.logprobs)
                        .map(|(&id, &lp)| {
                            let token = self.token_string(id);
                            let bytes = token.as_bytes().to_vec();
                            let top_logprobs = if top > 0 {
                                vec![json!({"token": token, "logprob": lp, "bytes": bytes})]
                            } else {
                                Vec::new()
                            };
                            json!({"token": token, "logprob": lp, "bytes": bytes, "top_logprobs": top_logprobs})
                        })
                        .collect();
                    json!({ "content": content })
                });
                json!({
                    "index": j,
                    "message": {"role": "assistant", "content": c.text},
                    "logprobs": logprobs,
                    "finish_reason": finish_reason(c),
                })
            })
            .collect();
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.app.model_id,
            "choices": choices,
            "usage": self.usage(out),
        })
    }

    /// One streaming chunk holding one choice's update.
    fn chunk(&self, index: usize, text: &str, finish: Option<&str>) -> Value {
        match self.parsed.endpoint {
            Endpoint::Completions => json!({
                "id": self.id,
                "object": "text_completion",
                "created": self.created,
                "model": self.app.model_id,
                "choices": [{"index": index, "text": text, "logprobs": null, "finish_reason": finish}],
            }),
            Endpoint::Chat => {
                let delta = if finish.is_some() && text.is_empty() {
                    json!({})
                } else {
                    json!({"content": text})
                };
                json!({
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.app.model_id,
                    "choices": [{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}],
                })
            }
        }
    }

    fn usage_chunk(&self, out: &[Vec<Completion>]) -> Value {
        let object = match self.parsed.endpoint {
            Endpoint::Completions => "text_completion",
            Endpoint::Chat => "chat.completion.chunk",
        };
        json!({
            "id": self.id,
            "object": object,
            "created": self.created,
            "model": self.app.model_id,
            "choices": [],
            "usage": self.usage(out),
        })
    }

    /// The SSE answer: chunks as text becomes stable, each choice's rest and finish reason
    /// when the job is done, the usage when asked, then `[DONE]`. Dropping the stream (the
    /// client left) cancels the job.
    fn stream(
        self,
        rx: UnboundedReceiver<JobEvent>,
        guard: CancelOnDrop,
        deadline: Instant,
    ) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
        let choices = self.parsed.prompts.len() * self.n();
        let mut queue = VecDeque::new();
        if self.parsed.endpoint == Endpoint::Chat {
            for j in 0..choices {
                let mut first = self.chunk(j, "", None);
                first["choices"][0]["delta"] = json!({"role": "assistant", "content": ""});
                queue.push_back(event(&first));
            }
        }
        let state = StreamState {
            reply: self,
            rx,
            _guard: guard,
            deadline,
            sent: vec![String::new(); choices],
            queue,
            ended: false,
        };
        let events = stream::unfold(state, |mut s| async move {
            loop {
                if let Some(e) = s.queue.pop_front() {
                    return Some((Ok(e), s));
                }
                if s.ended {
                    return None;
                }
                s.next_events().await;
            }
        });
        Sse::new(events).keep_alive(KeepAlive::default())
    }
}

fn event(v: &Value) -> Event {
    Event::default().data(v.to_string())
}

struct StreamState {
    reply: Reply,
    rx: UnboundedReceiver<JobEvent>,
    _guard: CancelOnDrop,
    deadline: Instant,
    /// Text sent so far, per choice.
    sent: Vec<String>,
    queue: VecDeque<Event>,
    ended: bool,
}

impl StreamState {
    /// Wait for the job's next event and queue what it produces.
    async fn next_events(&mut self) {
        let next = tokio::time::timeout_at(self.deadline.into(), self.rx.recv()).await;
        match next {
            Err(_) => self.fail(&timeout(&self.reply.app)),
            Ok(None) => self.fail(&ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the engine stopped before answering",
            )),
            Ok(Some(JobEvent::Delta {
                prompt,
                sample,
                text,
            })) => {
                let index = prompt * self.reply.n() + sample;
                if let Some(sent) = self.sent.get_mut(index) {
                    sent.push_str(&text);
                    let chunk = self.reply.chunk(index, &text, None);
                    self.queue.push_back(event(&chunk));
                }
            }
            Ok(Some(JobEvent::Done(Err(e)))) => self.fail(&engine_error(&e)),
            Ok(Some(JobEvent::Done(Ok(out)))) => {
                let n = self.reply.n();
                for (i, group) in out.iter().enumerate() {
                    for (j, c) in group.iter().enumerate() {
                        let index = i * n + j;
                        let sent = self.sent.get(index).map_or("", String::as_str);
                        // The rest of the final text (cut at a stop string); streamed text is
                        // always a prefix of it.
                        let rest = c.text.strip_prefix(sent).unwrap_or_default();
                        let chunk = self.reply.chunk(index, rest, Some(finish_reason(c)));
                        self.queue.push_back(event(&chunk));
                    }
                }
                if self.reply.parsed.include_usage {
                    self.queue.push_back(event(&self.reply.usage_chunk(&out)));
                }
                self.queue.push_back(Event::default().data("[DONE]"));
                self.ended = true;
            }
        }
    }

    fn fail(&mut self, e: &ApiError) {
        self.queue.push_back(event(&e.body()));
        self.queue.push_back(Event::default().data("[DONE]"));
        self.ended = true;
    }
}
