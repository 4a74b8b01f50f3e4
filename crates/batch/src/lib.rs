//! The batch job (the classic Databricks notebook): raw objects in the sink layout → clean
//! Delta tables → the eight questions.
//!
//! A run is incremental: it ingests only the raw objects its tables have not ingested, appends
//! their clean rows (exact duplicates dropped, also against the rows already in the tables), and
//! answers the questions over the whole tables. `--full` rebuilds the tables from every object.
//!
//! * [`read`]: plans what to read from the store and cleans it in parallel with the shared
//!   `pinpipe_transform` rules on [`pool`]'s threads, dropping the run's own duplicates as it
//!   goes.
//! * [`ingest`]: one topic into its table, exactly once (rows and ingested positions in one
//!   Delta commit), with [`fingerprints`] beside the tables for duplicates of older rows and a
//!   [`spill`] buffer for the rows waiting on that check; [`write`] writes the data files.
//! * [`delta`]: the batch tables: checking that a table is ours, what it ingested, committing a
//!   run (opening tables and their Parquet settings are the warehouse's, `pinpipe_store::delta`).
//! * [`queries`]: the questions as SQL on DataFusion over the Delta tables, within a memory limit.
//! * [`output`] and [`report`]: `q1.json` … `q8.json`, `q3b.json`, CSV, `summary.json`,
//!   `dead_letters.jsonl`, `report.html` in the run folder.
//!
//! [`run`] does all of it for one [`Job`] — ingest, answer, write the run folder — holding the
//! warehouse's batch lease (`pinpipe_store::warehouse::BATCH_LEASE`) so that two runs never work
//! on the same tables at once.

pub mod aggregates;
pub mod config;
pub mod delta;
pub mod error;
pub mod fingerprints;
pub mod ingest;
pub mod lookup;
pub mod output;
pub mod pool;
pub mod queries;
pub mod read;
pub mod report;
pub mod spill;
pub mod write;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub use config::{BatchConfig, ClusterQuestions, run_folder};
use datafusion::prelude::SessionContext;
pub use error::{Error, Result};
pub use ingest::Ingested;
use pinpipe_model::{Kind, Names, schema};
use pinpipe_store::Store;
use queries::Question;
use read::{Busy, ReadProgress};
use serde::Serialize;

/// Key of the batch job's lease in the warehouse.
pub const LEASE: &str = pinpipe_store::warehouse::BATCH_LEASE;

/// One run of the batch job.
pub struct Job {
    /// Topic and table names.
    pub names: Names,
    /// Where the raw objects are.
    pub input: Store,
    /// Where the clean Delta tables are kept (`<warehouse>/batch/<table>`); `None` answers from
    /// tables built from all objects in a temporary directory, removed after the run.
    pub warehouse: Option<pinpipe_store::Resolved>,
    /// The run folder (created; files in it are replaced).
    pub run_dir: PathBuf,
    /// Object reads in flight.
    pub read_concurrency: usize,
    /// Rebuild the tables from every object instead of ingesting only new ones.
    pub full: bool,
    /// Memory the run's buffers and queries may use before spilling.
    pub memory_limit: u64,
    /// Where spill files go.
    pub spill_dir: PathBuf,
    /// Counters for a progress display.
    pub progress: Arc<ReadProgress>,
    /// Where the raw objects are read and cleaned and the tables' files written: `None` in this
    /// process, or elsewhere (the executors of a cluster, `pinpipe-cluster`), which may also
    /// recompute the questions' aggregates ([`ClusterQuestions`]). Deciding which rows are new
    /// and committing stay here either way.
    pub reader: Option<Arc<dyn read::Reader>>,
    /// With a reader: where the questions' aggregates are recomputed over whole tables.
    pub cluster_questions: ClusterQuestions,
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

/// A clean Delta table after the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableInfo {
    /// Table URL.
    pub url: String,
    /// Its version after the run.
    pub version: u64,
    /// Whether this run committed to it (false: nothing new to ingest).
    pub committed: bool,
}

