//! The eight questions (and 3b) of DESIGN.md, as SQL run by DataFusion: joins of the clean
//! tables, small aggregates of the joined rows, and the answers from those aggregates.
//!
//! Two joins (inner, on `ind`), as the classic notebook did: `pg` = pin ⋈ geo, for questions
//! 1–3, which need only the post and its place (a post whose user record never arrived still
//! counts there), and `pgu` = pin ⋈ geo ⋈ user, for questions 4–8; each with the derived columns
//! the questions use (`post_year`, `join_year`, `age_group`). Over the whole tables each join is
//! computed once: held in memory when both fit comfortably in the memory limit, else written to
//! Parquet in the spill directory, which the aggregates scan.
//!
//! The questions are answered from aggregates of the joined rows ([`COUNTS`], [`TOP_POSTER_CANDIDATES`],
//! [`NEW_USERS`]), never from the rows themselves, so that [`crate::aggregates`] can keep them
//! up to date from the rows a run adds. Semantics, exactly:
//!
//! * Nulls are excluded from counts of a value and from medians; a group with no values is
//!   absent. A row whose grouping key is null belongs to no group.
//! * Ties for a maximum are all kept (q1, q3, 3b, q4).
//! * The median is the lower median: the smallest value v of the group such that at least half
//!   of its non-null values are ≤ v (the value of rank ⌈n/2⌉ in ascending order). It is computed
//!   exactly, at any group size, from the number of rows with each follower count: the first v
//!   whose running count reaches half the group's.
//! * Year windows are inclusive: 2018–2022 for q2 (year of the geo timestamp), 2015–2020 for
//!   q6–q8 (year of `date_joined`); years are taken in UTC.
//! * q3 ranks posters (rows with a poster name and a follower count); each (country, poster,
//!   count) appears once; 3b is computed from q3's answer (registered as the table `q3`).
//! * q6 counts distinct (user_name, age, date_joined) with none of them null.
//!
//! Every result is sorted by its key columns, so outputs are stable from run to run.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::{Error, Result};

/// How a question's answer is drawn in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// One bar per row: labelled by `label` columns (joined with " · "), length `value`.
    Bars {
        /// Label columns.
        label: &'static [&'static str],
        /// Value column.
        value: &'static str,
    },
    /// Groups of bars: one group per `group` value, one bar (and legend entry) per `series` value.
    Grouped {
        /// Column giving the groups along the axis.
        group: &'static str,
        /// Column giving the bars within a group.
        series: &'static str,
        /// Value column.
        value: &'static str,
    },
}

/// A question: id, the question in words, its SQL and its chart.
#[derive(Debug, Clone, Copy)]
pub struct Question {
    /// `q1` ... `q8`, `q3b`: also the output file names.
    pub id: &'static str,
    /// The question in words.
    pub title: &'static str,
    /// The SQL (over the aggregate tables, and for 3b `q3`).
    pub sql: &'static str,
    /// Result columns, exactly as DESIGN.md names them.
    pub columns: &'static [&'static str],
    /// How the report draws it.
    pub chart: Chart,
}

/// pin ⋈ geo with the derived columns questions 1–3 use. The narrower table is on the left: a hash
/// join builds its table from the left side. `flagged`: the tables have a boolean column `_new`
/// (a row the aggregates do not cover yet), and so has the join (either side new).
pub fn pg_sql(flagged: bool) -> String {
    let flag = if flagged { ", p._new OR g._new AS _new" } else { "" };
    format!(
        "SELECT p.ind, p.category, p.poster_name, p.follower_count, g.country,
       CAST(date_part('year', g.timestamp) AS BIGINT) AS post_year{flag}
FROM geo g JOIN pin p ON p.ind = g.ind"
    )
}

