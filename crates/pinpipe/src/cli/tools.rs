//! The flags of the tools around the pipeline: `pinpipe log`, `pinpipe source` and
//! `pinpipe bench`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use figment::value::Value;

use crate::config::Overrides;

/// Subcommands of `pinpipe log`.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// List topics and streams with their partitions and offsets.
    Topics {
        /// As JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Print records as JSON lines {"topic","partition","offset","timestamp","key","value"}.
    Read {
        /// Topic or stream name.
        topic: String,
        /// Only this partition (shard); all partitions when omitted.
        #[arg(long, short)]
        partition: Option<u32>,
        /// Where to start: an offset, `beginning` or `end`.
        #[arg(long, default_value = "beginning", value_name = "OFFSET")]
        from: String,
        /// Keep waiting for new records (until Ctrl-C).
        #[arg(long, short)]
        follow: bool,
        /// Stop after this many records.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
    /// Cut the damaged part of embedded-log partitions (a checksum failure or missing data
    /// beyond a torn tail), record the offsets lost, and report them. Stop the process that
    /// writes the log first. Undamaged partitions are not touched.
    Repair {
        /// Only this topic or stream (all when omitted).
        topic: Option<String>,
        /// Only this partition of it.
        partition: Option<u32>,
    },
}

/// `pinpipe source`.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Database URL: sqlite://PATH, postgres://USER@HOST/DB, mysql://USER@HOST/DB
    /// [config: source.url, default sqlite://<data_dir>/source.db].
    #[arg(long, global = true, value_name = "URL")]
    pub source_url: Option<String>,
    /// What to do with it.
    #[command(subcommand)]
    pub command: SourceCommand,
}

impl SourceArgs {
    pub(super) fn flags(&self, o: &mut Overrides) {
        o.set("source.url", "--source-url", self.source_url.clone().map(Value::from));
    }
}

