//! The ingestion API: what the classic stack's API Gateway and Confluent REST Proxy did, over
//! the log port, so that existing clients work unmodified.
//!
//! * [`topics`]: Confluent REST Proxy v2 (`POST /topics/{topic}`, `GET /topics`, ...).
//! * [`streams`]: the classic API Gateway → Kinesis routes (`PUT /streams/{stream}/record`, ...).
//! * [`error`]: Confluent and Kinesis error bodies; [`body`]: request bodies and their limits;
//!   [`extract`]: validated path and query parameters, rejected with the family's error body.
//! * [`metrics`]: Prometheus metrics (the API's, and the process's other stages' collectors);
//!   `GET /healthz`.
//! * [`console`]: the web console, `GET /ui`, and the JSON it reads under `/api/v1/`.
//! * [`server`]: the server: timeouts, a connection cap, a shutdown deadline.
//! * [`pressure`]: backpressure, a budget of request bytes in flight (429 beyond it).
//! * [`consumers`]: REST Proxy v2 consumer groups and instances (subscribe, read, commit).
//! * [`shards`]: Kinesis reads through the API (`GetShardIterator`, `GetRecords`).
//! * [`append`]: a request's records appended to the log, grouped by partition (both APIs).
//!
//! [`app`] builds the router without a socket (tests call it with `oneshot`); [`serve`] runs it.
//! A produce is answered only after the log has made its records durable.

pub mod append;
pub mod body;
pub mod config;
pub mod console;
pub mod consumers;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod pressure;
pub mod server;
pub mod shards;
pub mod streams;
pub mod topics;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pinpipe_log::partitioner::RoundRobin;
use pinpipe_log::{Log, OffsetLog, TopicInfo, TopicKind};

pub use config::{ApiConfig, Resolved};
use error::Family;
use metrics::{Metrics, RequestLabels, RouteLabels};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The shared parts.
pub struct Inner {
    /// The log topics live in (one with dense offsets: the embedded log or Kafka).
    pub log: Arc<dyn OffsetLog>,
    /// The log streams live in: the same as `log`, or Kinesis (`log.streams = "kinesis"`).
    pub streams: Arc<dyn Log>,
    /// The validated `[api]` section.
    pub config: Resolved,
    /// Metrics.
    pub metrics: Metrics,
    /// Spreads keyless requests over partitions.
    pub round_robin: RoundRobin,
    /// Bytes of produce requests in flight.
    pub budget: pressure::Budget,
    /// REST Proxy consumer groups and their instances.
    pub consumers: consumers::Consumers,
    /// What the process's other stages report to the console (`pinpipe up`).
    pub stages: std::sync::OnceLock<Arc<dyn console::Stages>>,
}

impl AppState {
    /// State over `log` (topics and streams) with `config`.
    pub fn new(log: Arc<dyn OffsetLog>, config: Resolved) -> Self {
        let streams: Arc<dyn Log> = log.clone();
        Self::with_streams(log, streams, config)
    }

    /// State with topics in `log` and streams in `streams`.
    pub fn with_streams(log: Arc<dyn OffsetLog>, streams: Arc<dyn Log>, config: Resolved) -> Self {
        let budget = pressure::Budget::new(config.max_inflight_bytes);
        let consumers = consumers::Consumers::new(&config);
        let metrics = Metrics::default();
        metrics.register_collector(Box::new(metrics::LogMetrics(Arc::clone(&log))));
        AppState(Arc::new(Inner {
            log,
            streams,
            config,
            metrics,
            round_robin: RoundRobin::default(),
            budget,
            consumers,
            stages: std::sync::OnceLock::new(),
        }))
    }

    /// The API's metrics, to which a process adds its other stages' collectors.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The log that holds names of `kind`.
    pub fn log_for(&self, kind: TopicKind) -> &dyn Log {
        match kind {
            TopicKind::Topic => &*self.0.log,
            TopicKind::Stream => &*self.0.streams,
        }
    }