/// pin ⋈ geo ⋈ user with the derived columns questions 4–8 use (from `pg`, which is pin ⋈ geo);
/// `flagged` as for [`pg_sql`].
pub fn pgu_sql(flagged: bool) -> String {
    let flag = if flagged { ", p._new OR u._new AS _new" } else { "" };
    format!(
        "SELECT p.ind, p.category, p.follower_count,
       u.user_name, u.age, u.date_joined,
       CAST(date_part('year', u.date_joined) AS BIGINT) AS join_year,
       CASE WHEN u.age <= 24 THEN '18-24' WHEN u.age <= 35 THEN '25-35'
            WHEN u.age <= 50 THEN '36-50' WHEN u.age IS NOT NULL THEN '50+' END AS age_group{flag}
FROM users u JOIN pg p ON p.ind = u.ind"
    )
}

/// The name the SQL gives the clean table of `kind`: `pin`, `geo`, `users`.
pub fn table_name(kind: pinpipe_model::Kind) -> &'static str {
    match kind {
        pinpipe_model::Kind::Pin => "pin",
        pinpipe_model::Kind::Geo => "geo",
        pinpipe_model::Kind::User => "users",
    }
}

/// Bytes per joined row held in memory (both joins), for deciding whether to hold them.
const JOINED_ROW_BYTES: u64 = 160;
/// Bytes per row a hash join's build side is charged (measured at 10M posts: about 200, as the
/// pieces of a hash repartition are each charged for the buffers they share), for deciding
/// whether to join by hash or by sorting.
const BUILD_ROW_BYTES: u64 = 200;

/// A count the questions are answered from: rows of `pg_delta` or `pgu_delta` (the joined rows
/// the aggregates do not cover yet) per key. Counts add up: the aggregates of the whole tables
/// are those of the rows covered so far plus those of the new ones.
#[derive(Debug, Clone, Copy)]
pub struct Count {
    /// Name of the aggregate table (columns: `keys`, then `n`).
    pub name: &'static str,
    /// Its key columns.
    pub keys: &'static [&'static str],
    /// The count over the new joined rows.
    pub sql: &'static str,
}

/// The counts: categories per country (q1), per post year (q2) and per age group (q4); and
/// follower counts per age group and join year (q5, q7, q8: a median is exact from the number of
/// rows with each value, and follower counts take few distinct values).
pub const COUNTS: [Count; 4] = [
    Count {
        name: "category_by_country",
        keys: &["country", "category"],
        sql: "SELECT country, category, COUNT(*) AS n FROM pg_delta
WHERE country IS NOT NULL AND category IS NOT NULL GROUP BY country, category",
    },
    Count {
        name: "category_by_year",
        keys: &["post_year", "category"],
        sql: "SELECT post_year, category, COUNT(*) AS n FROM pg_delta
WHERE post_year BETWEEN 2018 AND 2022 AND category IS NOT NULL GROUP BY post_year, category",
    },
    Count {
        name: "category_by_age_group",
        keys: &["age_group", "category"],
        sql: "SELECT age_group, category, COUNT(*) AS n FROM pgu_delta
WHERE age_group IS NOT NULL AND category IS NOT NULL GROUP BY age_group, category",
    },
    Count {
        name: "followers",
        keys: &["age_group", "join_year", "follower_count"],
        sql: "SELECT age_group, join_year, follower_count, COUNT(*) AS n FROM pgu_delta
WHERE follower_count IS NOT NULL GROUP BY age_group, join_year, follower_count",
    },
];

/// The rows q3 ranks (a country, a poster name and a follower count), from `top_posters_in`:
/// the top posters so far and the new joined rows (or every joined row). Tables only grow, so the
/// top of everything is the top of those; [`crate::aggregates`] keeps, per country, the posters
/// with its highest count, in one pass.
pub const TOP_POSTER_CANDIDATES: &str = "
SELECT country, poster_name, follower_count FROM top_posters_in
WHERE country IS NOT NULL AND poster_name IS NOT NULL AND follower_count IS NOT NULL";

/// Name of q3's aggregate table.
pub const TOP_POSTERS_TABLE: &str = "top_posters";

/// The users of q6 among the new joined rows: (user_name, age, date_joined) with none of them
/// null, and their join year, 2015–2020, a row per joined row. [`crate::aggregates`] counts them
/// by fingerprint: once each, and only if not counted before.
pub const NEW_USERS: &str = "
SELECT user_name, age, date_joined, join_year FROM pgu_delta
WHERE join_year BETWEEN 2015 AND 2020 AND user_name IS NOT NULL AND age IS NOT NULL";

