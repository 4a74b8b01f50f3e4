//! The streaming job: one [`Worker`] per stream (pin, geo, user) under the warehouse's stream
//! lease, and the status of the tables read back from them for `pinpipe stream status`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use pinpipe_log::Log;
use pinpipe_model::{Kind, Names};
use pinpipe_store::warehouse;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::commit::{self, PartitionRange, Tracking};
use crate::config::Resolved;
use crate::status::TableStatus;
use crate::worker::{LogView, Worker};
use crate::{Error, Result};

/// Run continuously or drain and exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keep running micro-batches until stopped.
    Follow,
    /// Process everything up to each partition's end at start, then exit.
    Once,
}

/// A micro-batch commit, as seen by the job (for latency measurements).
#[derive(Debug, Clone)]
pub struct CommitEvent {
    /// The stream.
    pub stream: String,
    /// The positions whose rows became visible.
    pub offsets: Vec<PartitionRange>,
    /// When the commit returned.
    pub at: Instant,
}

/// The streaming job.
pub struct StreamJob {
    log: Arc<dyn Log>,
    warehouse: pinpipe_store::Resolved,
    names: Names,
    config: Resolved,
    status: BTreeMap<Kind, Arc<Mutex<TableStatus>>>,
    events: Option<UnboundedSender<CommitEvent>>,
}

impl StreamJob {
    /// A job reading `names`' three streams from `log` into tables under `warehouse`.
    pub fn new(log: Arc<dyn Log>, warehouse: pinpipe_store::Resolved, names: Names, config: Resolved) -> Self {
        let status = Kind::ALL
            .into_iter()
            .map(|k| {
                let s = TableStatus { stream: names.stream(k), table: names.table(k), ..Default::default() };
                (k, Arc::new(Mutex::new(s)))
            })
            .collect();
        StreamJob { log, warehouse, names, config, status, events: None }
    }

    /// Sends every commit to `events` (used by the latency benchmark).
    pub fn with_commit_events(mut self, events: UnboundedSender<CommitEvent>) -> Self {
        self.events = Some(events);
        self
    }

    /// A snapshot of every stream's status.
    pub fn snapshot(&self) -> Vec<TableStatus> {
        self.status.values().map(|s| s.lock().map(|s| s.clone()).unwrap_or_default()).collect()
    }

    /// Runs the three workers until every stream is drained (`Once`) or until `stop` (`Follow`;
    /// the batch in flight is committed first). The first worker error stops the others.
    ///
    /// The job holds the warehouse's stream lease ([`LEASE`]) while it runs: a second job on the
    /// same tables is refused before it reads anything, and a job that loses its lease (on S3,
    /// when it could not renew it in time) stops before committing again.
    pub async fn run(&self, mode: Mode, stop: CancellationToken) -> Result<()> {
        let lease = self.warehouse.lease(LEASE, "pinpipe stream", pinpipe_store::lease::DEFAULT_TTL).await?;
        let dead_store = self.warehouse.open()?;
        let mut workers = JoinSet::new();
        let inner = stop.child_token();
        for kind in Kind::ALL {
            let table = self.names.table(kind);
            let location = self.warehouse.table_location(&warehouse::stream_table(&table))?;
            let worker = Worker {
                log: Arc::clone(&self.log),
                kind,
                stream: self.names.stream(kind),
                table,
                url: location.url.to_string(),
                location,
                dead_store: dead_store.clone(),
                config: self.config.clone(),
                status: Arc::clone(&self.status[&kind]),
                events: self.events.clone(),
                lease: lease.watch(),
                tracking: Tracking::of(self.log.as_ref()),
            };
            workers.spawn(worker.run(mode, inner.clone()));
        }
        let mut first_error = None;
        let lost = {
            let (lease, inner) = (lease.watch(), inner.clone());
            tokio::spawn(async move {
                lease.lost().await;
                inner.cancel();
            })
        };
        while let Some(done) = workers.join_next().await {
            let outcome = done.map_err(|e| Error::Task(e.to_string())).and_then(|r| r);
            if let Err(e) = outcome {
                inner.cancel();
                first_error.get_or_insert(e);
            }
        }
        lost.abort();
        if first_error.is_none() && lease.is_lost() {
            return Err(lease.lost_error().into());
        }
        lease.release().await;
        first_error.map_or(Ok(()), Err)
    }
}

/// Key of the streaming job's lease in the warehouse.
pub const LEASE: &str = warehouse::STREAM_LEASE;

/// Reads a stream's status from its table and the log (for `pinpipe stream status`, which runs
/// beside the job).
pub async fn status(log: &dyn Log, warehouse: &pinpipe_store::Resolved, names: &Names) -> Result<Vec<TableStatus>> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let (stream, table) = (names.stream(kind), names.table(kind));
        let location = warehouse.table_location(&warehouse::stream_table(&table))?;
        let url = location.url.to_string();
        let t = pinpipe_store::delta::open(&location).await.map_err(Error::delta(&url))?;
        let view = match LogView::of(log, &stream).await {
            Ok(v) => v,
            Err(pinpipe_log::Error::TopicNotFound(_)) => LogView::default(),
            Err(e) => return Err(e.into()),
        };
        let tracking = Tracking::of(log);
        let c = commit::committed(&t, &stream, view.partitions, tracking).await.map_err(Error::delta(&url))?;
        let last_commit_ms = match t.version() {
            Some(_) => t.history(Some(1)).next().await.and_then(|c| c.ok()).and_then(|c| c.timestamp),
            None => None,
        };
        out.push(TableStatus {
            partitions: view.status(&c.positions()),
            stream,
            table,
            location: url,
            version: t.version(),
            last_batch: c.batch,
            last_commit_ms,
            ..Default::default()
        });
    }
    Ok(out)
}