/// Subcommands of `pinpipe source`.
#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Generate deterministic, realistic rows for the three tables.
    Generate {
        /// Posts to generate (rows per table).
        #[arg(long, default_value_t = 11_154, value_name = "N")]
        rows: u64,
        /// Seed: the same seed and row count give identical tables.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Drop existing tables first (otherwise a non-empty source is an error).
        #[arg(long)]
        replace: bool,
    },
    /// Load the classic db_data/ CSV files (geolocation_data.csv, user_data.csv and optionally
    /// pinterest_data.csv; pins are generated when that file is absent).
    Load {
        /// Directory holding the CSV files.
        #[arg(long, value_name = "DIR")]
        csv_dir: PathBuf,
        /// Seed for generated pins.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Drop existing tables first (otherwise a non-empty source is an error).
        #[arg(long)]
        replace: bool,
    },
    /// Print row r of each table as the JSON the emulator posts (pin, geo, user: one per line).
    Sample {
        /// Row key (`index`/`ind`); random when omitted.
        #[arg(long, value_name = "R")]
        row: Option<i64>,
        /// Seed for the random row.
        #[arg(long)]
        seed: Option<u64>,
        /// Pretty-print the JSON.
        #[arg(long)]
        pretty: bool,
    },
    /// Print the database, row counts and key range.
    Info {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print posts as JSON lines `{"pin":...,"geo":...,"user":...}` in key order.
    Export {
        /// First key.
        #[arg(long, value_name = "KEY", allow_negative_numbers = true)]
        from: Option<i64>,
        /// At most this many posts.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
}

/// Subcommands of `pinpipe bench`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Source generation: rows/s of the generator alone (the baseline) and of generating into the
    /// database.
    Source {
        /// Posts per run.
        #[arg(long, default_value_t = 1_000_000, value_name = "N")]
        rows: u64,
        /// Runs; medians are reported.
        #[arg(long, default_value_t = 3, value_name = "N")]
        runs: u32,
        /// Database to benchmark (its tables are REPLACED); default: a scratch SQLite file in the
        /// data directory.
        #[arg(long, value_name = "URL")]
        source_url: Option<String>,
    },
    /// The embedded log's durable appends (batches of 500 and concurrent single records),
    /// against SQLite doing the same as the baseline.
    Log {
        /// Records per batched run.
        #[arg(long, default_value_t = 500_000, value_name = "N")]
        records: usize,
        /// Runs; medians are reported.
        #[arg(long, default_value_t = 3, value_name = "N")]
        runs: u32,
    },
    /// The sink into a directory at flush size 1 and 10,000, against reading the log alone.
    Sink {
        /// Records in the log.
        #[arg(long, default_value_t = 200_000, value_name = "N")]
        records: usize,
        /// Runs; medians are reported.
        #[arg(long, default_value_t = 3, value_name = "N")]
        runs: u32,
    },
    /// The batch job on generated raw objects (classic one-record-per-object and/or NDJSON
    /// layout), against reading the same objects without parsing (the baseline).
    Batch {
        /// Posts (each is a pin, a geo and a user record, posted the way the classic emulator
        /// posts: a random source row each time); with --new, the posts already in the tables.
        #[arg(long, default_value_t = 11_154, value_name = "N")]
        posts: u64,
        /// classic (one record per object), ndjson (10,000 records per object) or both.
        #[arg(long, default_value = "both", value_name = "LAYOUT")]
        layout: String,
        /// Runs; medians are reported.
        #[arg(long, default_value_t = 3, value_name = "N")]
        runs: u32,
        /// Keep the generated raw objects for later runs (in <data_dir>/bench/batch-data).
        #[arg(long)]
        keep_data: bool,
        /// Rows of the source table the posts are drawn from, with replacement [default: --posts,
        /// about 37% repeated records].
        #[arg(long, value_name = "N")]
        source_rows: Option<u64>,
        /// Share of posts that lose their geo or their user record.
        #[arg(long, default_value_t = 0.01, value_name = "SHARE")]
        loss: f64,
        /// The incremental scenario: tables of --posts posts, then this many new posts.
        #[arg(long, value_name = "N")]
        new: Option<u64>,
        /// Object format: json, gzip or parquet, or several comma-separated (e.g.
        /// json,gzip,parquet: the same posts in each, reading and cleaning compared to JSON).
        #[arg(long, default_value = "json", value_name = "FORMATS")]
        format: String,
        /// Also run the job through a Ballista cluster and compare: `local` starts a scheduler
        /// and two executors on 127.0.0.1, or df://HOST:PORT of a running one.
        #[arg(long, value_name = "local|df://HOST:PORT")]
        cluster: Option<String>,
        /// With --cluster: the cluster runs' `--cluster-questions` (auto, always, never).
        #[arg(long, value_name = "WHERE", value_parser = ["auto", "always", "never"], requires = "cluster")]
        cluster_questions: Option<String>,
    },
    /// Writes the raw objects `bench batch` generates into DIR (for tests and other tools).
    #[command(hide = true)]
    BatchData {
        /// Directory to write `topics/<topic>/partition=0/...` into.
        dir: PathBuf,
        /// Posts.
        #[arg(long, default_value_t = 100_000)]
        posts: u64,
        /// classic or ndjson.
        #[arg(long, default_value = "ndjson")]
        layout: String,
    },
    /// The batch job's read module alone over the raw objects in DIR: what `bench batch` reports
    /// as read+clean alone, run in a process of its own. Prints the seconds and the rows kept.
    #[command(hide = true)]
    BatchRead {
        /// A directory of raw objects (`topics/<topic>/...`).
        dir: PathBuf,
    },
    /// The streaming job: latency from the API's acknowledgement to the row being visible in
    /// Delta at a fixed record rate (baseline: the ack round trip), and throughput draining a
    /// backlog (baseline: reading the log alone).
    Stream {
        /// Records per second over the three streams.
        #[arg(long, default_value_t = 5_000, value_name = "R")]
        rate: u64,
        /// Seconds to measure at that rate (after 2 s of warm-up).
        #[arg(long, default_value_t = 60, value_name = "S")]
        seconds: u64,
        /// Posts (three records each) in the backlog drained for throughput.
        #[arg(long, default_value_t = 100_000, value_name = "N")]
        backlog: u64,
        /// Runs; medians are reported.
        #[arg(long, default_value_t = 1, value_name = "N")]
        runs: u32,
        /// Trigger interval of the job [config: stream.trigger_interval, default 1s].
        #[arg(long, value_name = "DURATION")]
        trigger_interval: Option<String>,
        /// Also measure the latency with a /ui page polling the API (back to back with the run
        /// without it, order alternating).
        #[arg(long)]
        console: bool,
    },
    /// The API over loopback: GET /healthz (the bare-HTTP baseline), single-record and
    /// 500-record produce requests against a `pinpipe serve` child process.
    Api {
        /// Seconds per scenario and run.
        #[arg(long, default_value_t = 5, value_name = "S")]
        seconds: u64,
        /// Runs; medians are reported.
        #[arg(long, default_value_t = 3, value_name = "N")]
        runs: u32,
        /// Concurrent connections for single-record requests and /healthz.
        #[arg(long, default_value_t = 64, value_name = "C")]
        concurrency: usize,
        /// Also run the single-record scenario with a /ui page polling, and time the console's
        /// first paint with the scenarios' records in the log.
        #[arg(long)]
        console: bool,
    },
}
