//! The Confluent REST Proxy v2 routes: produce to a topic (or one partition of it), list and
//! describe topics and partitions, partition offsets.
//!
//! A produce request is checked whole before anything is written (content type, size, JSON
//! shape, every record's value, key and partition), so a bad request writes nothing. Its records
//! are then grouped by partition and each group is appended as one unit; the response is sent
//! after the log made them durable, with one `offsets` entry per record in request order.

use std::fmt::Write as _;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use bytes::Bytes;
use pinpipe_log::{Position, Record, TopicKind, partitioner};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::AppState;
use crate::body::{self, BodyError, Embedded};
use crate::error::{self, KAFKA_V2_JSON, KafkaError, code};
use crate::extract::{TopicName, TopicPartition};

/// The REST Proxy routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/topics", get(list))
        .route("/topics/{topic}", get(describe).post(produce))
        .route("/topics/{topic}/partitions", get(partitions))
        .route("/topics/{topic}/partitions/{partition}", get(partition).post(produce_to_partition))
        .route("/topics/{topic}/partitions/{partition}/offsets", get(offsets))
}

type Result<T, E = KafkaError> = std::result::Result<T, E>;

fn ok_json(v: &Value) -> Response {
    let mut r = (StatusCode::OK, v.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(KAFKA_V2_JSON));
    r
}

fn partition_json(p: u32) -> Value {
    json!({ "partition": p, "leader": 0, "replicas": [{ "broker": 0, "leader": true, "in_sync": true }] })
}

async fn list(State(s): State<AppState>) -> Result<Response> {
    let topics = s.log.topics().await?;
    let names: Vec<&str> = topics.iter().filter(|t| t.kind == TopicKind::Topic).map(|t| t.name.as_str()).collect();
    Ok(ok_json(&json!(names)))
}

async fn describe(State(s): State<AppState>, TopicName(topic): TopicName) -> Result<Response> {
    let info = s.lookup(&topic, TopicKind::Topic).await?;
    let parts: Vec<Value> = (0..info.partitions).map(partition_json).collect();
    Ok(ok_json(&json!({ "name": info.name, "configs": {}, "partitions": parts })))
}

async fn partitions(State(s): State<AppState>, TopicName(topic): TopicName) -> Result<Response> {
    let info = s.lookup(&topic, TopicKind::Topic).await?;
    Ok(ok_json(&Value::Array((0..info.partitions).map(partition_json).collect())))
}

async fn partition(State(s): State<AppState>, TopicPartition(topic, p): TopicPartition) -> Result<Response> {
    let info = s.lookup(&topic, TopicKind::Topic).await?;
    if p >= info.partitions {
        return Err(KafkaError::partition_not_found(&topic, p));
    }
    Ok(ok_json(&partition_json(p)))
}

async fn offsets(State(s): State<AppState>, TopicPartition(topic, p): TopicPartition) -> Result<Response> {
    s.lookup(&topic, TopicKind::Topic).await?;
    let all = s.log.offsets(&topic).await?;
    let o = all.iter().find(|o| o.partition == p).ok_or_else(|| KafkaError::partition_not_found(&topic, p))?;
    Ok(ok_json(&json!({ "beginning_offset": o.start, "end_offset": o.end })))
}

async fn produce(
    State(s): State<AppState>,
    TopicName(topic): TopicName,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    produce_records(&s, topic, None, &headers, body).await
}

async fn produce_to_partition(
    State(s): State<AppState>,
    TopicPartition(topic, p): TopicPartition,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    produce_records(&s, topic, Some(p), &headers, body).await
}

/// The produce request body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceBody<'a> {
    #[serde(borrow)]
    records: Vec<ProduceRecord<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceRecord<'a> {
    #[serde(borrow, default)]
    key: Option<&'a RawValue>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
    #[serde(default)]
    partition: Option<u32>,
}

/// Parses a produce body as Confluent's REST Proxy does: not JSON, or JSON of the wrong shape,
/// is 400 (code 400); a body without `records` breaks a constraint (422).
fn parse_body(bytes: &Bytes) -> Result<ProduceBody<'_>> {
    serde_json::from_slice::<ProduceBody<'_>>(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data if e.to_string().starts_with("missing field `records`") => {
            KafkaError::unprocessable(code::UNPROCESSABLE, "records may not be empty")
        }
        serde_json::error::Category::Data => KafkaError::bad_request(format!("Invalid produce request: {e}")),
        _ => KafkaError::bad_request(format!("The request body is not valid JSON: {e}")),
    })
}

fn embedded_bytes(format: Embedded, body: &Bytes, raw: &RawValue, what: &str, i: usize) -> Result<Bytes> {
    match format {
        Embedded::Json => Ok(body::json_value(body, raw)),
        Embedded::Binary => {
            let text: &str = serde_json::from_str(raw.get()).map_err(|_| {
                KafkaError::unprocessable(
                    code::JSON_CONVERSION,
                    format!("Conversion of JSON to Object failed: records[{i}].{what} must be a base64 string"),
                )
            })?;
            base64::engine::general_purpose::STANDARD.decode(text).map(Bytes::from).map_err(|e| {
                KafkaError::unprocessable(
                    code::JSON_CONVERSION,
                    format!("Conversion of JSON to Object failed: records[{i}].{what} is not valid base64: {e}"),
                )
            })
        }
    }
}

