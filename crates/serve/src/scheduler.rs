//! The scheduler: one engine thread that owns the generation work, fed by a bounded queue.
//!
//! Handlers [`submit`](Scheduler::submit) a [`Job`] and await its [`JobEvent`]s on a channel.
//! The engine thread takes the first waiting job, waits `batch_window` for more (up to
//! `max_batch_requests`), and runs them as one [`RolloutEngine::generate_many`] call, so
//! concurrent requests share one batched pass of the local engine. Before every decode step the
//! engine asks whether a job was cancelled (its handler dropped its receiver, e.g. because the
//! client went away, or set its flag), so a disconnect stops its rows within one step. A full
//! queue is refused at once ([`Submit::Full`]), which handlers answer with 429.
//!
//! The engine is reached only through [`Command`]s on this thread; later commands (a weight
//! reload) join `Command::Generate` there, between batches.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rlft_core::Completion;
use rlft_rollout::{
    GenerationObserver, GenerationRequest, RolloutEngine, RolloutError, TokenEvent, Tokenizer,
};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::metrics::Metrics;

/// The engine as the server holds it.
pub(crate) type SharedEngine = Arc<dyn RolloutEngine + Send + Sync>;

/// What a job reports back to its handler.
#[derive(Debug)]
pub(crate) enum JobEvent {
    /// New text of one choice (streaming jobs only); stable: never part of a stop string.
    Delta {
        prompt: usize,
        sample: usize,
        text: String,
    },
    /// The job's result.
    Done(Result<Vec<Vec<Completion>>, RolloutError>),
}

/// One request for the engine thread.
pub(crate) struct Job {
    pub request: GenerationRequest,
    /// Compute text deltas as tokens arrive.
    pub stream: bool,
    events: UnboundedSender<JobEvent>,
    cancel: Arc<AtomicBool>,
}

impl Job {
    /// A job and the receiver of its events; the returned guard cancels it when dropped.
    pub(crate) fn new(
        request: GenerationRequest,
        stream: bool,
    ) -> (Self, UnboundedReceiver<JobEvent>, CancelOnDrop) {
        let (events, rx) = unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let guard = CancelOnDrop(cancel.clone());
        (
            Self {
                request,
                stream,
                events,
                cancel,
            },
            rx,
            guard,
        )
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.events.is_closed()
    }
}

/// Sets a job's cancel flag when dropped (a handler's future or stream going away).
#[derive(Debug)]
pub(crate) struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Work for the engine thread.
enum Command {
    Generate(Job),
    Stop,
}

/// Why [`Scheduler::submit`] refused a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Submit {
    /// The queue holds `max_queue` jobs.
    Full,
    /// The engine thread is gone (shutting down).
    Closed,
}

/// Settings of the scheduler (from [`ServeConfig`](crate::ServeConfig)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SchedulerConfig {
    pub max_queue: usize,
    pub max_batch_requests: usize,
    pub batch_window: Duration,
}

/// The handle on the engine thread.
pub(crate) struct Scheduler {
    tx: SyncSender<Command>,
    depth: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    thread: Option<JoinHandle<()>>,
}

impl Scheduler {
    /// Start the engine thread.
    pub(crate) fn start(
        engine: SharedEngine,
        config: SchedulerConfig,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(config.max_queue);
        let depth = Arc::new(AtomicUsize::new(0));
        let thread = {
            let depth = depth.clone();
            let metrics = metrics.clone();
            std::thread::Builder::new()
                .name("rlft-engine".into())
                .spawn(move || engine_loop(&*engine, &rx, config, &depth, &metrics))?
        };
        Ok(Self {
            tx,
            depth,
            metrics,
            thread: Some(thread),
        })
    }

    /// Queue a job, or say why not (never blocks).
    pub(crate) fn submit(&self, job: Job) -> Result<(), Submit> {
        self.depth.fetch_add(1, Ordering::SeqCst);
        match self.tx.try_send(Command::Generate(job)) {
            Ok(()) => {
                self.metrics
                    .set_queue_depth(self.depth.load(Ordering::SeqCst));
                Ok(())
            }
            Err(e) => {
                self.depth.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    TrySendError::Full(_) => Submit::Full,
                    TrySendError::Disconnected(_) => Submit::Closed,
                })
            }
        }
    }

    /// Stop the engine thread after its current batch (whose clients are gone by then, so it
    /// ends within a step).
    pub(crate) fn stop(&mut self) {
        let _ = self.tx.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop();
    }
}

fn engine_loop(
    engine: &(dyn RolloutEngine + Send + Sync),
    rx: &Receiver<Command>,
    config: SchedulerConfig,
    depth: &AtomicUsize,
    metrics: &Metrics,
) {
    loop {
        let first = match rx.recv() {
            Ok(Command::Generate(job)) => job,
            Ok(Command::Stop) | Err(_) => return,
        };
        let mut jobs = vec![first];
        let mut stop = false;
        let until = Instant::now() + config.batch_window;
        while jobs.len() < config.max_batch_requests {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Command::Generate(job)) => jobs.push(job),
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    stop = true;
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        let left = depth.fetch_sub(jobs.len(), Ordering::SeqCst) - jobs.len();
        metrics.set_queue_depth(left);
        // Jobs whose clients left while queued cost nothing.
        jobs.retain(|j| {
            let gone = j.cancelled();
            if gone {
                metrics.cancelled();
            }
            !gone
        });
        if !jobs.is_empty() {
            run_batch(engine, &jobs, metrics);
        }
        if stop {
            return;
        }
    }
}

