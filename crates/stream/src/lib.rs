//! The streaming job (the classic Databricks streaming notebook): the three streams
//! `streaming-<p>-pin|geo|user` from the log, in micro-batches, parsed with the raw schema,
//! cleaned with the shared `pinpipe_transform` rules (the batch job's, unchanged), de-duplicated
//! within the batch, and appended to the Delta tables `<p>_pin_table`, `<p>_geo_table`,
//! `<p>_user_table` under `<warehouse>/stream/`.
//!
//! * [`commit`]: exactly once — each micro-batch's offsets are committed in the same Delta
//!   commit as its rows (`txn` app id + version), and read back from the table on start.
//! * [`runtime`]: the per-stream workers (trigger interval, `Once`/`Follow`, dead letters,
//!   compaction and checkpoints) and [`status`](runtime::status) for `pinpipe stream status`.
//! * [`config`]: the `[stream]` section.

pub mod commit;
pub mod config;
pub mod error;
pub mod runtime;

pub use config::StreamConfig;
pub use error::{Error, Result};
pub use runtime::{CommitEvent, Mode, StreamJob, TableStatus, status};

#[cfg(test)]
mod tests;
