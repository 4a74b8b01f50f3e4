//! `GET /consumers/{g}/instances/{i}/records`: an instance's read, as the REST Proxy answers it.
//!
//! The read starts where the instance stands in each assigned partition (its position; else
//! the group's committed offset; else `auto.offset.reset`), returns what is there up to
//! `max_bytes` (always at least one record when one is available, so a reader never stalls on a
//! large record), and waits up to `timeout` ms for records when none are there yet. With
//! auto-commit on, the positions reached by earlier reads are committed every 5 s at the next read
//! (Kafka's `auto.commit.interval.ms`), so a record is committed only after it was returned.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use pinpipe_log::{PartitionOffsets, ReadLimits, TopicKind};
use serde::Deserialize;

use super::group::{Instance, Reading, Reset};
use super::offsets::TopicPartition;
use super::{Result, auto_commit, illegal_state, store_error};
use crate::AppState;
use crate::body::Embedded;
use crate::error::{KafkaError, code};
use crate::extract::{ConsumerInstance, KafkaQuery};

/// Longest wait of one read.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes one read returns without `max_bytes`.
pub const DEFAULT_MAX_BYTES: usize = 8 << 20;
/// Most bytes one read returns, whatever `max_bytes` asks.
pub const MAX_BYTES: usize = 64 << 20;
/// Most records one read returns.
pub const MAX_RECORDS: usize = 10_000;
/// How often auto-commit commits (Kafka's default `auto.commit.interval.ms`).
pub const AUTO_COMMIT_EVERY: Duration = Duration::from_secs(5);

/// Read parameters.
#[derive(Debug, Deserialize)]
pub struct ReadQuery {
    timeout: Option<String>,
    max_bytes: Option<String>,
}

/// The partitions `i` reads now.
pub(crate) async fn assigned(s: &AppState, i: &Instance) -> Result<Vec<TopicPartition>> {
    let topics: Vec<_> = s.log.topics().await?.into_iter().filter(|t| t.kind == TopicKind::Topic).collect();
    Ok(s.consumers.registry.assignment(i, &topics))
}

/// The offsets a partition holds.
pub(crate) async fn partition_offsets(s: &AppState, (topic, p): &TopicPartition) -> Result<PartitionOffsets> {
    let all = s.log.offsets(topic).await?;
    all.into_iter().find(|o| o.partition == *p).ok_or_else(|| KafkaError::partition_not_found(topic, *p))
}

/// The format the `Accept` header asks for: `None` for "whatever the instance has".
fn accepted(headers: &HeaderMap) -> std::result::Result<Option<Embedded>, ()> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let accept = accept.to_ascii_lowercase();
    if accept.contains("application/vnd.kafka.json.v2+json") {
        Ok(Some(Embedded::Json))
    } else if accept.contains("application/vnd.kafka.binary.v2+json") {
        Ok(Some(Embedded::Binary))
    } else if ["avro", "jsonschema", "protobuf"].iter().any(|f| accept.contains(&format!("application/vnd.kafka.{f}")))
    {
        Err(())
    } else {
        Ok(None)
    }
}

fn format_mismatch() -> KafkaError {
    KafkaError::new(
        StatusCode::NOT_ACCEPTABLE,
        code::CONSUMER_FORMAT_MISMATCH,
        "The requested embedded data format does not match the deserializer for this consumer instance",
    )
}

fn number(what: &str, text: Option<&str>) -> Result<Option<i64>> {
    text.map(|t| t.parse::<i64>().map_err(|_| KafkaError::bad_request(format!("{what} {t:?} is not a number"))))
        .transpose()
}

/// `GET .../records`.
pub async fn records(
    State(s): State<AppState>,
    ConsumerInstance(i): ConsumerInstance,
    KafkaQuery(q): KafkaQuery<ReadQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    match accepted(&headers) {
        Ok(Some(f)) if f != i.format => return Err(format_mismatch()),
        Err(()) => return Err(format_mismatch()),
        Ok(_) => {}
    }
    let timeout = match number("timeout", q.timeout.as_deref())? {
        Some(ms) if ms >= 0 => Duration::from_millis(ms as u64).min(MAX_TIMEOUT),
        _ => i.request_timeout,
    };
    let max_bytes = match number("max_bytes", q.max_bytes.as_deref())? {
        Some(b) if b > 0 => (b as usize).min(MAX_BYTES),
        _ => DEFAULT_MAX_BYTES,
    };
    let mut reading = i.reading.lock().await;
    if reading.last_auto_commit.is_none_or(|t| t.elapsed() >= AUTO_COMMIT_EVERY) {
        auto_commit(&s, &i, &mut reading).await?;
    }
    let parts = assigned(&s, &i).await?;
    position(&s, &i, &mut reading, &parts).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    let got = loop {
        let got = read_once(&s, &i, &mut reading, &parts, max_bytes).await?;
        let now = tokio::time::Instant::now();
        if !got.is_empty() || now >= deadline {
            break got;
        }
        wait_any(&s, &reading, &parts, deadline).await;
    };
    Ok(render(&i, got))
}

/// Gives every assigned partition a position and forgets partitions no longer assigned.
async fn position(s: &AppState, i: &Instance, reading: &mut Reading, parts: &[TopicPartition]) -> Result<()> {
    reading.positions.retain(|tp, _| parts.contains(tp));
    let committed = s.consumers.offsets.committed(&i.group).map_err(store_error)?;
    for tp in parts {
        if reading.positions.contains_key(tp) {
            continue;
        }
        let at = match committed.get(tp) {
            Some(o) => *o,
            None => reset(s, i, tp).await?,
        };
        reading.positions.insert(tp.clone(), at);
    }
    Ok(())
}

