//! Command-line interface: every subcommand, its flags and help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// pinpipe: the classic Pinterest Lambda-architecture pipeline (RDS, API Gateway, Kafka/Kinesis,
/// S3 sink, Spark batch and streaming, Airflow) as one binary.
#[derive(Debug, Parser)]
#[command(name = "pinpipe", version, propagate_version = true, max_term_width = 110)]
#[command(after_help = "Configuration: defaults < pinpipe.toml (or --config / $PINPIPE_CONFIG) < PINPIPE_* \
environment variables < flags. `pinpipe config` shows the effective values and where each came from.")]
pub struct Cli {
    /// Options every subcommand accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (default: ./pinpipe.toml when it exists; also $PINPIPE_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory holding every embedded store [config: data_dir, default .pinpipe].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Prefix of topic, stream and table names [config: prefix, default pinterest].
    #[arg(long, global = true, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Where topics and streams live: `embedded`, or `kafka://HOST:PORT[,HOST:PORT...]` for a
    /// Kafka cluster [config: log.topics, log.streams, log.kafka.bootstrap_servers].
    #[arg(long, global = true, value_name = "URL", value_parser = parse_log_url)]
    pub log: Option<LogUrl>,
}

/// What `--log` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogUrl {
    /// The embedded log.
    Embedded,
    /// A Kafka cluster: its bootstrap servers.
    Kafka(String),
}

fn parse_log_url(s: &str) -> Result<LogUrl, String> {
    if s == "embedded" {
        return Ok(LogUrl::Embedded);
    }
    match s.strip_prefix("kafka://").map(|rest| rest.trim_end_matches('/')) {
        Some(servers) if !servers.is_empty() => Ok(LogUrl::Kafka(servers.to_owned())),
        _ => Err("expected `embedded` or `kafka://HOST:PORT[,HOST:PORT...]` (e.g. kafka://127.0.0.1:9092)".into()),
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole pipeline in one process on embedded defaults: source database (generated if
    /// missing), API, sink, streaming job, scheduler, and the emulator posting `--posts` posts;
    /// with `--once`, drain, run the batch job and print the answers.
    Up(UpArgs),
    /// The source database (the classic RDS): generate, load CSVs, sample rows.
    Source(SourceArgs),
    /// Run the ingestion API (Confluent REST Proxy v2 and the API Gateway → Kinesis routes) on
    /// the configured log (embedded, or Kafka with --log) until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Inspect the log like kcat: list topics and streams, read records.
    #[command(subcommand)]
    Log(LogCommand),
    /// Post random source rows to the API (topics, streams or both), like the classic posting
    /// scripts; a summary at the end, exit code 1 if any record was not accepted.
    Emulate(EmulateArgs),
    /// Copy topics from the log into objects in the Confluent S3 sink layout, exactly once
    /// (the MSK Connect S3 sink).
    Sink(SinkArgs),
    /// Run the batch job (the Databricks notebook): clean the raw objects not ingested yet into
    /// Delta tables (exactly once; --full rebuilds them) and answer the eight questions over the
    /// whole tables; results as tables, JSON, CSV and report.html.
    Batch(BatchArgs),
    /// Run the streaming job (the Databricks streaming notebook): the three streams in
    /// micro-batches, cleaned, appended to Delta tables exactly once; `stream status` shows
    /// where it stands.
    Stream(StreamArgs),
    /// Run the batch job on a schedule (the MWAA/Airflow DAG): `@daily` by default, 3 retries
    /// 2 minutes apart, no catch-up of missed runs, never two runs at once; `--trigger-now`
    /// runs it once with the same policy.
    Schedule(ScheduleArgs),
    /// List the scheduler's run history (every attempt and skipped tick).
    Runs(RunsArgs),
    /// Print the effective configuration and where each value came from.
    Config,
    /// Benchmarks (report medians over several runs and ratios to a baseline of the same run).
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `pinpipe schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// When to run, UTC: @daily, @hourly, or a cron expression such as "30 2 * * *"
    /// [config: schedule.cron, default @daily].
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// Attempts after a failed one [config: schedule.retries, default 3].
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Wait between attempts, e.g. 2m or 30s [config: schedule.retry_delay, default 2m].
    #[arg(long, value_name = "DURATION")]
    pub retry_delay: Option<String>,
    /// Run the batch job once now (with the retry policy; refused while a run is in progress)
    /// and exit.
    #[arg(long)]
    pub trigger_now: bool,
}

/// `pinpipe runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Only the newest N records.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

/// `pinpipe up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Posts the emulator sends, in both modes (to the topics and to the streams).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub posts: u64,
    /// Drain everything, run the batch job once, print the answers and a summary, and exit
    /// (default: keep running until Ctrl-C).
    #[arg(long)]
    pub once: bool,
    /// Address of the API [config: api.listen, default 127.0.0.1:8082]; port 0 picks a free one.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Posts to generate when the source database is empty (11,154 like the classic dataset).
    #[arg(long, default_value_t = 11_154, value_name = "N")]
    pub source_rows: u64,
    /// Seed of the generated source and of the emulator's choice of rows.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `pinpipe batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Where the raw objects are: file:///DIR or s3://BUCKET/PREFIX [config: store.url, default <data_dir>/objects].
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Endpoint of an S3-compatible server for --store [config: store.s3_endpoint].
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Where the clean Delta tables go (under batch/) [config: warehouse.url, default <data_dir>/warehouse].
    #[arg(long, value_name = "URL")]
    pub warehouse: Option<String>,
    /// Directory of run folders [config: batch.output, default <data_dir>/results].
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Logical date of the run (YYYY-MM-DD): the run folder is named after it.
    #[arg(long, value_name = "DATE")]
    pub date: Option<String>,
    /// Name of the run folder (with --date: <date>_<run-id>); default run-<UTC time>.
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// Do not keep the Delta tables: answer from tables built from all objects in a temporary
    /// directory, removed after the run.
    #[arg(long)]
    pub no_tables: bool,
    /// Rebuild the tables from every raw object instead of ingesting only the new ones (after a
    /// change of the cleaning rules, or to recover from a damaged table).
    #[arg(long, conflicts_with = "no_tables")]
    pub full: bool,
    /// Memory the job may use before spilling to disk, e.g. 512MiB or 2GiB
    /// [config: batch.memory_limit, default 1GiB].
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<String>,
    /// Print only the summary, not the answer tables.
    #[arg(long)]
    pub quiet: bool,
}

/// `pinpipe stream`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct StreamArgs {
    /// `status` shows the committed position, lag and last commit of each stream.
    #[command(subcommand)]
    pub command: Option<StreamCommand>,
    /// Where the Delta tables go (under stream/) [config: warehouse.url, default <data_dir>/warehouse].
    #[arg(long, value_name = "URL")]
    pub warehouse: Option<String>,
    /// Endpoint of an S3-compatible server for --warehouse [config: warehouse.s3_endpoint].
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Time between micro-batch starts, e.g. 1s or 500ms [config: stream.trigger_interval, default 1s].
    #[arg(long, value_name = "DURATION")]
    pub trigger_interval: Option<String>,
    /// Most records per stream in one micro-batch [config: stream.max_records_per_batch].
    #[arg(long, value_name = "N")]
    pub max_records_per_batch: Option<usize>,
    /// Process everything up to the current end of each stream, then exit.
    #[arg(long, conflicts_with = "follow")]
    pub once: bool,
    /// Keep running micro-batches until Ctrl-C (the default).
    #[arg(long)]
    pub follow: bool,
}

/// Subcommands of `pinpipe stream`.
#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// Per stream: the committed position and log end of each shard, the lag, the table's
    /// version and the time of its last commit.
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
        /// Where the Delta tables are [config: warehouse.url].
        #[arg(long, value_name = "URL")]
        warehouse: Option<String>,
    },
}

