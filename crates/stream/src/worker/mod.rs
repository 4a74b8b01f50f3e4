//! One stream's worker: micro-batches from the stream into its Delta table, until drained
//! (`Once`) or stopped (`Follow`).
//!
//! * here: the loop — open or create the table, recover the committed position from it, read,
//!   commit, compact and checkpoint on schedule;
//! * [`read`]: what the worker knows of the stream ([`LogView`]) and what a micro-batch reads;
//! * [`micro_batch`]: one micro-batch — clean, de-duplicate, dead letters, commit (with retry),
//!   then advance.

mod micro_batch;
mod read;

pub(crate) use read::LogView;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deltalake::DeltaTable;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use futures_util::StreamExt;
use pinpipe_log::{Cursor, Log};
use pinpipe_model::{Kind, schema};
use pinpipe_store::{Store, TableLocation};
use pinpipe_transform::Seen;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::commit::{self, Tracking};
use crate::config::Resolved;
use crate::job::{CommitEvent, Mode};
use crate::status::TableStatus;
use crate::{Error, Result};

/// One stream → one table.
pub(crate) struct Worker {
    pub(crate) log: Arc<dyn Log>,
    pub(crate) kind: Kind,
    pub(crate) stream: String,
    pub(crate) table: String,
    pub(crate) location: TableLocation,
    pub(crate) url: String,
    pub(crate) dead_store: Store,
    pub(crate) config: Resolved,
    pub(crate) status: Arc<Mutex<TableStatus>>,
    pub(crate) events: Option<UnboundedSender<CommitEvent>>,
    pub(crate) lease: pinpipe_store::lease::LeaseWatch,
    /// How this stream's positions are committed (from its log).
    pub(crate) tracking: Tracking,
}

/// Where a worker stands.
pub(crate) struct Progress {
    /// Where each partition continues.
    pub(crate) next: BTreeMap<u32, Cursor>,
    /// Id of the next micro-batch.
    pub(crate) batch: u64,
}

