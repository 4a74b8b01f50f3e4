//! The Kinesis backend of the log port: streams on Amazon Kinesis (or any server of its API,
//! such as moto or kinesalite), through the AWS SDK.
//!
//! * A pinpipe partition is an open shard; partition `i` is the `i`-th open shard in shard-id
//!   order. Appends target a shard with `ExplicitHashKey` = the start of its hash-key range.
//!   Resharding a stream while pinpipe uses it is not supported yet (shard numbering would move).
//! * Positions are Kinesis' own sequence numbers ([`Position::Sequence`]); there are no dense
//!   offsets, so it implements [`Log`] only (not [`crate::OffsetLog`]): consumers use
//!   [`Log::read_from`] / [`Log::wait_from`] with cursors (`TRIM_HORIZON`,
//!   `AT_SEQUENCE_NUMBER`, `AFTER_SEQUENCE_NUMBER`). Shard iterators are kept between reads of
//!   the same reader, so a reader that keeps up costs one `GetRecords` per read.
//! * Every record has a partition key: a record without a key gets its shard id as key, and a
//!   record's own timestamp is replaced by Kinesis' arrival time ([`Capabilities`]).
//! * An append of several records is a `PutRecords`: Kinesis may accept some and refuse others
//!   (throttling); the refused ones are sent again, up to [`PUT_ATTEMPTS`] times, so records
//!   are never lost once acknowledged, but a batch is not all-or-nothing and a retried record
//!   lands after the ones accepted first.
//! * Waiting for data polls the shard every `poll_interval` (Kinesis has no long poll).
//! * Kinesis holds streams only: creating a Kafka-style topic is refused.

mod config;
mod port;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};
use bytes::Bytes;

pub use self::config::{KinesisConfig, ResolvedKinesis};
use crate::port::{Log, MAX_PARTITIONS, ReadLimits, Record, TopicInfo, TopicKind};
use crate::position::{Capabilities, Chunk, Cursor, Entry, Position};
use crate::{Error, Result};

/// Attempts of a `PutRecords` for records Kinesis refused (throttling, internal failures).
pub const PUT_ATTEMPTS: u32 = 6;

/// Most records of one `PutRecords` (a Kinesis limit).
const PUT_MAX_RECORDS: usize = 500;

/// Most bytes of one `PutRecords` (a Kinesis limit: 5 MiB of data and keys).
const PUT_MAX_BYTES: usize = 5 << 20;

/// Most records of one `GetRecords` (a Kinesis limit).
const GET_MAX_RECORDS: usize = 10_000;

/// How long a cached shard iterator is used (Kinesis expires them after 5 minutes).
const ITERATOR_TTL: Duration = Duration::from_secs(240);

/// How long creating or deleting a stream may take before it is reported.
const STATUS_WAIT: Duration = Duration::from_secs(120);

/// How long a stream's description is reused (`DescribeStreamSummary` allows 20 calls per
/// second per account, and the API asks for it on every request).
const DESCRIPTION_TTL: Duration = Duration::from_secs(30);

/// Empty `GetRecords` answers followed in one read while the shard reports records further on.
const EMPTY_HOPS: usize = 5;

const SERVICE: &str = "Kinesis";

/// One open shard.
#[derive(Debug, Clone)]
struct Shard {
    id: String,
    start_hash_key: String,
}

/// The cursor a cached shard iterator stands at, the iterator, and when it was obtained.
type CachedIterator = (Cursor, String, Instant);

/// The Kinesis backend.
pub struct KinesisLog {
    client: Client,
    describe: String,
    poll_interval: Duration,
    /// Open shards per stream, in partition order.
    shards: Mutex<HashMap<String, Vec<Shard>>>,
    /// Recent stream descriptions.
    described: Mutex<HashMap<String, (TopicInfo, Instant)>>,
    /// Per (stream, partition): the cursor a cached iterator stands at, the iterator, and when
    /// it was obtained.
    iterators: Mutex<HashMap<(String, u32), CachedIterator>>,
}