/// Name of q6's aggregate table (`join_year`, `n`).
pub const USERS_TABLE: &str = "users_joined";

/// The questions in report order, answered from the aggregate tables.
pub const QUESTIONS: [Question; 9] = [
    Question {
        id: "q1",
        title: "Most popular category per country",
        sql: "
SELECT country, category, category_count FROM (
  SELECT country, category, n AS category_count, MAX(n) OVER (PARTITION BY country) AS top
  FROM category_by_country) t
WHERE category_count = top ORDER BY country, category",
        columns: &["country", "category", "category_count"],
        chart: Chart::Bars { label: &["country", "category"], value: "category_count" },
    },
    Question {
        id: "q2",
        title: "Posts per category per year, 2018–2022",
        sql: "
SELECT post_year, category, n AS category_count FROM category_by_year ORDER BY post_year, category",
        columns: &["post_year", "category", "category_count"],
        chart: Chart::Grouped { group: "post_year", series: "category", value: "category_count" },
    },
    Question {
        id: "q3",
        title: "Most followed user per country",
        sql: "SELECT country, poster_name, follower_count FROM top_posters ORDER BY country, poster_name",
        columns: &["country", "poster_name", "follower_count"],
        chart: Chart::Bars { label: &["country", "poster_name"], value: "follower_count" },
    },
    Question {
        id: "q3b",
        title: "The country whose most followed user has the most followers",
        sql: "
SELECT DISTINCT country, follower_count FROM q3
WHERE follower_count = (SELECT MAX(follower_count) FROM q3) ORDER BY country",
        columns: &["country", "follower_count"],
        chart: Chart::Bars { label: &["country"], value: "follower_count" },
    },
    Question {
        id: "q4",
        title: "Most popular category per age group",
        sql: "
SELECT age_group, category, category_count FROM (
  SELECT age_group, category, n AS category_count, MAX(n) OVER (PARTITION BY age_group) AS top
  FROM category_by_age_group) t
WHERE category_count = top ORDER BY age_group, category",
        columns: &["age_group", "category", "category_count"],
        chart: Chart::Bars { label: &["age_group", "category"], value: "category_count" },
    },
    Question {
        id: "q5",
        title: "Median follower count per age group",
        sql: "
WITH h AS (
  SELECT age_group, follower_count AS v, SUM(n) AS n FROM followers
  WHERE age_group IS NOT NULL GROUP BY age_group, follower_count),
w AS (
  SELECT age_group, v, SUM(n) OVER (PARTITION BY age_group ORDER BY v ROWS UNBOUNDED PRECEDING) AS at_most,
         SUM(n) OVER (PARTITION BY age_group) AS total FROM h)
SELECT age_group, MIN(v) AS median_follower_count FROM w WHERE 2 * at_most >= total
GROUP BY age_group ORDER BY age_group",
        columns: &["age_group", "median_follower_count"],
        chart: Chart::Bars { label: &["age_group"], value: "median_follower_count" },
    },
    Question {
        id: "q6",
        title: "Users joined per year, 2015–2020",
        sql: "SELECT join_year, n AS number_users_joined FROM users_joined WHERE n > 0 ORDER BY join_year",
        columns: &["join_year", "number_users_joined"],
        chart: Chart::Bars { label: &["join_year"], value: "number_users_joined" },
    },
    Question {
        id: "q7",
        title: "Median follower count per join year, 2015–2020",
        sql: "
WITH h AS (
  SELECT join_year, follower_count AS v, SUM(n) AS n FROM followers
  WHERE join_year BETWEEN 2015 AND 2020 GROUP BY join_year, follower_count),
w AS (
  SELECT join_year, v, SUM(n) OVER (PARTITION BY join_year ORDER BY v ROWS UNBOUNDED PRECEDING) AS at_most,
         SUM(n) OVER (PARTITION BY join_year) AS total FROM h)
SELECT join_year, MIN(v) AS median_follower_count FROM w WHERE 2 * at_most >= total
GROUP BY join_year ORDER BY join_year",
        columns: &["join_year", "median_follower_count"],
        chart: Chart::Bars { label: &["join_year"], value: "median_follower_count" },
    },
    Question {
        id: "q8",
        title: "Median follower count per age group and join year, 2015–2020",
        sql: "
WITH h AS (
  SELECT age_group, join_year, follower_count AS v, n FROM followers
  WHERE age_group IS NOT NULL AND join_year BETWEEN 2015 AND 2020),
w AS (
  SELECT age_group, join_year, v,
         SUM(n) OVER (PARTITION BY age_group, join_year ORDER BY v ROWS UNBOUNDED PRECEDING) AS at_most,
         SUM(n) OVER (PARTITION BY age_group, join_year) AS total FROM h)
SELECT age_group, join_year, MIN(v) AS median_follower_count FROM w WHERE 2 * at_most >= total
GROUP BY age_group, join_year ORDER BY age_group, join_year",
        columns: &["age_group", "join_year", "median_follower_count"],
        chart: Chart::Grouped { group: "age_group", series: "join_year", value: "median_follower_count" },
    },
];