/// Seconds spent in each phase, and the busy time of the parallel work within ingestion.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Phases {
    /// Listing, reading, cleaning, de-duplicating, writing and committing, all three tables
    /// (these overlap: objects are cleaned while earlier rows are written).
    pub ingest_s: f64,
    /// Of which, summed over threads: parsing and cleaning records (fingerprints included).
    pub clean_busy_s: f64,
    /// Of which, summed over threads: recognising duplicates (sets, filtering, the tables'
    /// fingerprint files).
    pub dedup_busy_s: f64,
    /// Of which: encoding and writing Parquet and fingerprint files.
    pub write_busy_s: f64,
    /// Answering the questions from the tables.
    pub queries_s: f64,
    /// Writing answers, summary and report.
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
    /// Where the raw objects were read and cleaned and the tables' files written: `this process`,
    /// or `cluster df://HOST:PORT`.
    pub read_on: String,
    /// Where the questions' aggregates were computed: `this process`, or `cluster df://HOST:PORT`
    /// (recomputed over whole tables whose joins do not fit in the job's memory).
    pub questions_on: String,
    /// `incremental` or `full` (per table in `ingested`: a table without positions is rebuilt).
    pub mode: String,
    /// Raw objects read by this run.
    pub objects: PerKind,
    /// Raw bytes read.
    pub bytes: u64,
    /// Raw records read (rows + duplicates + dead letters).
    pub raw_records: PerKind,
    /// Records that could not be parsed or typed (in `dead_letters.jsonl`).
    pub dead_letters: PerKind,
    /// Exact duplicate rows dropped: repeats within the run and of rows the tables held.
    pub duplicates_dropped: PerKind,
    /// Rows this run added to the tables.
    pub clean_rows: PerKind,
    /// Rows of the tables after the run (what the questions were answered over).
    pub table_rows: PerKind,
    /// The Delta tables, by table name (empty without a warehouse).
    pub tables: BTreeMap<String, TableInfo>,
    /// Per table: what the run ingested.
    pub ingested: BTreeMap<String, Ingested>,
    /// Rows of each answer, by question id.
    pub answers: BTreeMap<String, usize>,
    /// How the questions' aggregates were brought up to date: `unchanged` (no new rows),
    /// `updated` (from the new rows and the older rows they join with) or `recomputed` (over the
    /// whole tables).
    pub answers_from: String,
    /// Time per phase.
    pub phases: Phases,
    /// The memory limit the run worked within, in bytes.
    pub memory_limit_bytes: u64,
    /// Whether the questions' joins were too large to hold and were written to the spill
    /// directory.
    pub joins_on_disk: bool,
    /// Peak resident memory of the process so far (Linux `VmHWM`), when known.
    pub peak_rss_bytes: Option<u64>,
    /// The same, measured when ingestion had finished (before the questions).
    pub peak_rss_ingest_bytes: Option<u64>,
}

/// A finished run: its summary and the answers.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The summary (also in `summary.json`).
    pub summary: Summary,
    /// Each question with its answer.
    pub answers: Vec<(Question, output::Table)>,
}

/// Runs the job: ingest the three topics into their tables, answer the questions over the
/// tables, write the run folder.
pub async fn run(job: &Job) -> Result<Outcome> {
    let started = Instant::now();
    std::fs::create_dir_all(&job.run_dir).map_err(Error::write(&job.run_dir))?;
    std::fs::create_dir_all(&job.spill_dir).map_err(Error::write(&job.spill_dir))?;
    let (warehouse, scratch) = warehouse(job)?;
    let full = job.full || job.warehouse.is_none();
    let lease = warehouse.lease(LEASE, "pinpipe batch", pinpipe_store::lease::DEFAULT_TTL).await?;
    let mut s = Summary::new(job, full);
    // 1. Ingest the three topics, one after another (each uses every core).
    let locations = ingest_all(job, &warehouse, full, &lease, &mut s).await?;
    // 2. The questions, from their aggregates brought up to date with the tables as committed.
    let t = Instant::now();
    let aggregates = answer_from_tables(job, &warehouse, &locations, &mut s).await?;
    let ctx = queries::session(job.memory_limit, &job.spill_dir, 0)?;
    aggregates.register(&ctx)?;
    let answers = queries::answer_all(&ctx).await?;
    s.phases.queries_s = t.elapsed().as_secs_f64();
    lease.release().await;
    drop(scratch);
    // 3. The run folder.
    let answers = write_run_folder(job, &answers, &mut s, started)?;
    Ok(Outcome { summary: s, answers })
}

