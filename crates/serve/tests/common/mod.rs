//! Shared helpers of the server's integration tests: engines and a raw HTTP/1 client (so
//! that tests can send exactly the bytes a hostile client would).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rlft_core::Completion;
use rlft_rollout::{
    BigramEngine, GenerationObserver, GenerationRequest, Prompt, RolloutEngine, SamplingParams,
    Tokenizer,
};

/// A small fitted bigram engine.
pub fn bigram() -> BigramEngine {
    BigramEngine::fit("hello world\nhold the door\nwhere are we\nhe ran\n", 0.3, 7).unwrap()
}

/// The bigram engine with a context length (one token per character).
pub struct WithContext(pub BigramEngine, pub usize);

impl RolloutEngine for WithContext {
    fn generate(
        &self,
        prompts: &[Prompt],
        params: &SamplingParams,
    ) -> rlft_rollout::Result<Vec<Vec<Completion>>> {
        self.0.generate(prompts, params)
    }
    fn model_id(&self) -> &str {
        self.0.model_id()
    }
    fn tokenizer(&self) -> Option<&dyn Tokenizer> {
        self.0.tokenizer()
    }
    fn context_len(&self) -> Option<usize> {
        Some(self.1)
    }
    fn generate_many(&self, r: &[GenerationRequest], o: &mut dyn GenerationObserver) {
        self.0.generate_many(r, o)
    }
}

/// Wraps an engine: sleeps before each batch, records batch sizes and calls.
pub struct Slow<E> {
    pub inner: E,
    pub delay: Duration,
    pub calls: AtomicUsize,
    pub batches: AtomicUsize,
    pub max_batch: AtomicUsize,
}

impl<E> Slow<E> {
    pub fn new(inner: E, delay: Duration) -> Self {
        Self {
            inner,
            delay,
            calls: AtomicUsize::new(0),
            batches: AtomicUsize::new(0),
            max_batch: AtomicUsize::new(0),
        }
    }
}

impl<E: RolloutEngine> RolloutEngine for Slow<E> {
    fn generate(
        &self,
        prompts: &[Prompt],
        params: &SamplingParams,
    ) -> rlft_rollout::Result<Vec<Vec<Completion>>> {
        std::thread::sleep(self.delay);
        let out = self.inner.generate(prompts, params);
        self.calls.fetch_add(1, Ordering::SeqCst);
        out
    }
    fn generate_many(&self, requests: &[GenerationRequest], o: &mut dyn GenerationObserver) {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.max_batch.fetch_max(requests.len(), Ordering::SeqCst);
        // The default: one `generate` per request.
        for (i, r) in requests.iter().enumerate() {
            if o.is_cancelled(i) {
                o.on_done(i, Ok(Vec::new()));
                continue;
            }
            let out = self.generate(&r.prompts, &r.params);
            o.on_done(i, out);
        }
    }
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn token_text(&self, id: u32) -> Option<String> {
        self.inner.token_text(id)
    }
}

/// A raw HTTP/1 response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Read one response (Content-Length or chunked body) from a buffered connection.
pub fn read_reply(r: &mut BufReader<TcpStream>) -> std::io::Result<Reply> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = get("content-length") {
        let len: usize = len.parse().map_err(std::io::Error::other)?;
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).map_err(std::io::Error::other)?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Send `request` bytes on a fresh connection and read one response.
pub fn raw(addr: SocketAddr, request: &str) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    read_reply(&mut BufReader::new(s)).unwrap()
}

/// A POST with a JSON body.
pub fn post_request(path: &str, body: &str, extra_headers: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

pub fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    raw(addr, &post_request(path, body, ""))
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

/// The `data:` payloads of an SSE body.
pub fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(|s| s.trim().to_string())
        .collect()
}

/// A metric's value in a Prometheus text body (the first sample whose line starts with
/// `prefix`).
pub fn metric(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
