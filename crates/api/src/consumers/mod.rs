//! REST Proxy v2 consumers, so clients of Confluent's REST Proxy read from pinpipe unmodified:
//!
//! | route | what |
//! |---|---|
//! | `POST /consumers/{g}` | create an instance (`name`, `format` json/binary, `auto.offset.reset`, `auto.commit.enable`) |
//! | `DELETE /consumers/{g}/instances/{i}` | delete it (auto-commit first, when enabled) |
//! | `POST|GET|DELETE .../subscription` | subscribe to `topics` or a `topic_pattern`; show; unsubscribe |
//! | `POST|GET .../assignments` | assign partitions by hand; show the current assignment |
//! | `GET .../records?timeout=&max_bytes=` | read records (`Accept` picks json or binary) |
//! | `POST|GET .../offsets` | commit offsets (given, or everything read so far); committed offsets |
//! | `POST .../positions`, `.../positions/beginning`, `.../positions/end` | seek |
//!
//! Instances live in this server (as in Confluent's, where an instance is bound to one proxy)
//! and expire after `api.consumer_instance_timeout` unused. Committed offsets are per group and
//! durable ([`offsets`]): a new instance of the group, also after a restart, continues from them.
//! Instances subscribed to the same topic share its partitions by range assignment
//! ([`group`]). Reads go to the topics' log, on every backend with offsets.

pub mod fetch;
pub mod group;
pub mod offsets;
mod positions;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::body::Embedded;
use crate::config::Resolved;
use crate::error::{KAFKA_V2_JSON, KafkaError, code};
use crate::extract::{ConsumerInstance, GroupName};
use group::{CreateError, Instance, Interest, Registry, Reset};
use offsets::{OffsetStore, TopicPartition};

type Result<T, E = KafkaError> = std::result::Result<T, E>;

/// Consumer groups: instances and committed offsets.
#[derive(Debug)]
pub struct Consumers {
    /// The instances.
    pub registry: Registry,
    /// Committed offsets.
    pub offsets: OffsetStore,
}

impl Consumers {
    /// Consumers configured by `[api]`.
    pub fn new(config: &Resolved) -> Self {
        Consumers {
            registry: Registry::new(config.consumer_instance_timeout, config.max_consumer_instances),
            offsets: OffsetStore::new(config.state_dir.as_deref()),
        }
    }

    /// Instances over every group.
    pub fn instance_count(&self) -> usize {
        self.registry.count()
    }
}

/// The consumer routes.
pub fn routes() -> Router<AppState> {
    const I: &str = "/consumers/{group}/instances/{instance}";
    Router::new()
        .route("/consumers/{group}", post(create))
        .route(I, axum::routing::delete(delete))
        .route(&format!("{I}/subscription"), post(subscribe).get(subscription).delete(unsubscribe))
        .route(&format!("{I}/assignments"), post(assign).get(assignment))
        .route(&format!("{I}/positions"), post(positions::seek))
        .route(&format!("{I}/positions/beginning"), post(positions::seek_beginning))
        .route(&format!("{I}/positions/end"), post(positions::seek_end))
        .route(&format!("{I}/records"), get(fetch::records))
        .route(&format!("{I}/offsets"), post(positions::commit).get(positions::committed))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn ok_json(v: &Value) -> Response {
    let mut r = (StatusCode::OK, v.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(KAFKA_V2_JSON));
    r
}

fn name(what: &str, text: &str) -> Result<()> {
    pinpipe_model::names::validate_topic(text).map_err(|e| KafkaError::kafka_bad_request(format!("{what}: {e}")))
}

/// Reads a small JSON request body (`None` when empty), with the REST Proxy's errors.
async fn json_body<T: for<'a> Deserialize<'a>>(s: &AppState, headers: &HeaderMap, body: Body) -> Result<Option<T>> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let mime = ct.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        let json = mime == "application/json" || (mime.starts_with("application/vnd.kafka") && mime.ends_with("+json"));
        if !json {
            return Err(KafkaError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                415,
                format!("Content-Type {mime:?} is not supported: use application/vnd.kafka.v2+json"),
            ));
        }
    }
    let bytes = crate::topics::read_body(s, headers, body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| KafkaError::bad_request(format!("Invalid request: {e}")))
}

/// Like [`json_body`], for requests whose body is required (`what may not be null`, 422).
async fn required_body<T: for<'a> Deserialize<'a>>(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
    what: &str,
) -> Result<T> {
    json_body(s, headers, body)
        .await?
        .ok_or_else(|| KafkaError::unprocessable(code::UNPROCESSABLE, format!("{what} may not be null")))
}