/// A question and its answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The question.
    pub question: Question,
    /// Result rows.
    pub batches: Vec<RecordBatch>,
}

impl Answer {
    /// Number of result rows.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

pub(crate) fn mem_table(
    batches: Vec<RecordBatch>,
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> Result<Arc<MemTable>> {
    // Two partitions per core so scans and joins run in parallel.
    let parts = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); parts];
    let mut sizes = vec![0usize; parts];
    for b in batches.into_iter().filter(|b| b.num_rows() > 0) {
        let i = (0..parts).min_by_key(|&i| sizes[i]).unwrap_or(0);
        sizes[i] += b.num_rows();
        partitions[i].push(b);
    }
    let table =
        MemTable::try_new(schema, partitions).map_err(|source| Error::Query { question: "tables".into(), source })?;
    Ok(Arc::new(table))
}

/// Where the joins are kept while the questions run: in memory, or (larger) in Parquet files in
/// a temporary directory, removed when this is dropped.
pub struct Joins {
    dir: Option<tempfile::TempDir>,
}

impl Joins {
    /// Whether the joins were written to disk (too large to hold).
    pub fn on_disk(&self) -> bool {
        self.dir.is_some()
    }
}

/// Registers `pg` and `pgu` over the tables `pin`, `geo` and `users` (already registered), which
/// hold `rows` rows at most, and `pg_delta` and `pgu_delta`, their rows that the aggregates do
/// not cover yet: with `flagged` (the tables have a `_new` column) the rows with a new side, else
/// all of them. Each join is computed once: held in memory when both fit in a quarter of
/// `memory_limit`, else written to Parquet files under `spill_dir` (the join itself runs within
/// the memory limit) which the aggregates then scan, reading only their columns.
pub async fn register_joins(
    ctx: &SessionContext,
    rows: u64,
    memory_limit: u64,
    spill_dir: &std::path::Path,
    flagged: bool,
) -> Result<Joins> {
    let hold = joins_fit(rows, memory_limit);
    let dir = if hold {
        None
    } else {
        let dir = tempfile::Builder::new().prefix("pinpipe-joins-").tempdir_in(spill_dir).map_err(|source| {
            Error::Io { what: format!("cannot create a directory in {}", spill_dir.display()), source }
        })?;
        Some(dir)
    };
    // Tables whose hash table would not fit in half the limit join by sorting (which spills);
    // the questions then join these with small aggregates, by hash.
    let hash_fits = rows.saturating_mul(BUILD_ROW_BYTES) <= memory_limit / 4;
    let partitions = ctx.state().config().target_partitions();
    if !hash_fits {
        // Few, large sorts: each gets a large share of the limit, and spills in large runs. Under
        // a small limit, one: what a sort-merge join holds outside its spillable buffers (a batch
        // per stream merging spill files, the rows of the current keys) grows with the streams.
        set(ctx, "datafusion.optimizer.prefer_hash_join", "false").await?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let streams = if memory_limit < SMALL_LIMIT { 1 } else { cores };
        set(ctx, "datafusion.execution.target_partitions", &streams.to_string()).await?;
    }
    for (name, sql) in [("pg", pg_sql(flagged)), ("pgu", pgu_sql(flagged))] {
        let err = |source| Error::Query { question: name.into(), source };
        let t = std::time::Instant::now();
        let df = ctx.sql(&sql).await.map_err(err)?;
        match &dir {
            None => {
                let schema = Arc::new(df.schema().as_arrow().clone());
                let batches = df.collect().await.map_err(err)?;
                ctx.register_table(name, mem_table(batches, schema)?).map_err(err)?;
            }
            Some(dir) => {
                let path = dir.path().join(name);
                write_parquet(df, &path).await?;
                let path = path.to_string_lossy();
                ctx.register_parquet(name, path.as_ref(), ParquetReadOptions::default()).await.map_err(err)?;
            }
        }
        tracing::debug!(join = name, in_memory = hold, seconds = t.elapsed().as_secs_f64(), "computed a join once");
        register_delta(ctx, name, flagged).await?;
    }
    set(ctx, "datafusion.optimizer.prefer_hash_join", "true").await?;
    // Joins on disk are scanned by the aggregates with one stream per core: each stream holds a
    // decoded row group, outside the memory pool.
    let partitions = if hold { partitions } else { std::thread::available_parallelism().map_or(2, |n| n.get()) };
    set(ctx, "datafusion.execution.target_partitions", &partitions.to_string()).await?;
    Ok(Joins { dir })
}

