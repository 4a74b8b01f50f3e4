//! The cleaning threads: results come back, at most one thread per core does the work, and a
//! job that panics is an error without taking a thread down.

use std::collections::BTreeSet;

use crate::{Error, pool};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_run_on_a_fixed_set_of_threads() {
    let jobs = (0..64u64).map(|i| {
        pool::run(move || {
            let name = std::thread::current().name().map(str::to_owned);
            (i * i, name)
        })
    });
    let done = futures_util::future::join_all(jobs).await;
    let mut threads = BTreeSet::new();
    for (i, result) in done.into_iter().enumerate() {
        let (square, name) = result.unwrap();
        assert_eq!(square, (i * i) as u64);
        threads.insert(name.expect("cleaning threads are named"));
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    assert!(threads.len() <= cores, "{threads:?} for {cores} cores");
    assert!(threads.iter().all(|t| t.starts_with("pinpipe-clean-")), "{threads:?}");
}

#[tokio::test]
async fn a_panicking_job_is_an_error_and_the_threads_go_on() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // More panics than threads: if a panic took its thread down, the jobs after would never run.
    for _ in 0..cores + 1 {
        let failed = pool::run(|| -> u32 { panic!("a job that panics") }).await;
        assert!(matches!(failed, Err(Error::Worker(ref m)) if m.contains("panicked")), "{failed:?}");
    }
    assert_eq!(pool::run(|| 41 + 1).await.unwrap(), 42);
}
