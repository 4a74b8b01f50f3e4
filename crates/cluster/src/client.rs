//! The job's side of a cluster: `batch --cluster df://HOST:PORT` hands the reading, cleaning and
//! writing of every topic's new objects to the cluster's executors ([`ClusterReader`], the batch
//! job's `Reader` port).
//!
//! Per topic, a first Ballista job cleans the units and stages them; the job reads their keys
//! (fingerprints, dead letters, counts) in key order and de-duplicates against the run and the
//! table exactly as in one process; a second Ballista job writes each unit's kept rows as the
//! table's Parquet files; the job commits them with the ingested positions. A cluster job that
//! fails leaves the tables untouched, and the next run reads the same objects again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{UInt32Type, UInt64Type};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use pinpipe_batch::read::{self, Chunk, Keep, Planned, Reader, Written};
use pinpipe_model::Kind;
use pinpipe_store::{Store, StoreConfig};

use crate::plan::{Object, Task, UnitKeep, Units, Work, WriteTask, codec, keys_key, read_staged};
use crate::{Error, SchedulerAddr};

/// How long the job waits for the scheduler to accept a connection before saying it is not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Units a topic's objects are split into, at least, when they hold enough records: tasks for
/// every slot of a few executors.
const MIN_UNITS: u64 = 16;
/// The smallest unit worth a task of its own (bytes of records).
const MIN_UNIT_BYTES: u64 = 1 << 20;
/// The largest unit (bytes of records): what an executor's slot holds at once.
const MAX_UNIT_BYTES: u64 = 64 << 20;

/// Tasks per stage of the questions' plans (scans of the tables' files, the joins' shuffles by
/// `ind`, the aggregates): enough for the slots of a few executors.
const QUESTION_PARTITIONS: usize = 8;

/// Reads and cleans through a Ballista cluster.
#[derive(Clone)]
pub struct ClusterReader {
    scheduler: SchedulerAddr,
    store: StoreConfig,
    requests: usize,
    memory_limit: u64,
    stage_config: StoreConfig,
    stage: Store,
    stage_prefix: String,
    cleared: Arc<AtomicBool>,
}