    /// The topic (or stream) `name` of `kind`. A name of the other kind is not found here: stream
    /// routes act only on streams and topic routes only on topics.
    pub async fn lookup(&self, name: &str, kind: TopicKind) -> pinpipe_log::Result<TopicInfo> {
        let info = self.log_for(kind).topic(name).await?;
        if info.kind != kind {
            return Err(pinpipe_log::Error::TopicNotFound(name.to_owned()));
        }
        Ok(info)
    }

    /// The topic, created first when it is unknown and auto-creation is on. `needs_partition`:
    /// the highest partition the request names; a topic that would be created without it is
    /// not created (the request fails with "partition not found" and leaves nothing behind).
    pub async fn ensure_topic(
        &self,
        name: &str,
        kind: TopicKind,
        needs_partition: Option<u32>,
    ) -> pinpipe_log::Result<TopicInfo> {
        let log = self.log_for(kind);
        match log.topic(name).await {
            Ok(info) if info.kind == kind => Ok(info),
            // A name of the other kind stays theirs.
            Ok(_) => Err(pinpipe_log::Error::TopicNotFound(name.to_owned())),
            Err(pinpipe_log::Error::TopicNotFound(_)) if self.0.config.auto_create_topics => {
                let partitions = self.0.config.default_partitions;
                if let Some(p) = needs_partition.filter(|p| *p >= partitions) {
                    return Err(pinpipe_log::Error::PartitionNotFound {
                        topic: name.to_owned(),
                        partition: p,
                        partitions,
                    });
                }
                match log.create_topic(name, kind, partitions).await {
                    Err(pinpipe_log::Error::TopicExists(_)) => self.lookup(name, kind).await,
                    other => other,
                }
            }
            Err(e) => Err(e),
        }
    }
}

impl AppState {
    /// Takes a produce request's share of the in-flight budget: its declared length (a body
    /// over the limit takes nothing: it is refused with 413 while reading).
    pub fn admit(&self, headers: &axum::http::HeaderMap) -> Result<pressure::Admission, pressure::Overloaded> {
        let declared = body::declared_length(headers).filter(|n| *n <= self.config.max_body_bytes).unwrap_or(0);
        self.budget.admit(declared).inspect_err(|_| {
            self.metrics.overloaded.inc();
        })
    }

    /// Counts a request refused for overload after its body was read; returns `e`.
    pub fn refused<E>(&self, e: E) -> E {
        self.metrics.overloaded.inc();
        e
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The whole API as a router.
pub fn app(state: AppState) -> Router {
    let mut api = topics::routes().merge(streams::routes()).merge(consumers::routes()).merge(console::routes());
    if !state.config.metrics_public {
        api = api.route("/metrics", get(metrics_text));
    }
    let mut routes = api.route_layer(middleware::from_fn_with_state(state.clone(), require_api_key));
    if state.config.metrics_public {
        routes = routes.route("/metrics", get(metrics_text));
    }
    let routes = routes
        .route("/healthz", get(healthz))
        .layer(middleware::from_fn_with_state(state.clone(), limit_head))
        .route_layer(middleware::from_fn_with_state(state.clone(), observe))
        .method_not_allowed_fallback(method_not_allowed);
    let base = state.config.base_path.clone();
    let router = if base.is_empty() { routes } else { Router::new().nest(&base, routes) };
    router.fallback(not_found).with_state(state)
}

pub use server::serve;

/// `{"status":"ok"}`, or `{"status":"degraded","problems":[...]}` naming partitions that are
/// damaged or whose writes fail (the server still serves the others).
async fn healthz(State(state): State<AppState>) -> Response {
    let mut problems = state.log.problems();
    if !std::ptr::addr_eq(Arc::as_ptr(&state.log), Arc::as_ptr(&state.streams)) {
        problems.extend(state.streams.problems());
    }
    let body = if problems.is_empty() {
        r#"{"status":"ok"}"#.to_owned()
    } else {
        serde_json::json!({ "status": "degraded", "problems": problems }).to_string()
    };
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    // End offsets of every partition, fresh at each scrape.
    if let Ok(topics) = state.log.topics().await {
        for t in topics {
            if let Ok(offsets) = state.log.offsets(&t.name).await {
                for o in offsets {
                    let labels = metrics::PartitionLabels { topic: t.name.clone(), partition: o.partition };
                    state.metrics.end_offset.get_or_create(&labels).set(o.end);
                }
            }
        }
    }
    state.metrics.inflight_bytes.set(state.budget.in_use() as i64);
    state.metrics.consumer_instances.set(state.consumers.instance_count() as i64);
    state.metrics.retention_held.clear();
    for (topic, partition, bytes) in state.log.retention_held() {
        state.metrics.retention_held.get_or_create(&metrics::PartitionLabels { topic, partition }).set(bytes);
    }
    let mut r = state.metrics.render().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE));
    r
}

