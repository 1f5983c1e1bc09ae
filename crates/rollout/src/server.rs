//! [`Server`]: any [`RolloutEngine`] behind the OpenAI-compatible API, on `std::net`.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rlft_core::Completion;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::{RolloutEngine, check_shape};
use crate::error::RolloutError;
use crate::http1::{self, Request};
use crate::openai::{
    ChatChoice, ChatLogprobs, ChatMessageOut, ChatRequest, ChatResponse, ChatTokenLogprob,
    CommonParams, CompletionChoice, CompletionLogprobs, CompletionRequest, CompletionResponse,
    ModelCard, ModelList, PromptField, TopLogprob, Usage, token_id_text,
};
use crate::params::SamplingParams;
use crate::prompt::Prompt;

/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(5);

/// Settings of [`Server`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind. Default `127.0.0.1:8000` (loopback only; vLLM's default port). Port 0
    /// picks a free port ([`ServerHandle::addr`] tells which).
    pub addr: String,
    /// Largest request body; larger ones get 413 before they are read. Default 8 MiB.
    pub max_body_bytes: usize,
    /// Connections handled at once; more get 503 with `Retry-After: 1`, and beyond twice this
    /// number new connections are closed unanswered. Default 64.
    pub max_connections: usize,
    /// Read timeout on a connection, seconds. Default 30.
    pub read_timeout_secs: f64,
    /// Model id served; `None` uses [`RolloutEngine::model_id`]. Default `None`.
    pub model_id: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8000".into(),
            max_body_bytes: 8 << 20,
            max_connections: 64,
            read_timeout_secs: 30.0,
            model_id: None,
        }
    }
}

impl ServerConfig {
    /// Loopback on a free port (for tests and local use).
    pub fn loopback() -> Self {
        Self {
            addr: "127.0.0.1:0".into(),
            ..Self::default()
        }
    }
}

/// Serves a [`RolloutEngine`] with the OpenAI-compatible API:
///
/// | route | answer |
/// |---|---|
/// | `POST /v1/completions` | `prompt` as text, token ids, or a batch of either; `n`, `max_tokens`, `temperature`, `top_p`, `seed`, `stop`, `logprobs`, and vLLM's `top_k`, `min_p`, `stop_token_ids`, `ignore_eos`, `include_stop_str_in_output`, `return_tokens_as_token_ids` |
/// | `POST /v1/chat/completions` | `messages` and the same fields; `logprobs: true` |
/// | `GET /v1/models` | the engine's model id |
/// | `GET /health` | 200 |
///
/// Malformed JSON and invalid parameters get 400 with an OpenAI-style
/// `{"error": {"message", "type", "code"}}`; unknown routes 404; wrong methods 405; bodies
/// over the limit 413; streaming and `echo` 400 (not supported). Choices of a batch prompt
/// are ordered prompt-major (`index = prompt · n + sample`), as vLLM does. `top_logprobs`
/// lists only the sampled token (the engine reports no alternatives). Each connection carries
/// one request and is handled on its own thread.
#[derive(Debug)]
pub struct Server<E> {
    engine: Arc<E>,
    config: ServerConfig,
}

impl<E: RolloutEngine + Send + Sync + 'static> Server<E> {
    /// A server for `engine`.
    pub fn new(engine: E, config: ServerConfig) -> Self {
        Self::from_arc(Arc::new(engine), config)
    }

    /// A server for a shared engine.
    pub fn from_arc(engine: Arc<E>, config: ServerConfig) -> Self {
        Self { engine, config }
    }

    /// Bind and serve on a background thread until the handle is shut down or dropped.
    ///
    /// # Errors
    /// [`RolloutError::Bind`] when the address cannot be bound;
    /// [`RolloutError::InvalidParam`] for a zero `max_connections` or a bad timeout.
    pub fn spawn(self) -> crate::Result<ServerHandle> {
        if self.config.max_connections == 0 {
            return Err(RolloutError::InvalidParam {
                field: "max_connections",
                reason: "must be at least 1, got 0".into(),
            });
        }
        let t = self.config.read_timeout_secs;
        if !(t.is_finite() && t > 0.0) {
            return Err(RolloutError::InvalidParam {
                field: "read_timeout_secs",
                reason: format!("must be finite and > 0, got {t}"),
            });
        }
        let bind_err = |source| RolloutError::Bind {
            addr: self.config.addr.clone(),
            source,
        };
        let listener = TcpListener::bind(&self.config.addr).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            active: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
        });
        let state = Arc::new(State {
            model_id: self
                .config
                .model_id
                .clone()
                .unwrap_or_else(|| self.engine.model_id().to_string()),
            engine: self.engine,
            config: self.config,
        });
        let accept = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(listener, state, shared))
        };
        Ok(ServerHandle {
            addr,
            shared,
            accept: Some(accept),
        })
    }
}

