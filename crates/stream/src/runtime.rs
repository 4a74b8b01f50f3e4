//! The streaming job's runtime: one worker per stream (pin, geo, user), each running
//! micro-batches against its own Delta table — read from the committed offsets, clean with the
//! shared `pinpipe_transform` rules, drop exact duplicates within the batch, write dead letters,
//! commit rows and offsets together ([`crate::commit`]), and compact and checkpoint on schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use deltalake::DeltaTable;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use object_store::ObjectStoreExt;
use pinpipe_batch::delta;
use pinpipe_log::partitioner::{sequence_of, shard_id};
use pinpipe_log::{Cursor, Entry, Log, PartitionOffsets, Position, ReadLimits};
use pinpipe_model::{Kind, Names, schema};
use pinpipe_store::{Store, TableLocation};
use pinpipe_transform::{Cleaner, Origin, Seen, dedup};
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::commit::{self, BatchInfo, PartitionRange};
use crate::config::Resolved;
use crate::{Error, Result};

/// Bytes one log read may return.
const READ_BYTES: usize = 16 << 20;

/// Run continuously or drain and exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keep running micro-batches until stopped.
    Follow,
    /// Process everything up to each partition's end at start, then exit.
    Once,
}

/// Where a stream's table lives: `<warehouse>/stream/<table>`.
pub fn table_dir(table: &str) -> String {
    format!("stream/{table}")
}

/// Where a stream's dead letters go: `<warehouse>/stream/_dead_letters/<table>/<batch>.jsonl`.
pub fn dead_letter_key(table: &str, batch: u64) -> String {
    format!("stream/_dead_letters/{table}/{batch:010}.jsonl")
}

/// One partition's position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    /// Partition number.
    pub partition: u32,
    /// Dense logs: the next offset to read, as committed to the table.
    pub committed: Option<u64>,
    /// Where reading continues, as committed (on Kinesis: after a sequence number).
    pub cursor: Cursor,
    /// Dense logs: the log's end offset, last seen.
    pub end: Option<u64>,
}

/// What one stream's worker has done, and where it stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableStatus {
    /// The stream read.
    pub stream: String,
    /// The Delta table written.
    pub table: String,
    /// The table's URL.
    pub location: String,
    /// The table's version, if it exists.
    pub version: Option<u64>,
    /// Per partition: committed position and log end.
    pub partitions: Vec<PartitionStatus>,
    /// Last committed micro-batch id.
    pub last_batch: Option<u64>,
    /// Time of the table's last commit, milliseconds since the epoch.
    pub last_commit_ms: Option<i64>,
    /// Micro-batches committed by this run.
    pub batches: u64,
    /// Records read by this run.
    pub records: u64,
    /// Rows appended by this run.
    pub rows: u64,
    /// Exact duplicates dropped by this run.
    pub duplicates: u64,
    /// Dead letters written by this run.
    pub dead_letters: u64,
    /// Compactions run by this run.
    pub compactions: u64,
}

impl TableStatus {
    /// Records in the log not yet committed to the table; `None` where the log cannot count
    /// them (Kinesis: positions are sequence numbers).
    pub fn lag(&self) -> Option<u64> {
        self.partitions.iter().map(|p| Some(p.end?.saturating_sub(p.committed?))).sum()
    }
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
            let location = self.warehouse.table_location(&table_dir(&table))?;
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
        first_error.map_or(Ok(()), Err)
    }
}

/// Key of the streaming job's lease in the warehouse.
pub const LEASE: &str = "stream/_pinpipe_lease";

/// Reads a stream's status from its table and the log (for `pinpipe stream status`, which runs
/// beside the job).
pub async fn status(log: &dyn Log, warehouse: &pinpipe_store::Resolved, names: &Names) -> Result<Vec<TableStatus>> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let (stream, table) = (names.stream(kind), names.table(kind));
        let location = warehouse.table_location(&table_dir(&table))?;
        let url = location.url.to_string();
        let t = delta::open(&location).await.map_err(Error::delta(&url))?;
        let view = match LogView::of(log, &stream).await {
            Ok(v) => v,
            Err(pinpipe_log::Error::TopicNotFound(_)) => LogView::default(),
            Err(e) => return Err(e.into()),
        };
        let dense = log.capabilities().dense_offsets;
        let c = commit::committed(&t, &stream, view.partitions, dense).await.map_err(Error::delta(&url))?;
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

