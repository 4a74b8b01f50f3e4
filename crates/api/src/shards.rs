//! Kinesis reads through the API, as AWS's API Gateway → Kinesis tutorial exposes them:
//!
//! * `GET /streams/{stream}/sharditerator?shard-id=shardId-000000000000` → `{"ShardIterator"}`
//!   (`GetShardIterator`). The tutorial's mapping template fixes `TRIM_HORIZON`; the optional
//!   `type` parameter (`ShardIteratorType`: `TRIM_HORIZON`, `LATEST`, `AT_SEQUENCE_NUMBER`,
//!   `AFTER_SEQUENCE_NUMBER`) and `starting-sequence-number` select the others.
//! * `GET /streams/{stream}/records` with the `Shard-Iterator` header (and an optional `limit`,
//!   1–10000) → `{"Records":[{"SequenceNumber","ApproximateArrivalTimestamp","Data",
//!   "PartitionKey"}],"NextShardIterator","MillisBehindLatest"}` (`GetRecords`), `Data` in base64
//!   as Kinesis returns it.
//!
//! A shard iterator is an opaque token naming the stream, the shard and where to continue; like
//! Kinesis' it expires five minutes after it was handed out (`ExpiredIteratorException`).

use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use pinpipe_log::partitioner::{parse_sequence_number, parse_shard_id, sequence_of, shard_id};
use pinpipe_log::{Cursor, Position, ReadLimits, TopicKind};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ACCOUNT, KinesisError};
use crate::extract::{KinesisQuery, StreamName};
use crate::streams::ok_json;

type Result<T, E = KinesisError> = std::result::Result<T, E>;

/// How long a shard iterator stays valid (Kinesis: 5 minutes).
pub const ITERATOR_TTL: Duration = Duration::from_secs(300);
/// Most records one `GetRecords` returns (Kinesis' limit).
pub const MAX_GET_RECORDS: usize = 10_000;
/// Most bytes of data one `GetRecords` returns (Kinesis: 10 MiB).
pub const MAX_GET_BYTES: usize = 10 << 20;

/// What a shard iterator stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Iterator {
    /// Stream.
    s: String,
    /// Shard (partition).
    p: u32,
    /// Where the next read starts.
    c: Cursor,
    /// Expiry, milliseconds since the epoch.
    x: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Iterator {
    fn new(stream: &str, shard: u32, cursor: Cursor) -> Self {
        Iterator { s: stream.to_owned(), p: shard, c: cursor, x: now_ms() + ITERATOR_TTL.as_millis() as i64 }
    }

    fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    fn decode(text: &str) -> Result<Self> {
        let invalid = || KinesisError::new("InvalidArgumentException", "Invalid ShardIterator.");
        if text.is_empty() || text.len() > 4096 {
            return Err(invalid());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| invalid())?;
        serde_json::from_slice(&bytes).map_err(|_| invalid())
    }
}

/// `GET .../sharditerator` parameters.
#[derive(Debug, Deserialize)]
pub struct IteratorQuery {
    #[serde(rename = "shard-id", alias = "ShardId")]
    shard_id: Option<String>,
    #[serde(rename = "type", alias = "ShardIteratorType")]
    kind: Option<String>,
    #[serde(rename = "starting-sequence-number", alias = "StartingSequenceNumber")]
    starting_sequence_number: Option<String>,
}

/// `GET .../records` parameters.
#[derive(Debug, Deserialize)]
pub struct RecordsQuery {
    limit: Option<String>,
}

/// `GetShardIterator`.
pub async fn shard_iterator(
    State(s): State<AppState>,
    StreamName(stream): StreamName,
    KinesisQuery(q): KinesisQuery<IteratorQuery>,
) -> Result<Response> {
    let info = s.lookup(&stream, TopicKind::Stream).await?;
    let id = q.shard_id.ok_or_else(|| {
        KinesisError::validation(
            "1 validation error detected: Value null at 'shardId' failed to satisfy constraint: Member must not be null",
        )
    })?;
    let shard = parse_shard_id(&id).filter(|p| *p < info.partitions).ok_or_else(|| {
        KinesisError::new(
            "ResourceNotFoundException",
            format!("Shard {id} in stream {stream} under account {ACCOUNT} does not exist"),
        )
    })?;
    let cursor = cursor_for(&s, &stream, shard, q.kind.as_deref(), q.starting_sequence_number.as_deref()).await?;
    Ok(ok_json(&json!({ "ShardIterator": Iterator::new(&stream, shard, cursor).encode() })))
}

