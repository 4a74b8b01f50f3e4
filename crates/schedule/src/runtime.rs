//! The scheduler's runtime: runs a [`Task`] on the schedule (or once, on demand) with the retry
//! policy, under a lock file so that runs never overlap, and records every attempt.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::Resolved;
use crate::history::{History, Outcome, RunRecord, Trigger, lock_file};
use crate::plan::{self, MAX_REPORTED_MISSES};
use crate::{Error, Result};

/// Longest single sleep while waiting for a tick: a suspended machine or a clock change is
/// noticed within this time.
const WAIT_SLICE: Duration = Duration::from_secs(30);

/// One run of the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// `scheduled__<tick>` or `manual__<time>`.
    pub run_id: String,
    /// What started it.
    pub trigger: Trigger,
    /// The logical date given to the batch job.
    pub logical_date: NaiveDate,
}

impl RunSpec {
    /// A run started by hand at `now` (logical date: today).
    pub fn manual(now: DateTime<Utc>) -> Self {
        RunSpec {
            run_id: format!("manual__{}", rfc3339(now)),
            trigger: Trigger::Manual,
            logical_date: now.date_naive(),
        }
    }

    /// The run of the schedule's tick `tick`.
    pub fn scheduled(tick: DateTime<Utc>) -> Self {
        RunSpec {
            run_id: format!("scheduled__{}", rfc3339(tick)),
            trigger: Trigger::Scheduled,
            logical_date: plan::logical_date(tick),
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What the scheduler runs: the batch job.
#[async_trait]
pub trait Task: Send + Sync {
    /// Runs once; returns the run's output folder, or the error as text.
    async fn run(&self, spec: &RunSpec, attempt: u32) -> std::result::Result<String, String>;
}

/// The scheduler.
pub struct Scheduler {
    config: Resolved,
    lock_path: PathBuf,
    history: History,
    task: Arc<dyn Task>,
}

impl Scheduler {
    /// A scheduler keeping its lock and history in `dir` (`<data_dir>/schedule`).
    pub fn new(config: Resolved, dir: &Path, task: Arc<dyn Task>) -> Self {
        Scheduler { config, lock_path: dir.join("run.lock"), history: History::new(dir), task }
    }

    /// The run history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The run lock, or `Error::Busy` when a run holds it (here or in another process).
    fn lock(&self) -> Result<File> {
        let f = lock_file(&self.lock_path)?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy(self.lock_path.clone())),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&self.lock_path)(e)),
        }
    }

    /// Runs `spec` with the retry policy under the run lock; returns how it ended.
    /// `Error::Busy` (nothing run) when another run is in progress. `stop` ends the waits
    /// between attempts (the run then counts as failed).
    pub async fn run_once(&self, spec: &RunSpec, stop: &CancellationToken) -> Result<Outcome> {
        let _lock = self.lock()?;
        let attempts = self.config.retries + 1;
        for attempt in 1..=attempts {
            let start = Utc::now();
            tracing::info!(run = %spec.run_id, attempt, "batch run starting");
            let result = self.task.run(spec, attempt).await;
            let (outcome, error, output) = match result {
                Ok(folder) => (Outcome::Success, None, Some(folder)),
                Err(e) => (Outcome::Failed, Some(e), None),
            };
            self.history.append(&RunRecord {
                run_id: spec.run_id.clone(),
                trigger: spec.trigger,
                logical_date: spec.logical_date.to_string(),
                attempt,
                start: rfc3339_ms(start),
                end: rfc3339_ms(Utc::now()),
                outcome,
                error: error.clone(),
                output,
            })?;
            if outcome == Outcome::Success {
                tracing::info!(run = %spec.run_id, attempt, "batch run succeeded");
                return Ok(Outcome::Success);
            }
            let error = error.unwrap_or_default();
            if attempt == attempts {
                tracing::error!(run = %spec.run_id, attempt, %error, "batch run failed; no retries left");
                break;
            }
            tracing::warn!(run = %spec.run_id, attempt, %error, delay = ?self.config.retry_delay, "batch run failed; retrying");
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(self.config.retry_delay) => {}
            }
        }
        Ok(Outcome::Failed)
    }

    fn skip(&self, tick: DateTime<Utc>, reason: &str) -> Result<()> {
        let spec = RunSpec::scheduled(tick);
        tracing::warn!(run = %spec.run_id, reason, "tick skipped");
        let now = rfc3339_ms(Utc::now());
        self.history.append(&RunRecord {
            run_id: spec.run_id,
            trigger: Trigger::Scheduled,
            logical_date: spec.logical_date.to_string(),
            attempt: 0,
            start: now.clone(),
            end: now,
            outcome: Outcome::Skipped,
            error: Some(reason.to_owned()),
            output: None,
        })
    }

    /// Runs the task at every tick of the schedule until `stop`: the latest due tick only
    /// (missed ones are recorded as skipped, never caught up), one run at a time.
    pub async fn run_forever(&self, stop: CancellationToken) -> Result<()> {
        let cron = &self.config.cron;
        let no_next = || Error::NoNextRun(self.config.expression.clone());
        let mut waited_for = plan::next_tick(cron, Utc::now()).ok_or_else(no_next)?;
        tracing::info!(schedule = %self.config.expression, next = %waited_for, "scheduler started");
        loop {
            loop {
                let now = Utc::now();
                if now >= waited_for {
                    break;
                }
                let wait = (waited_for - now).to_std().unwrap_or_default().min(WAIT_SLICE);
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(wait) => {}
                }
            }
            let due = plan::due(cron, waited_for, Utc::now());
            for missed in &due.missed {
                self.skip(*missed, "missed: the scheduler was not running at that time (no catch-up)")?;
            }
            let Some(tick) = due.run else { continue };
            match self.run_once(&RunSpec::scheduled(tick), &stop).await {
                Ok(_) => {}
                Err(Error::Busy(_)) => self.skip(tick, "another run was in progress (runs never overlap)")?,
                Err(e) => return Err(e),
            }
            // Ticks that passed while the run went on are not run afterwards.
            let now = Utc::now();
            let mut passed = plan::next_tick(cron, tick);
            let mut reported = 0;
            while let Some(t) = passed.filter(|t| *t <= now) {
                if reported < MAX_REPORTED_MISSES {
                    self.skip(t, "a run was in progress at that time (runs never overlap; no catch-up)")?;
                    reported += 1;
                }
                passed = plan::next_tick(cron, t);
            }
            if stop.is_cancelled() {
                return Ok(());
            }
            waited_for = plan::next_tick(cron, now).ok_or_else(no_next)?;
        }
    }
}

fn rfc3339_ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
