//! The batch job (the classic Databricks notebook): raw objects in the sink layout → clean
//! tables → the eight questions.
//!
//! * [`read`]: lists and reads `topics/<p>.pin|geo|user/partition=*/*.json` from any store and
//!   cleans every record with the shared `pinpipe_transform` rules, in parallel.
//! * de-duplication (exact, whole table) and dead letters (`dead_letters.jsonl`).
//! * [`delta`]: the clean tables as Delta tables under the warehouse, replaced per run.
//! * [`queries`]: the questions as SQL on DataFusion, exactly as DESIGN.md defines them.
//! * [`output`] and [`report`]: `q1.json` … `q8.json`, `q3b.json`, CSV, `summary.json`,
//!   `report.html` in the run folder.
//!
//! [`run`] does all of it for one [`Job`].

pub mod config;
pub mod delta;
pub mod error;
pub mod output;
pub mod queries;
pub mod read;
pub mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
pub use config::{BatchConfig, run_folder};
pub use error::{Error, Result};
use pinpipe_model::{Kind, Names, schema};
use pinpipe_store::Store;
use pinpipe_transform::dedup::rows;
use queries::Question;
use read::ReadProgress;
use serde::Serialize;

/// One run of the batch job.
pub struct Job {
    /// Topic and table names.
    pub names: Names,
    /// Where the raw objects are.
    pub input: Store,
    /// Where the clean Delta tables go (`<warehouse>/batch/<table>`); `None` skips them.
    pub warehouse: Option<pinpipe_store::Resolved>,
    /// The run folder (created; files in it are replaced).
    pub run_dir: PathBuf,
    /// Object reads in flight.
    pub read_concurrency: usize,
    /// Counters for a progress display.
    pub progress: Arc<ReadProgress>,
}

/// Counts per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PerKind {
    /// pin.
    pub pin: u64,
    /// geo.
    pub geo: u64,
    /// user.
    pub user: u64,
}

impl PerKind {
    fn set(&mut self, kind: Kind, v: u64) {
        match kind {
            Kind::Pin => self.pin = v,
            Kind::Geo => self.geo = v,
            Kind::User => self.user = v,
        }
    }

    /// The count of `kind`.
    pub fn get(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Pin => self.pin,
            Kind::Geo => self.geo,
            Kind::User => self.user,
        }
    }

    /// Sum over the three tables.
    pub fn total(&self) -> u64 {
        self.pin + self.geo + self.user
    }
}

/// A written Delta table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableInfo {
    /// Table URL.
    pub url: String,
    /// Version committed by this run.
    pub version: u64,
}

/// Seconds spent in each phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Phases {
    /// Listing, reading and cleaning the raw objects.
    pub read_clean_s: f64,
    /// Removing exact duplicates.
    pub dedup_s: f64,
    /// Writing the Delta tables (concurrent with the queries).
    pub delta_s: f64,
    /// Answering the questions.
    pub queries_s: f64,
    /// Writing answers, dead letters, summary and report.
    pub outputs_s: f64,
    /// The whole run.
    pub total_s: f64,
}

/// What a run did; written as `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// The input store.
    pub input: String,
    /// Raw objects read.
    pub objects: PerKind,
    /// Raw bytes read.
    pub bytes: u64,
    /// Raw records read (rows + dead letters).
    pub raw_records: PerKind,
    /// Records that could not be parsed or typed (in `dead_letters.jsonl`).
    pub dead_letters: PerKind,
    /// Exact duplicate rows removed.
    pub duplicates_dropped: PerKind,
    /// Rows of the clean tables.
    pub clean_rows: PerKind,
    /// The Delta tables written, by table name.
    pub tables: BTreeMap<String, TableInfo>,
    /// Rows of each answer, by question id.
    pub answers: BTreeMap<String, usize>,
    /// Time per phase.
    pub phases: Phases,
    /// Peak resident memory of the process so far (Linux `VmHWM`), when known.
    pub peak_rss_bytes: Option<u64>,
}

/// A finished run: its summary and the answers.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The summary (also in `summary.json`).
    pub summary: Summary,
    /// Each question with its answer.
    pub answers: Vec<(Question, output::Table)>,
}

