//! The log port: what every backend (embedded, Kafka, Kinesis) provides.

use std::sync::Arc;
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

/// The log port: what every backend (embedded, Kafka, Kinesis) provides, all of it. Positions
/// are [`Position`]s (an offset or a Kinesis sequence number) and readers keep [`Cursor`]s, so a
/// consumer written against this trait runs on every backend.
///
/// Backends whose positions are dense offsets (the embedded log, Kafka) also implement
/// [`OffsetLog`], reached through [`Log::as_offsets`] / [`Log::into_offsets`].
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

    /// Appends `records` to one partition as one unit (after a crash either all of them are
    /// there or none) and returns each record's position, once they are durable.
    async fn append_positioned(&self, topic: &str, partition: u32, records: Vec<Record>) -> Result<Vec<Position>>;

    /// Reads from `cursor`: at most `limits` of the records there, with where to continue and
    /// whether the read reached the end. Only durable records are ever returned.
    async fn read_from(&self, topic: &str, partition: u32, cursor: &Cursor, limits: ReadLimits) -> Result<Chunk>;

    /// Waits until a record is at `cursor` or `timeout` passes; returns whether one is there.
    /// Never busy-polls.
    async fn wait_from(&self, topic: &str, partition: u32, cursor: &Cursor, timeout: Duration) -> Result<bool>;

    /// Partitions that need attention (damaged files, failing writes), for health checks; none
    /// by default.
    fn problems(&self) -> Vec<String> {
        Vec::new()
    }

    /// What this backend stores of a record (keys, timestamps).
    fn capabilities(&self) -> Capabilities {
        Capabilities::FULL
    }

    /// The offset-addressed side of this log, where its positions are dense offsets.
    fn as_offsets(&self) -> Option<&dyn OffsetLog> {
        None
    }

    /// [`Log::as_offsets`], owned.
    fn into_offsets(self: Arc<Self>) -> Option<Arc<dyn OffsetLog>> {
        None
    }
}

/// The offset-addressed extension of the port, for backends whose positions are dense offsets
/// (the embedded log, Kafka): every partition has a start and an end offset, a record's
/// position is its offset, and the next one is at `offset + 1`. Consumers that name things
/// by offsets take this trait (the sink: its object names are offsets), so that needing dense
/// offsets is a type, not a runtime error.
#[async_trait]
pub trait OffsetLog: Log {
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

    /// Records that `consumer` (e.g. `sink`, `stream`) has consumed `topic`'s `partition` up to
    /// `next` (the next offset it will read): retention does not remove records it has not
    /// consumed yet. A no-op where the backend has its own retention rules (Kafka).
    async fn hold(&self, topic: &str, partition: u32, consumer: &str, next: u64) -> Result<()> {
        let _ = (topic, partition, consumer, next);
        Ok(())
    }

    /// The latencies of the fsyncs that made appends durable, where the backend does them
    /// itself (the embedded log).
    fn sync_latency(&self) -> Option<pinpipe_model::histogram::Histogram> {
        None
    }

    /// Per partition, bytes retention would have removed but keeps because a consumer has not
    /// read them yet: `(topic, partition, bytes)`.
    fn retention_held(&self) -> Vec<(String, u32, u64)> {
        Vec::new()
    }
}

/// The positioned methods of [`Log`] for a backend with dense offsets, in terms of its
/// [`OffsetLog`] methods: what the embedded log and Kafka answer when asked by position.
pub mod dense {
    use super::*;

    /// [`Log::append_positioned`]: the offsets of the appended records.
    pub async fn append_positioned<L: OffsetLog + ?Sized>(
        log: &L,
        topic: &str,
        partition: u32,
        records: Vec<Record>,
    ) -> Result<Vec<Position>> {
        let n = records.len() as u64;
        let first = log.append(topic, partition, records).await?;
        Ok((first..first + n).map(Position::Offset).collect())
    }

    /// [`Log::read_from`]: a read from the cursor's offset.
    pub async fn read_from<L: OffsetLog + ?Sized>(
        log: &L,
        topic: &str,
        partition: u32,
        cursor: &Cursor,
        limits: ReadLimits,
    ) -> Result<Chunk> {
        let o = partition_offsets(log, topic, partition).await?;
        let at = cursor.dense_offset(o.start)?;
        let records = log.read(topic, partition, at, limits).await?;
        Ok(Chunk::dense(records, cursor, at, o.end))
    }

    /// [`Log::wait_from`]: a wait at the cursor's offset.
    pub async fn wait_from<L: OffsetLog + ?Sized>(
        log: &L,
        topic: &str,
        partition: u32,
        cursor: &Cursor,
        timeout: Duration,
    ) -> Result<bool> {
        let o = partition_offsets(log, topic, partition).await?;
        let at = cursor.dense_offset(o.start)?;
        log.wait_for(topic, partition, at, timeout).await
    }

    /// One partition's offsets, `Error::PartitionNotFound` if the topic has no such partition.
    pub async fn partition_offsets<L: OffsetLog + ?Sized>(
        log: &L,
        topic: &str,
        partition: u32,
    ) -> Result<PartitionOffsets> {
        let all = log.offsets(topic).await?;
        let partitions = all.len() as u32;
        all.into_iter().find(|o| o.partition == partition).ok_or_else(|| Error::PartitionNotFound {
            topic: topic.to_owned(),
            partition,
            partitions,
        })
    }
}
