//! The log: pinpipe's stand-in for the classic stack's Kafka topics (MSK) and Kinesis streams.
//!
//! * [`port`]: the port, one trait [`Log`] (create / delete / list / describe topics, append a
//!   batch durably, read from an offset, end offsets, wait for new data). Kinesis streams are
//!   topics too: shards are partitions and sequence numbers are derived from offsets.
//! * [`embedded`]: the default backend, a durable segment log on local disk (see
//!   `docs/log.md` for the format, the guarantees and why it is not built on SQLite).
//! * [`position`]: positions every backend can express (offsets, Kinesis sequence numbers) and
//!   readers' cursors, for the consumers that must run on every backend.
//! * [`kafka`]: a backend on Apache Kafka (or any broker of its protocol), topics and streams.
//! * [`kinesis`]: a backend on Amazon Kinesis (or any server of its API), streams only.
//! * [`partitioner`]: Kafka's default partitioner (murmur2), Kinesis' MD5 hash-key ranges and
//!   sequence numbers.
//! * [`config`]: the `[log]` configuration section.
//!
//! Every backend passes one conformance suite (`conformance.rs`).

pub mod config;
pub mod embedded;
pub mod error;
pub mod kafka;
pub mod kinesis;
pub mod partitioner;
pub mod port;
pub mod position;

#[cfg(test)]
mod conformance;

pub use config::{Backend, LogConfig, StreamsBackend, TopicsBackend};
pub use error::{Error, Result};
pub use port::{Log, PartitionOffsets, ReadLimits, Record, StoredRecord, TopicInfo, TopicKind};
pub use position::{Capabilities, Chunk, Cursor, Entry, Position};
