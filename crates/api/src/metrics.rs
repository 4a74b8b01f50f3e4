//! Prometheus metrics of the API (OpenMetrics text at `GET /metrics`): requests by route, method
//! and status; request latency by route; records and bytes appended per topic; end offsets.
//!
//! The other stages of a process (the sink, the streaming job, the scheduler, the emulator in
//! `pinpipe up`) add their metrics as collectors ([`Metrics::register_collector`]): read from
//! their status at each scrape, so they cost the stages' hot paths nothing. A process without
//! the API serves the same text on its own listener ([`serve_metrics`]).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a request (static strings: no allocation per request).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route template, e.g. `/topics/{topic}`.
    pub route: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// HTTP status code.
    pub status: u16,
}

/// Labels of a route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route template.
    pub route: &'static str,
}

/// The route templates (metrics label them without allocating).
pub const ROUTES: &[&str] = &[
    "/topics",
    "/topics/{topic}",
    "/topics/{topic}/partitions",
    "/topics/{topic}/partitions/{partition}",
    "/topics/{topic}/partitions/{partition}/offsets",
    "/streams",
    "/streams/{stream}",
    "/streams/{stream}/record",
    "/streams/{stream}/records",
    "/streams/{stream}/sharditerator",
    "/consumers/{group}",
    "/consumers/{group}/instances/{instance}",
    "/consumers/{group}/instances/{instance}/subscription",
    "/consumers/{group}/instances/{instance}/assignments",
    "/consumers/{group}/instances/{instance}/positions",
    "/consumers/{group}/instances/{instance}/positions/beginning",
    "/consumers/{group}/instances/{instance}/positions/end",
    "/consumers/{group}/instances/{instance}/records",
    "/consumers/{group}/instances/{instance}/offsets",
    "/healthz",
    "/metrics",
    "/ui",
    "/api/v1/overview",
    "/api/v1/records/{name}",
    "/api/v1/batch/report",
];

/// The static label of a matched route (`other` for anything unexpected).
pub fn route_label(matched: &str, base: &str) -> &'static str {
    let path = matched.strip_prefix(base).unwrap_or(matched);
    ROUTES.iter().find(|r| **r == path).copied().unwrap_or("other")
}

/// The static label of a method.
pub fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counters of one topic, looked up once and kept.
struct TopicCounters {
    records: Counter,
    bytes: Counter,
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
    /// End offset per partition (refreshed from the log at each scrape).
    pub end_offset: Family<PartitionLabels, Gauge<u64, AtomicU64>>,
    /// Bytes retention keeps because a consumer has not read them yet, per partition.
    pub retention_held: Family<PartitionLabels, Gauge<u64, AtomicU64>>,
    /// Bytes of produce requests in flight (refreshed at each scrape).
    pub inflight_bytes: Gauge,
    /// Produce requests refused because the in-flight budget was used up.
    pub overloaded: Counter,
    /// REST Proxy consumer instances (refreshed at each scrape).
    pub consumer_instances: Gauge,
    topics: RwLock<HashMap<String, Arc<TopicCounters>>>,
    /// The other stages' collectors.
    stages: StageMetrics,
}

/// The metrics of the stages of a process, as collectors read at each scrape.
pub struct StageMetrics {
    registry: RwLock<Registry>,
}

impl Default for StageMetrics {
    fn default() -> Self {
        StageMetrics { registry: RwLock::new(Registry::with_prefix("pinpipe")) }
    }
}

impl StageMetrics {
    /// Adds a stage's collector (its metric names get the `pinpipe_` prefix).
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        if let Ok(mut r) = self.registry.write() {
            r.register_collector(collector);
        }
    }

    fn encode(&self, out: &mut String) {
        if let Ok(r) = self.registry.read() {
            // Writing into a String cannot fail.
            let _ = prometheus_client::encoding::text::encode_registry(out, &r);
        }
    }

    /// The OpenMetrics text of the stages alone.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.encode(&mut out);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }
}

/// Writes one histogram family of latencies (seconds) kept as [`Histogram`] counts.
///
/// [`Histogram`]: pinpipe_model::histogram::Histogram
pub fn latency_histograms<L: EncodeLabelSet>(
    enc: &mut prometheus_client::encoding::DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: &[(L, &pinpipe_model::histogram::Histogram)],
) -> std::fmt::Result {
    let unit = prometheus_client::registry::Unit::Seconds;
    let mut family =
        enc.encode_descriptor(name, help, Some(&unit), prometheus_client::metrics::MetricType::Histogram)?;
    for (labels, h) in series {
        family.encode_family(labels)?.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            h.sum_seconds(),
            h.count,
            &h.buckets(),
            None,
        )?;
    }
    Ok(())
}