/// A running server; dropping it shuts the server down gracefully.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API root, `http://{addr}/v1`, for [`HttpConfig::new`](crate::HttpConfig::new).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Stop accepting, let requests in flight finish, and close the socket.
    pub fn shutdown(mut self) {
        self.stop(false);
    }

    /// Stop at once: close the listening socket and every open connection (clients in flight
    /// see a reset or an early end), as a crashed server would.
    pub fn abort(mut self) {
        self.stop(true);
    }

    fn stop(&mut self, abort: bool) {
        self.shared.abort.fetch_or(abort, Ordering::SeqCst);
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop(false);
    }
}

#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    abort: AtomicBool,
    conns: Mutex<HashMap<u64, TcpStream>>,
    active: AtomicUsize,
    next_id: AtomicU64,
}

impl Shared {
    fn close_all(&self) {
        if let Ok(conns) = self.conns.lock() {
            for s in conns.values() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

struct State<E> {
    engine: Arc<E>,
    config: ServerConfig,
    model_id: String,
}

fn accept_loop<E: RolloutEngine + Send + Sync + 'static>(
    listener: TcpListener,
    state: Arc<State<E>>,
    shared: Arc<Shared>,
) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                workers.retain(|w| !w.is_finished());
                let active = shared.active.load(Ordering::SeqCst);
                let limit = state.config.max_connections;
                // Over the limit: answer 503 on a short-lived thread (it reads the request so
                // the close is clean); far over it (a flood), drop the connection.
                let reject = active >= limit;
                if active >= 2 * limit {
                    continue;
                }
                shared.active.fetch_add(1, Ordering::SeqCst);
                let state = state.clone();
                let shared2 = shared.clone();
                workers.push(std::thread::spawn(move || {
                    handle_connection(stream, &state, &shared2, reject);
                    shared2.active.fetch_sub(1, Ordering::SeqCst);
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
    drop(listener);
    if shared.abort.load(Ordering::SeqCst) {
        shared.close_all();
    }
    for w in workers {
        let _ = w.join();
    }
}

fn handle_connection<E: RolloutEngine>(
    stream: TcpStream,
    state: &State<E>,
    shared: &Shared,
    reject: bool,
) {
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let mut stream = stream;
    let timeout = Duration::from_secs_f64(state.config.read_timeout_secs);
    if stream.set_nonblocking(false).is_err()
        || stream.set_read_timeout(Some(timeout)).is_err()
        || stream.set_write_timeout(Some(timeout)).is_err()
    {
        return;
    }
    if let (Ok(clone), Ok(mut conns)) = (stream.try_clone(), shared.conns.lock()) {
        conns.insert(id, clone);
    }
    if shared.abort.load(Ordering::SeqCst) {
        let _ = stream.shutdown(Shutdown::Both);
    }
    let read = http1::read_request(&mut stream, state.config.max_body_bytes);
    let (status, body, unread) = match read {
        Ok(_) if reject => {
            let body = error_body(503, "the server is at its connection limit");
            let _ = http1::write_json(&mut stream, 503, &body, &[("Retry-After", "1")]);
            linger_close(&mut stream);
            forget(shared, id);
            return;
        }
        Ok(req) => {
            let (status, body) = route(&req, state);
            (status, body, false)
        }
        Err(e) => match e.status() {
            Some((status, message)) => (status, error_body(status, &message), true),
            None => {
                forget(shared, id);
                return;
            }
        },
    };
    let _ = http1::write_json(&mut stream, status, &body, &[]);
    if unread {
        linger_close(&mut stream);
    } else {
        let _ = stream.shutdown(Shutdown::Write);
    }
    forget(shared, id);
}

/// Close after an answer that left request bytes unread: half-close, then discard what the
/// client still sends (at most 16 MiB, at most 1 s), so the close is a FIN and not a reset
/// that could destroy the answer in flight.
fn linger_close(stream: &mut TcpStream) {
    use std::io::Read;
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0usize;
    while total < (16 << 20) && std::time::Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

fn forget(shared: &Shared, id: u64) {
    if let Ok(mut conns) = shared.conns.lock() {
        conns.remove(&id);
    }
}

/// OpenAI-style error body.
fn error_body(status: u16, message: &str) -> Vec<u8> {
    let kind = match status {
        400 | 411 | 413 | 431 => "invalid_request_error",
        404 => "not_found_error",
        405 => "method_not_allowed",
        503 => "service_unavailable",
        _ => "server_error",
    };
    serde_json::to_vec(
        &json!({"error": {"message": message, "type": kind, "param": null, "code": status}}),
    )
    .unwrap_or_default()
}

fn route<E: RolloutEngine>(req: &Request, state: &State<E>) -> (u16, Vec<u8>) {
    let method = req.method.as_str();
    let result = match (req.path.trim_end_matches('/'), method) {
        ("/health", "GET") => Ok(json!({"status": "ok"})),
        ("/v1/models", "GET") => Ok(json!(ModelList {
            object: "list".into(),
            data: vec![ModelCard {
                id: state.model_id.clone(),
                object: "model".into(),
                created: 0,
                owned_by: "rlft".into(),
            }],
        })),
        ("/v1/completions", "POST") => parse(&req.body).and_then(|r| completions(r, state)),
        ("/v1/chat/completions", "POST") => parse(&req.body).and_then(|r| chat(r, state)),
        ("/health" | "/v1/models" | "/v1/completions" | "/v1/chat/completions", _) => Err((
            405,
            format!("method {method} is not allowed on {}", req.path),
        )),
        _ => Err((404, format!("no route for {method} {}", req.path))),
    };
    match result {
        Ok(v) => (200, serde_json::to_vec(&v).unwrap_or_default()),
        Err((status, message)) => (status, error_body(status, &message)),
    }
}

type Answer = Result<serde_json::Value, (u16, String)>;

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, (u16, String)> {
    serde_json::from_slice(body).map_err(|e| (400, format!("malformed request body: {e}")))
}

/// Sampling parameters of a request; errors are 400s naming the field.
fn sampling(c: &CommonParams, max_tokens_default: usize) -> Result<SamplingParams, (u16, String)> {
    if c.stream == Some(true) {
        return Err((400, "streaming is not supported".into()));
    }
    let p = SamplingParams {
        n: c.n.unwrap_or(1),
        max_new_tokens: c
            .max_completion_tokens
            .or(c.max_tokens)
            .unwrap_or(max_tokens_default),
        temperature: c.temperature.unwrap_or(1.0),
        top_p: c.top_p.unwrap_or(1.0),
        top_k: c.top_k.filter(|&k| k > 0).map(|k| k as usize),
        min_p: c.min_p.unwrap_or(0.0),
        greedy: false,
        stop_token_ids: c.stop_token_ids.clone().unwrap_or_default(),
        stop: c.stop.clone().map(|s| s.into_vec()).unwrap_or_default(),
        ignore_eos: c.ignore_eos.unwrap_or(false),
        include_stop_str_in_output: c.include_stop_str_in_output.unwrap_or(false),
        seed: c.seed,
        logprob_mode: c.logprobs_mode.unwrap_or_default(),
    };
    p.validate().map_err(|e| (400, e.to_string()))?;
    Ok(p)
}

fn run<E: RolloutEngine>(
    state: &State<E>,
    prompts: &[Prompt],
    params: &SamplingParams,
) -> Result<Vec<Vec<Completion>>, (u16, String)> {
    let out = state.engine.generate(prompts, params).map_err(|e| {
        let status = match e {
            RolloutError::InvalidParam { .. }
            | RolloutError::InvalidPrompt { .. }
            | RolloutError::NoTokenizer { .. }
            | RolloutError::Tokenizer { .. } => 400,
            _ => 500,
        };
        (status, e.to_string())
    })?;
    check_shape(&out, prompts.len(), params.n)
        .map_err(|m| (500, format!("engine broke its contract: {m}")))?;
    Ok(out)
}

fn token_string<E: RolloutEngine>(state: &State<E>, id: u32, as_ids: bool) -> String {
    if as_ids {
        return token_id_text(id);
    }
    state
        .engine
        .token_text(id)
        .unwrap_or_else(|| token_id_text(id))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn finish_reason(c: &Completion) -> Option<String> {
    Some(if c.finished { "stop" } else { "length" }.into())
}

fn usage(prompts: &[Prompt], out: &[Vec<Completion>]) -> Usage {
    let prompt_tokens = prompts
        .iter()
        .map(|p| match p {
            Prompt::Tokens(ids) => ids.len(),
            _ => 0,
        })
        .sum();
    let completion_tokens = out.iter().flatten().map(|c| c.token_ids.len()).sum();
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
    }
}

fn completions<E: RolloutEngine>(r: CompletionRequest, state: &State<E>) -> Answer {
    if r.echo == Some(true) {
        return Err((400, "echo is not supported".into()));
    }
    let params = sampling(&r.common, 16)?;
    let prompts: Vec<Prompt> = match r.prompt {
        PromptField::Text(t) => vec![Prompt::Text(t)],
        PromptField::Ids(ids) => vec![Prompt::Tokens(ids)],
        PromptField::Texts(ts) => ts.into_iter().map(Prompt::Text).collect(),
        PromptField::IdsBatch(b) => b.into_iter().map(Prompt::Tokens).collect(),
    };
    if prompts.is_empty() {
        return Err((400, "prompt is an empty list".into()));
    }
    let out = run(state, &prompts, &params)?;
    let as_ids = r.common.return_tokens_as_token_ids == Some(true);
    let mut choices = Vec::new();
    for (i, group) in out.iter().enumerate() {
        for (j, c) in group.iter().enumerate() {
            let logprobs = r.logprobs.map(|top| {
                let tokens: Vec<String> = c
                    .token_ids
                    .iter()
                    .map(|&id| token_string(state, id, as_ids))
                    .collect();
                let mut offset = 0;
                let text_offset = tokens
                    .iter()
                    .map(|t| {
                        let o = offset;
                        offset += t.len();
                        o
                    })
                    .collect();
                let top_logprobs = (top > 0).then(|| {
                    tokens
                        .iter()
                        .zip(&c.logprobs)
                        .map(|(t, &lp)| Some(BTreeMap::from([(t.clone(), lp)])))
                        .collect()
                });
                CompletionLogprobs {
                    token_logprobs: c.logprobs.iter().map(|&l| Some(l)).collect(),
                    tokens,
                    top_logprobs,
                    text_offset,
                }
            });
            choices.push(CompletionChoice {
                index: i * params.n + j,
                text: c.text.clone(),
                logprobs,
                finish_reason: finish_reason(c),
            });
        }
    }
    Ok(json!(CompletionResponse {
        id: format!("cmpl-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
        object: "text_completion".into(),
        created: now(),
        model: state.model_id.clone(),
        choices,
        usage: Some(usage(&prompts, &out)),
    }))
}

fn chat<E: RolloutEngine>(r: ChatRequest, state: &State<E>) -> Answer {
    let params = sampling(&r.common, 16)?;
    if r.messages.is_empty() {
        return Err((400, "messages is empty".into()));
    }
    let prompts = [Prompt::Chat(r.messages)];
    let out = run(state, &prompts, &params)?;
    let as_ids = r.common.return_tokens_as_token_ids == Some(true);
    let top = r.top_logprobs.unwrap_or(0);
    let choices = out[0]
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let logprobs = (r.logprobs == Some(true)).then(|| ChatLogprobs {
                content: Some(
                    c.token_ids
                        .iter()
                        .zip(&c.logprobs)
                        .map(|(&id, &lp)| {
                            let token = token_string(state, id, as_ids);
                            let bytes = Some(token.as_bytes().to_vec());
                            let top_logprobs = if top > 0 {
                                vec![TopLogprob {
                                    token: token.clone(),
                                    logprob: lp,
                                    bytes: bytes.clone(),
                                }]
                            } else {
                                Vec::new()
                            };
                            ChatTokenLogprob {
                                token,
                                logprob: Some(lp),
                                bytes,
                                top_logprobs,
                            }
                        })
                        .collect(),
                ),
            });
            ChatChoice {
                index: j,
                message: ChatMessageOut {
                    role: "assistant".into(),
                    content: Some(c.text.clone()),
                },
                logprobs,
                finish_reason: finish_reason(c),
            }
        })
        .collect();
    Ok(json!(ChatResponse {
        id: format!("chatcmpl-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
        object: "chat.completion".into(),
        created: now(),
        model: state.model_id.clone(),
        choices,
        usage: Some(usage(&prompts, &out)),
    }))
}
