//! The sink connector: pinpipe's stand-in for MSK Connect running the Confluent S3 sink. It reads
//! topics from the log and writes their records as objects in exactly the layout of the Confluent
//! S3 sink with its default partitioner, so jobs written for that layout read these objects:
//!
//! ```text
//! <store>/topics/<topic>/partition=<p>/<topic>+<p>+<start offset, 10 digits>.json
//! ```
//!
//! Each object holds `flush_size` records (fewer when `rotate_interval` passes without new data,
//! or at the end of `--once`), one value per line.
//!
//! **Exactly once.** An object is written whole (a local file is renamed into place, an S3 PUT is
//! atomic), its name is fixed by its first offset, and on start each partition resumes after the
//! last record of its newest object ([`layout`], [`partition`]). A crash at any moment followed by
//! a restart therefore yields the same set of objects with every record once. One sink per store:
//! two sinks writing the same partitions at once could cut objects differently.
//!
//! The sink reads through [`pinpipe_log::OffsetLog`]: its object names are offsets, so it runs on
//! the logs whose positions are dense offsets (the embedded log, Kafka), which is a type.
//!
//! * [`config`]: the `[sink]` section; [`runtime`]: discovery of topics and the per-partition workers.

pub mod config;
pub mod error;
pub mod layout;
pub mod partition;
pub mod runtime;

pub use config::SinkConfig;
pub use error::{Error, Result};
pub use runtime::{Mode, PartitionStatus, Sink};

#[cfg(test)]
mod tests;
