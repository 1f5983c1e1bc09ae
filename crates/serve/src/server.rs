//! [`Server`]: bind, start the engine thread and the tokio runtime, accept connections.
//!
//! Each connection is served by hyper's HTTP/1 connection (keep-alive, pipelining, chunked
//! bodies) with a deadline for every request head (`head_timeout_secs`, which also closes
//! idle keep-alive connections and defeats slowloris clients) and a cap on the head's size.
//! Connections over `max_connections` get a 503 with `Retry-After` and are closed; each open
//! one costs a task, not a thread, so slow clients cannot starve the others.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rlft_rollout::RolloutEngine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::ServeConfig;
use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::routes::{App, router};
use crate::scheduler::{Scheduler, SchedulerConfig, SharedEngine};

/// How long a graceful shutdown waits for requests in flight before closing them.
const GRACE: Duration = Duration::from_secs(5);

/// Serves a [`RolloutEngine`] with the OpenAI-compatible API:
///
/// | route | answer |
/// |---|---|
/// | `POST /v1/completions` | `prompt` as text, token ids, or a batch of either; `n`, `max_tokens`, `temperature`, `top_p`, `seed`, `stop`, `logprobs`, `stream`, `stream_options`, and vLLM's `top_k`, `min_p`, `stop_token_ids`, `ignore_eos`, `include_stop_str_in_output`, `return_tokens_as_token_ids`; rlft's `logprobs_mode` |
/// | `POST /v1/chat/completions` | `messages` (roles system, user, assistant, tool) and the same fields; `logprobs`, `top_logprobs`, `max_completion_tokens` |
/// | `GET /v1/models` | the model id and its context length |
/// | `GET /health` | 200 `{"status": "ok"}` (never needs the API key) |
/// | `GET /metrics` | Prometheus text: requests, latency histogram, queue depth, tokens/s |
///
/// Errors are OpenAI-style `{"error": {"message", "type", "param", "code"}}`: 400 for a
/// malformed body, an unknown field (named), an unsupported parameter such as `logit_bias`
/// (named, "not supported"), a value out of range or over a limit (named, with the flag that
/// sets the limit); 401 without the API key; 404 for an unknown route or a `model` this server
/// does not serve; 405; 408 past the request deadline; 413 for a body over the limit; 431 for a
/// head over the limit; 429 (`Retry-After`) when the queue is full; 503 (`Retry-After`) over the
/// connection limit. Choices of a batch prompt are prompt-major (`index = prompt · n +
/// sample`), as vLLM orders them.
pub struct Server {
    engine: SharedEngine,
    config: ServeConfig,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("model_id", &self.engine.model_id())
            .field("config", &self.config)
            .finish()
    }
}

impl Server {
    /// A server for `engine`.
    pub fn new<E: RolloutEngine + Send + Sync + 'static>(engine: E, config: ServeConfig) -> Self {
        Self::from_arc(Arc::new(engine), config)
    }

    /// A server for a shared engine.
    pub fn from_arc<E: RolloutEngine + Send + Sync + 'static>(
        engine: Arc<E>,
        config: ServeConfig,
    ) -> Self {
        Self { engine, config }
    }

    /// Bind and serve on background threads (the tokio runtime and the engine thread) until
    /// the handle is shut down or dropped.
    ///
    /// # Errors
    /// [`ServeError::Config`] for a setting out of range, [`ServeError::Bind`] when the address
    /// cannot be bound, [`ServeError::Start`] when a thread cannot be started.
    pub fn spawn(self) -> Result<ServerHandle, ServeError> {
        self.config.validate()?;
        let addr_text = self.config.addr.clone();
        let bind_err = |source| ServeError::Bind {
            addr: addr_text.clone(),
            source,
        };
        let listener = std::net::TcpListener::bind(&self.config.addr).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("rlft-serve")
            .build()
            .map_err(ServeError::Start)?;
        let metrics = Arc::new(Metrics::new());
        let scheduler = Scheduler::start(
            self.engine.clone(),
            SchedulerConfig {
                max_queue: self.config.max_queue,
                max_batch_requests: self.config.max_batch_requests,
                batch_window: Duration::from_millis(self.config.batch_window_ms),
            },
            metrics.clone(),
        )
        .map_err(ServeError::Start)?;
        let model_id = self
            .config
            .model_id
            .clone()
            .unwrap_or_else(|| self.engine.model_id().to_string());
        let app = Arc::new(App {
            engine: self.engine,
            scheduler,
            config: self.config,
            model_id,
            metrics,
        });
        let (stop_tx, stop_rx) = watch::channel(Stop::Run);
        let listener = {
            let _enter = runtime.enter();
            TcpListener::from_std(listener).map_err(bind_err)?
        };
        let thread = std::thread::Builder::new()
            .name("rlft-serve-accept".into())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, app, stop_rx));
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(ServeError::Start)?;
        Ok(ServerHandle {
            addr,
            stop: stop_tx,
            thread: Some(thread),
        })
    }
}

/// What the accept loop is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    /// Stop accepting; let requests in flight finish (at most [`GRACE`]).
    Graceful,
    /// Close every connection now.
    Abort,
}

/// A running server; dropping it shuts the server down gracefully.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: watch::Sender<Stop>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API root, `http://{addr}/v1`, for rlft-rollout's `HttpConfig::new`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Stop accepting, let requests in flight finish (at most 5 s), and close.
    pub fn shutdown(mut self) {
        self.finish(Stop::Graceful);
    }

    /// Stop at once: close the listening socket and every open connection (clients in flight
    /// see a reset or an early end), as a crashed server would.
    pub fn abort(mut self) {
        self.finish(Stop::Abort);
    }

    /// Block until the server stops (it stops only through another handle operation or the
    /// process ending; `rlft serve` waits here).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn finish(&mut self, how: Stop) {
        let _ = self.stop.send(how);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.finish(Stop::Graceful);
    }
}

async fn accept_loop(listener: TcpListener, app: Arc<App>, mut stop: watch::Receiver<Stop>) {
    let service = router(app.clone());
    let slots = Arc::new(Semaphore::new(app.config.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(app.config.head_timeout())
        .max_buf_size(app.config.max_header_bytes.max(8192))
        .max_header_size(app.config.max_header_bytes);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or a reset before accept: back off briefly.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    app.metrics.rejected();
                    conns.spawn(reject(stream));
                    continue;
                };
                let conn = builder.serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service.clone()),
                );
                let mut stop = stop.clone();
                conns.spawn(async move {
                    let _permit = permit;
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => {
                            if *stop.borrow() == Stop::Abort {
                                return;
                            }
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(GRACE, conn).await;
                        }
                    }
                });
                // Reap finished connections so the set stays small.
                while conns.try_join_next().is_some() {}
            }
        }
    }
    drop(listener);
    if *stop.borrow() == Stop::Abort {
        conns.abort_all();
    }
    let _ = tokio::time::timeout(GRACE + Duration::from_secs(1), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
}

/// Answer a connection over the limit with 503: read what the client sent first (briefly), so
/// that closing does not reset the answer away.
async fn reject(mut stream: TcpStream) {
    let mut buf = [0u8; 8192];
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
    let body = r#"{"error":{"message":"the server is at its connection limit (--max-connections)","type":"service_unavailable","param":null,"code":503}}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}
