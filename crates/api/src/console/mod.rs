//! The web console: `GET /ui` (one page, its script and styles embedded in the binary: no CDN,
//! works offline) and the JSON it polls, under `/api/v1/`:
//!
//! * `GET /api/v1/overview`: the log's topics and streams (records, partitions, records appended
//!   through this API), and what the process's other stages report ([`Stages`]: the sink's
//!   partitions, the stream tables' rows, lag and freshness, dead letters, the scheduler's runs,
//!   the latest batch run) — `null` for a stage this process does not run.
//! * `GET /api/v1/records/{name}?limit=N`: the newest records of a topic or stream (at most
//!   `N` per partition, 1–100, default 5), values as text.
//! * `GET /api/v1/batch/report`: the latest batch run's report (its answers as charts).
//!
//! Read-only, and behind the same API keys as the rest of the API.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::BoxFuture;
use pinpipe_log::{ReadLimits, TopicKind};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::KafkaError;
use crate::extract::TopicName;

/// The page.
const PAGE: &str = include_str!("ui.html");

/// What a process's stages besides the API report to the console (set by the process that runs
/// them: `pinpipe up`).
pub trait Stages: Send + Sync {
    /// A JSON object with the keys `sink`, `stream`, `dead_letters`, `schedule`, `batch`,
    /// `emulator` (see the module docs); a missing key is a stage not running here.
    fn overview(&self) -> BoxFuture<'_, Value>;

    /// The latest batch run's report page, if there is one.
    fn report(&self) -> BoxFuture<'_, Option<String>>;
}

/// The console's routes (under the API's base path and its key check).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(page))
        .route("/api/v1/overview", get(overview))
        .route("/api/v1/records/{name}", get(records))
        .route("/api/v1/batch/report", get(report))
}

fn with_type(body: String, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json_response(v: &Value) -> Response {
    with_type(v.to_string(), "application/json")
}

async fn page() -> Response {
    let mut r = with_type(PAGE.to_owned(), "text/html; charset=utf-8");
    // Nothing but this origin: the page works offline and cannot leak what it shows.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self'",
        ),
    );
    r
}

async fn overview(State(state): State<AppState>) -> Response {
    let mut names = Vec::new();
    for (log, kind) in
        [(state.log_for(TopicKind::Topic), TopicKind::Topic), (state.log_for(TopicKind::Stream), TopicKind::Stream)]
    {
        let Ok(topics) = log.topics().await else { continue };
        for t in topics.into_iter().filter(|t| t.kind == kind) {
            let records = match log.as_offsets() {
                Some(dense) => {
                    dense.offsets(&t.name).await.ok().map(|o| o.iter().map(|p| p.end - p.start).sum::<u64>())
                }
                None => None,
            };
            names.push(json!({
                "name": t.name,
                "kind": if kind == TopicKind::Topic { "topic" } else { "stream" },
                "partitions": t.partitions,
                "records": records,
                "appended": state.metrics.appended_records(&t.name),
            }));
        }
    }
    let mut out = json!({
        "time_ms": chrono_now_ms(),
        "log": {"names": names},
    });
    if let (Some(stages), Some(obj)) = (state.stages.get(), out.as_object_mut())
        && let Value::Object(more) = stages.overview().await
    {
        obj.extend(more);
    }
    json_response(&out)
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[derive(Deserialize)]
struct RecordsQuery {
    limit: Option<u64>,
}

async fn records(
    State(state): State<AppState>,
    TopicName(name): TopicName,
    Query(q): Query<RecordsQuery>,
) -> Result<Response, KafkaError> {
    let limit = q.limit.unwrap_or(5).clamp(1, 100);
    for kind in [TopicKind::Topic, TopicKind::Stream] {
        let log = state.log_for(kind);
        let Ok(info) = log.topic(&name).await else { continue };
        if info.kind != kind {
            continue;
        }
        let Some(dense) = log.as_offsets() else {
            let note = "this backend has no offsets to read the newest records by";
            return Ok(json_response(&json!({"name": name, "records": [], "note": note})));
        };
        let mut out = Vec::new();
        for p in dense.offsets(&name).await? {
            let from = p.end.saturating_sub(limit).max(p.start);
            if from >= p.end {
                continue;
            }
            let limits = ReadLimits { max_records: limit as usize, max_bytes: 1 << 20 };
            for r in dense.read(&name, p.partition, from, limits).await? {
                out.push(json!({
                    "partition": p.partition,
                    "offset": r.offset,
                    "timestamp_ms": r.timestamp_ms,
                    "value": String::from_utf8_lossy(&r.value),
                }));
            }
        }
        out.sort_by_key(|r| std::cmp::Reverse(r["timestamp_ms"].as_i64().unwrap_or(0)));
        return Ok(json_response(&json!({"name": name, "records": out})));
    }
    Err(pinpipe_log::Error::TopicNotFound(name).into())
}

async fn report(State(state): State<AppState>) -> Response {
    let page = match state.stages.get() {
        Some(stages) => stages.report().await,
        None => None,
    };
    match page {
        Some(html) => with_type(html, "text/html; charset=utf-8"),
        None => with_type(
            "<!doctype html><meta charset=utf-8><p style=\"font-family:sans-serif;color:#667\">No batch run yet.</p>"
                .into(),
            "text/html; charset=utf-8",
        ),
    }
}

/// The `key` query parameter of a console request (`/ui`, `/api/v1/...`), if any.
pub fn query_key(uri: &axum::http::Uri, base_path: &str) -> Option<Vec<u8>> {
    let path = uri.path().strip_prefix(base_path).unwrap_or(uri.path());
    if path != "/ui" && !path.starts_with("/api/v1/") {
        return None;
    }
    url::form_urlencoded::parse(uri.query()?.as_bytes()).find(|(k, _)| k == "key").map(|(_, v)| v.as_bytes().to_vec())
}

/// Sets the stages a process reports (once; later calls are ignored).
pub fn set_stages(state: &AppState, stages: Arc<dyn Stages>) {
    let _ = state.stages.set(stages);
}
