//! Scheduler tests with a task under the test's control (the real batch job is run by the CLI
//! tests): retries and their delay, a success ending the retries, overlapping triggers in two
//! schedulers sharing a directory, and ticks on a per-second schedule.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::{Error, Outcome, Resolved, RunRecord, RunSpec, ScheduleConfig, Scheduler, Task, Trigger};

/// Fails its first `failures` attempts; each attempt takes `duration`; counts overlaps.
struct Scripted {
    failures: u32,
    duration: Duration,
    calls: AtomicU32,
    running: AtomicUsize,
    max_running: AtomicUsize,
    seen: Mutex<Vec<(RunSpec, u32)>>,
}

impl Scripted {
    fn new(failures: u32, duration: Duration) -> Arc<Self> {
        Arc::new(Scripted {
            failures,
            duration,
            calls: AtomicU32::new(0),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl Task for Scripted {
    async fn run(&self, spec: &RunSpec, attempt: u32) -> std::result::Result<String, String> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        self.seen.lock().unwrap().push((spec.clone(), attempt));
        tokio::time::sleep(self.duration).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= self.failures {
            Err(format!("attempt {attempt} failed"))
        } else {
            Ok(format!("/results/{}", spec.logical_date))
        }
    }
}

fn config(cron: &str, retries: u32, delay: &str) -> Resolved {
    ScheduleConfig { cron: cron.into(), retries, retry_delay: delay.into() }.validate().unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

#[tokio::test]
async fn a_failing_run_is_retried_three_times_with_the_delay_between_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let task = Scripted::new(u32::MAX, Duration::ZERO);
    let s = Scheduler::new(config("@daily", 3, "150ms"), dir.path(), task.clone());
    let spec = RunSpec::manual(Utc::now());
    assert_eq!(s.run_once(&spec, &CancellationToken::new()).await.unwrap(), Outcome::Failed);
    let runs = s.history().list().unwrap();
    assert_eq!(
        runs.iter().map(|r| (r.attempt, r.outcome)).collect::<Vec<_>>(),
        (1..=4).map(|a| (a, Outcome::Failed)).collect::<Vec<_>>()
    );
    assert!(runs.iter().all(|r| r.run_id == spec.run_id && r.trigger == Trigger::Manual));
    assert_eq!(runs[2].error.as_deref(), Some("attempt 3 failed"));
    for w in runs.windows(2) {
        let gap = at(&w[1].start) - at(&w[0].end);
        assert!(
            gap >= chrono::Duration::milliseconds(150),
            "attempts {} and {} only {gap} apart",
            w[0].attempt,
            w[1].attempt
        );
    }
    assert_eq!(task.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_success_ends_the_retries_and_records_the_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let task = Scripted::new(2, Duration::ZERO);
    let s = Scheduler::new(config("@daily", 3, "10ms"), dir.path(), task.clone());
    let spec = RunSpec::manual(at("2026-11-24T09:30:00Z"));
    assert_eq!(spec.run_id, "manual__2026-11-24T09:30:00Z");
    assert_eq!(s.run_once(&spec, &CancellationToken::new()).await.unwrap(), Outcome::Success);
    let runs = s.history().list().unwrap();
    assert_eq!(
        runs.iter().map(|r| r.outcome).collect::<Vec<_>>(),
        [Outcome::Failed, Outcome::Failed, Outcome::Success]
    );
    assert_eq!(runs[2].output.as_deref(), Some("/results/2026-11-24"));
    assert_eq!(runs[2].logical_date, "2026-11-24");
    assert_eq!(task.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn overlapping_triggers_never_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    let task = Scripted::new(0, Duration::from_millis(800));
    // Two schedulers on the same directory, as two processes would be.
    let a = Arc::new(Scheduler::new(config("@daily", 3, "10ms"), dir.path(), task.clone()));
    let b = Scheduler::new(config("@daily", 3, "10ms"), dir.path(), task.clone());
    let first = {
        let a = Arc::clone(&a);
        tokio::spawn(async move { a.run_once(&RunSpec::manual(Utc::now()), &CancellationToken::new()).await })
    };
    // Wait until the first run is inside the task, then trigger again.
    while task.running.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let second = b.run_once(&RunSpec::manual(Utc::now()), &CancellationToken::new()).await;
    assert!(matches!(second, Err(Error::Busy(_))), "{second:?}");
    assert_eq!(first.await.unwrap().unwrap(), Outcome::Success);
    assert_eq!(task.calls.load(Ordering::SeqCst), 1);
    assert_eq!(b.history().list().unwrap().len(), 1);
    // Once it is over, a new trigger runs.
    assert_eq!(b.run_once(&RunSpec::manual(Utc::now()), &CancellationToken::new()).await.unwrap(), Outcome::Success);
}

#[tokio::test]
async fn ticks_run_one_at_a_time_and_ticks_passed_during_a_run_are_not_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    // Every second; each run takes 1.3 s, so at least one tick passes during every run.
    let task = Scripted::new(0, Duration::from_millis(1300));
    let s = Arc::new(Scheduler::new(config("* * * * * *", 0, "10ms"), dir.path(), task.clone()));
    let stop = CancellationToken::new();
    let job = {
        let (s, stop) = (Arc::clone(&s), stop.clone());
        tokio::spawn(async move { s.run_forever(stop).await })
    };
    // Await two completed runs (or fail after 30 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let runs = s.history().list().unwrap();
        if runs.iter().filter(|r| r.outcome == Outcome::Success).count() >= 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no two runs within 30 s: {runs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    job.await.unwrap().unwrap();
    let runs = s.history().list().unwrap();
    assert_eq!(task.max_running.load(Ordering::SeqCst), 1, "two runs overlapped");
    let done: Vec<&RunRecord> = runs.iter().filter(|r| r.outcome == Outcome::Success).collect();
    for w in done.windows(2) {
        assert!(at(&w[0].end) <= at(&w[1].start), "runs overlap: {w:?}");
        // Not caught up: the next run is a tick after the previous run ended, not one it skipped.
        let tick = at(w[1].run_id.trim_start_matches("scheduled__"));
        assert!(tick >= at(&w[0].end) - chrono::Duration::seconds(1), "{w:?}");
    }
    let skipped: Vec<&RunRecord> = runs.iter().filter(|r| r.outcome == Outcome::Skipped).collect();
    assert!(!skipped.is_empty(), "{runs:?}");
    assert!(skipped.iter().all(|r| r.attempt == 0 && r.error.as_deref().unwrap().contains("no catch-up")));
    // Every run id is a distinct tick, and the task saw the scheduled specs.
    let mut ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), runs.len());
    let seen = task.seen.lock().unwrap();
    assert!(seen.iter().all(|(spec, attempt)| spec.trigger == Trigger::Scheduled && *attempt == 1));
}
