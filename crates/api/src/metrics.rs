//! Prometheus metrics of the API (OpenMetrics text at `GET /metrics`): requests by route, method
//! and status; request latency by route; records and bytes appended per topic; end offsets.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route template, e.g. `/topics/{topic}`.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// HTTP status code.
    pub status: u16,
}

/// Labels of a route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route template.
    pub route: String,
}

/// Labels of a topic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// Topic or stream name.
    pub topic: String,
}

/// Labels of a partition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    /// Topic or stream name.
    pub topic: String,
    /// Partition (shard) number.
    pub partition: u32,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// The API's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    /// Requests by route, method and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency by route.
    pub latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Records appended per topic.
    pub records: Family<TopicLabels, Counter>,
    /// Bytes (keys and values) appended per topic.
    pub bytes: Family<TopicLabels, Counter>,
    /// End offset per partition.
    pub end_offset: Family<PartitionLabels, Gauge<u64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("pinpipe");
        let requests = Family::default();
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let records = Family::default();
        let bytes = Family::default();
        let end_offset = Family::default();
        registry.register("api_requests", "HTTP requests by route, method and status", requests.clone());
        registry.register("api_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register("log_appended_records", "Records appended per topic", records.clone());
        registry.register("log_appended_bytes", "Key and value bytes appended per topic", bytes.clone());
        registry.register("log_end_offset", "Next offset of each partition", end_offset.clone());
        Metrics { registry, requests, latency, records, bytes, end_offset }
    }
}

impl Metrics {
    /// Counts an append of `records` records and `bytes` bytes to `topic`, ending at `end`.
    pub fn appended(&self, topic: &str, partition: u32, records: u64, bytes: u64, end: u64) {
        let t = TopicLabels { topic: topic.to_owned() };
        self.records.get_or_create(&t).inc_by(records);
        self.bytes.get_or_create(&t).inc_by(bytes);
        self.end_offset.get_or_create(&PartitionLabels { topic: t.topic, partition }).set(end);
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
