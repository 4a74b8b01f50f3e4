//! The sink's runtime: finds the topics to consume (again every few seconds when following),
//! runs one worker per partition, and keeps per-partition status for lag reporting.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pinpipe_log::OffsetLog;
use pinpipe_store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Resolved;
use crate::partition::Worker;
use crate::{Error, Result};

/// How often a following sink looks for new topics.
const DISCOVER_EVERY: Duration = Duration::from_secs(5);

/// Run continuously or drain and exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keep consuming new records until stopped.
    Follow,
    /// Write everything up to each partition's end at start, then exit.
    Once,
}

/// What one partition's worker has done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionStatus {
    /// Offset after the last record written to the store.
    pub written: u64,
    /// The log's end offset, last seen.
    pub end: u64,
    /// Objects written by this run.
    pub objects: u64,
    /// Records written by this run.
    pub records: u64,
    /// Records this run could not place or encode, written to the sink's dead letters.
    pub dead_letters: u64,
    /// Bytes of the objects (and dead letters) this run wrote.
    pub bytes: u64,
    /// Time to write each group this run wrote (encoding, storing, committing): its count is
    /// the number of groups.
    pub flush_latency: pinpipe_model::histogram::Histogram,
}

impl PartitionStatus {
    /// Records in the log not yet in the store.
    pub fn lag(&self) -> u64 {
        self.end.saturating_sub(self.written)
    }
}

/// Status of every partition, keyed by (topic, partition).
pub type Status = Arc<Mutex<BTreeMap<(String, u32), Arc<Mutex<PartitionStatus>>>>>;

/// The sink.
pub struct Sink {
    log: Arc<dyn OffsetLog>,
    store: Store,
    config: Resolved,
    status: Status,
}

impl Sink {
    /// A sink from `log` to `store`.
    pub fn new(log: Arc<dyn OffsetLog>, store: Store, config: Resolved) -> Self {
        Sink { log, store, config, status: Status::default() }
    }

    /// Live status of every partition (for lag lines and summaries).
    pub fn status(&self) -> Status {
        Arc::clone(&self.status)
    }

    /// A snapshot of every partition's status.
    pub fn snapshot(&self) -> BTreeMap<(String, u32), PartitionStatus> {
        let all = self.status.lock().map(|m| m.clone()).unwrap_or_default();
        all.into_iter().map(|(k, v)| (k, v.lock().map(|s| s.clone()).unwrap_or_default())).collect()
    }

    async fn matching_partitions(&self) -> Result<Vec<(String, u32)>> {
        let mut out = Vec::new();
        for t in self.log.topics().await? {
            if self.config.topics.is_match(&t.name) {
                out.extend((0..t.partitions).map(|p| (t.name.clone(), p)));
            }
        }
        Ok(out)
    }

    /// Runs until every partition is drained (`Once`) or until `stop` (`Follow`).
    pub async fn run(&self, mode: Mode, stop: CancellationToken) -> Result<()> {
        let mut workers: JoinSet<Result<()>> = JoinSet::new();
        let mut running = std::collections::HashSet::new();
        let mut first_error = None;
        loop {
            for (topic, p) in self.matching_partitions().await? {
                if !running.insert((topic.clone(), p)) {
                    continue;
                }
                let status = Arc::new(Mutex::new(PartitionStatus::default()));
                if let Ok(mut all) = self.status.lock() {
                    all.insert((topic.clone(), p), Arc::clone(&status));
                }
                let worker = Worker {
                    log: Arc::clone(&self.log),
                    store: self.store.clone(),
                    config: self.config.clone(),
                    topic,
                    partition: p,
                    status,
                };
                workers.spawn(worker.run(mode, stop.child_token()));
            }
            if mode == Mode::Once {
                break;
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(DISCOVER_EVERY) => {}
                Some(done) = workers.join_next() => {
                    // A worker of a following sink only ends early on an error.
                    let e = done.map_err(|e| Error::Task(e.to_string())).and_then(|r| r).err();
                    if let Some(e) = e {
                        stop.cancel();
                        first_error.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        while let Some(done) = workers.join_next().await {
            if let Err(e) = done.map_err(|e| Error::Task(e.to_string())).and_then(|r| r) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