/// Where `auto.offset.reset` puts a partition.
async fn reset(s: &AppState, i: &Instance, tp: &TopicPartition) -> Result<u64> {
    let o = partition_offsets(s, tp).await?;
    match i.reset {
        Reset::Earliest => Ok(o.start),
        Reset::Latest => Ok(o.end),
        Reset::None => Err(illegal_state(format!(
            "No committed offset for partition {}-{} and auto.offset.reset is none",
            tp.0, tp.1
        ))),
    }
}

/// A record read, for the response.
struct Got {
    topic: String,
    partition: u32,
    record: pinpipe_log::StoredRecord,
}

/// One pass over the partitions (starting at a rotating one), within the limits.
async fn read_once(
    s: &AppState,
    i: &Instance,
    reading: &mut Reading,
    parts: &[TopicPartition],
    max_bytes: usize,
) -> Result<Vec<Got>> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let n = parts.len();
    let first = if n == 0 { 0 } else { reading.rotate % n };
    reading.rotate = reading.rotate.wrapping_add(1);
    for tp in parts.iter().cycle().skip(first).take(n) {
        if out.len() >= MAX_RECORDS || (bytes >= max_bytes && !out.is_empty()) {
            break;
        }
        let Some(&at) = reading.positions.get(tp) else { continue };
        let limits =
            ReadLimits { max_records: MAX_RECORDS - out.len(), max_bytes: max_bytes.saturating_sub(bytes).max(1) };
        let read = match s.log.read(&tp.0, tp.1, at, limits).await {
            Err(pinpipe_log::Error::OffsetOutOfRange { .. }) => {
                // Retention removed what the position pointed at (or the topic was recreated).
                let to = reset(s, i, tp).await?;
                reading.positions.insert(tp.clone(), to);
                s.log.read(&tp.0, tp.1, to, limits).await
            }
            other => other,
        };
        let records = match read {
            Ok(r) => r,
            // Deleted meanwhile: nothing to read there.
            Err(pinpipe_log::Error::TopicNotFound(_) | pinpipe_log::Error::PartitionNotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut taken = 0;
        for r in records {
            let size = r.value.len() + r.key.as_ref().map_or(0, bytes::Bytes::len);
            if !out.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            taken += 1;
            reading.positions.insert(tp.clone(), r.offset + 1);
            out.push(Got { topic: tp.0.clone(), partition: tp.1, record: r });
        }
        if taken == 0 && !out.is_empty() {
            break;
        }
    }
    Ok(out)
}

/// Waits until a record is at some partition's position, or the deadline.
async fn wait_any(s: &AppState, reading: &Reading, parts: &[TopicPartition], deadline: tokio::time::Instant) {
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let waits: Vec<_> = parts
        .iter()
        .filter_map(|tp| reading.positions.get(tp).map(|at| (tp, *at)))
        .map(|(tp, at)| Box::pin(async move { s.log.wait_for(&tp.0, tp.1, at, left).await }))
        .collect();
    if waits.is_empty() {
        tokio::time::sleep_until(deadline).await;
        return;
    }
    let started = Instant::now();
    let (outcome, _, _) = futures_util::future::select_all(waits).await;
    if outcome.is_err() && started.elapsed() < left {
        // A partition that cannot be waited on (deleted): do not spin.
        tokio::time::sleep_until(deadline).await;
    }
}

/// JSON of an embedded-JSON key or value: the stored text when it is JSON, else a string.
fn json_of(bytes: &[u8]) -> String {
    match serde_json::from_slice::<&serde_json::value::RawValue>(bytes) {
        Ok(raw) => raw.get().to_owned(),
        Err(_) => serde_json::Value::from(String::from_utf8_lossy(bytes)).to_string(),
    }
}

fn render(i: &Instance, got: Vec<Got>) -> Response {
    let b64 = base64::engine::general_purpose::STANDARD;
    let embed = |b: Option<&[u8]>| match (b, i.format) {
        (None, _) => "null".to_owned(),
        (Some(b), Embedded::Json) => json_of(b),
        (Some(b), Embedded::Binary) => format!("\"{}\"", b64.encode(b)),
    };
    let mut body = String::from("[");
    for (n, g) in got.iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            "{{\"topic\":{},\"key\":{},\"value\":{},\"partition\":{},\"offset\":{}}}",
            serde_json::Value::from(g.topic.as_str()),
            embed(g.record.key.as_deref()),
            embed(Some(&g.record.value)),
            g.partition,
            g.record.offset
        );
    }
    body.push(']');
    let ct = match i.format {
        Embedded::Json => "application/vnd.kafka.json.v2+json",
        Embedded::Binary => "application/vnd.kafka.binary.v2+json",
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_embedded_as_json_when_they_are_json() {
        assert_eq!(json_of(br#"{"a": [1, 2]}"#), r#"{"a": [1, 2]}"#);
        assert_eq!(json_of(b"\"k\""), "\"k\"");
        assert_eq!(json_of(b"not json"), "\"not json\"");
        assert_eq!(json_of(&[0xff, b'x']), "\"\u{fffd}x\"");
    }
}
