//! The stream routes, exactly as the classic API Gateway → Kinesis integration exposes them:
//! `GET /streams` (ListStreams), `GET|POST|DELETE /streams/{stream}` (DescribeStream,
//! CreateStream, DeleteStream), `PUT /streams/{stream}/record` (PutRecord) and
//! `PUT /streams/{stream}/records` (PutRecords). Responses and errors have Kinesis' JSON shapes.
//!
//! The `Data` of a record is any JSON; what is stored is its JSON text (the integration's
//! mapping template base64-encodes `$input.json('$.Data')`, which decodes to the same bytes). The
//! partition key picks the shard by its MD5 hash, as Kinesis does, and is kept as the record key.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use pinpipe_log::partitioner::{self, sequence_number, sequence_of, shard_end, shard_id, shard_start};
use pinpipe_log::{Record, TopicKind};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::AppState;
use crate::body::{self, BodyError};
use crate::error::{ACCOUNT, AMZ_JSON, KinesisError, REGION};
use crate::extract::StreamName;

/// Most records in one `PutRecords` (Kinesis' limit).
pub const MAX_PUT_RECORDS: usize = 500;
/// Longest partition key (Kinesis' limit, in characters).
pub const MAX_PARTITION_KEY: usize = 256;

/// The stream routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/streams", get(list))
        .route("/streams/{stream}", get(describe).post(create).delete(delete))
        .route("/streams/{stream}/record", axum::routing::put(put_record))
        .route("/streams/{stream}/records", axum::routing::put(put_records).get(crate::shards::get_records))
        .route("/streams/{stream}/sharditerator", get(crate::shards::shard_iterator))
}

type Result<T, E = KinesisError> = std::result::Result<T, E>;

pub(crate) fn ok_json(v: &Value) -> Response {
    let mut r = (StatusCode::OK, v.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
    r
}

fn arn(stream: &str) -> String {
    format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{stream}")
}

async fn read_body(s: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes> {
    body::read(headers, body, s.config.max_body_bytes, s.config.body_timeout).await.map_err(|e| match e {
        BodyError::TooLarge(limit) => {
            KinesisError::new("ValidationException", format!("The request body is larger than {limit} bytes"))
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        }
        BodyError::Read(m) => {
            KinesisError::new("SerializationException", format!("Could not read the request body: {m}"))
        }
        BodyError::Timeout(t) => {
            KinesisError::new("RequestTimeout", format!("The request body did not arrive within {t:?}"))
                .with_status(StatusCode::REQUEST_TIMEOUT)
        }
    })
}

fn parse<'a, T: Deserialize<'a>>(bytes: &'a Bytes) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => KinesisError::validation(format!("Invalid request: {e}")),
        _ => KinesisError::new("SerializationException", format!("The request body is not valid JSON: {e}")),
    })
}

async fn list(State(s): State<AppState>) -> Result<Response> {
    let topics = s.streams.topics().await?;
    let streams: Vec<_> = topics.into_iter().filter(|t| t.kind == TopicKind::Stream).collect();
    let names: Vec<&str> = streams.iter().map(|t| t.name.as_str()).collect();
    let summaries: Vec<Value> = streams
        .iter()
        .map(|t| {
            json!({
                "StreamName": t.name,
                "StreamARN": arn(&t.name),
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": { "StreamMode": "PROVISIONED" },
                "StreamCreationTimestamp": t.created_ms as f64 / 1000.0,
            })
        })
        .collect();
    Ok(ok_json(&json!({ "StreamNames": names, "HasMoreStreams": false, "StreamSummaries": summaries })))
}

