//! What `pinpipe up`'s stages report to the web console (`/ui`, `/api/v1/overview`): the sink's
//! partitions, the stream tables, the newest dead letters of the speed layer, the scheduler's
//! runs and next tick, the latest batch run, and the emulator's counts. Everything is read
//! when the console asks (status snapshots, the run history, the newest files), never pushed.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, TryStreamExt};
use object_store::ObjectStoreExt;
use serde_json::{Value, json};

/// Dead letters shown: the newest this many.
const DEAD_LETTERS_SHOWN: usize = 20;

/// The stages of one `pinpipe up` process.
pub struct UpStages {
    /// The sink.
    pub sink: Arc<pinpipe_sink::Sink>,
    /// The streaming job.
    pub job: Arc<pinpipe_stream::StreamJob>,
    /// Where the stream tables (and their dead letters) are.
    pub warehouse: pinpipe_store::Store,
    /// The scheduler's history and schedule, when it runs here.
    pub schedule: Option<(pinpipe_schedule::History, pinpipe_schedule::Resolved)>,
    /// Where batch runs write their results.
    pub results: PathBuf,
    /// The emulator's counts, once it started.
    pub emulator: OnceLock<Arc<pinpipe_emulate::run::Counters>>,
}

impl UpStages {
    fn sink(&self) -> Value {
        let partitions: Vec<Value> = self
            .sink
            .snapshot()
            .into_iter()
            .map(|((topic, partition), s)| {
                json!({"topic": topic, "partition": partition, "written": s.written, "end": s.end, "lag": s.lag(),
                       "objects": s.objects, "records": s.records, "dead_letters": s.dead_letters})
            })
            .collect();
        Value::Array(partitions)
    }

    /// The newest dead letters of the stream tables (each file is one micro-batch's), newest first.
    async fn dead_letters(&self) -> (Vec<Value>, u64) {
        let tables = self.job.snapshot();
        let total = tables.iter().map(|t| t.dead_letters).sum();
        let mut files = Vec::new();
        for t in tables {
            let dir = self.warehouse.key(&pinpipe_store::warehouse::stream_dead_letter_dir(&t.table));
            let listed: Vec<object_store::ObjectMeta> =
                self.warehouse.inner.list(Some(&dir)).try_collect().await.unwrap_or_default();
            files.extend(listed.into_iter().map(|m| (t.table.clone(), m)));
        }
        files.sort_by(|a, b| b.1.last_modified.cmp(&a.1.last_modified).then(b.1.location.cmp(&a.1.location)));
        let mut out = Vec::new();
        for (table, meta) in files {
            if out.len() >= DEAD_LETTERS_SHOWN {
                break;
            }
            let Ok(got) = self.warehouse.inner.get(&meta.location).await else { continue };
            let Ok(bytes) = got.bytes().await else { continue };
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).rev() {
                let Ok(mut letter) = serde_json::from_slice::<Value>(line) else { continue };
                if let Some(obj) = letter.as_object_mut() {
                    obj.insert("stage".into(), "stream".into());
                    obj.insert("table".into(), table.clone().into());
                }
                out.push(letter);
                if out.len() >= DEAD_LETTERS_SHOWN {
                    break;
                }
            }
        }
        (out, total)
    }

    fn schedule(&self) -> Value {
        let Some((history, schedule)) = &self.schedule else { return Value::Null };
        let runs = history.list().unwrap_or_default();
        let next = pinpipe_schedule::plan::next_tick(&schedule.cron, chrono::Utc::now()).map(|t| t.timestamp_millis());
        json!({"expression": schedule.expression, "next_run_ms": next,
               "runs": runs[runs.len().saturating_sub(10)..].to_vec()})
    }

    fn emulator(&self) -> Value {
        self.emulator.get().map_or(Value::Null, |c| {
            json!({"posts": c.posts.load(Ordering::Relaxed), "records": c.records.load(Ordering::Relaxed),
                   "accepted": c.accepted.load(Ordering::Relaxed), "refused": c.failed.load(Ordering::Relaxed)})
        })
    }
}

/// The stream tables of `job`, as the console shows them.
pub fn stream_tables(job: &pinpipe_stream::StreamJob) -> Value {
    let tables: Vec<Value> = job
        .snapshot()
        .into_iter()
        .map(|t| {
            json!({"stream": t.stream, "table": t.table, "location": t.location, "version": t.version,
                   "rows": t.rows, "records": t.records, "duplicates": t.duplicates, "dead_letters": t.dead_letters,
                   "batches": t.batches, "lag": t.lag(), "last_commit_ms": t.last_commit_ms})
        })
        .collect();
    Value::Array(tables)
}

/// A streaming job alone, as the console's stages (`bench stream --console`).
pub struct JobStages(pub Arc<pinpipe_stream::StreamJob>);

impl pinpipe_api::console::Stages for JobStages {
    fn overview(&self) -> BoxFuture<'_, Value> {
        async move { json!({"stream": stream_tables(&self.0)}) }.boxed()
    }

    fn report(&self) -> BoxFuture<'_, Option<String>> {
        async { None }.boxed()
    }
}

/// The run directories under `results` holding a summary, oldest first (by the summary's time).
pub fn runs(results: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(results) else { return Vec::new() };
    let mut runs: Vec<PathBuf> =
        dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("summary.json").is_file()).collect();
    runs.sort_by_key(|p| std::fs::metadata(p.join("summary.json")).and_then(|m| m.modified()).ok());
    runs
}

/// The newest run directory under `results` holding a summary.
pub fn latest_run(results: &Path) -> Option<PathBuf> {
    runs(results).pop()
}

impl pinpipe_api::console::Stages for UpStages {
    fn overview(&self) -> BoxFuture<'_, Value> {
        async move {
            let (dead_letters, dead_total) = self.dead_letters().await;
            let batch = latest_run(&self.results).and_then(|dir| {
                let summary: Value = serde_json::from_slice(&std::fs::read(dir.join("summary.json")).ok()?).ok()?;
                Some(json!({"run_dir": dir.display().to_string(), "summary": summary}))
            });
            json!({
                "sink": self.sink(),
                "stream": stream_tables(&self.job),
                "dead_letters": dead_letters,
                "dead_letters_total": dead_total,
                "schedule": self.schedule(),
                "batch": batch,
                "emulator": self.emulator(),
            })
        }
        .boxed()
    }

    fn report(&self) -> BoxFuture<'_, Option<String>> {
        async move { std::fs::read_to_string(latest_run(&self.results)?.join("report.html")).ok() }.boxed()
    }
}
