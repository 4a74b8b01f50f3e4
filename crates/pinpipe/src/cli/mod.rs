//! Command-line interface: every subcommand, its flags and help text, and the configuration
//! keys each flag overrides (beside the flag's definition). The pipeline's stages are here;
//! the tools around them (`log`, `source`, `bench`) in [`tools`].

mod tools;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use figment::value::Value;
pub use tools::*;

use crate::config::Overrides;

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
    /// Log lines as `text` (default) or `json` (one object per line: timestamp, level, target,
    /// fields), on stderr.
    #[arg(long, global = true, value_name = "FORMAT", value_parser = ["text", "json"], default_value = "text")]
    pub log_format: String,
    /// More log lines: -v info, -vv debug, -vvv trace (warnings by default; RUST_LOG overrides).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "log_quiet")]
    pub verbose: u8,
    /// Fewer log lines: errors only.
    #[arg(short = 'q', long, global = true)]
    pub log_quiet: bool,
}

impl GlobalArgs {
    /// The configuration these flags override.
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides { file: self.config.clone(), values: Vec::new() };
        o.set("data_dir", "--data-dir", self.data_dir.as_ref().map(|d| Value::from(d.display().to_string())));
        o.set("prefix", "--prefix", self.prefix.clone().map(Value::from));
        let (backend, servers) = match &self.log {
            None => (None, None),
            Some(LogUrl::Embedded) => (Some("embedded"), None),
            Some(LogUrl::Kafka(servers)) => (Some("kafka"), Some(servers.clone())),
        };
        o.set("log.topics", "--log", backend.map(Value::from));
        o.set("log.streams", "--log", backend.map(Value::from));
        o.set("log.kafka.bootstrap_servers", "--log", servers.map(Value::from));
        o
    }
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
    /// The processes of an Apache Ballista cluster that `batch --cluster` reads and cleans on:
    /// `cluster scheduler` once, `cluster executor --scheduler HOST:PORT` on every machine.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Print the effective configuration and where each value came from.
    Config,
    /// Benchmarks (report medians over several runs and ratios to a baseline of the same run).
    #[command(subcommand)]
    Bench(BenchCommand),
}

impl Command {
    /// Adds the configuration the subcommand's flags override (each set of flags maps its
    /// own, beside its definition).
    pub fn flags(&self, o: &mut Overrides) {
        match self {
            Command::Up(a) => a.flags(o),
            Command::Source(a) => a.flags(o),
            Command::Serve(a) => a.flags(o),
            Command::Emulate(a) => a.flags(o),
            Command::Sink(a) => a.flags(o),
            Command::Batch(a) => a.flags(o),
            Command::Stream(a) => a.flags(o),
            Command::Schedule(a) => a.flags(o),
            Command::Log(_) | Command::Runs(_) | Command::Cluster(_) | Command::Config | Command::Bench(_) => {}
        }
    }
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
    /// Serve this stage's metrics (OpenMetrics text) at http://ADDR/metrics, e.g. 127.0.0.1:9101.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl ScheduleArgs {
    fn flags(&self, o: &mut Overrides) {
        o.set("schedule.cron", "--cron", self.cron.clone().map(Value::from));
        o.set("schedule.retries", "--retries", self.retries.map(|r| Value::from(u64::from(r))));
        o.set("schedule.retry_delay", "--retry-delay", self.retry_delay.clone().map(Value::from));
    }
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

impl UpArgs {
    fn flags(&self, o: &mut Overrides) {
        o.set("api.listen", "--listen", self.listen.clone().map(Value::from));
    }
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
    /// Read, clean and write on a Ballista cluster (`pinpipe cluster`), e.g. df://10.0.0.5:50050;
    /// the job still decides which rows are new and commits [config: batch.cluster].
    #[arg(long, value_name = "df://HOST:PORT")]
    pub cluster: Option<String>,
    /// With --cluster: where the questions' aggregates are recomputed over whole tables: auto
    /// (on the cluster when the joins do not fit in --memory-limit), always, never
    /// [config: batch.cluster_questions, default auto].
    #[arg(long, value_name = "WHERE", value_parser = ["auto", "always", "never"])]
    pub cluster_questions: Option<String>,
}

impl BatchArgs {
    fn flags(&self, o: &mut Overrides) {
        o.set("store.url", "--store", self.store.clone().map(Value::from));
        o.set("store.s3_endpoint", "--s3-endpoint", self.s3_endpoint.clone().map(Value::from));
        o.set("warehouse.url", "--warehouse", self.warehouse.clone().map(Value::from));
        o.set("batch.output", "--output", self.output.as_ref().map(|d| Value::from(d.display().to_string())));
        o.set("batch.write_tables", "--no-tables", self.no_tables.then_some(Value::from(false)));
        o.set("batch.memory_limit", "--memory-limit", self.memory_limit.clone().map(Value::from));
        o.set("batch.cluster", "--cluster", self.cluster.clone().map(Value::from));
        o.set("batch.cluster_questions", "--cluster-questions", self.cluster_questions.clone().map(Value::from));
    }
}

/// `pinpipe cluster`: the processes of a Ballista cluster for `batch --cluster`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Run a Ballista scheduler that plans the batch job's reading and cleaning and hands its
    /// tasks to executors, until Ctrl-C or SIGTERM.
    Scheduler(ClusterSchedulerArgs),
    /// Run a Ballista executor that joins a scheduler and runs the batch job's tasks (it reads
    /// the store with its own credentials, from the environment), until Ctrl-C or SIGTERM.
    Executor(ClusterExecutorArgs),
}

