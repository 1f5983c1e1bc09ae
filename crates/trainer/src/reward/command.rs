//! `kind = "command"`: a reward function in a long-running subprocess (a Python script, any
//! program) that reads and writes JSON lines.
//!
//! Protocol, one line each way per batch: rlft writes
//! `{"items": [{"prompt", "completion", "answer", "meta"}, …]}` and a newline to the process's
//! stdin; the process answers with one line `{"scores": [number | null, …]}` on stdout. Its
//! stderr is kept (the last lines) for error messages. `scripts/remote_reward.py` is a
//! working example.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{RewardFunction, RewardRequest, WireItem, WireReply, WireRequest, check_reply};
use crate::error::{Result, TrainerError};

fn default_timeout() -> f64 {
    60.0
}
fn default_batch() -> usize {
    64
}

/// Lines of the process's stderr kept for error messages.
const STDERR_LINES: usize = 20;

/// Settings of [`CommandReward`] (`[[reward]] kind = "command"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRewardConfig {
    /// The program and its arguments, e.g. `["python3", "scripts/remote_reward.py"]`.
    /// Required; relative paths resolve against the current directory.
    pub command: Vec<String>,
    /// Seconds to wait for the reply to one batch; past it the process is killed and the
    /// batch fails. Default 60.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Completions per line. Default 64.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
}

impl CommandRewardConfig {
    /// Settings for `command` with the defaults.
    pub fn new(command: Vec<String>) -> Self {
        Self {
            command,
            timeout_s: default_timeout(),
            batch_size: default_batch(),
        }
    }
}

/// A running reward process.
struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<std::io::Result<String>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: std::thread::JoinHandle<()>,
}

impl Running {
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let status = self.child.wait();
        // Let the reader take the last stderr lines (bounded: a grandchild may hold the pipe).
        for _ in 0..50 {
            if self.stderr_reader.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let tail: Vec<String> = self
            .stderr
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        let status = match status {
            Ok(s) => s.to_string(),
            Err(e) => format!("unknown status ({e})"),
        };
        if tail.is_empty() {
            format!("{status}; no stderr")
        } else {
            format!("{status}; last stderr: {}", tail.join(" | "))
        }
    }
}

/// A reward function in a subprocess that stays alive between batches. If it dies (or does
/// not answer within the timeout), the batch fails with an error giving its exit status and
/// the end of its stderr, and the next batch starts a fresh process.
pub struct CommandReward {
    config: CommandRewardConfig,
    running: Mutex<Option<Running>>,
    starts: Mutex<usize>,
}

impl std::fmt::Debug for CommandReward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandReward")
            .field("config", &self.config)
            .field("starts", &self.starts())
            .finish_non_exhaustive()
    }
}

impl CommandReward {
    /// A reward function for `config`; the process starts on the first batch.
    ///
    /// # Errors
    /// [`TrainerError::Config`] for an empty command, a zero batch size or a bad timeout.
    pub fn new(config: CommandRewardConfig) -> Result<Self> {
        if config.command.first().is_none_or(|p| p.is_empty()) {
            return Err(TrainerError::Config {
                field: "reward.command",
                reason: "must name a program, got an empty list".into(),
            });
        }
        super::check_batch_and_timeout(config.batch_size, config.timeout_s)?;
        Ok(Self {
            config,
            running: Mutex::new(None),
            starts: Mutex::new(0),
        })
    }

    /// How many times the process has been started (1 after the first batch; each death
    /// adds one at the next batch).
    pub fn starts(&self) -> usize {
        self.starts.lock().map_or(0, |s| *s)
    }

    fn name(&self) -> String {
        self.config.command.join(" ")
    }

    fn fail(&self, reason: String) -> TrainerError {
        TrainerError::Reward {
            name: format!("command `{}`", self.name()),
            reason,
        }
    }

    fn spawn(&self) -> Result<Running> {
        let mut child = Command::new(&self.config.command[0])
            .args(&self.config.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.fail(format!("cannot start: {e}")))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err(self.fail("cannot open the process's pipes".into()));
        };
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let end = line.is_err();
                if tx.send(line).is_err() || end {
                    break;
                }
            }
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let sink = Arc::clone(&tail);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr)
                .lines()
                .map_while(std::result::Result::ok)
            {
                if let Ok(mut t) = sink.lock() {
                    if t.len() == STDERR_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            }
        });
        if let Ok(mut s) = self.starts.lock() {
            *s += 1;
        }
        Ok(Running {
            child,
            stdin,
            lines,
            stderr: tail,
            stderr_reader,
        })
    }

    /// Sends one batch and reads its line; on any failure the process is stopped and the
    /// error says why.
    fn exchange(&self, slot: &mut Option<Running>, line: &str) -> Result<String> {
        if slot.is_none() {
            *slot = Some(self.spawn()?);
        }
        let Some(run) = slot.as_mut() else {
            return Err(self.fail("the process is not running".into()));
        };
        let sent = run
            .stdin
            .write_all(line.as_bytes())
            .and_then(|()| run.stdin.write_all(b"\n"))
            .and_then(|()| run.stdin.flush());
        let reply = match sent {
            Err(e) => Err(format!("writing to it failed ({e})")),
            Ok(()) => match run
                .lines
                .recv_timeout(Duration::from_secs_f64(self.config.timeout_s))
            {
                Ok(Ok(l)) => Ok(l),
                Ok(Err(e)) => Err(format!("reading its output failed ({e})")),
                Err(RecvTimeoutError::Timeout) => Err(format!(
                    "no reply within {} s; it was killed",
                    self.config.timeout_s
                )),
                Err(RecvTimeoutError::Disconnected) => {
                    Err("it closed its stdout (exited?)".to_string())
                }
            },
        };
        match reply {
            Ok(l) => Ok(l),
            Err(why) => {
                let status = slot.take().map(Running::stop).unwrap_or_default();
                Err(self.fail(format!("{why}: {status}; the next batch restarts it")))
            }
        }
    }
}

impl RewardFunction for CommandReward {
    fn score_batch(&self, batch: &[RewardRequest<'_>]) -> Result<Vec<f32>> {
        let mut slot = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(self.config.batch_size) {
            let body = WireRequest {
                items: chunk.iter().map(WireItem::from).collect(),
            };
            let line = serde_json::to_string(&body)
                .map_err(|e| self.fail(format!("cannot encode the batch: {e}")))?;
            let reply = self.exchange(&mut slot, &line)?;
            let reply: WireReply = serde_json::from_str(&reply).map_err(|e| {
                self.fail(format!(
                    "its reply is not {{\"scores\": [...]}} ({e}): {}",
                    reply.chars().take(300).collect::<String>()
                ))
            })?;
            out.extend(check_reply(&self.name(), reply, chunk.len())?);
        }
        Ok(out)
    }
}

impl Drop for CommandReward {
    fn drop(&mut self) {
        if let Some(run) = self.running.get_mut().ok().and_then(Option::take) {
            let _ = run.stop();
        }
    }
}