/// The cursor an iterator of `kind` starts at.
async fn cursor_for(s: &AppState, stream: &str, shard: u32, kind: Option<&str>, seq: Option<&str>) -> Result<Cursor> {
    let offsets_log = s.streams.as_offsets();
    let dense = offsets_log.is_some();
    let at_sequence = |seq: Option<&str>| -> Result<Position> {
        let seq = seq.ok_or_else(|| {
            KinesisError::new(
                "InvalidArgumentException",
                "StartingSequenceNumber must be given for AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER",
            )
        })?;
        let bad = || {
            KinesisError::new(
                "InvalidArgumentException",
                format!(
                    "StartingSequenceNumber {seq} used in GetShardIterator on shard {} is invalid",
                    shard_id(shard)
                ),
            )
        };
        if dense {
            match parse_sequence_number(seq) {
                Some((p, offset)) if p == shard => Ok(Position::Offset(offset)),
                _ => Err(bad()),
            }
        } else {
            Position::sequence(seq).map_err(|_| bad())
        }
    };
    match kind.unwrap_or("TRIM_HORIZON") {
        "TRIM_HORIZON" => Ok(Cursor::Start),
        "AT_SEQUENCE_NUMBER" => Ok(Cursor::At(at_sequence(seq)?)),
        "AFTER_SEQUENCE_NUMBER" => Ok(Cursor::After(at_sequence(seq)?)),
        "LATEST" if let Some(log) = offsets_log => {
            let offsets = log.offsets(stream).await?;
            let end = offsets.iter().find(|o| o.partition == shard).map_or(0, |o| o.end);
            Ok(Cursor::At(Position::Offset(end)))
        }
        "LATEST" => Err(KinesisError::new(
            "InvalidArgumentException",
            "LATEST iterators are not served through the API when streams are on Amazon Kinesis: read the stream \
             from Kinesis itself",
        )),
        other => Err(KinesisError::validation(format!(
            "1 validation error detected: Value '{other}' at 'shardIteratorType' failed to satisfy constraint: Member \
             must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST]"
        ))),
    }
}

/// `GetRecords`.
pub async fn get_records(
    State(s): State<AppState>,
    StreamName(stream): StreamName,
    KinesisQuery(q): KinesisQuery<RecordsQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let limit = match q.limit.as_deref() {
        None => MAX_GET_RECORDS,
        Some(l) => l.parse::<usize>().ok().filter(|n| (1..=MAX_GET_RECORDS).contains(n)).ok_or_else(|| {
            KinesisError::validation(format!(
                "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must \
                 have value between 1 and {MAX_GET_RECORDS}"
            ))
        })?,
    };
    let text = headers.get("shard-iterator").and_then(|v| v.to_str().ok()).ok_or_else(|| {
        KinesisError::validation(
            "1 validation error detected: Value null at 'shardIterator' failed to satisfy constraint: Member \
             must not be null",
        )
    })?;
    let it = Iterator::decode(text)?;
    if it.s != stream {
        return Err(KinesisError::new(
            "InvalidArgumentException",
            format!("The shard iterator is for stream {}, not {stream}", it.s),
        ));
    }
    let now = now_ms();
    if now > it.x {
        return Err(KinesisError::new(
            "ExpiredIteratorException",
            format!(
                "Iterator expired. The iterator was created at time {} while right now it is {now} which is \
                 further in the future than the tolerated delay of {} milliseconds.",
                it.x - ITERATOR_TTL.as_millis() as i64,
                ITERATOR_TTL.as_millis()
            ),
        ));
    }
    s.lookup(&stream, TopicKind::Stream).await?;
    let limits = ReadLimits { max_records: limit, max_bytes: MAX_GET_BYTES };
    let chunk = match s.streams.read_from(&stream, it.p, &it.c, limits).await {
        // Records retention removed: continue from the oldest held, as Kinesis' trim horizon.
        Err(pinpipe_log::Error::OffsetOutOfRange { offset, start, .. }) if offset < start => {
            s.streams.read_from(&stream, it.p, &Cursor::Start, limits).await?
        }
        other => other?,
    };
    let behind = match chunk.records.last() {
        _ if chunk.at_end => 0,
        Some(r) => (now - r.timestamp_ms).max(0),
        None => 0,
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let records: Vec<Value> = chunk
        .records
        .iter()
        .map(|r| {
            json!({
                "SequenceNumber": sequence_of(it.p, &r.position),
                "ApproximateArrivalTimestamp": r.timestamp_ms as f64 / 1000.0,
                "Data": b64.encode(&r.value),
                "PartitionKey": r.key.as_deref().map(String::from_utf8_lossy).unwrap_or_default(),
            })
        })
        .collect();
    let next = Iterator::new(&stream, it.p, chunk.next);
    Ok(ok_json(&json!({
        "Records": records,
        "NextShardIterator": next.encode(),
        "MillisBehindLatest": behind,
    })))
}

/// An iterator of `stream`'s `shard` that expired a minute ago.
#[cfg(test)]
pub(crate) fn expired_iterator_for_tests(stream: &str, shard: u32) -> String {
    Iterator { x: now_ms() - 60_000, ..Iterator::new(stream, shard, Cursor::Start) }.encode()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn iterators_round_trip_and_garbage_is_refused() {
        let it = Iterator::new("s", 3, Cursor::After(Position::Offset(41)));
        assert_eq!(Iterator::decode(&it.encode()).unwrap(), it);
        for bad in ["", "%%%", "bm90IGpzb24", &"A".repeat(5000)] {
            assert_eq!(Iterator::decode(bad).unwrap_err().kind, "InvalidArgumentException", "{bad:?}");
        }
    }
}