/// One `generate_many` call over `jobs`; every job gets exactly one `Done`, even if the engine
/// panics.
fn run_batch(engine: &(dyn RolloutEngine + Send + Sync), jobs: &[Job], metrics: &Metrics) {
    let requests: Vec<GenerationRequest> = jobs.iter().map(|j| j.request.clone()).collect();
    let mut observer = BatchObserver {
        jobs,
        done: vec![false; jobs.len()],
        decoders: vec![HashMap::new(); jobs.len()],
        tokenizer: engine.tokenizer(),
        tokens: 0,
        metrics,
    };
    metrics.batch_started(jobs.len());
    let start = Instant::now();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        engine.generate_many(&requests, &mut observer);
    }));
    metrics.batch_finished(observer.tokens, start.elapsed());
    let missing = if outcome.is_err() {
        "the engine panicked"
    } else {
        "the engine returned no result"
    };
    for (job, done) in jobs.iter().zip(&observer.done) {
        if !done {
            let _ = job.events.send(JobEvent::Done(Err(RolloutError::Model {
                reason: missing.into(),
            })));
        }
    }
}

struct BatchObserver<'a> {
    jobs: &'a [Job],
    done: Vec<bool>,
    /// Per job, per (prompt, sample): the streaming text state.
    decoders: Vec<HashMap<(usize, usize), Decoder>>,
    tokenizer: Option<&'a dyn Tokenizer>,
    tokens: u64,
    metrics: &'a Metrics,
}

impl GenerationObserver for BatchObserver<'_> {
    fn on_token(&mut self, event: TokenEvent) {
        self.tokens += 1;
        let Some(job) = self.jobs.get(event.request) else {
            return;
        };
        // The last token's text comes with the final completion (it may complete a stop).
        if !job.stream || event.finished {
            return;
        }
        let Some(tok) = self.tokenizer else {
            return;
        };
        let decoder = self.decoders[event.request]
            .entry((event.prompt, event.sample))
            .or_default();
        let text = decoder.push(tok, event.token, &job.request.params.stop);
        if !text.is_empty() {
            let _ = job.events.send(JobEvent::Delta {
                prompt: event.prompt,
                sample: event.sample,
                text,
            });
        }
    }

    fn is_cancelled(&self, request: usize) -> bool {
        self.jobs.get(request).is_none_or(Job::cancelled)
    }

    fn on_done(&mut self, request: usize, result: rlft_rollout::Result<Vec<Vec<Completion>>>) {
        if let (Some(job), Some(done)) = (self.jobs.get(request), self.done.get_mut(request))
            && !*done
        {
            *done = true;
            if job.cancelled() {
                self.metrics.cancelled();
            }
            let _ = job.events.send(JobEvent::Done(result));
        }
    }
}

/// Incremental detokenization of one choice (the prefix/read-offset window of HF's
/// text-generation-inference): only text that a later token cannot change is released, and a
/// tail that could begin a stop string is held back.
#[derive(Debug, Clone, Default)]
pub(crate) struct Decoder {
    ids: Vec<u32>,
    prefix: usize,
    read: usize,
    pending: String,
}

impl Decoder {
    /// Add `id`; returns the text now safe to send (possibly empty).
    pub(crate) fn push(&mut self, tok: &dyn Tokenizer, id: u32, stops: &[String]) -> String {
        self.ids.push(id);
        let before = tok
            .decode(&self.ids[self.prefix..self.read])
            .unwrap_or_default();
        let now = tok.decode(&self.ids[self.prefix..]).unwrap_or_default();
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') && now.starts_with(&before) {
            self.pending.push_str(&now[before.len()..]);
            self.prefix = self.read;
            self.read = self.ids.len();
        }
        let hold = stop_prefix_len(&self.pending, stops);
        let cut = self.pending.len() - hold;
        let out = self.pending[..cut].to_string();
        self.pending.drain(..cut);
        out
    }
}

/// Byte length of the longest suffix of `text` that is a proper prefix of a stop string.
pub(crate) fn stop_prefix_len(text: &str, stops: &[String]) -> usize {
    let mut best = 0;
    for stop in stops {
        for (i, _) in text.char_indices() {
            let tail = &text[i..];
            if tail.len() < stop.len() && stop.starts_with(tail) {
                best = best.max(tail.len());
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlft_rollout::CharVocab;

    #[test]
    fn decoder_releases_text_and_holds_back_stop_prefixes() {
        let v = CharVocab::new("abc\n");
        let ids = v.encode("ab\nc", false).unwrap();
        let stops = vec!["\nx".to_string()];
        let mut d = Decoder::default();
        let out: Vec<String> = ids.iter().map(|&id| d.push(&v, id, &stops)).collect();
        // "\n" could start "\nx": held until "c" shows it does not.
        assert_eq!(out, vec!["a", "b", "", "\nc"]);
        assert_eq!(stop_prefix_len("ab\n", &stops), 1);
        assert_eq!(stop_prefix_len("ab", &stops), 0);
        assert_eq!(stop_prefix_len("", &stops), 0);
    }
}