fn store_error(e: offsets::StoreError) -> KafkaError {
    KafkaError::new(StatusCode::INTERNAL_SERVER_ERROR, code::KAFKA_ERROR, e.to_string())
}

fn illegal_state(message: String) -> KafkaError {
    KafkaError::new(StatusCode::CONFLICT, code::ILLEGAL_STATE, format!("Illegal state: {message}"))
}

/// A string or boolean setting (`"true"` and `true` are both seen in clients).
#[derive(Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

#[derive(Deserialize, Default)]
struct CreateBody {
    name: Option<String>,
    format: Option<String>,
    #[serde(rename = "auto.offset.reset")]
    auto_offset_reset: Option<String>,
    #[serde(rename = "auto.commit.enable")]
    auto_commit_enable: Option<Flag>,
    #[serde(rename = "consumer.request.timeout.ms")]
    request_timeout_ms: Option<Value>,
}

fn invalid_config(message: String) -> KafkaError {
    KafkaError::unprocessable(code::INVALID_CONSUMER_CONFIG, format!("Invalid consumer configuration: {message}"))
}

/// `POST /consumers/{group}`.
async fn create(
    State(s): State<AppState>,
    GroupName(group): GroupName,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let config: CreateBody = json_body(&s, &headers, body).await?.unwrap_or_default();
    let id = match config.name {
        Some(n) => {
            name("consumer instance", &n)?;
            n
        }
        None => s.consumers.registry.fresh_name(),
    };
    let format = match config.format.as_deref().unwrap_or("binary") {
        "binary" => Embedded::Binary,
        "json" => Embedded::Json,
        other @ ("avro" | "jsonschema" | "protobuf") => {
            return Err(invalid_config(format!("format {other} needs a schema registry, which pinpipe has not")));
        }
        other => return Err(invalid_config(format!("format {other:?} is not binary or json"))),
    };
    let reset = match config.auto_offset_reset.as_deref().unwrap_or("latest") {
        "earliest" | "smallest" => Reset::Earliest,
        "latest" | "largest" => Reset::Latest,
        "none" => Reset::None,
        other => {
            return Err(invalid_config(format!("auto.offset.reset {other:?} is not earliest, latest or none")));
        }
    };
    let auto_commit = match config.auto_commit_enable {
        None => true,
        Some(Flag::Bool(b)) => b,
        Some(Flag::Text(t)) => match t.as_str() {
            "true" => true,
            "false" => false,
            other => return Err(invalid_config(format!("auto.commit.enable {other:?} is not true or false"))),
        },
    };
    let timeout_ms = match config.request_timeout_ms {
        None => 1000,
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|t| t.parse().ok()))
            .filter(|ms| *ms <= fetch::MAX_TIMEOUT.as_millis() as u64)
            .ok_or_else(|| invalid_config(format!("consumer.request.timeout.ms {v} is not 0..=30000")))?,
    };
    let instance = Instance::new(&group, &id, format, reset, auto_commit, Duration::from_millis(timeout_ms));
    s.consumers.registry.create(instance).map_err(|e| match e {
        CreateError::Exists => KafkaError::new(
            StatusCode::CONFLICT,
            code::CONSUMER_ALREADY_EXISTS,
            "Consumer with specified consumer ID already exists in the specified consumer group.",
        ),
        CreateError::TooMany(max) => KafkaError::new(
            StatusCode::TOO_MANY_REQUESTS,
            code::TOO_MANY_REQUESTS,
            format!("{max} consumer instances exist, the limit (api.max_consumer_instances): delete some"),
        ),
    })?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| s.config.listen.to_string(), str::to_owned);
    let base_uri = format!("http://{host}{}/consumers/{group}/instances/{id}", s.config.base_path);
    Ok(ok_json(&json!({ "instance_id": id, "base_uri": base_uri })))
}

/// Commits what `instance` has read (its positions), if auto-commit is on.
pub(crate) async fn auto_commit(s: &AppState, instance: &Instance, reading: &mut group::Reading) -> Result<()> {
    if !instance.auto_commit {
        return Ok(());
    }
    let changed: Vec<(TopicPartition, u64)> = reading
        .positions
        .iter()
        .filter(|(tp, o)| reading.auto_committed.get(*tp) != Some(*o))
        .map(|(tp, o)| (tp.clone(), *o))
        .collect();
    s.consumers.offsets.commit(&instance.group, &changed).await.map_err(store_error)?;
    reading.auto_committed.extend(changed);
    reading.last_auto_commit = Some(std::time::Instant::now());
    Ok(())
}

