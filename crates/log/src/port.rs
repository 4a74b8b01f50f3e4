//! The log port: what every backend (embedded, Kafka, Kinesis) provides.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::position::{Capabilities, Chunk, Cursor, Position};
use crate::{Error, Result};

/// Most partitions (shards) a topic may have.
pub const MAX_PARTITIONS: u32 = 1024;

/// Whether a name was created as a Kafka-style topic or a Kinesis-style stream. Both are the
/// same thing underneath; the kind decides which API lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicKind {
    /// Listed by `GET /topics`.
    Topic,
    /// Listed by `GET /streams`.
    Stream,
}

/// A topic's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Topic or stream.
    pub kind: TopicKind,
    /// Number of partitions (shards).
    pub partitions: u32,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// The offsets a partition holds: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOffsets {
    /// Partition number.
    pub partition: u32,
    /// First offset still held (retention removes older ones).
    pub start: u64,
    /// The offset the next record will get; every offset below it is durable.
    pub end: u64,
}

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Milliseconds since the epoch; `None` takes the append time.
    pub timestamp_ms: Option<i64>,
    /// Optional key.
    pub key: Option<Bytes>,
    /// The value.
    pub value: Bytes,
}

impl Record {
    /// A record with only a value.
    pub fn value(value: impl Into<Bytes>) -> Self {
        Record { timestamp_ms: None, key: None, value: value.into() }
    }
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its offset in the partition.
    pub offset: u64,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Key, if any.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Bytes,
}

/// Bounds of one read: it returns at most this many records and stops after the batch that
/// crosses `max_bytes` (always at least one record when one is available).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Most records.
    pub max_records: usize,
    /// Approximate most bytes of keys and values.
    pub max_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits { max_records: 10_000, max_bytes: 8 << 20 }
    }
}

/// The log port.
#[async_trait]
pub trait Log: Send + Sync {
    /// What this log is, for messages (`embedded log at .pinpipe/log`, a broker list, ...).
    fn describe(&self) -> String;

    /// Creates a topic with `partitions` partitions; `Error::TopicExists` if the name is taken.
    async fn create_topic(&self, name: &str, kind: TopicKind, partitions: u32) -> Result<TopicInfo>;

    /// Deletes a topic and its records.
    async fn delete_topic(&self, name: &str) -> Result<()>;

    /// Every topic and stream, sorted by name.
    async fn topics(&self) -> Result<Vec<TopicInfo>>;

    /// One topic; `Error::TopicNotFound` if absent.
    async fn topic(&self, name: &str) -> Result<TopicInfo>;

    /// Start and end offsets of every partition of a topic.
    async fn offsets(&self, name: &str) -> Result<Vec<PartitionOffsets>>;

    /// Appends `records` to one partition as one unit: after a crash either all of them are
    /// there or none. Returns the offset of the first; the others follow densely. Returns only
    /// once the records are durable.
    async fn append(&self, topic: &str, partition: u32, records: Vec<Record>) -> Result<u64>;

    /// Reads from `offset` (which may be the end: then nothing is returned). Only durable
    /// records are ever returned. `Error::OffsetOutOfRange` below the start or above the end.
    async fn read(&self, topic: &str, partition: u32, offset: u64, limits: ReadLimits) -> Result<Vec<StoredRecord>>;

    /// Waits until the partition's end is beyond `offset` (a record at `offset` exists) or
    /// `timeout` passes; returns whether data is there. Never busy-polls.
    async fn wait_for(&self, topic: &str, partition: u32, offset: u64, timeout: Duration) -> Result<bool>;

    /// Partitions that need attention (damaged files, failing writes), for health checks; none
    /// by default.
    fn problems(&self) -> Vec<String> {
        Vec::new()
    }

    /// Records that `consumer` (e.g. `sink`, `stream`) has consumed `topic`'s `partition` up to
    /// `next` (the next offset it will read): retention does not remove records it has not
    /// consumed yet. A no-op where the backend's own retention rules (Kafka, Kinesis).
    async fn hold(&self, topic: &str, partition: u32, consumer: &str, next: u64) -> Result<()> {
        let _ = (topic, partition, consumer, next);
        Ok(())
    }

    /// Per partition, bytes retention would have removed but keeps because a consumer has not
    /// read them yet: `(topic, partition, bytes)`.
    fn retention_held(&self) -> Vec<(String, u32, u64)> {
        Vec::new()
    }

    /// How this backend numbers records. The offset methods above (`append`'s result, `read`,
    /// `offsets`' ends, `wait_for`) are meaningful only with `dense_offsets`; the positioned
    /// methods below work on every backend.
    fn capabilities(&self) -> Capabilities {
        Capabilities::DENSE
    }

    /// Appends `records` to one partition, like [`Log::append`], and returns each record's
    /// position.
    async fn append_positioned(&self, topic: &str, partition: u32, records: Vec<Record>) -> Result<Vec<Position>> {
        let n = records.len() as u64;
        let first = self.append(topic, partition, records).await?;
        Ok((first..first + n).map(Position::Offset).collect())
    }

    /// Reads from `cursor`: at most `limits` of the records there, with where to continue and
    /// whether the read reached the end.
    async fn read_from(&self, topic: &str, partition: u32, cursor: &Cursor, limits: ReadLimits) -> Result<Chunk> {
        let o = partition_offsets(self, topic, partition).await?;
        let at = cursor.dense_offset(o.start)?;
        let records = self.read(topic, partition, at, limits).await?;
        Ok(Chunk::dense(records, cursor, at, o.end))
    }

    /// Waits until a record is at `cursor` or `timeout` passes; returns whether one is there.
    async fn wait_from(&self, topic: &str, partition: u32, cursor: &Cursor, timeout: Duration) -> Result<bool> {
        let o = partition_offsets(self, topic, partition).await?;
        let at = cursor.dense_offset(o.start)?;
        self.wait_for(topic, partition, at, timeout).await
    }
}

/// One partition's offsets, `Error::PartitionNotFound` if the topic has no such partition.
async fn partition_offsets<L: Log + ?Sized>(log: &L, topic: &str, partition: u32) -> Result<PartitionOffsets> {
    let all = log.offsets(topic).await?;
    let partitions = all.len() as u32;
    all.into_iter().find(|o| o.partition == partition).ok_or_else(|| Error::PartitionNotFound {
        topic: topic.to_owned(),
        partition,
        partitions,
    })
}