/// One stream → one table.
struct Worker {
    log: Arc<dyn Log>,
    kind: Kind,
    stream: String,
    table: String,
    location: TableLocation,
    url: String,
    dead_store: Store,
    config: Resolved,
    status: Arc<Mutex<TableStatus>>,
    events: Option<UnboundedSender<CommitEvent>>,
    lease: pinpipe_store::lease::LeaseWatch,
}

/// Commit attempts of one micro-batch before its error stands.
const COMMIT_ATTEMPTS: u32 = 4;

/// What to do after a failed commit.
enum AfterFailure {
    /// Nobody else committed the batch: try again on this (newer) table version.
    Retry(DeltaTable),
    /// Another job committed it: the position was updated; continue with this table.
    TakenByAnother(DeltaTable),
}

/// Where a worker stands.
struct Progress {
    /// Where each partition continues.
    next: BTreeMap<u32, Cursor>,
    /// Id of the next micro-batch.
    batch: u64,
}

/// What the worker knows of the stream: its partitions and, on dense logs, their offsets.
#[derive(Debug, Default)]
struct LogView {
    partitions: u32,
    offsets: Option<Vec<PartitionOffsets>>,
}

impl LogView {
    async fn of(log: &dyn Log, stream: &str) -> pinpipe_log::Result<LogView> {
        if log.capabilities().dense_offsets {
            let offsets = log.offsets(stream).await?;
            Ok(LogView { partitions: offsets.len() as u32, offsets: Some(offsets) })
        } else {
            Ok(LogView { partitions: log.topic(stream).await?.partitions, offsets: None })
        }
    }

    /// Where partition `p` starts when nothing was committed.
    fn start(&self, p: u32) -> Cursor {
        match self.offsets.as_ref().and_then(|o| o.iter().find(|o| o.partition == p)) {
            Some(o) => Cursor::At(Position::Offset(o.start)),
            None => Cursor::Start,
        }
    }

    /// Each partition's status given where the job continues.
    fn status(&self, next: &BTreeMap<u32, Cursor>) -> Vec<PartitionStatus> {
        (0..self.partitions)
            .map(|p| {
                let cursor = next.get(&p).cloned().unwrap_or_else(|| self.start(p));
                let o = self.offsets.as_ref().and_then(|o| o.iter().find(|o| o.partition == p));
                PartitionStatus {
                    partition: p,
                    committed: o.and_then(|o| cursor.dense_offset(o.start).ok()),
                    end: o.map(|o| o.end),
                    cursor,
                }
            })
            .collect()
    }
}

/// What one micro-batch read from one partition, and where that partition continues.
struct PartitionRead {
    partition: u32,
    records: Vec<Entry>,
    next: Cursor,
}