/// `pinpipe serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [config: api.listen, default 127.0.0.1:8082]; port 0 picks a free one.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// `pinpipe emulate`.
#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// API base URL, with any stage path [config: emulate.api_url, default http://127.0.0.1:8082].
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// batch (topics), stream (streams) or both [config: emulate.mode, default batch].
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// Posts to send; runs until Ctrl-C when omitted.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Posts per second; 0 for as fast as possible [config: emulate.rate].
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Posts in flight at once [config: emulate.concurrency, default 4].
    #[arg(long, value_name = "C")]
    pub concurrency: Option<usize>,
    /// Seed of the sequence of rows: the same seed posts the same rows.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sleep a random 0-1 s after each post, like the classic script [config: emulate.think_time].
    #[arg(long)]
    pub think_time: bool,
    /// Posts per request [config: emulate.batch_size, default 1].
    #[arg(long, value_name = "B")]
    pub batch_size: Option<usize>,
    /// Source database [config: source.url].
    #[arg(long, value_name = "URL")]
    pub source_url: Option<String>,
}

/// `pinpipe sink`.
#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Where objects go: file:///DIR or s3://BUCKET/PREFIX [config: store.url, default <data_dir>/objects].
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Endpoint of an S3-compatible server [config: store.s3_endpoint].
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Topics to copy (whole-name regular expression) [config: sink.topics_regex, default <prefix>\..*].
    #[arg(long, value_name = "REGEX")]
    pub topics_regex: Option<String>,
    /// Records per object [config: sink.flush_size, default 1].
    #[arg(long, value_name = "N")]
    pub flush_size: Option<usize>,
    /// Write a partial object after this long without new data, e.g. 30s [config: sink.rotate_interval].
    #[arg(long, value_name = "DURATION")]
    pub rotate_interval: Option<String>,
    /// Copy everything up to the current end, then exit.
    #[arg(long, conflicts_with = "follow")]
    pub once: bool,
    /// Keep copying new records until Ctrl-C (the default).
    #[arg(long)]
    pub follow: bool,
}

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
    },
}
