//! Prometheus metrics of the server (`GET /metrics`, text exposition format), named after
//! vLLM's where they mean the same thing.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// The route (`/v1/completions`, …; `other` for unknown paths).
    pub route: String,
    /// The HTTP status.
    pub status: u16,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub route: String,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Every metric, and the registry that renders them.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    queue_depth: Gauge,
    running: Gauge,
    tokens: Counter,
    tokens_per_second: Gauge<f64, AtomicU64>,
    batch_requests: Histogram,
    cancelled: Counter,
    rejected: Counter,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("rlft");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        let queue_depth = Gauge::default();
        let running = Gauge::default();
        let tokens = Counter::default();
        let tokens_per_second = Gauge::<f64, AtomicU64>::default();
        let batch_requests = Histogram::new(exponential_buckets(1.0, 2.0, 8));
        let cancelled = Counter::default();
        let rejected = Counter::default();
        registry.register(
            "requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        registry.register(
            "request_latency_seconds",
            "Seconds from a request's head to its response head (a stream's first event)",
            latency.clone(),
        );
        registry.register(
            "queue_depth",
            "Requests waiting for the engine (vLLM: num_requests_waiting)",
            queue_depth.clone(),
        );
        registry.register(
            "requests_running",
            "Requests in the engine's current batch (vLLM: num_requests_running)",
            running.clone(),
        );
        registry.register(
            "generation_tokens",
            "Tokens generated (vLLM: generation_tokens_total)",
            tokens.clone(),
        );
        registry.register(
            "generation_tokens_per_second",
            "Tokens per second of the last finished batch",
            tokens_per_second.clone(),
        );
        registry.register(
            "batch_requests",
            "Requests decoded together per engine batch",
            batch_requests.clone(),
        );
        registry.register(
            "requests_cancelled",
            "Requests whose client left before they finished",
            cancelled.clone(),
        );
        registry.register(
            "requests_rejected",
            "Requests refused because the queue or the connection limit was full",
            rejected.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            queue_depth,
            running,
            tokens,
            tokens_per_second,
            batch_requests,
            cancelled,
            rejected,
        }
    }

    /// Count an answered request and its latency.
    pub(crate) fn request(&self, route: &str, status: u16, latency: Duration) {
        let route = route.to_string();
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(latency.as_secs_f64());
    }

    pub(crate) fn set_queue_depth(&self, depth: usize) {
        self.queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    pub(crate) fn batch_started(&self, requests: usize) {
        self.running
            .set(i64::try_from(requests).unwrap_or(i64::MAX));
        self.batch_requests.observe(requests as f64);
    }

    pub(crate) fn batch_finished(&self, tokens: u64, took: Duration) {
        self.running.set(0);
        self.tokens.inc_by(tokens);
        let secs = took.as_secs_f64();
        if secs > 0.0 {
            self.tokens_per_second.set(tokens as f64 / secs);
        }
    }

    pub(crate) fn cancelled(&self) {
        self.cancelled.inc();
    }

    pub(crate) fn rejected(&self) {
        self.rejected.inc();
    }

    /// The text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