/// Whether the joins of tables of `rows` rows at most fit in a quarter of `memory_limit` (and
/// are held in memory by [`register_joins`]).
pub fn joins_fit(rows: u64, memory_limit: u64) -> bool {
    rows.saturating_mul(JOINED_ROW_BYTES) <= memory_limit / 4
}

/// Registers `pg`, `pgu`, `pg_delta` and `pgu_delta` as views over the tables `pin`, `geo` and
/// `users` (already registered), as [`register_joins`] does but computing nothing now: each
/// aggregate's plan joins the tables itself. For a session whose plans run on a cluster, where
/// the joins are distributed (shuffled by `ind`) and nothing is held by this process.
pub async fn register_join_views(ctx: &SessionContext, flagged: bool) -> Result<()> {
    for (name, sql) in [("pg", pg_sql(flagged)), ("pgu", pgu_sql(flagged))] {
        let err = |source| Error::Query { question: name.into(), source };
        let view = ctx.sql(&sql).await.map_err(err)?.into_view();
        ctx.register_table(name, view).map_err(err)?;
        register_delta(ctx, name, flagged).await?;
    }
    Ok(())
}

/// Registers `<join>_delta`: the rows of the join `join` the aggregates do not cover yet (with
/// `flagged`, those with a new side; else all of them).
async fn register_delta(ctx: &SessionContext, join: &str, flagged: bool) -> Result<()> {
    let err = |source| Error::Query { question: join.into(), source };
    let filter = if flagged { " WHERE _new" } else { "" };
    let delta = ctx.sql(&format!("SELECT * FROM {join}{filter}")).await.map_err(err)?;
    ctx.register_table(format!("{join}_delta"), delta.into_view()).map_err(err)?;
    Ok(())
}

/// `SET key = value` in the session.
async fn set(ctx: &SessionContext, key: &str, value: &str) -> Result<()> {
    let err = |source| Error::Query { question: "joins".into(), source };
    ctx.sql(&format!("SET {key} = {value}")).await.map_err(err)?.collect().await.map_err(err)?;
    Ok(())
}

