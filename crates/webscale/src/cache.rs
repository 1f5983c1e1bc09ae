//! The on-disk reply cache: what makes reruns free and resumes exact.
//!
//! An append-only JSONL file of `{"key", "reply"}`, one line per successful model call,
//! written (and flushed) as each reply arrives, so a run killed at any point keeps every
//! reply it paid for. A torn last line (the process died mid-write) is dropped on open.
//! Retryable failures (rate limits, 5xx, timeouts) are never cached: a resumed run retries
//! them. Terminal failures (a 4xx other than 429) are cached as errors, so a resumed run does
//! not send the same request again.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::chat::ChatRequest;
use crate::error::{Result, WebscaleError};
use crate::ingest::sha256_hex;

#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A cached outcome of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// The model's reply.
    Reply(String),
    /// A terminal error (not retried on resume).
    Terminal(String),
}

/// The cache key of a call: sha256 of (stage, model id, messages, temperature, max_tokens,
/// seed, stop) as canonical JSON.
pub fn cache_key(stage: &str, model: &str, req: &ChatRequest) -> String {
    let v = serde_json::json!([
        stage,
        model,
        req.messages,
        req.temperature,
        req.max_tokens,
        req.seed,
        req.stop
    ]);
    sha256_hex(v.to_string().as_bytes())
}

/// Replies by key, backed by an append-only file (or memory only).
#[derive(Debug)]
pub struct ReplyCache {
    path: Option<PathBuf>,
    map: Mutex<HashMap<String, Cached>>,
    file: Option<Mutex<File>>,
}

impl ReplyCache {
    /// A cache in memory only.
    pub fn in_memory() -> Self {
        Self {
            path: None,
            map: Mutex::new(HashMap::new()),
            file: None,
        }
    }

    /// Opens (or creates) the cache file at `path`, reading what it holds.
    ///
    /// # Errors
    /// [`WebscaleError::Io`]; [`WebscaleError::Input`] for a bad line other than a torn last
    /// one.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| WebscaleError::io(dir, e))?;
        }
        let mut map = HashMap::new();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(WebscaleError::io(path, e)),
        };
        let mut good = 0usize;
        let mut line_no = 0usize;
        let mut pos = 0usize;
        while pos < bytes.len() {
            line_no += 1;
            let end = bytes[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| pos + i);
            let Some(end) = end else { break }; // torn last line: no newline
            match serde_json::from_slice::<Line>(&bytes[pos..end]) {
                Ok(l) => {
                    let v = match (l.reply, l.error) {
                        (Some(r), _) => Cached::Reply(r),
                        (None, Some(e)) => Cached::Terminal(e),
                        (None, None) => Cached::Terminal(String::new()),
                    };
                    map.insert(l.key, v);
                    good = end + 1;
                }
                Err(e) if end + 1 >= bytes.len() => {
                    let _ = e; // a torn last line that happens to end in a newline
                    break;
                }
                Err(e) => {
                    return Err(WebscaleError::Input {
                        path: path.to_path_buf(),
                        line: line_no,
                        reason: format!("not a cache line: {e}"),
                    });
                }
            }
            pos = end + 1;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(false)
            .write(true)
            .truncate(false)
            .open(path)
            .map_err(|e| WebscaleError::io(path, e))?;
        file.set_len(good as u64)
            .map_err(|e| WebscaleError::io(path, e))?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| WebscaleError::io(path, e))?;
        Ok(Self {
            path: Some(path.to_path_buf()),
            map: Mutex::new(map),
            file: Some(Mutex::new(file)),
        })
    }

    /// The cached outcome for `key`.
    pub fn get(&self, key: &str) -> Option<Cached> {
        self.map.lock().ok()?.get(key).cloned()
    }

    /// Stores an outcome (in memory, and appended to the file).
    ///
    /// # Errors
    /// [`WebscaleError::Io`] when the append fails.
    pub fn put(&self, key: String, value: Cached) -> Result<()> {
        if let Some(file) = &self.file {
            let (reply, error) = match &value {
                Cached::Reply(r) => (Some(r.clone()), None),
                Cached::Terminal(e) => (None, Some(e.clone())),
            };
            let mut line = serde_json::to_string(&Line {
                key: key.clone(),
                reply,
                error,
            })
            .unwrap_or_default();
            line.push('\n');
            let mut f = file.lock().map_err(|_| poisoned(self.path.as_deref()))?;
            f.write_all(line.as_bytes())
                .map_err(|e| WebscaleError::io(self.path.clone().unwrap_or_default(), e))?;
        }
        if let Ok(mut m) = self.map.lock() {
            m.insert(key, value);
        }
        Ok(())
    }

    /// Replies held.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether it holds no reply.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn poisoned(path: Option<&Path>) -> WebscaleError {
    WebscaleError::io(
        path.map(Path::to_path_buf).unwrap_or_default(),
        std::io::Error::other("the cache lock is poisoned"),
    )
}