/// The warehouse the tables go to: the job's, or without one a temporary directory (kept
/// until the returned guard is dropped), whose tables are built from everything.
fn warehouse(job: &Job) -> Result<(pinpipe_store::Resolved, Option<tempfile::TempDir>)> {
    match &job.warehouse {
        Some(w) => Ok((w.clone(), None)),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("pinpipe-batch-tables-")
                .tempdir_in(&job.spill_dir)
                .map_err(Error::io("cannot create a temporary warehouse"))?;
            Ok((pinpipe_store::StoreConfig::default().validate_or(dir.path().to_owned())?, Some(dir)))
        }
    }
}

impl Summary {
    /// The summary of a run of `job` before it starts.
    fn new(job: &Job, full: bool) -> Summary {
        Summary {
            run_dir: job.run_dir.clone(),
            input: job.input.url.clone(),
            read_on: job.reader.as_ref().map_or_else(|| "this process".to_owned(), |r| r.describe()),
            mode: if full { "full" } else { "incremental" }.to_owned(),
            objects: PerKind::default(),
            bytes: 0,
            raw_records: PerKind::default(),
            dead_letters: PerKind::default(),
            duplicates_dropped: PerKind::default(),
            clean_rows: PerKind::default(),
            table_rows: PerKind::default(),
            tables: BTreeMap::new(),
            ingested: BTreeMap::new(),
            answers: BTreeMap::new(),
            answers_from: String::new(),
            questions_on: "this process".to_owned(),
            phases: Phases::default(),
            memory_limit_bytes: job.memory_limit,
            joins_on_disk: false,
            peak_rss_bytes: None,
            peak_rss_ingest_bytes: None,
        }
    }
}

/// Ingests the three topics into their tables (dead letters into the run folder); returns
/// where each table is.
async fn ingest_all(
    job: &Job,
    warehouse: &pinpipe_store::Resolved,
    full: bool,
    lease: &pinpipe_store::lease::Lease,
    s: &mut Summary,
) -> Result<Vec<(Kind, pinpipe_store::TableLocation)>> {
    let t = Instant::now();
    let busy = Arc::new(Busy::default());
    let run_name = job.run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let cx = ingest::Context {
        input: &job.input,
        run: &run_name,
        full,
        read_concurrency: job.read_concurrency,
        buffer_budget: usize::try_from(job.memory_limit / 4).unwrap_or(usize::MAX),
        memory_limit: job.memory_limit,
        spill_dir: &job.spill_dir,
        lease,
        progress: &job.progress,
        busy: &busy,
        reader: job.reader.as_ref(),
    };
    let dl_path = job.run_dir.join("dead_letters.jsonl");
    let mut dead = output::DeadLetterFile::create(&dl_path)?;
    let mut locations = Vec::new();
    for kind in Kind::ALL {
        let (topic, name) = (job.names.topic(kind), job.names.table(kind));
        let location = warehouse.table_location(&pinpipe_store::warehouse::batch_table(&name))?;
        let mut sink = |letters: &[pinpipe_transform::DeadLetter]| dead.append(letters);
        let r = ingest::ingest(&cx, kind, &topic, &name, &location, &mut sink).await?;
        s.objects.set(kind, r.objects);
        s.bytes += r.bytes;
        s.raw_records.set(kind, r.records);
        s.dead_letters.set(kind, r.dead_letters);
        s.duplicates_dropped.set(kind, r.duplicates);
        s.clean_rows.set(kind, r.rows);
        s.table_rows.set(kind, r.table_rows);
        if job.warehouse.is_some()
            && let Some(version) = r.version
        {
            s.tables.insert(name.clone(), TableInfo { url: location.url.to_string(), version, committed: r.committed });
        }
        s.ingested.insert(name, r);
        locations.push((kind, location));
    }
    dead.finish()?;
    s.phases.ingest_s = t.elapsed().as_secs_f64();
    s.phases.clean_busy_s = Busy::seconds(&busy.clean_ns);
    s.phases.dedup_busy_s = Busy::seconds(&busy.dedup_ns);
    s.phases.write_busy_s = Busy::seconds(&busy.write_ns);
    s.peak_rss_ingest_bytes = peak_rss();
    Ok(locations)
}