/// Writes one histogram of latencies (seconds) without labels.
pub fn encode_latency(
    enc: &mut prometheus_client::encoding::DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    h: &pinpipe_model::histogram::Histogram,
) -> std::fmt::Result {
    let unit = prometheus_client::registry::Unit::Seconds;
    enc.encode_descriptor(name, help, Some(&unit), prometheus_client::metrics::MetricType::Histogram)?
        .encode_histogram::<prometheus_client::encoding::NoLabelSet>(h.sum_seconds(), h.count, &h.buckets(), None)
}

/// The log's own series that it measures itself (the embedded log's fsync latencies).
pub struct LogMetrics(pub Arc<dyn pinpipe_log::OffsetLog>);

impl std::fmt::Debug for LogMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogMetrics")
    }
}

impl Collector for LogMetrics {
    fn encode(&self, mut enc: prometheus_client::encoding::DescriptorEncoder) -> std::fmt::Result {
        let Some(h) = self.0.sync_latency() else { return Ok(()) };
        let help = "Time of each fsync that made appends durable (one per partition and group of appends)";
        encode_latency(&mut enc, "log_fsync_duration", help, &h)
    }
}

/// The content type of OpenMetrics text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` (the stages' metrics) and `GET /healthz` on `listener` until `stop`:
/// for a stage run alone, without the API (`--metrics-listen`).
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    stages: Arc<StageMetrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let stages = Arc::clone(&stages);
                async move {
                    let mut r = stages.render().into_response();
                    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
                    r
                }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { r#"{"status":"ok"}"# }));
    axum::serve(listener, app).with_graceful_shutdown(stop).await
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("pinpipe");
        let requests = Family::default();
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let records = Family::default();
        let bytes = Family::default();
        let end_offset = Family::default();
        let retention_held = Family::default();
        registry.register("api_requests", "HTTP requests by route, method and status", requests.clone());
        registry.register("api_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register("log_appended_records", "Records appended per topic", records.clone());
        registry.register("log_appended_bytes", "Key and value bytes appended per topic", bytes.clone());
        registry.register("log_end_offset", "Next offset of each partition", end_offset.clone());
        registry.register(
            "log_retention_held_bytes",
            "Bytes retention keeps because the sink or the streaming job has not consumed them yet",
            retention_held.clone(),
        );
        let inflight_bytes = Gauge::default();
        let overloaded = Counter::default();
        let consumer_instances = Gauge::default();
        registry.register(
            "api_inflight_bytes",
            "Bytes of produce requests received and not yet answered (bounded by api.max_inflight_bytes)",
            inflight_bytes.clone(),
        );
        registry.register(
            "api_overloaded_requests",
            "Produce requests answered 429 / ProvisionedThroughputExceededException: the in-flight budget was used up",
            overloaded.clone(),
        );
        registry.register("api_consumer_instances", "REST Proxy consumer instances", consumer_instances.clone());
        Metrics {
            registry,
            requests,
            latency,
            records,
            bytes,
            end_offset,
            retention_held,
            inflight_bytes,
            overloaded,
            consumer_instances,
            topics: RwLock::default(),
            stages: StageMetrics::default(),
        }
    }
}

impl Metrics {
    /// Records appended to `topic` through this API since it started.
    pub fn appended_records(&self, topic: &str) -> u64 {
        self.topics.read().ok().and_then(|t| t.get(topic).map(|c| c.records.get())).unwrap_or(0)
    }

    /// Counts an append of `records` records and `bytes` bytes to `topic`.
    pub fn appended(&self, topic: &str, records: u64, bytes: u64) {
        let known = self.topics.read().ok().and_then(|t| t.get(topic).cloned());
        let counters = match known {
            Some(c) => c,
            None => {
                let labels = TopicLabels { topic: topic.to_owned() };
                let c = Arc::new(TopicCounters {
                    records: self.records.get_or_create(&labels).clone(),
                    bytes: self.bytes.get_or_create(&labels).clone(),
                });
                if let Ok(mut t) = self.topics.write() {
                    t.insert(topic.to_owned(), Arc::clone(&c));
                }
                c
            }
        };
        counters.records.inc_by(records);
        counters.bytes.inc_by(bytes);
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        self.stages.encode(&mut out);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }

    /// Adds a stage's collector to this process's `/metrics`.
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        self.stages.register_collector(collector);
    }
}