impl KinesisLog {
    /// Connects with the AWS default chain for credentials (and region, unless configured).
    pub async fn connect(config: &ResolvedKinesis) -> Result<Self> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let shared = loader.load().await;
        let Some(region) = shared.region().map(ToString::to_string) else {
            return Err(Error::Remote {
                service: SERVICE,
                operation: "configuration",
                message: "no AWS region: set log.kinesis.region or AWS_REGION".into(),
            });
        };
        let describe = match &config.endpoint {
            Some(e) => format!("Kinesis at {e} (region {region})"),
            None => format!("Kinesis in {region}"),
        };
        Ok(KinesisLog {
            client: Client::new(&shared),
            describe,
            poll_interval: config.poll_interval,
            shards: Mutex::new(HashMap::new()),
            described: Mutex::new(HashMap::new()),
            iterators: Mutex::new(HashMap::new()),
        })
    }

    fn unsupported(what: &'static str) -> Error {
        Error::Unsupported { backend: SERVICE, what }
    }

    fn forget(&self, stream: &str) {
        if let Ok(mut s) = self.shards.lock() {
            s.remove(stream);
        }
        if let Ok(mut d) = self.described.lock() {
            d.remove(stream);
        }
        if let Ok(mut i) = self.iterators.lock() {
            i.retain(|(s, _), _| s != stream);
        }
    }

    /// The stream's open shards in partition order (cached).
    async fn shards(&self, stream: &str) -> Result<Vec<Shard>> {
        if let Some(s) = self.shards.lock().ok().and_then(|s| s.get(stream).cloned()) {
            return Ok(s);
        }
        pinpipe_model::names::validate_stream(stream)?;
        let mut shards = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = match &token {
                Some(t) => self.client.list_shards().next_token(t),
                None => self.client.list_shards().stream_name(stream),
            };
            let out = req.send().await.map_err(remote("ListShards", stream))?;
            for s in out.shards() {
                let open = s.sequence_number_range().is_none_or(|r| r.ending_sequence_number().is_none());
                if open && let Some(range) = s.hash_key_range() {
                    shards.push(Shard {
                        id: s.shard_id().to_owned(),
                        start_hash_key: range.starting_hash_key().to_owned(),
                    });
                }
            }
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        shards.sort_by(|a, b| a.id.cmp(&b.id));
        if let Ok(mut cache) = self.shards.lock() {
            cache.insert(stream.to_owned(), shards.clone());
        }
        Ok(shards)
    }

    async fn shard(&self, stream: &str, partition: u32) -> Result<Shard> {
        let shards = self.shards(stream).await?;
        let partitions = shards.len() as u32;
        shards.into_iter().nth(partition as usize).ok_or_else(|| Error::PartitionNotFound {
            topic: stream.to_owned(),
            partition,
            partitions,
        })
    }

    /// Waits until the stream is `ACTIVE` (after a creation); returns its description.
    async fn wait_active(&self, stream: &str) -> Result<TopicInfo> {
        let deadline = Instant::now() + STATUS_WAIT;
        loop {
            let out = self.client.describe_stream_summary().stream_name(stream).send().await;
            match out {
                Ok(o) => {
                    if let Some(s) = o.stream_description_summary()
                        && *s.stream_status() == StreamStatus::Active
                    {
                        return Ok(info(s));
                    }
                }
                Err(e) if e.code() != Some("ResourceNotFoundException") => {
                    return Err(remote("DescribeStreamSummary", stream)(e));
                }
                Err(_) => {}
            }
            if Instant::now() > deadline {
                return Err(Error::Remote {
                    service: SERVICE,
                    operation: "CreateStream",
                    message: format!("stream {stream} was not ACTIVE after {}s", STATUS_WAIT.as_secs()),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A shard iterator standing at `cursor`: the cached one, or a new one.
    async fn iterator(&self, stream: &str, partition: u32, shard: &Shard, cursor: &Cursor) -> Result<String> {
        let key = (stream.to_owned(), partition);
        if let Some((at, it, when)) = self.iterators.lock().ok().and_then(|m| m.get(&key).cloned())
            && at == *cursor
            && when.elapsed() < ITERATOR_TTL
        {
            return Ok(it);
        }
        let req = self.client.get_shard_iterator().stream_name(stream).shard_id(&shard.id);
        let req = match cursor {
            Cursor::Start => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Cursor::At(p) => {
                req.shard_iterator_type(ShardIteratorType::AtSequenceNumber).starting_sequence_number(sequence(p)?)
            }
            Cursor::After(p) => {
                req.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).starting_sequence_number(sequence(p)?)
            }
        };
        let out = req.send().await.map_err(|e| match e.code() {
            Some("InvalidArgumentException") => Error::InvalidPosition(cursor.to_string()),
            _ => remote("GetShardIterator", stream)(e),
        })?;
        out.shard_iterator().map(ToOwned::to_owned).ok_or_else(|| Error::Remote {
            service: SERVICE,
            operation: "GetShardIterator",
            message: format!("no iterator for shard {} of {stream} (the shard is closed)", shard.id),
        })
    }

    fn remember(&self, stream: &str, partition: u32, cursor: Cursor, iterator: Option<&str>) {
        if let Ok(mut m) = self.iterators.lock() {
            let key = (stream.to_owned(), partition);
            match iterator {
                Some(it) => m.insert(key, (cursor, it.to_owned(), Instant::now())),
                None => m.remove(&key),
            };
        }
    }

    /// One `GetRecords` from `cursor`, retried once with a fresh iterator if the cached one
    /// expired.
    async fn get(
        &self,
        stream: &str,
        partition: u32,
        shard: &Shard,
        cursor: &Cursor,
        limit: usize,
    ) -> Result<aws_sdk_kinesis::operation::get_records::GetRecordsOutput> {
        let limit = i32::try_from(limit.clamp(1, GET_MAX_RECORDS)).unwrap_or(1);
        for attempt in 0..2 {
            let it = self.iterator(stream, partition, shard, cursor).await?;
            match self.client.get_records().shard_iterator(it).limit(limit).send().await {
                Ok(out) => return Ok(out),
                Err(e) if attempt == 0 && e.code() == Some("ExpiredIteratorException") => {
                    self.remember(stream, partition, cursor.clone(), None);
                }
                Err(e) => return Err(remote("GetRecords", stream)(e)),
            }
        }
        Err(Error::Remote {
            service: SERVICE,
            operation: "GetRecords",
            message: "the shard iterator expired twice".into(),
        })
    }
}

/// The sequence number of a position given to Kinesis.
fn sequence(p: &Position) -> Result<String> {
    match p {
        Position::Sequence(s) => Ok(s.clone()),
        Position::Offset(_) => Err(Error::InvalidPosition(p.to_string())),
    }
}

fn info(s: &aws_sdk_kinesis::types::StreamDescriptionSummary) -> TopicInfo {
    TopicInfo {
        name: s.stream_name().to_owned(),
        kind: TopicKind::Stream,
        partitions: u32::try_from(s.open_shard_count()).unwrap_or(0),
        created_ms: s.stream_creation_timestamp().to_millis().unwrap_or(0),
    }
}

/// Maps an SDK error: a missing stream is `TopicNotFound`, anything else a `Remote` error with
/// the service's message.
fn remote<E, R>(operation: &'static str, stream: &str) -> impl FnOnce(SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let stream = stream.to_owned();
    move |e| match e.code() {
        Some("ResourceNotFoundException") => Error::TopicNotFound(stream),
        _ => Error::Remote { service: SERVICE, operation, message: DisplayErrorContext(&e).to_string() },
    }
}

/// The partition key of a record: its key if that is a valid Kinesis key (1–256 characters of
/// UTF-8), else the shard id.
fn partition_key(key: Option<&Bytes>, shard: &Shard) -> String {
    key.and_then(|k| std::str::from_utf8(k).ok())
        .filter(|k| !k.is_empty() && k.chars().count() <= 256)
        .map_or_else(|| shard.id.clone(), ToOwned::to_owned)
}

#[cfg(test)]
mod tests;