/// Writes each answer (JSON, CSV), `report.html` and `summary.json` into the run folder;
/// returns the answers as tables.
fn write_run_folder(
    job: &Job,
    answers: &[queries::Answer],
    s: &mut Summary,
    started: Instant,
) -> Result<Vec<(Question, output::Table)>> {
    let t = Instant::now();
    let mut tables_out = Vec::with_capacity(answers.len());
    for a in answers {
        let table = output::answer_table(a);
        output::write_answer(&job.run_dir, a.question.id, &table)?;
        s.answers.insert(a.question.id.to_owned(), table.rows.len());
        tables_out.push((a.question, table));
    }
    s.phases.outputs_s = t.elapsed().as_secs_f64();
    s.phases.total_s = started.elapsed().as_secs_f64();
    s.peak_rss_bytes = peak_rss();
    let report = report::render("pinpipe batch report", &facts(s), &tables_out);
    let report_path = job.run_dir.join("report.html");
    std::fs::write(&report_path, report).map_err(Error::write(&report_path))?;
    output::write_json(&job.run_dir.join("summary.json"), s)?;
    Ok(tables_out)
}

/// Brings the questions' aggregates up to date with the tables ([`aggregates`]): unchanged, updated
/// from the new rows, or recomputed over the whole tables; saved when there is a warehouse.
async fn answer_from_tables(
    job: &Job,
    warehouse: &pinpipe_store::Resolved,
    locations: &[(Kind, pinpipe_store::TableLocation)],
    s: &mut Summary,
) -> Result<aggregates::Aggregates> {
    let mut tables = Vec::with_capacity(3);
    let mut files: [Vec<delta::DataFile>; 3] = Default::default();
    for (i, (kind, location)) in locations.iter().enumerate() {
        let url = location.url.to_string();
        let table = pinpipe_store::delta::open(location).await.map_err(Error::delta(&url))?;
        files[i] = delta::state(&table, *kind, "", &[]).await?.files;
        tables.push((table, url));
    }
    let store = match job.warehouse {
        Some(_) => Some(warehouse.open()?),
        None => None,
    };
    let saved = match &store {
        Some(store) if !job.full => aggregates::load(store).await?,
        _ => None,
    };
    let plan = aggregates::plan(saved, &files, job.memory_limit);
    s.answers_from = plan.describe().to_owned();
    let covers = aggregates::covers(&files);
    let result = match plan {
        aggregates::Plan::Unchanged(saved) => return Ok(saved),
        aggregates::Plan::Update { saved, files: split, new_rows } => {
            let ctx = queries::session(job.memory_limit, &job.spill_dir, new_rows)?;
            let handles: Vec<aggregates::TableFiles> = tables
                .iter()
                .map(|(t, url)| aggregates::TableFiles { store: t.object_store(), url: url.clone() })
                .collect();
            let handles: [aggregates::TableFiles; 3] =
                handles.try_into().map_err(|_| Error::Config("three tables expected".into()))?;
            let rows = aggregates::register_update(&ctx, &handles, &split).await?;
            let joins = queries::register_joins(&ctx, rows, job.memory_limit, &job.spill_dir, true).await?;
            s.joins_on_disk = joins.on_disk();
            aggregates::compute(&ctx, Some(&saved), covers).await?
        }
        aggregates::Plan::Recompute => {
            let most_rows = [s.table_rows.pin, s.table_rows.geo, s.table_rows.user].into_iter().max().unwrap_or(0);
            // Joins of whole tables that this process cannot hold run on the cluster, if there
            // is one (`batch.cluster_questions`): the tables' files are read by its executors.
            let on_cluster = match job.cluster_questions {
                ClusterQuestions::Auto => !queries::joins_fit(most_rows, job.memory_limit),
                ClusterQuestions::Always => true,
                ClusterQuestions::Never => false,
            };
            // A table without files joins with nothing: no work to distribute.
            let on_cluster = on_cluster && files.iter().all(|f| !f.is_empty());
            if let Some(reader) = job.reader.as_ref().filter(|_| on_cluster) {
                let ctx = reader.session()?;
                for ((kind, location), files) in locations.iter().zip(&files) {
                    register_files(&ctx, *kind, location, files)?;
                }
                queries::register_join_views(&ctx, false).await?;
                s.questions_on = reader.describe();
                aggregates::compute(&ctx, None, covers).await?
            } else {
                recompute_here(job, locations, &tables, most_rows, covers, s).await?
            }
        }
    };
    if let Some(store) = &store
        && let Err(e) = aggregates::save(store, &result).await
    {
        // The answers stand; the next run recomputes what it cannot update.
        tracing::warn!(error = %e, "cannot save the questions' aggregates");
    }
    Ok(result)
}

