//! The scheduler: pinpipe's stand-in for the classic stack's MWAA (Airflow) DAG that ran the
//! batch notebook daily.
//!
//! * [`config`]: the `[schedule]` section — a cron expression (`@daily` by default, UTC) and
//!   the classic DAG's policy: 3 retries 2 minutes apart, no catch-up, one run at a time.
//! * [`plan`]: what is due when the scheduler wakes up (the latest tick; missed ones are
//!   recorded as skipped, never caught up).
//! * [`history`]: every attempt (start, end, attempt, outcome, error, output folder) in an
//!   append-only JSON-lines file in the data directory.
//! * [`runtime`]: [`Scheduler`] runs a [`Task`] (the batch job) on the schedule or once, under a
//!   lock file so that two runs never overlap, even from two processes.

pub mod config;
pub mod error;
pub mod history;
pub mod plan;
pub mod runtime;

pub use config::{Resolved, ScheduleConfig};
pub use error::{Error, Result};
pub use history::{History, Outcome, RunRecord, Trigger};
pub use runtime::{RunSpec, Scheduler, Task};

#[cfg(test)]
mod tests;