async fn describe(State(s): State<AppState>, StreamName(stream): StreamName) -> Result<Response> {
    let info = s.lookup(&stream, TopicKind::Stream).await?;
    // The first sequence number still held, where the log has offsets.
    let starts: Vec<String> = if let Some(log) = s.streams.as_offsets() {
        let offsets = log.offsets(&stream).await?;
        offsets.iter().map(|o| sequence_number(o.partition, o.start)).collect()
    } else {
        vec!["0".to_owned(); info.partitions as usize]
    };
    let shards: Vec<Value> = starts
        .iter()
        .zip(0..)
        .map(|(start, p)| {
            json!({
                "ShardId": shard_id(p),
                "HashKeyRange": {
                    "StartingHashKey": shard_start(p, info.partitions).to_string(),
                    "EndingHashKey": shard_end(p, info.partitions).to_string(),
                },
                "SequenceNumberRange": { "StartingSequenceNumber": start },
            })
        })
        .collect();
    Ok(ok_json(&json!({
        "StreamDescription": {
            "StreamName": info.name,
            "StreamARN": arn(&info.name),
            "StreamStatus": "ACTIVE",
            "StreamModeDetails": { "StreamMode": "PROVISIONED" },
            "Shards": shards,
            "HasMoreShards": false,
            "RetentionPeriodHours": 24,
            "StreamCreationTimestamp": info.created_ms as f64 / 1000.0,
            "EnhancedMonitoring": [{ "ShardLevelMetrics": [] }],
            "EncryptionType": "NONE",
        }
    })))
}

#[derive(Deserialize, Default)]
struct CreateBody {
    #[serde(rename = "ShardCount")]
    shard_count: Option<i64>,
}