impl Worker {
    fn update_status(&self, f: impl FnOnce(&mut TableStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    pub(crate) async fn run(self, mode: Mode, stop: CancellationToken) -> Result<()> {
        let table = pinpipe_store::delta::open(&self.location).await.map_err(Error::delta(&self.url))?;
        let mut table = self.ensure_table(table).await?;
        self.update_status(|s| {
            s.location.clone_from(&self.url);
            s.version = table.version();
        });
        let Some(mut view) = self.wait_for_stream(mode, &stop).await? else {
            return Ok(());
        };
        let mut pos = self.recover(&table, &view).await?;
        let mut seen = self.restore_seen(&table).await?;
        // In `Once` mode on a dense log: the ends to reach; on Kinesis: the partitions that
        // reached their end.
        let targets: Option<BTreeMap<u32, u64>> = (mode == Mode::Once)
            .then(|| view.offsets.as_ref().map(|o| o.iter().map(|o| (o.partition, o.end)).collect()))
            .flatten();
        let mut drained = (mode == Mode::Once && targets.is_none()).then(BTreeSet::new);
        tracing::info!(stream = %self.stream, table = %self.url, batch = pos.batch, "stream job starting");
        loop {
            let started = Instant::now();
            self.adopt_partitions(&mut pos, &view);
            let reads = self.read(&pos, &view, targets.as_ref(), drained.as_mut()).await?;
            if reads.is_empty() {
                if mode == Mode::Once {
                    break;
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = self.wait_for_data(&pos) => {}
                }
                view = LogView::of(self.log.as_ref(), &self.stream).await?;
                continue;
            }
            table = self.micro_batch(table, &mut pos, &mut seen, reads).await?;
            table = self.maintain(table, pos.batch).await;
            if stop.is_cancelled() {
                break;
            }
            if mode == Mode::Follow {
                let next = tokio::time::Instant::from_std(started + self.config.trigger_interval);
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep_until(next) => {}
                }
            }
            view = LogView::of(self.log.as_ref(), &self.stream).await?;
        }
        tracing::info!(stream = %self.stream, batch = pos.batch, "stream job stopped");
        Ok(())
    }

    /// The stream's view once it exists; `None` when stopped first (or, in `Once` mode, when
    /// it does not exist: nothing to do).
    async fn wait_for_stream(&self, mode: Mode, stop: &CancellationToken) -> Result<Option<LogView>> {
        loop {
            match LogView::of(self.log.as_ref(), &self.stream).await {
                Ok(o) => return Ok(Some(o)),
                Err(pinpipe_log::Error::TopicNotFound(_)) if mode == Mode::Once => return Ok(None),
                Err(pinpipe_log::Error::TopicNotFound(_)) => {
                    tokio::select! {
                        () = stop.cancelled() => return Ok(None),
                        () = tokio::time::sleep(self.config.trigger_interval.max(Duration::from_millis(200))) => {}
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The position the table's commits hold, checked against the log.
    async fn recover(&self, table: &DeltaTable, view: &LogView) -> Result<Progress> {
        let c = commit::committed(table, &self.stream, view.partitions, self.tracking)
            .await
            .map_err(Error::delta(&self.url))?;
        for o in view.offsets.iter().flatten() {
            if let Some(&committed) = c.offsets.get(&o.partition)
                && committed > o.end
            {
                return Err(Error::AheadOfLog {
                    table: self.url.clone(),
                    stream: self.stream.clone(),
                    partition: o.partition,
                    committed,
                    log_end: o.end,
                });
            }
        }
        let pos = Progress { next: c.positions(), batch: c.batch.map_or(0, |b| b + 1) };
        self.update_status(|s| s.last_batch = c.batch);
        Ok(pos)
    }

    /// With table-wide de-duplication: the fingerprints of every row the table holds.
    async fn restore_seen(&self, table: &DeltaTable) -> Result<Option<Seen>> {
        use deltalake::datafusion::prelude::SessionContext;
        if !self.config.dedup_table {
            return Ok(None);
        }
        let mut seen = Seen::new(self.kind)?;
        if table.version().is_none() {
            return Ok(Some(seen));
        }
        let scan = |e: Box<dyn std::error::Error + Send + Sync>| Error::Scan { table: self.url.clone(), source: e };
        let ctx = SessionContext::new();
        table.update_datafusion_session(&ctx.state()).map_err(|e| scan(e.into()))?;
        let provider = table.table_provider().await.map_err(|e| scan(e.into()))?;
        let mut batches =
            ctx.read_table(provider).map_err(|e| scan(e.into()))?.execute_stream().await.map_err(|e| scan(e.into()))?;
        while let Some(b) = batches.next().await {
            seen.insert_batch(&b.map_err(|e| scan(e.into()))?)?;
        }
        tracing::info!(stream = %self.stream, rows = seen.len(), "restored the fingerprints of the table's rows");
        Ok(Some(seen))
    }

    /// Creates the table (no rows, no offsets) if it does not exist, so that every micro-batch
    /// commit has a version to be checked against: Delta's conflict check, which keeps two jobs
    /// from committing the same offsets, needs one.
    async fn ensure_table(&self, table: DeltaTable) -> Result<DeltaTable> {
        if table.version().is_some() {
            return Ok(table);
        }
        let schema: deltalake::kernel::StructType =
            schema::clean(self.kind).try_into_kernel().map_err(|e| Error::delta(&self.url)(e.into()))?;
        let created = table
            .create()
            .with_columns(schema.fields().cloned())
            .with_table_name(&self.table)
            .with_comment(format!("pinpipe streaming job: the clean rows of {}", self.stream))
            .with_save_mode(SaveMode::Ignore)
            .await;
        match created {
            Ok(t) => Ok(t),
            // Created by another job at the same moment: use it.
            Err(_) => pinpipe_store::delta::open(&self.location).await.map_err(Error::delta(&self.url)),
        }
    }

    /// Checkpoints and compacts on schedule (`batch` is the next batch id, so `batch` commits
    /// exist). Failures are logged, never fatal: they only affect read speed.
    async fn maintain(&self, mut table: DeltaTable, batch: u64) -> DeltaTable {
        let due = |every: u64| every > 0 && batch.is_multiple_of(every);
        // Compaction rewrites files: only while this job surely holds the tables.
        if due(self.config.optimize_every) && !self.lease.is_lost() {
            let props = CommitProperties::default().with_create_checkpoint(false);
            match table.clone().optimize().with_commit_properties(props).await {
                Ok((t, m)) => {
                    tracing::info!(
                        stream = %self.stream, removed = m.num_files_removed, added = m.num_files_added,
                        "compacted the table's small files"
                    );
                    self.update_status(|s| s.compactions += 1);
                    table = t;
                }
                Err(e) => tracing::warn!(stream = %self.stream, error = %e, "compaction failed; will retry later"),
            }
        }
        if due(self.config.checkpoint_every)
            && let Err(e) = deltalake::checkpoints::create_checkpoint(&table, None).await
        {
            tracing::warn!(stream = %self.stream, error = %e, "checkpoint failed; will retry later");
        }
        table
    }
}
