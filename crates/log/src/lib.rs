//! The log: pinpipe's stand-in for the classic stack's Kafka topics (MSK) and Kinesis streams.
//!
//! * [`port`]: the port. [`Log`], which every backend implements whole: create / delete / list /
//!   describe topics, append a batch durably, read from a cursor, wait for new data, all by
//!   [`Position`] (an offset or a Kinesis sequence number). [`OffsetLog`], its extension for
//!   backends with dense offsets (embedded, Kafka): end offsets, reads from an offset, retention
//!   holds. Kinesis streams are topics too: shards are partitions.
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
//! * [`open`]: opens the configured backends for topics and streams ([`Logs`]).
//!
//! Every backend passes one conformance suite (`conformance.rs`): its positioned part on every
//! backend, its offset part on the dense ones.

pub mod config;
pub mod embedded;
pub mod error;
pub mod kafka;
pub mod kinesis;
pub mod open;
pub mod partitioner;
pub mod port;
pub mod position;

#[cfg(test)]
mod conformance;

pub use config::{Backend, LogConfig, StreamsBackend, TopicsBackend};
pub use error::{Error, Result};
pub use open::{Access, Logs};
pub use port::{Log, OffsetLog, PartitionOffsets, ReadLimits, Record, StoredRecord, TopicInfo, TopicKind};
pub use position::{Capabilities, Chunk, Cursor, Entry, Position};