impl ClusterReader {
    /// A reader through the scheduler at `scheduler`, of the input store `input` (as configured:
    /// the executors open it themselves, with their own credentials); executors leave cleaned
    /// units in `warehouse` (under [`pinpipe_store::warehouse::BATCH_STAGING`]) for the job to
    /// read; `requests` object reads in flight per unit; `memory_limit` as the job's.
    pub fn new(
        scheduler: SchedulerAddr,
        input: &pinpipe_store::Resolved,
        warehouse: &pinpipe_store::Resolved,
        requests: usize,
        memory_limit: u64,
    ) -> Result<ClusterReader, Error> {
        let token = format!("{}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"), std::process::id());
        Ok(ClusterReader {
            scheduler,
            store: store_config(input)?,
            requests,
            memory_limit,
            stage_config: store_config(warehouse)?,
            stage: warehouse.open().map_err(|e| Error::Config(e.to_string()))?,
            stage_prefix: format!("{}/{token}", pinpipe_store::warehouse::BATCH_STAGING),
            cleared: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Checks that the scheduler accepts connections (a clear error now, instead of a gRPC one
    /// after the first table's listing).
    pub async fn check(&self) -> Result<(), Error> {
        let addr = self.scheduler.to_string();
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::Unreachable { scheduler: addr, reason: e.to_string() }),
            Err(_) => Err(Error::Unreachable { scheduler: addr, reason: format!("no answer in {CONNECT_TIMEOUT:?}") }),
        }
    }

    fn err(&self, reason: impl std::fmt::Display) -> pinpipe_batch::Error {
        pinpipe_batch::Error::Cluster { scheduler: self.scheduler.to_string(), reason: reason.to_string() }
    }

    /// Submits `work` as a job and returns its output.
    async fn submit(&self, work: Work) -> pinpipe_batch::Result<SendableRecordBatchStream> {
        self.check().await.map_err(|e| self.err(e))?;
        let name = match &work {
            Work::Clean(t) => format!("pinpipe batch: read and clean {:?} ({} units)", t.kind, t.units.len()),
            Work::Write(t) => format!("pinpipe batch: write {:?} to {} ({} units)", t.kind, t.table, t.units.len()),
        };
        // One stage: each unit's task hands its output straight to the job (no round-robin
        // shuffle between the scan and the result).
        let ctx = self.context(&name, None)?;
        let df = ctx.read_table(Arc::new(Units::new(work))).map_err(|e| self.err(e))?;
        df.execute_stream().await.map_err(|e| self.err(e))
    }

    /// A session whose plans run on the cluster, as jobs named `name`.
    /// With `partitions`, its scans and joins split into that many tasks per stage; no
    /// round-robin shuffles (Ballista's scheduler turns them off anyway).
    fn context(&self, name: &str, partitions: Option<usize>) -> pinpipe_batch::Result<SessionContext> {
        let mut config = SessionConfig::new_with_ballista()
            .with_ballista_logical_extension_codec(codec())
            .with_ballista_physical_extension_codec(codec())
            .with_ballista_job_name(name)
            .set_bool("datafusion.optimizer.enable_round_robin_repartition", false);
        if let Some(n) = partitions {
            config = config.with_target_partitions(n.max(1));
        }
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .build()
            .upgrade_for_ballista(format!("http://{}", self.scheduler))
            .map_err(|e| self.err(e))?;
        Ok(SessionContext::new_with_state(state))
    }
}

/// The input store as executors open it: the configured URL (a local directory made absolute:
/// executors on this machine resolve it from their own working directory), endpoint and
/// region; never credentials.
pub fn store_config(store: &pinpipe_store::Resolved) -> Result<StoreConfig, Error> {
    let url = match &store.url {
        pinpipe_store::StoreUrl::File(dir) => {
            let dir = std::path::absolute(dir).map_err(|e| Error::Config(format!("{}: {e}", dir.display())))?;
            pinpipe_store::StoreUrl::File(dir).display()
        }
        other => other.display(),
    };
    Ok(StoreConfig { url: Some(url), s3_endpoint: store.s3_endpoint.clone(), s3_region: store.s3_region.clone() })
}

impl ClusterReader {
    /// Runs `task` on the cluster; returns where each unit's output was left, in unit order.
    async fn run(&self, task: Task) -> pinpipe_batch::Result<Vec<(u32, String)>> {
        let units = task.units.len();
        let mut batches = self.submit(Work::Clean(task)).await?;
        let mut staged = Vec::with_capacity(units);
        while let Some(b) = batches.next().await {
            let b = b.map_err(|e| self.err(e))?;
            let (Some(u), Some(k)) = (b.column_by_name("unit"), b.column_by_name("key")) else {
                return Err(self.err("a task returned no unit and key"));
            };
            let (u, k) = (u.as_primitive::<UInt32Type>(), k.as_string::<i32>());
            staged.extend((0..b.num_rows()).map(|i| (u.value(i), k.value(i).to_owned())));
        }
        staged.sort();
        staged.dedup_by_key(|(u, _)| *u);
        if staged.len() != units || staged.iter().enumerate().any(|(i, (u, _))| *u as usize != i) {
            return Err(self.err(format!("the job returned {} of {units} units", staged.len())));
        }
        Ok(staged)
    }

    /// Reads and decodes the staged keys of unit `unit` (its rows stay where they are, for
    /// [`Reader::write`]).
    async fn take(&self, kind: Kind, unit: u32, key: String) -> pinpipe_batch::Result<Chunk> {
        let mut chunk = read_staged(&self.stage, kind, unit, &keys_key(&key)).await.map_err(|e| self.err(e))?;
        chunk.held_by_reader = Some(unit);
        Ok(chunk)
    }

    /// Key prefix of `kind`'s staged units.
    fn kind_prefix(&self, kind: Kind) -> String {
        format!("{}/{}", self.stage_prefix, kind.as_str())
    }

    /// Removes `kind`'s staged units.
    async fn forget(&self, kind: Kind) {
        let prefix = self.stage.key(&self.kind_prefix(kind));
        let staged: Vec<object_store::path::Path> =
            match self.stage.inner.list(Some(&prefix)).try_collect::<Vec<_>>().await {
                Ok(objects) => objects.into_iter().map(|o| o.location).collect(),
                Err(e) => {
                    tracing::warn!(prefix = %prefix, error = %e, "cannot list the cleaned units to remove them");
                    return;
                }
            };
        for l in staged {
            if let Err(e) = self.stage.inner.delete(&l).await {
                tracing::warn!(key = %l, error = %e, "cannot remove a cleaned unit the job has written");
            }
        }
    }