/// Recomputes the aggregates over the whole tables in this process (the joins held in memory, or
/// written to the spill directory when they are too large).
async fn recompute_here(
    job: &Job,
    locations: &[(Kind, pinpipe_store::TableLocation)],
    tables: &[(deltalake::DeltaTable, String)],
    most_rows: u64,
    covers: BTreeMap<String, Vec<String>>,
    s: &mut Summary,
) -> Result<aggregates::Aggregates> {
    let ctx = queries::session(job.memory_limit, &job.spill_dir, most_rows)?;
    for ((kind, location), (table, _)) in locations.iter().zip(tables) {
        register_table(&ctx, *kind, location, table).await?;
    }
    let joins = queries::register_joins(&ctx, most_rows, job.memory_limit, &job.spill_dir, false).await?;
    s.joins_on_disk = joins.on_disk();
    aggregates::compute(&ctx, None, covers).await
}

/// Registers the clean table of `kind` as `pin`, `geo` or `users` over its data files `files`
/// (at least one: a Parquet listing of exactly those files, which a cluster's executors read
/// themselves; Ballista cannot send an in-memory table).
fn register_files(
    ctx: &SessionContext,
    kind: Kind,
    location: &pinpipe_store::TableLocation,
    files: &[delta::DataFile],
) -> Result<()> {
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
    let name = queries::table_name(kind);
    let err = |e: datafusion::error::DataFusionError| Error::Query { question: name.into(), source: e };
    let urls = files
        .iter()
        .map(|f| {
            let url =
                location.url.join(&f.path).map_err(|e| Error::Config(format!("{}{}: {e}", location.url, f.path)))?;
            ListingTableUrl::parse(url.as_str()).map_err(err)
        })
        .collect::<Result<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config =
        ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(schema::clean(kind));
    let table = ListingTable::try_new(config).map_err(err)?;
    ctx.register_table(name, Arc::new(table)).map_err(err)?;
    Ok(())
}

/// Registers the clean table of `kind` as `pin`, `geo` or `users` (an empty table when it does
/// not exist yet).
async fn register_table(
    ctx: &SessionContext,
    kind: Kind,
    location: &pinpipe_store::TableLocation,
    table: &deltalake::DeltaTable,
) -> Result<()> {
    let name = queries::table_name(kind);
    let url = location.url.to_string();
    let err = |e: datafusion::error::DataFusionError| Error::Query { question: name.into(), source: e };
    if table.version().is_none() {
        let empty = datafusion::datasource::MemTable::try_new(schema::clean(kind), vec![vec![]]).map_err(err)?;
        ctx.register_table(name, Arc::new(empty)).map_err(err)?;
        return Ok(());
    }
    table.update_datafusion_session(&ctx.state()).map_err(Error::delta(&url))?;
    let provider = table.table_provider().await.map_err(err)?;
    ctx.register_table(name, provider).map_err(err)?;
    Ok(())
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
        ("read, cleaned and written on".to_owned(), s.read_on.clone()),
        ("questions' aggregates computed on".to_owned(), s.questions_on.clone()),
        ("mode".to_owned(), s.mode.clone()),
        ("raw records".to_owned(), per(&s.raw_records)),
        ("rows added".to_owned(), per(&s.clean_rows)),
        ("rows in the tables".to_owned(), per(&s.table_rows)),
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