/// Runs the job: read and clean, de-duplicate, write tables, answer, write the run folder.
pub async fn run(job: &Job) -> Result<Outcome> {
    let started = Instant::now();
    std::fs::create_dir_all(&job.run_dir).map_err(Error::write(&job.run_dir))?;
    let mut phases = Phases::default();

    // 1. Read and clean the three topics.
    let t = Instant::now();
    let read = |kind: Kind| {
        let topic = job.names.topic(kind);
        async move { read::read_topic(&job.input, &topic, kind, job.read_concurrency, &job.progress).await }
    };
    let (pin, geo, user) = tokio::try_join!(read(Kind::Pin), read(Kind::Geo), read(Kind::User))?;
    phases.read_clean_s = t.elapsed().as_secs_f64();

    let mut s = Summary {
        run_dir: job.run_dir.clone(),
        input: job.input.url.clone(),
        objects: PerKind::default(),
        bytes: pin.bytes + geo.bytes + user.bytes,
        raw_records: PerKind::default(),
        dead_letters: PerKind::default(),
        duplicates_dropped: PerKind::default(),
        clean_rows: PerKind::default(),
        tables: BTreeMap::new(),
        answers: BTreeMap::new(),
        phases: Phases::default(),
        peak_rss_bytes: None,
    };
    for (kind, r) in [(Kind::Pin, &pin), (Kind::Geo, &geo), (Kind::User, &user)] {
        s.objects.set(kind, r.objects);
        s.raw_records.set(kind, r.chunks.iter().map(|c| c.records).sum());
        s.dead_letters.set(kind, r.chunks.iter().map(|c| c.dead_letters.len() as u64).sum());
    }
    let dl_path = job.run_dir.join("dead_letters.jsonl");
    output::write_dead_letters(
        &dl_path,
        [&pin, &geo, &user].into_iter().flat_map(|r| r.chunks.iter().flat_map(|c| c.dead_letters.iter())),
    )?;

    // 2. Exact duplicates, per table.
    let t = Instant::now();
    let dedup = |r: read::TopicRead| {
        tokio::task::spawn_blocking(move || {
            let before: usize = r.chunks.iter().map(|c| c.batch.num_rows()).sum();
            pinpipe_transform::dedup(r.chunks).map(|b| (before, b))
        })
    };
    let (pin, geo, user) = tokio::try_join!(dedup(pin), dedup(geo), dedup(user))?;
    let mut tables: Vec<(Kind, Vec<RecordBatch>)> = Vec::new();
    for (kind, r) in [(Kind::Pin, pin), (Kind::Geo, geo), (Kind::User, user)] {
        let (before, batches) = r?;
        let after = rows(&batches);
        s.clean_rows.set(kind, after as u64);
        s.duplicates_dropped.set(kind, (before - after) as u64);
        tables.push((kind, batches));
    }
    phases.dedup_s = t.elapsed().as_secs_f64();

    // 3. Delta tables and the questions, concurrently.
    let delta = async {
        let t = Instant::now();
        let mut out = BTreeMap::new();
        if let Some(w) = &job.warehouse {
            let writes = tables.iter().map(|(kind, batches)| {
                let name = job.names.table(*kind);
                let batches = batches.clone();
                async move {
                    let location = w
                        .table_location(&format!("batch/{name}"))
                        .map_err(|e| Error::Delta { table: name.clone(), source: Box::new(e) })?;
                    let version = delta::overwrite(&location, &name, schema::clean(*kind), batches).await?;
                    Ok::<_, Error>((name, TableInfo { url: location.url.to_string(), version }))
                }
            });
            // One table at a time: the writers' buffers are the largest allocations of this
            // phase, and the questions run beside them anyway.
            for write in writes {
                let (name, info) = write.await?;
                out.insert(name, info);
            }
        }
        Ok::<_, Error>((out, t.elapsed().as_secs_f64()))
    };
    let answer = async {
        let t = Instant::now();
        let ctx = queries::session();
        let mut it = tables.iter().map(|(_, b)| b.clone());
        let (p, g, u) = (it.next().unwrap_or_default(), it.next().unwrap_or_default(), it.next().unwrap_or_default());
        queries::register(&ctx, p, g, u).await?;
        let answers = queries::answer_all(&ctx).await?;
        Ok::<_, Error>((answers, t.elapsed().as_secs_f64()))
    };
    let ((written, delta_s), (answers, queries_s)) = tokio::try_join!(delta, answer)?;
    s.tables = written;
    phases.delta_s = delta_s;
    phases.queries_s = queries_s;

    // 4. The run folder.
    let t = Instant::now();
    let mut tables_out = Vec::with_capacity(answers.len());
    for a in &answers {
        let table = output::answer_table(a);
        output::write_answer(&job.run_dir, a.question.id, &table)?;
        s.answers.insert(a.question.id.to_owned(), table.rows.len());
        tables_out.push((a.question, table));
    }
    phases.outputs_s = t.elapsed().as_secs_f64();
    phases.total_s = started.elapsed().as_secs_f64();
    s.phases = phases;
    s.peak_rss_bytes = peak_rss();
    let report = report::render("pinpipe batch report", &facts(&s), &tables_out);
    let report_path = job.run_dir.join("report.html");
    std::fs::write(&report_path, report).map_err(Error::write(&report_path))?;
    output::write_json(&job.run_dir.join("summary.json"), &s)?;
    Ok(Outcome { summary: s, answers: tables_out })
}

/// The process's peak resident memory from `/proc/self/status` (`VmHWM`), on Linux.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn facts(s: &Summary) -> Vec<(String, String)> {
    let per = |p: &PerKind| format!("pin {}, geo {}, user {}", p.pin, p.geo, p.user);
    let mut f = vec![
        ("input".to_owned(), s.input.clone()),
        ("raw records".to_owned(), per(&s.raw_records)),
        ("clean rows".to_owned(), per(&s.clean_rows)),
        ("duplicates dropped".to_owned(), per(&s.duplicates_dropped)),
        ("dead letters".to_owned(), format!("{} (dead_letters.jsonl)", per(&s.dead_letters))),
    ];
    for (name, t) in &s.tables {
        f.push((format!("table {name}"), format!("{} (version {})", t.url, t.version)));
    }
    f.push(("time".to_owned(), format!("{:.2} s", s.phases.total_s)));
    f
}

#[cfg(test)]
mod tests;