/// Writes the rows of `df` as Parquet files in the directory `dir`, one per partition of its
/// plan, in parallel. The writers buffer one modest row group each, outside the plan's memory
/// pool, so the join feeding them has the whole memory limit.
async fn write_parquet(df: datafusion::dataframe::DataFrame, dir: &std::path::Path) -> Result<()> {
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::basic::Compression;
    use datafusion::parquet::file::properties::WriterProperties;
    use futures_util::StreamExt;
    let err = |source| Error::Query { question: "joins".into(), source };
    let io = |what: String| move |source| Error::Io { what, source };
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(64 * 1024))
        .build();
    let streams = df.execute_stream_partitioned().await.map_err(err)?;
    let writers = streams.into_iter().enumerate().map(|(i, mut stream)| {
        let (schema, props) = (Arc::clone(&schema), props.clone());
        let path = dir.join(format!("part-{i:04}.parquet"));
        tokio::spawn(async move {
            let file = std::fs::File::create(&path).map_err(io(format!("cannot create {}", path.display())))?;
            let mut writer = ArrowWriter::try_new(file, schema, Some(props))
                .map_err(|e| Error::Query { question: "joins".into(), source: e.into() })?;
            while let Some(batch) = stream.next().await {
                writer
                    .write(&batch.map_err(err)?)
                    .map_err(|e| Error::Query { question: "joins".into(), source: e.into() })?;
            }
            writer.close().map_err(|e| Error::Query { question: "joins".into(), source: e.into() })?;
            Ok::<_, Error>(())
        })
    });
    for w in futures_util::future::join_all(writers).await {
        w??;
    }
    Ok(())
}

/// Answers every question from the aggregate tables registered in `ctx`. Each answer is also
/// registered as a table named after its question (3b reads `q3`).
pub async fn answer_all(ctx: &SessionContext) -> Result<Vec<Answer>> {
    let mut answers = Vec::with_capacity(QUESTIONS.len());
    for q in QUESTIONS {
        let t = std::time::Instant::now();
        let err = |source| Error::Query { question: q.id.into(), source };
        let df = ctx.sql(q.sql).await.map_err(err)?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(err)?;
        let table = MemTable::try_new(schema, vec![batches.clone()]).map_err(err)?;
        ctx.register_table(q.id, Arc::new(table)).map_err(err)?;
        tracing::debug!(question = q.id, seconds = t.elapsed().as_secs_f64(), "answered");
        answers.push(Answer { question: q, batches });
    }
    Ok(answers)
}

/// A memory limit under which joins that do not fit run as one stream.
const SMALL_LIMIT: u64 = 256 << 20;

/// Rows above which plans are split into more partitions than cores, so that each operator's
/// share of the memory limit (a hash table, a sort before a spill) stays small.
const MANY_ROWS: u64 = 1_000_000;

/// A session sized for this machine and for tables of `rows` rows at most: operators share three
/// quarters of `memory_limit` (the rest is for what the pool does not see: batches in flight
/// between operators, Parquet writers, the aggregates) and spill into `spill_dir` beyond it.
pub fn session(memory_limit: u64, spill_dir: &std::path::Path, rows: u64) -> Result<SessionContext> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let partitions = if rows > MANY_ROWS { (cores * 8).max(16) } else { cores };
    let mut config =
        datafusion::prelude::SessionConfig::new().with_target_partitions(partitions).with_information_schema(false);
    // What a sort sets aside to merge its spill files: DataFusion's 10 MB default, or less under
    // a small limit, so that every sort can still spill.
    let reserve = usize::try_from(memory_limit / 16).unwrap_or(usize::MAX).min(10 << 20);
    config.options_mut().execution.sort_spill_reservation_bytes = reserve;

    let disk = DiskManagerBuilder::default().with_mode(DiskManagerMode::Directories(vec![spill_dir.to_owned()]));
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(TrackConsumersPool::new(
            FairSpillPool::new(usize::try_from(memory_limit / 4 * 3).unwrap_or(usize::MAX)),
            std::num::NonZeroUsize::MIN.saturating_add(4),
        )))
        .with_disk_manager_builder(disk)
        .build_arc()
        .map_err(|source| Error::Query { question: "session".into(), source })?;
    Ok(SessionContext::new_with_config_rt(config, runtime))
}