impl Worker {
    fn update_status(&self, f: impl FnOnce(&mut TableStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    async fn run(self, mode: Mode, stop: CancellationToken) -> Result<()> {
        let table = delta::open(&self.location).await.map_err(Error::delta(&self.url))?;
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
        let dense = view.offsets.is_some();
        let c =
            commit::committed(table, &self.stream, view.partitions, dense).await.map_err(Error::delta(&self.url))?;
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

    /// Starts new partitions at their first record and, on dense logs, moves past records the
    /// log no longer holds (removed by retention before the job read them: reported, not
    /// silently skipped; Kinesis starts from its trim horizon by itself).
    fn adopt_partitions(&self, pos: &mut Progress, view: &LogView) {
        for p in 0..view.partitions {
            pos.next.entry(p).or_insert_with(|| view.start(p));
        }
        for o in view.offsets.iter().flatten() {
            let Some(next) = pos.next.get_mut(&o.partition) else { continue };
            let at = next.dense_offset(o.start).unwrap_or(o.start);
            if at < o.start {
                tracing::warn!(
                    stream = %self.stream, partition = o.partition,
                    lost = o.start - at,
                    "records were removed from the log by retention before the stream job read them"
                );
                *next = Cursor::At(Position::Offset(o.start));
            }
        }
        self.update_status(|s| s.partitions = view.status(&pos.next));
    }

    /// Reads what the next micro-batch takes: from each partition's position up to its end
    /// (in `Once` mode: the end at start on dense logs, the end as first reached on Kinesis,
    /// recorded in `drained`), sharing the batch's record budget equally between partitions.
    async fn read(
        &self,
        pos: &Progress,
        view: &LogView,
        targets: Option<&BTreeMap<u32, u64>>,
        mut drained: Option<&mut BTreeSet<u32>>,
    ) -> Result<Vec<PartitionRead>> {
        let share = (self.config.max_records_per_batch / view.partitions.max(1) as usize).max(1);
        let mut out = Vec::new();
        for p in 0..view.partitions {
            if drained.as_deref().is_some_and(|d| d.contains(&p)) {
                continue;
            }
            let mut cursor = pos.next.get(&p).cloned().unwrap_or_else(|| view.start(p));
            let target = targets.map(|t| t.get(&p).copied().unwrap_or(0));
            let mut records: Vec<Entry> = Vec::new();
            while records.len() < share {
                let mut want = share - records.len();
                if let Some(end) = target {
                    let at = cursor.dense_offset(0)?;
                    if at >= end {
                        break;
                    }
                    want = want.min((end - at) as usize);
                }
                let limits = ReadLimits { max_records: want, max_bytes: READ_BYTES };
                // On a dense log `want` stops the read at the target: no record beyond it.
                let chunk = self.log.read_from(&self.stream, p, &cursor, limits).await?;
                let got = chunk.records.len();
                records.extend(chunk.records);
                cursor = chunk.next;
                if chunk.at_end {
                    if let Some(d) = drained.as_deref_mut() {
                        d.insert(p);
                    }
                    break;
                }
                if got == 0 {
                    break;
                }
            }
            if !records.is_empty() {
                out.push(PartitionRead { partition: p, records, next: cursor });
            }
        }
        Ok(out)
    }

    /// Waits until some partition has data beyond its position, or one trigger interval.
    async fn wait_for_data(&self, pos: &Progress) {
        let timeout = self.config.trigger_interval.max(Duration::from_millis(200));
        let mut waits: FuturesUnordered<_> = pos
            .next
            .iter()
            .map(|(&p, next)| {
                let log = Arc::clone(&self.log);
                let stream = self.stream.clone();
                let next = next.clone();
                async move { log.wait_from(&stream, p, &next, timeout).await.unwrap_or(false) }
            })
            .collect();
        if waits.is_empty() {
            tokio::time::sleep(timeout).await;
            return;
        }
        while let Some(has_data) = waits.next().await {
            if has_data {
                return;
            }
        }
    }

    /// Cleans, de-duplicates and commits one micro-batch; advances `pos` when it is committed.
    async fn micro_batch(
        &self,
        table: DeltaTable,
        pos: &mut Progress,
        seen: &mut Option<Seen>,
        reads: Vec<PartitionRead>,
    ) -> Result<DeltaTable> {
        let mut cleaner = Cleaner::new(self.kind)?;
        let mut ranges = Vec::with_capacity(reads.len());
        let dense = self.log.capabilities().dense_offsets;
        let mut next = pos.next.clone();
        for read in &reads {
            let (p, records) = (read.partition, &read.records);
            let (Some(first), Some(last)) = (records.first(), records.last()) else { continue };
            for r in records {
                cleaner.push(&r.value, || Origin::Stream {
                    stream: self.stream.clone(),
                    shard: shard_id(p),
                    sequence_number: sequence_of(p, &r.position),
                });
            }
            ranges.push(PartitionRange {
                partition: p,
                shard: shard_id(p),
                from: first.position.clone(),
                last: last.position.clone(),
                to: last.position.offset().map(|o| o + 1),
            });
            next.insert(p, read.next.clone());
        }
        let mut cleaned = cleaner.finish()?;
        let dead_letters = std::mem::take(&mut cleaned.dead_letters);
        let clean_rows = cleaned.batch.num_rows();
        let mut deduped = dedup(vec![cleaned])?;
        // Rows the table already holds (delivered again in a later micro-batch).
        let mut fingerprints = Vec::new();
        if let Some(s) = seen.as_ref() {
            for b in &mut deduped {
                let (kept, fps) = s.unseen(b)?;
                *b = kept;
                fingerprints.extend(fps);
            }
        }
        let rows: usize = deduped.iter().map(RecordBatch::num_rows).sum();
        let info = BatchInfo {
            stream: self.stream.clone(),
            batch: pos.batch,
            offsets: ranges,
            records: reads.iter().map(|r| r.records.len() as u64).sum(),
            rows: rows as u64,
            duplicates: (clean_rows - rows) as u64,
            dead_letters: dead_letters.len() as u64,
            cursors: if dense { BTreeMap::new() } else { next.clone() },
        };
        if !dead_letters.is_empty() {
            self.write_dead_letters(pos.batch, &dead_letters).await?;
        }
        let mut data: Vec<RecordBatch> = deduped.into_iter().filter(|b| b.num_rows() > 0).collect();
        if data.is_empty() {
            // Offsets still advance (every record was a dead letter): an empty append commits them.
            data.push(RecordBatch::new_empty(schema::clean(self.kind)));
        }
        let mut table = table;
        let mut attempt = 0;
        let table = loop {
            attempt += 1;
            if self.lease.is_lost() {
                return Err(self.lease.lost_error().into());
            }
            let written = table
                .write(data.clone())
                .with_writer_properties(delta::writer_properties())
                .with_save_mode(SaveMode::Append)
                .with_table_name(&self.table)
                .with_commit_properties(commit::properties(&info))
                .await;
            match written {
                Ok(t) => break t,
                Err(e) => match self.after_failed_commit(pos, e, attempt).await? {
                    AfterFailure::Retry(t) => table = t,
                    AfterFailure::TakenByAnother(t) => {
                        *seen = self.restore_seen(&t).await?;
                        return Ok(t);
                    }
                },
            }
        };
        let at = Instant::now();
        if let Some(s) = seen.as_mut() {
            s.extend(fingerprints);
        }
        // Retention keeps what the job has not committed yet (embedded log, dense offsets).
        for r in &info.offsets {
            if let Some(to) = r.to
                && let Err(e) = self.log.hold(&self.stream, r.partition, "stream", to).await
            {
                tracing::warn!(stream = %self.stream, partition = r.partition, "could not record the job's position for retention: {e}");
            }
        }
        pos.next = next;
        pos.batch += 1;
        let last_commit_ms = chrono::Utc::now().timestamp_millis();
        self.update_status(|s| {
            s.version = table.version();
            s.last_batch = Some(info.batch);
            s.last_commit_ms = Some(last_commit_ms);
            s.batches += 1;
            s.records += info.records;
            s.rows += info.rows;
            s.duplicates += info.duplicates;
            s.dead_letters += info.dead_letters;
            for p in &mut s.partitions {
                if let Some(next) = pos.next.get(&p.partition) {
                    p.committed = p.committed.and_then(|_| next.dense_offset(0).ok());
                    p.cursor = next.clone();
                }
            }
        });
        tracing::debug!(stream = %self.stream, batch = info.batch, records = info.records, rows = info.rows, "committed");
        if let Some(events) = &self.events {
            let _ = events.send(CommitEvent { stream: self.stream.clone(), offsets: info.offsets, at });
        }
        Ok(table)
    }

    /// A commit failed. If another job committed this batch (or later) in the meantime, Delta's
    /// conflict check refused ours: continue from what the table now says. If nobody did (a
    /// conflict with a compaction or a table creation), retry a few times on the new version;
    /// then the error stands (nothing was committed; a restart redoes the batch).
    async fn after_failed_commit(
        &self,
        pos: &mut Progress,
        e: deltalake::DeltaTableError,
        attempt: u32,
    ) -> Result<AfterFailure> {
        let table = delta::open(&self.location).await.map_err(Error::delta(&self.url))?;
        let parts = pos.next.keys().map(|p| p + 1).max().unwrap_or(0);
        let dense = self.log.capabilities().dense_offsets;
        let c = commit::committed(&table, &self.stream, parts, dense).await.map_err(Error::delta(&self.url))?;
        match c.batch {
            Some(b) if b >= pos.batch => {
                tracing::warn!(
                    stream = %self.stream, batch = pos.batch, error = %e,
                    "another stream job committed to this table; continuing from its offsets (is a second job running?)"
                );
                pos.next.extend(c.positions());
                pos.batch = b + 1;
                Ok(AfterFailure::TakenByAnother(table))
            }
            _ if attempt < COMMIT_ATTEMPTS => {
                tracing::warn!(stream = %self.stream, batch = pos.batch, error = %e, attempt, "commit failed; retrying");
                Ok(AfterFailure::Retry(table))
            }
            _ => Err(Error::delta(&self.url)(e)),
        }
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
            Err(_) => delta::open(&self.location).await.map_err(Error::delta(&self.url)),
        }
    }

    async fn write_dead_letters(&self, batch: u64, letters: &[pinpipe_transform::DeadLetter]) -> Result<()> {
        let mut body = Vec::new();
        for l in letters {
            // A dead letter always serialises (plain strings and numbers).
            if serde_json::to_writer(&mut body, l).is_ok() {
                body.push(b'\n');
            }
        }
        let key = self.dead_store.key(&dead_letter_key(&self.table, batch));
        // Written before the commit, named by the batch id: a batch redone after a crash
        // rewrites the same object.
        self.dead_store
            .inner
            .put(&key, bytes::Bytes::from(body).into())
            .await
            .map_err(|source| Error::DeadLetters { key: key.to_string(), source })?;
        Ok(())
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