    /// Has the executors write the kept rows of `kind`'s staged units to the table at `table`.
    async fn write_units(&self, kind: Kind, table: &str, keep: Vec<Keep>) -> pinpipe_batch::Result<Written> {
        let units: Vec<UnitKeep> =
            keep.iter().filter(|k| k.rows.iter().any(|r| *r)).map(|k| UnitKeep::new(k.unit, &k.rows)).collect();
        if units.is_empty() {
            return Ok(Written::default());
        }
        let expected: Vec<u32> = units.iter().map(|u| u.unit).collect();
        let task = WriteTask {
            kind,
            stage: self.stage_config.clone(),
            stage_prefix: self.kind_prefix(kind),
            table: table.to_owned(),
            units,
        };
        let mut batches = self.submit(Work::Write(task)).await?;
        let mut written: Vec<(u32, Vec<deltalake::kernel::Add>, u64, u64)> = Vec::new();
        while let Some(b) = batches.next().await {
            let b = b.map_err(|e| self.err(e))?;
            let (Some(u), Some(a), Some(r), Some(w)) = (
                b.column_by_name("unit"),
                b.column_by_name("adds"),
                b.column_by_name("rows"),
                b.column_by_name("write_ns"),
            ) else {
                return Err(self.err("a write task returned no unit, files and rows"));
            };
            let (u, a) = (u.as_primitive::<UInt32Type>(), a.as_string::<i32>());
            let (r, w) = (r.as_primitive::<UInt64Type>(), w.as_primitive::<UInt64Type>());
            for i in 0..b.num_rows() {
                let adds = serde_json::from_str(a.value(i))
                    .map_err(|e| self.err(format!("unit {} came back with unreadable files: {e}", u.value(i))))?;
                written.push((u.value(i), adds, r.value(i), w.value(i)));
            }
        }
        written.sort_by_key(|(u, ..)| *u);
        if written.iter().map(|(u, ..)| *u).collect::<Vec<_>>() != expected {
            return Err(self.err(format!("the write job returned {} of {} units", written.len(), expected.len())));
        }
        let mut out = Written::default();
        for (_, adds, rows, write_ns) in written {
            out.adds.extend(adds);
            out.rows += rows;
            out.write_ns += write_ns;
        }
        Ok(out)
    }

    /// Removes what interrupted runs left in the staging area (the job holds the warehouse's
    /// lease when it reads, so no other run is using it), once per reader.
    async fn clear_leftovers(&self) {
        if self.cleared.swap(true, Ordering::Relaxed) {
            return;
        }
        let prefix = self.stage.key(pinpipe_store::warehouse::BATCH_STAGING);
        let mine = self.stage.key(&self.stage_prefix);
        let old: Vec<object_store::path::Path> =
            match self.stage.inner.list(Some(&prefix)).try_collect::<Vec<_>>().await {
                Ok(objects) => {
                    objects.into_iter().map(|o| o.location).filter(|l| !l.as_ref().starts_with(mine.as_ref())).collect()
                }
                Err(_) => return,
            };
        for l in old {
            let _ = self.stage.inner.delete(&l).await;
        }
    }
}

impl Reader for ClusterReader {
    fn describe(&self) -> String {
        format!("cluster df://{}", self.scheduler)
    }

    fn chunks(
        &self,
        _store: &Store,
        kind: Kind,
        objects: Vec<Planned>,
    ) -> BoxStream<'static, pinpipe_batch::Result<Chunk>> {
        // About MIN_UNITS units: every executor's slots get some (a unit is one task), and each
        // task is large enough that scheduling it costs little beside its work.
        let per_unit = (read::record_bytes(&objects) / MIN_UNITS).clamp(MIN_UNIT_BYTES, MAX_UNIT_BYTES);
        let units = read::units_of(objects, per_unit);
        if units.is_empty() {
            return futures_util::stream::empty().boxed();
        }
        let task = Task {
            store: self.store.clone(),
            kind,
            requests: self.requests,
            memory_limit: self.memory_limit,
            units: units.iter().map(|u| u.iter().map(Object::of).collect()).collect(),
            stage: self.stage_config.clone(),
            stage_prefix: self.kind_prefix(kind),
        };
        let reader = self.clone();
        futures_util::stream::once(async move {
            reader.clear_leftovers().await;
            let staged = reader.run(task).await?;
            Ok::<_, pinpipe_batch::Error>(
                futures_util::stream::iter(staged)
                    .map(move |(unit, key)| {
                        let reader = reader.clone();
                        async move { reader.take(kind, unit, key).await }
                    })
                    .buffered(2),
            )
        })
        .try_flatten()
        .boxed()
    }

    fn session(&self) -> pinpipe_batch::Result<SessionContext> {
        self.context("pinpipe batch: the questions' aggregates", Some(QUESTION_PARTITIONS))
    }

    fn write<'a>(
        &'a self,
        kind: Kind,
        table: &'a str,
        keep: Vec<Keep>,
    ) -> BoxFuture<'a, pinpipe_batch::Result<Written>> {
        Box::pin(async move {
            let written = self.write_units(kind, table, keep).await;
            self.forget(kind).await;
            written
        })
    }
}