async fn create(
    State(s): State<AppState>,
    StreamName(stream): StreamName,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let bytes = read_body(&s, &headers, body).await?;
    let request: CreateBody =
        if bytes.iter().all(u8::is_ascii_whitespace) { CreateBody::default() } else { parse(&bytes)? };
    let shards = match request.shard_count {
        None => s.config.default_partitions,
        Some(n) if n < 1 => {
            return Err(KinesisError::validation(format!(
                "1 validation error detected: Value '{n}' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
        Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
    };
    s.streams.create_topic(&stream, TopicKind::Stream, shards).await?;
    Ok(ok_json(&json!({})))
}

async fn delete(State(s): State<AppState>, StreamName(stream): StreamName) -> Result<Response> {
    s.lookup(&stream, TopicKind::Stream).await?;
    s.streams.delete_topic(&stream).await?;
    Ok(ok_json(&json!({})))
}

/// `PutRecord` body (the integration's request shape; `StreamName` in the body is ignored, the
/// path names the stream).
#[derive(Deserialize)]
struct PutRecordBody<'a> {
    #[serde(rename = "Data", borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(rename = "PartitionKey", default)]
    partition_key: Option<String>,
}

/// `PutRecords` body: the integration's `{"records":[{"data","partition-key"}]}`, or Kinesis'
/// own `{"Records":[{"Data","PartitionKey"}]}`.
#[derive(Deserialize)]
struct PutRecordsBody<'a> {
    #[serde(alias = "Records", borrow)]
    records: Vec<PutRecordsEntry<'a>>,
}

#[derive(Deserialize)]
struct PutRecordsEntry<'a> {
    #[serde(alias = "Data", borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(rename = "partition-key", alias = "PartitionKey", default)]
    partition_key: Option<String>,
}

/// Checks one record and turns it into (shard-independent) key and value.
fn record(
    s: &AppState,
    body: &Bytes,
    data: Option<&RawValue>,
    key: Option<String>,
    at: &str,
) -> Result<(String, Bytes)> {
    let data = data
        .filter(|d| d.get() != "null")
        .ok_or_else(|| KinesisError::validation(format!("1 validation error detected: Value null at '{at}data' failed to satisfy constraint: Member must not be null")))?;
    let key = key.ok_or_else(|| {
        KinesisError::validation(format!("1 validation error detected: Value null at '{at}partitionKey' failed to satisfy constraint: Member must not be null"))
    })?;
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_PARTITION_KEY {
        return Err(KinesisError::validation(format!(
            "1 validation error detected: Value at '{at}partitionKey' failed to satisfy constraint: Member must have length between 1 and {MAX_PARTITION_KEY}"
        )));
    }
    let value = body::json_value(body, data);
    if value.len() + key.len() > s.config.max_record_bytes {
        return Err(KinesisError::validation(format!(
            "1 validation error detected: Value at '{at}data' failed to satisfy constraint: Member must have length less than or equal to {}",
            s.config.max_record_bytes
        )));
    }
    Ok((key, value))
}

async fn put_record(
    State(s): State<AppState>,
    StreamName(stream): StreamName,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let mut admission = s.admit(&headers).map_err(KinesisError::overloaded)?;
    let bytes = read_body(&s, &headers, body).await?;
    admission.grow_to(bytes.len()).map_err(|o| s.refused(KinesisError::overloaded(o)))?;
    let request: PutRecordBody<'_> = parse(&bytes)?;
    let (key, value) = record(&s, &bytes, request.data, request.partition_key, "")?;
    let info = s.ensure_topic(&stream, TopicKind::Stream, None).await?;
    let shard = partitioner::kinesis_shard(&key, info.partitions);
    let size = (key.len() + value.len()) as u64;
    let record = Record { timestamp_ms: None, key: Some(Bytes::from(key)), value };
    let positions = s.streams.append_positioned(&stream, shard, vec![record]).await?;
    let position = positions.first().ok_or_else(|| KinesisError::internal("the log returned no sequence number"))?;
    s.metrics.appended(&stream, 1, size);
    let body = format!(
        "{{\"SequenceNumber\":\"{}\",\"ShardId\":\"{}\",\"EncryptionType\":\"NONE\"}}",
        sequence_of(shard, position),
        shard_id(shard)
    );
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
    Ok(r)
}

async fn put_records(
    State(s): State<AppState>,
    StreamName(stream): StreamName,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let mut admission = s.admit(&headers).map_err(KinesisError::overloaded)?;
    let bytes = read_body(&s, &headers, body).await?;
    admission.grow_to(bytes.len()).map_err(|o| s.refused(KinesisError::overloaded(o)))?;
    let request: PutRecordsBody<'_> = parse(&bytes)?;
    let n = request.records.len();
    let max = MAX_PUT_RECORDS.min(s.config.max_records);
    if n == 0 || n > max {
        return Err(KinesisError::validation(format!(
            "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length between 1 and {max} (it has {n})"
        )));
    }
    let mut checked = Vec::with_capacity(n);
    for (i, r) in request.records.iter().enumerate() {
        checked.push(record(&s, &bytes, r.data, r.partition_key.clone(), &format!("records.{}.member.", i + 1))?);
    }
    drop(request);
    let info = s.ensure_topic(&stream, TopicKind::Stream, None).await?;
    let mut targets = Vec::with_capacity(n);
    let mut records = Vec::with_capacity(n);
    for (key, value) in checked {
        targets.push(partitioner::kinesis_shard(&key, info.partitions));
        records.push(Record { timestamp_ms: None, key: Some(Bytes::from(key)), value });
    }
    let outcomes = crate::append::grouped(&s, s.streams.as_ref(), &stream, &targets, records).await;
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    if failed == n {
        let reason = outcomes.iter().find_map(|o| o.as_ref().err().map(ToString::to_string)).unwrap_or_default();
        return Err(KinesisError::internal(format!("No record was stored: {reason}")));
    }
    let out: Vec<Value> = targets
        .iter()
        .zip(&outcomes)
        .map(|(shard, o)| match o {
            Ok(position) => json!({ "SequenceNumber": sequence_of(*shard, position), "ShardId": shard_id(*shard) }),
            Err(e) => json!({ "ErrorCode": "InternalFailure", "ErrorMessage": e.to_string() }),
        })
        .collect();
    Ok(ok_json(&json!({ "FailedRecordCount": failed, "Records": out, "EncryptionType": "NONE" })))
}