/// `DELETE /consumers/{g}/instances/{i}`.
async fn delete(State(s): State<AppState>, ConsumerInstance(i): ConsumerInstance) -> Result<Response> {
    let mut reading = i.reading.lock().await;
    auto_commit(&s, &i, &mut reading).await?;
    s.consumers.registry.remove(&i.group, &i.id);
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeBody {
    topics: Option<Vec<String>>,
    topic_pattern: Option<String>,
}

/// `POST .../subscription`.
async fn subscribe(
    State(s): State<AppState>,
    ConsumerInstance(i): ConsumerInstance,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let req: SubscribeBody = required_body(&s, &headers, body, "subscription").await?;
    let interest = match (req.topics, req.topic_pattern) {
        (Some(topics), None) if !topics.is_empty() => {
            for t in &topics {
                name("topic", t)?;
            }
            Interest::Topics(topics.into_iter().collect())
        }
        (None, Some(p)) => {
            let re = regex::Regex::new(&format!("^(?:{p})$"))
                .map_err(|e| KafkaError::unprocessable(code::UNPROCESSABLE, format!("topic_pattern: {e}")))?;
            Interest::Pattern(p, re)
        }
        _ => {
            return Err(KafkaError::unprocessable(
                code::UNPROCESSABLE,
                "give either a non-empty topics list or a topic_pattern",
            ));
        }
    };
    if matches!(i.interest(), Interest::Assigned(_)) {
        return Err(already_subscribed());
    }
    let mut reading = i.reading.lock().await;
    auto_commit(&s, &i, &mut reading).await?;
    reading.positions.clear();
    i.set_interest(interest);
    Ok(no_content())
}

fn already_subscribed() -> KafkaError {
    KafkaError::new(
        StatusCode::CONFLICT,
        code::CONSUMER_ALREADY_SUBSCRIBED,
        "Subscription to topics, partitions and pattern are mutually exclusive.",
    )
}

/// `GET .../subscription`.
async fn subscription(State(s): State<AppState>, ConsumerInstance(i): ConsumerInstance) -> Result<Response> {
    let topics: Vec<String> = match i.interest() {
        Interest::Topics(t) => t.into_iter().collect(),
        Interest::Pattern(_, re) => s
            .log
            .topics()
            .await?
            .into_iter()
            .filter(|t| t.kind == pinpipe_log::TopicKind::Topic && re.is_match(&t.name))
            .map(|t| t.name)
            .collect(),
        Interest::Nothing | Interest::Assigned(_) => Vec::new(),
    };
    Ok(ok_json(&json!({ "topics": topics })))
}

/// `DELETE .../subscription`.
async fn unsubscribe(State(s): State<AppState>, ConsumerInstance(i): ConsumerInstance) -> Result<Response> {
    let mut reading = i.reading.lock().await;
    auto_commit(&s, &i, &mut reading).await?;
    reading.positions.clear();
    i.set_interest(Interest::Nothing);
    Ok(no_content())
}

#[derive(Deserialize)]
struct PartitionRef {
    topic: String,
    partition: u32,
}

#[derive(Deserialize)]
struct PartitionsBody {
    partitions: Vec<PartitionRef>,
}

fn partition_list(parts: Vec<PartitionRef>) -> Result<Vec<TopicPartition>> {
    parts
        .into_iter()
        .map(|p| {
            name("topic", &p.topic)?;
            Ok((p.topic, p.partition))
        })
        .collect()
}

/// `POST .../assignments`.
async fn assign(
    State(s): State<AppState>,
    ConsumerInstance(i): ConsumerInstance,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let req: PartitionsBody = required_body(&s, &headers, body, "partitions").await?;
    let parts = partition_list(req.partitions)?;
    if matches!(i.interest(), Interest::Topics(_) | Interest::Pattern(..)) {
        return Err(already_subscribed());
    }
    let mut reading = i.reading.lock().await;
    auto_commit(&s, &i, &mut reading).await?;
    reading.positions.retain(|tp, _| parts.contains(tp));
    i.set_interest(Interest::Assigned(parts.into_iter().collect()));
    Ok(no_content())
}

fn partitions_json(parts: &[TopicPartition]) -> Vec<Value> {
    parts.iter().map(|(t, p)| json!({ "topic": t, "partition": p })).collect()
}

/// `GET .../assignments`.
async fn assignment(State(s): State<AppState>, ConsumerInstance(i): ConsumerInstance) -> Result<Response> {
    let parts = fetch::assigned(&s, &i).await?;
    Ok(ok_json(&json!({ "partitions": partitions_json(&parts) })))
}