/// Counts and times every routed request.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", |m| metrics::route_label(m.as_str(), &state.config.base_path));
    let method = metrics::method_label(request.method());
    let start = Instant::now();
    let response = next.run(request).await;
    let seconds = start.elapsed().as_secs_f64();
    state.metrics.latency.get_or_create(&RouteLabels { route }).observe(seconds);
    state.metrics.requests.get_or_create(&RequestLabels { route, method, status: response.status().as_u16() }).inc();
    response
}

/// Longest request target accepted (414 beyond, with the route family's error body).
pub const MAX_URI_BYTES: usize = 8 << 10;
/// Most bytes of request headers accepted (431 beyond, with the route family's error body).
pub const MAX_HEADER_BYTES: usize = 32 << 10;

/// Refuses over-long request targets and header sections with the contract's error bodies.
async fn limit_head(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let uri = request.uri();
    let uri_len = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |p| p.as_str().len());
    let header_len: usize = request.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    let family = || Family::of(request.uri().path(), &state.config.base_path);
    if uri_len > MAX_URI_BYTES {
        let message = format!("The request target is {uri_len} bytes; at most {MAX_URI_BYTES} are accepted");
        return family().error(StatusCode::URI_TOO_LONG, 414, "ValidationException", message);
    }
    if header_len > MAX_HEADER_BYTES {
        let message = format!("The request headers are {header_len} bytes; at most {MAX_HEADER_BYTES} are accepted");
        return family().error(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, 431, "ValidationException", message);
    }
    let mut response = next.run(request).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // What is left of an over-large body is not read: the connection cannot be reused.
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Whether `given` is one of `keys`, compared in constant time (every key is compared, each
/// without an early exit), so response times tell nothing about a key's bytes.
fn key_matches(keys: &[String], given: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    keys.iter().fold(subtle::Choice::from(0), |found, k| found | k.as_bytes().ct_eq(given)).into()
}

/// Checks `x-api-key` when keys are configured.
async fn require_api_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let keys = &state.config.api_keys;
    if !keys.is_empty() {
        // A browser cannot set a header on the console's page itself: there, `?key=` is taken too.
        let query_key = console::query_key(request.uri(), &state.config.base_path);
        let given = request.headers().get("x-api-key").map(HeaderValue::as_bytes).or(query_key.as_deref());
        if !given.is_some_and(|g| key_matches(keys, g)) {
            let family = Family::of(request.uri().path(), &state.config.base_path);
            let message =
                if given.is_some() { "Forbidden: invalid x-api-key" } else { "Forbidden: missing x-api-key header" };
            return family.error(StatusCode::FORBIDDEN, 40301, "AccessDeniedException", message.into());
        }
    }
    next.run(request).await
}

async fn not_found(State(state): State<AppState>, request: Request) -> Response {
    let family = Family::of(request.uri().path(), &state.config.base_path);
    family.error(
        StatusCode::NOT_FOUND,
        404,
        "UnknownOperationException",
        format!("HTTP 404 Not Found: {}", request.uri().path()),
    )
}

async fn method_not_allowed(State(state): State<AppState>, request: Request) -> Response {
    let family = Family::of(request.uri().path(), &state.config.base_path);
    family.error(
        StatusCode::METHOD_NOT_ALLOWED,
        405,
        "UnknownOperationException",
        format!("HTTP 405 Method Not Allowed: {} {}", request.method(), request.uri().path()),
    )
}

#[cfg(test)]
mod tests;