/// `pinpipe cluster scheduler`.
#[derive(Debug, Args)]
pub struct ClusterSchedulerArgs {
    /// Address to listen on; 0.0.0.0 for other machines.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50050")]
    pub bind: std::net::SocketAddr,
    /// Host name clients and executors reach this scheduler by (default: the bind address).
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,
    /// An executor silent this long is lost and its tasks run again elsewhere, e.g. 30s.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub executor_timeout: String,
}

/// `pinpipe cluster executor`.
#[derive(Debug, Args)]
pub struct ClusterExecutorArgs {
    /// The scheduler to join: HOST:PORT or df://HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub scheduler: String,
    /// Tasks run at once [default: the cores].
    #[arg(long, value_name = "N")]
    pub slots: Option<usize>,
    /// Address to listen on; 0.0.0.0 for other machines.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Host name the scheduler and other executors reach this one by (default: the bind address).
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,
    /// Port of the Arrow Flight service that hands out task output.
    #[arg(long, value_name = "PORT", default_value_t = 50051)]
    pub port: u16,
    /// Port of the gRPC service the scheduler sends tasks to.
    #[arg(long, value_name = "PORT", default_value_t = 50052)]
    pub grpc_port: u16,
    /// Where task output waits to be fetched [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// How often to tell the scheduler this executor is alive, e.g. 5s.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub heartbeat: String,
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
    /// Serve this stage's metrics (OpenMetrics text) at http://ADDR/metrics, e.g. 127.0.0.1:9101.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl StreamArgs {
    fn flags(&self, o: &mut Overrides) {
        let status_warehouse = match &self.command {
            Some(StreamCommand::Status { warehouse, .. }) => warehouse.clone(),
            None => None,
        };
        o.set("warehouse.url", "--warehouse", self.warehouse.clone().or(status_warehouse).map(Value::from));
        o.set("warehouse.s3_endpoint", "--s3-endpoint", self.s3_endpoint.clone().map(Value::from));
        o.set("stream.trigger_interval", "--trigger-interval", self.trigger_interval.clone().map(Value::from));
        o.set(
            "stream.max_records_per_batch",
            "--max-records-per-batch",
            self.max_records_per_batch.map(|c| Value::from(c as u64)),
        );
    }
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

impl ServeArgs {
    fn flags(&self, o: &mut Overrides) {
        o.set("api.listen", "--listen", self.listen.clone().map(Value::from));
    }
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

impl EmulateArgs {
    fn flags(&self, o: &mut Overrides) {
        o.set("emulate.api_url", "--api-url", self.api_url.clone().map(Value::from));
        o.set("emulate.mode", "--mode", self.mode.clone().map(Value::from));
        o.set("emulate.rate", "--rate", self.rate.map(Value::from));
        o.set("emulate.concurrency", "--concurrency", self.concurrency.map(|c| Value::from(c as u64)));
        o.set("emulate.batch_size", "--batch-size", self.batch_size.map(|c| Value::from(c as u64)));
        o.set("emulate.think_time", "--think-time", self.think_time.then_some(Value::from(true)));
        o.set("source.url", "--source-url", self.source_url.clone().map(Value::from));
    }
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
    /// Records per commit (an object holds at most this many) [config: sink.flush_size, default 1].
    #[arg(long, value_name = "N")]
    pub flush_size: Option<usize>,
    /// Close the objects when a record's time is this far past the first one's, or when it
    /// belongs in another directory, e.g. 1h [config: sink.rotate_interval].
    #[arg(long, value_name = "DURATION")]
    pub rotate_interval: Option<String>,
    /// Close the objects at every multiple of this wall-clock interval, e.g. 30s
    /// [config: sink.rotate_schedule_interval].
    #[arg(long, value_name = "DURATION")]
    pub rotate_schedule_interval: Option<String>,
    /// `default` (partition=<p>/), `field` (sink.partition_fields) or `time` (sink.path_format,
    /// sink.partition_duration, sink.timestamp_extractor) [config: sink.partitioner].
    #[arg(long, value_name = "NAME", value_parser = ["default", "field", "time"])]
    pub partitioner: Option<String>,
    /// `json` or `parquet` [config: sink.format, default json].
    #[arg(long, value_name = "FORMAT", value_parser = ["json", "parquet"])]
    pub format: Option<String>,
    /// JSON: none or gzip; Parquet: snappy (default), gzip, zstd or none [config: sink.compression].
    #[arg(long, value_name = "CODEC")]
    pub compression: Option<String>,
    /// Copy everything up to the current end, then exit.
    #[arg(long, conflicts_with = "follow")]
    pub once: bool,
    /// Keep copying new records until Ctrl-C (the default).
    #[arg(long)]
    pub follow: bool,
    /// Serve this stage's metrics (OpenMetrics text) at http://ADDR/metrics, e.g. 127.0.0.1:9101.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl SinkArgs {
    fn flags(&self, o: &mut Overrides) {
        o.set("store.url", "--store", self.store.clone().map(Value::from));
        o.set("store.s3_endpoint", "--s3-endpoint", self.s3_endpoint.clone().map(Value::from));
        o.set("sink.topics_regex", "--topics-regex", self.topics_regex.clone().map(Value::from));
        o.set("sink.flush_size", "--flush-size", self.flush_size.map(|c| Value::from(c as u64)));
        o.set("sink.rotate_interval", "--rotate-interval", self.rotate_interval.clone().map(Value::from));
        o.set(
            "sink.rotate_schedule_interval",
            "--rotate-schedule-interval",
            self.rotate_schedule_interval.clone().map(Value::from),
        );
        o.set("sink.partitioner", "--partitioner", self.partitioner.clone().map(Value::from));
        o.set("sink.format", "--format", self.format.clone().map(Value::from));
        o.set("sink.compression", "--compression", self.compression.clone().map(Value::from));
    }
}
