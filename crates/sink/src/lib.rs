//! The sink connector: pinpipe's stand-in for MSK Connect running the Confluent S3 sink. It reads
//! topics from the log and writes their records as objects named and laid out as that connector
//! names them, so jobs written for its layouts read these objects:
//!
//! ```text
//! <store>/topics/<topic>/<directory>/<topic>+<p>+<start offset, 10 digits><.json | .json.gz | .snappy.parquet>
//! ```
//!
//! where `<directory>` is `partition=<p>` (the default partitioner), `<field>=<value>/...` (the
//! field partitioner) or a formatted time such as `dt=2026-11-29/hour=13` (the time-based one)
//! ([`partitioner`]). Objects hold one JSON value per line, the same gzip-compressed, or Parquet
//! rows of the topic's raw schema ([`encode`]).
//!
//! Objects are cut as the connector cuts them ([`group`]): at `flush_size` records, when a
//! record's time is `rotate_interval` past the first one's or it belongs in another directory,
//! at a scheduled `rotate_schedule_interval`, and when the sink stops.
//!
//! **Exactly once.** An object is written whole (a local file is renamed into place, an S3 PUT is
//! atomic), its name is fixed by its first offset, and on start each partition resumes after what
//! the store holds ([`layout`], [`partition`]): after its newest object with the default
//! partitioner, at its commit marker with the others. A crash at any moment followed by a restart
//! therefore yields every record once. A record that cannot be placed or encoded goes to the
//! sink's dead letters with its offset and why, never stopping the partition. One sink per store:
//! two sinks writing the same partitions at once could cut objects differently.
//!
//! The sink reads through [`pinpipe_log::OffsetLog`]: its object names are offsets, so it runs on
//! the logs whose positions are dense offsets (the embedded log, Kafka), which is a type.
//!
//! * [`config`]: the `[sink]` section; [`runtime`]: discovery of topics and the per-partition workers.

pub mod config;
pub mod encode;
pub mod error;
pub mod group;
pub mod layout;
pub mod partition;
pub mod partitioner;
pub mod runtime;

pub use config::SinkConfig;
pub use error::{Error, Result};
pub use group::SinkDeadLetter;
pub use runtime::{Mode, PartitionStatus, Sink};

#[cfg(test)]
mod tests;
