//! A tiny OpenAI-compatible stand-in server on `std::net` for loopback tests: answers
//! `POST /v1/chat/completions` through a handler that may also inject faults.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the handler tells the server to do with one request.
pub enum Reply {
    /// 200 with this assistant text.
    Text(String),
    /// This status with a short error body.
    Status(u16),
    /// Wait, then 200 with the text (a slow server; the client may time out first).
    Slow(Duration, String),
}

/// The handler: (request number from 0, request JSON) → reply.
pub type Handler = dyn Fn(usize, &serde_json::Value) -> Reply + Send + Sync;

/// A running stand-in.
pub struct StandIn {
    pub addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Requests received (all statuses).
    pub received: Arc<AtomicUsize>,
    /// 200 replies sent.
    pub answered: Arc<AtomicUsize>,
}

impl StandIn {
    /// Starts on `addr` (`127.0.0.1:0` for any port).
    pub fn start(addr: &str, handler: Arc<Handler>) -> Self {
        Self::start_counting(addr, handler, Arc::default(), Arc::default())
    }

    /// Starts with shared counters (to keep counting across a restart).
    pub fn start_counting(
        addr: &str,
        handler: Arc<Handler>,
        received: Arc<AtomicUsize>,
        answered: Arc<AtomicUsize>,
    ) -> Self {
        let listener = bind_retry(addr);
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, r, a) = (stop.clone(), received.clone(), answered.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, r, a, s) = (handler.clone(), r.clone(), a.clone(), s.clone());
                std::thread::spawn(move || serve(conn, &*h, &r, &a, &s));
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
            received,
            answered,
        }
    }

    /// `http://addr/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Stops accepting (open connections finish).
    pub fn stop(mut self) -> std::net::SocketAddr {
        self.halt();
        self.addr
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.halt();
    }
}

fn bind_retry(addr: &str) -> TcpListener {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(addr) {
            return l;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    TcpListener::bind(addr).unwrap()
}

fn serve(
    conn: TcpStream,
    handler: &Handler,
    received: &AtomicUsize,
    answered: &AtomicUsize,
    stop: &AtomicBool,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if stop.load(Ordering::SeqCst) {
            return; // a stopped server drops the connection
        }
        let req: serde_json::Value =
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        let n = received.fetch_add(1, Ordering::SeqCst);
        let (status, text) = match handler(n, &req) {
            Reply::Text(t) => (200, t),
            Reply::Slow(d, t) => {
                std::thread::sleep(d);
                (200, t)
            }
            Reply::Status(s) => (s, String::new()),
        };
        let payload = if status == 200 {
            answered.fetch_add(1, Ordering::SeqCst);
            serde_json::json!({
                "id": format!("chatcmpl-{n}"), "object": "chat.completion", "created": 0,
                "model": req["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]
            })
            .to_string()
        } else {
            serde_json::json!({"error": {"message": format!("injected {status}")}}).to_string()
        };
        let reason = match status {
            200 => "OK",
            429 => "Too Many Requests",
            400 => "Bad Request",
            _ => "Error",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            payload.len()
        );
        if conn
            .write_all(head.as_bytes())
            .and_then(|_| conn.write_all(payload.as_bytes()))
            .is_err()
        {
            return;
        }
    }
}

/// The fixture script as a handler: the stage is the request's model name
/// (`scripted-<stage>`).
pub fn fixture_reply(req: &serde_json::Value) -> String {
    use rlft_webscale::{ChatModel, ChatRequest};
    let model = req["model"].as_str().unwrap_or("");
    let stage = model.strip_prefix("scripted-").unwrap_or("filter");
    let messages: Vec<rlft_rollout::Message> =
        serde_json::from_value(req["messages"].clone()).unwrap_or_default();
    let r = ChatRequest {
        messages,
        temperature: 1.0,
        max_tokens: 16,
        seed: None,
        stop: vec![],
    };
    rlft_webscale::fixture_model(stage)
        .chat(&r)
        .unwrap_or_default()
}
