//! The streaming job (the classic Databricks streaming notebook): the three streams
//! `streaming-<p>-pin|geo|user` from the log, in micro-batches, parsed with the raw schema,
//! cleaned with the shared `pinpipe_transform` rules (the batch job's, unchanged), de-duplicated
//! within the batch, and appended to the Delta tables `<p>_pin_table`, `<p>_geo_table`,
//! `<p>_user_table` under `<warehouse>/stream/` (`pinpipe_store::warehouse`).
//!
//! * [`job`]: the job — one worker per stream under the warehouse's stream lease — and
//!   [`status`](job::status) for `pinpipe stream status`.
//! * `worker`: one stream's micro-batches (trigger interval, `Once`/`Follow`, dead letters,
//!   compaction and checkpoints); it runs on every log backend through the positioned port.
//! * [`commit`]: exactly once — each micro-batch's positions are committed in the same Delta
//!   commit as its rows (`txn` app id + version), and read back from the table on start.
//! * [`status`]: where each table stands.
//! * [`config`]: the `[stream]` section.

pub mod commit;
pub mod config;
pub mod error;
pub mod job;
pub mod status;
mod worker;

pub use config::StreamConfig;
pub use error::{Error, Result};
pub use job::{CommitEvent, LEASE, Mode, StreamJob, status};
pub use status::{PartitionStatus, TableStatus};

#[cfg(test)]
mod tests;
