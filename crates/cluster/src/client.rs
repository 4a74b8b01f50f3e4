//! The job's side of a cluster: `batch --cluster df://HOST:PORT` hands the reading and cleaning
//! of every topic's new objects to the cluster's executors and takes the cleaned units back, in
//! key order ([`ClusterReader`], the batch job's `Reader` port).
//!
//! The job de-duplicates against the run and the tables, writes the Parquet files and commits
//! them with the ingested positions exactly as in one process: a cluster job that fails leaves
//! the tables untouched, and the next run reads the same objects again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::UInt32Type;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use pinpipe_batch::read::{self, Chunk, Planned, Reader};
use pinpipe_model::Kind;
use pinpipe_store::{Store, StoreConfig};

use crate::plan::{Object, RawObjects, Task, codec};
use crate::{Error, SchedulerAddr, wire};

/// How long the job waits for the scheduler to accept a connection before saying it is not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Units a topic's objects are split into, at least, when they hold enough records: tasks for
/// every slot of a few executors.
const MIN_UNITS: u64 = 16;
/// The smallest unit worth a task of its own (bytes of records).
const MIN_UNIT_BYTES: u64 = 1 << 20;
/// The largest unit (bytes of records): what an executor's slot holds at once.
const MAX_UNIT_BYTES: u64 = 64 << 20;

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

    /// Submits `task` as a job and returns its output.
    async fn submit(&self, task: Task) -> pinpipe_batch::Result<SendableRecordBatchStream> {
        self.check().await.map_err(|e| self.err(e))?;
        let name = format!("pinpipe batch: read and clean {:?} ({} units)", task.kind, task.units.len());
        let config = SessionConfig::new_with_ballista()
            .with_ballista_logical_extension_codec(codec())
            .with_ballista_physical_extension_codec(codec())
            .with_ballista_job_name(&name)
            // One stage: each unit's task hands its output straight to the job (no round-robin
            // shuffle between the scan and the result).
            .set_bool("datafusion.optimizer.enable_round_robin_repartition", false);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .build()
            .upgrade_for_ballista(format!("http://{}", self.scheduler))
            .map_err(|e| self.err(e))?;
        let ctx = SessionContext::new_with_state(state);
        let df = ctx.read_table(Arc::new(RawObjects::new(task))).map_err(|e| self.err(e))?;
        df.execute_stream().await.map_err(|e| self.err(e))
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
        let mut batches = self.submit(task).await?;
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

    /// Reads, decodes and removes the staged output of unit `unit`.
    async fn take(&self, kind: Kind, unit: u32, key: String) -> pinpipe_batch::Result<Chunk> {
        let location = self.stage.key(&key);
        let read = async { self.stage.inner.get(&location).await?.bytes().await };
        let bytes = read.await.map_err(|e| self.err(format!("cannot read the cleaned unit {key}: {e}")))?;
        let chunk = wire::from_ipc(kind, unit, bytes).map_err(|e| self.err(e))?;
        if let Err(e) = self.stage.inner.delete(&location).await {
            tracing::warn!(key, error = %e, "cannot remove a cleaned unit the job has read");
        }
        Ok(chunk)
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
            stage_prefix: format!("{}/{}", self.stage_prefix, kind.as_str()),
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
}
