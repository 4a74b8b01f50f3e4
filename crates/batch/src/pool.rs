//! The threads that clean units of objects: one per core, started on first use and reused by
//! every run in the process.
//!
//! Cleaning is CPU work, which does not belong on the async runtime's threads. Tokio's blocking
//! pool would run it, but that pool also serves file reads and hands each task to whichever of
//! its (dozens of) threads is idle, and every thread keeps an allocator heap of its own: a run's
//! units then spread over some twenty heaps, and the process touched far more memory than it
//! needed, paying a page fault for each fresh page (`pinpipe bench batch-read`, peak RSS:
//! Parquet 365 → 252 MB, JSON 312 → 223 MB; with tokio's pool held to two threads instead, wall
//! time fell by about a fifth for both). A fixed set of threads keeps reusing the memory its
//! previous units freed.
//!
//! A job that panics is reported as [`Error::Worker`]; its thread goes on with the next job.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

use crate::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// Where jobs are queued (`None`: no thread could be started; jobs go to tokio's blocking pool).
static POOL: OnceLock<Option<Sender<Job>>> = OnceLock::new();

/// Runs `f` on one of the cleaning threads and waits for its result without blocking the
/// runtime.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let Some(jobs) = POOL.get_or_init(start) else {
        return Ok(tokio::task::spawn_blocking(f).await?);
    };
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // The receiver may be gone (the run was cancelled): nothing waits for the result then.
        let _ = done.send(f());
    });
    if jobs.send(job).is_err() {
        return Err(Error::Worker("the cleaning threads have stopped".into()));
    }
    // The sender is dropped unsent only when `f` panicked.
    result.await.map_err(|_| Error::Worker("a cleaning job panicked".into()))
}

/// Starts one thread per core; `None` if not even one could be started.
fn start() -> Option<Sender<Job>> {
    let (jobs, queue) = channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = (0..cores)
        .filter(|i| {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new().name(format!("pinpipe-clean-{i}")).spawn(move || work(&queue)).is_ok()
        })
        .count();
    if started == 0 {
        tracing::warn!("no cleaning thread could be started; cleaning on the runtime's blocking pool");
        return None;
    }
    Some(jobs)
}

/// A cleaning thread: runs jobs until the queue is gone.
fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // A panic drops the job's result sender (its caller gets an error); the thread lives on.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}