async fn produce_records(
    s: &AppState,
    topic: String,
    fixed_partition: Option<u32>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let format =
        body::produce_format(headers).map_err(|m| KafkaError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, 415, m))?;
    // The request's share of the in-flight budget, held until its answer is ready.
    let mut admission = s.admit(headers).map_err(KafkaError::overloaded)?;
    let bytes = read_body(s, headers, body).await?;
    admission.grow_to(bytes.len()).map_err(|o| s.refused(KafkaError::overloaded(o)))?;
    let request = parse_body(&bytes)?;
    let n = request.records.len();
    if n == 0 {
        return Err(KafkaError::unprocessable(code::UNPROCESSABLE, "records may not be empty"));
    }
    if n > s.config.max_records {
        return Err(KafkaError::unprocessable(
            code::UNPROCESSABLE,
            format!("The request has {n} records; at most {} are accepted", s.config.max_records),
        ));
    }
    let decoded = decode(s, format, &bytes, &request, fixed_partition)?;
    drop(request);

    let needs = decoded.iter().filter_map(|d| d.0).max();
    let info = s.ensure_topic(&topic, TopicKind::Topic, needs).await?;
    let keyless = s.round_robin.next(info.partitions);
    let mut targets = Vec::with_capacity(n);
    let mut records = Vec::with_capacity(n);
    for (explicit, key, value) in decoded {
        let p = match (explicit, &key) {
            (Some(p), _) if p >= info.partitions => return Err(KafkaError::partition_not_found(&topic, p)),
            (Some(p), _) => p,
            (None, Some(k)) => partitioner::kafka_partition(k, info.partitions),
            (None, None) => keyless,
        };
        targets.push(p);
        records.push(Record { timestamp_ms: None, key, value });
    }
    let outcomes = crate::append::grouped(s, s.log.as_ref(), &topic, &targets, records).await;
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    if failed == n {
        // Nothing was stored: say so with an error status, not only inside a 200.
        let reason = outcomes.iter().find_map(|o| o.as_ref().err().map(ToString::to_string)).unwrap_or_default();
        return Err(KafkaError::internal(format!("No record was stored: {reason}")));
    }
    let body = offsets_body(&targets, &outcomes);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(KAFKA_V2_JSON));
    Ok(r)
}

/// A record of a produce request, checked and decoded: its partition if it names one, key and
/// value.
type Decoded = (Option<u32>, Option<Bytes>, Bytes);

/// Decodes and checks every record of `request` before anything is written: a value, keys and
/// values in the embedded format, sizes, and a partition that agrees with `fixed_partition`.
fn decode(
    s: &AppState,
    format: Embedded,
    bytes: &Bytes,
    request: &ProduceBody<'_>,
    fixed_partition: Option<u32>,
) -> Result<Vec<Decoded>> {
    let mut decoded = Vec::with_capacity(request.records.len());
    for (i, r) in request.records.iter().enumerate() {
        let raw_value = r
            .value
            .filter(|v| v.get() != "null")
            .ok_or_else(|| KafkaError::unprocessable(code::UNPROCESSABLE, format!("records[{i}] has no value")))?;
        let value = embedded_bytes(format, bytes, raw_value, "value", i)?;
        let key = match r.key.filter(|k| k.get() != "null") {
            Some(k) => Some(embedded_bytes(format, bytes, k, "key", i)?),
            None => None,
        };
        let size = value.len() + key.as_ref().map_or(0, Bytes::len);
        if size > s.config.max_record_bytes {
            return Err(KafkaError::unprocessable(
                code::UNPROCESSABLE,
                format!("records[{i}] is {size} bytes; at most {} are accepted", s.config.max_record_bytes),
            ));
        }
        if let (Some(fixed), Some(p)) = (fixed_partition, r.partition)
            && fixed != p
        {
            return Err(KafkaError::unprocessable(
                code::UNPROCESSABLE,
                format!("records[{i}] names partition {p} in a request to partition {fixed}"),
            ));
        }
        decoded.push((r.partition.or(fixed_partition), key, value));
    }
    Ok(decoded)
}

/// The produce response body: one `offsets` entry per record, in request order.
fn offsets_body(
    targets: &[u32],
    outcomes: &[std::result::Result<Position, std::sync::Arc<pinpipe_log::Error>>],
) -> String {
    let mut body = String::with_capacity(64 + 72 * targets.len());
    body.push_str("{\"offsets\":[");
    for (i, (p, o)) in targets.iter().zip(outcomes).enumerate() {
        if i > 0 {
            body.push(',');
        }
        let _ = match o {
            Ok(offset) => write!(body, "{{\"partition\":{p},\"offset\":{offset},\"error_code\":null,\"error\":null}}"),
            Err(e) => {
                let code = error::record_error_code(e);
                write!(
                    body,
                    "{{\"partition\":{p},\"offset\":null,\"error_code\":{code},\"error\":{}}}",
                    Value::from(e.to_string())
                )
            }
        };
    }
    body.push_str("],\"key_schema_id\":null,\"value_schema_id\":null}");
    body
}

/// Reads a produce body within the limits, with the REST Proxy's errors.
pub(crate) async fn read_body(s: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes> {
    body::read(headers, body, s.config.max_body_bytes, s.config.body_timeout).await.map_err(|e| match e {
        BodyError::TooLarge(limit) => KafkaError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            413,
            format!("The request body is larger than {limit} bytes"),
        ),
        BodyError::Read(m) => {
            KafkaError::new(StatusCode::BAD_REQUEST, 400, format!("Could not read the request body: {m}"))
        }
        BodyError::Timeout(t) => {
            KafkaError::new(StatusCode::REQUEST_TIMEOUT, 408, format!("The request body did not arrive within {t:?}"))
        }
    })
}
