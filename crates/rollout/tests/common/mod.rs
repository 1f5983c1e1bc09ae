//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rlft_core::Completion;
use rlft_rollout::{BigramEngine, Prompt, RolloutEngine, SamplingParams};

/// A small fitted bigram engine.
pub fn bigram() -> BigramEngine {
    BigramEngine::fit("hello world\nhold the door\nwhere are we\nhe ran\n", 0.3, 7).unwrap()
}

/// Wraps an engine: sleeps before each call and records the most calls in flight at once.
pub struct Slow<E> {
    pub inner: E,
    pub delay: Duration,
    pub calls: AtomicUsize,
    pub current: AtomicUsize,
    pub max_seen: AtomicUsize,
}

impl<E> Slow<E> {
    pub fn new(inner: E, delay: Duration) -> Self {
        Self {
            inner,
            delay,
            calls: AtomicUsize::new(0),
            current: AtomicUsize::new(0),
            max_seen: AtomicUsize::new(0),
        }
    }
}

impl<E: RolloutEngine> RolloutEngine for Slow<E> {
    fn generate(
        &self,
        prompts: &[Prompt],
        params: &SamplingParams,
    ) -> rlft_rollout::Result<Vec<Vec<Completion>>> {
        let now = self.current.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_seen.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        let out = self.inner.generate(prompts, params);
        self.current.fetch_sub(1, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        out
    }

    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn token_text(&self, id: u32) -> Option<String> {
        self.inner.token_text(id)
    }
}
