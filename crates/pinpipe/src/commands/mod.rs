//! One module per subcommand; [`run`] loads the configuration and dispatches.

mod batch;
mod bench;
mod config;
mod emulate;
mod log;
mod schedule;
mod serve;
mod sink;
mod source;
mod stream;
mod up;

use figment::value::Value;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::{Loaded, Overrides, load};

/// Loads the configuration (with the flags that override it) and runs the subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut o = overrides(&cli.global);
    match &cli.command {
        Command::Source(s) => o.set("source.url", "--source-url", s.source_url.clone().map(Value::from)),
        Command::Serve(s) => o.set("api.listen", "--listen", s.listen.clone().map(Value::from)),
        Command::Up(u) => o.set("api.listen", "--listen", u.listen.clone().map(Value::from)),
        Command::Emulate(e) => {
            o.set("emulate.api_url", "--api-url", e.api_url.clone().map(Value::from));
            o.set("emulate.mode", "--mode", e.mode.clone().map(Value::from));
            o.set("emulate.rate", "--rate", e.rate.map(Value::from));
            o.set("emulate.concurrency", "--concurrency", e.concurrency.map(|c| Value::from(c as u64)));
            o.set("emulate.batch_size", "--batch-size", e.batch_size.map(|c| Value::from(c as u64)));
            o.set("emulate.think_time", "--think-time", e.think_time.then_some(Value::from(true)));
            o.set("source.url", "--source-url", e.source_url.clone().map(Value::from));
        }
        Command::Sink(k) => {
            o.set("store.url", "--store", k.store.clone().map(Value::from));
            o.set("store.s3_endpoint", "--s3-endpoint", k.s3_endpoint.clone().map(Value::from));
            o.set("sink.topics_regex", "--topics-regex", k.topics_regex.clone().map(Value::from));
            o.set("sink.flush_size", "--flush-size", k.flush_size.map(|c| Value::from(c as u64)));
            o.set("sink.rotate_interval", "--rotate-interval", k.rotate_interval.clone().map(Value::from));
        }
        Command::Batch(b) => {
            o.set("store.url", "--store", b.store.clone().map(Value::from));
            o.set("store.s3_endpoint", "--s3-endpoint", b.s3_endpoint.clone().map(Value::from));
            o.set("warehouse.url", "--warehouse", b.warehouse.clone().map(Value::from));
            o.set("batch.output", "--output", b.output.as_ref().map(|d| Value::from(d.display().to_string())));
            o.set("batch.write_tables", "--no-tables", b.no_tables.then_some(Value::from(false)));
            o.set("batch.memory_limit", "--memory-limit", b.memory_limit.clone().map(Value::from));
        }
        Command::Schedule(s) => {
            o.set("schedule.cron", "--cron", s.cron.clone().map(Value::from));
            o.set("schedule.retries", "--retries", s.retries.map(|r| Value::from(u64::from(r))));
            o.set("schedule.retry_delay", "--retry-delay", s.retry_delay.clone().map(Value::from));
        }
        Command::Stream(t) => {
            let status_warehouse = match &t.command {
                Some(crate::cli::StreamCommand::Status { warehouse, .. }) => warehouse.clone(),
                None => None,
            };
            o.set("warehouse.url", "--warehouse", t.warehouse.clone().or(status_warehouse).map(Value::from));
            o.set("warehouse.s3_endpoint", "--s3-endpoint", t.s3_endpoint.clone().map(Value::from));
            o.set("stream.trigger_interval", "--trigger-interval", t.trigger_interval.clone().map(Value::from));
            o.set(
                "stream.max_records_per_batch",
                "--max-records-per-batch",
                t.max_records_per_batch.map(|c| Value::from(c as u64)),
            );
        }
        _ => {}
    }
    let overrides = o;
    let loaded = load(&overrides)?;
    match cli.command {
        Command::Up(args) => up::run(&loaded, args).await,
        Command::Source(args) => source::run(&loaded, args.command).await,
        Command::Serve(_) => serve::run(&loaded).await,
        Command::Log(cmd) => log::run(&loaded, cmd).await,
        Command::Emulate(args) => emulate::run(&loaded, args).await,
        Command::Sink(args) => sink::run(&loaded, args).await,
        Command::Batch(args) => batch::run(&loaded, args).await,
        Command::Stream(args) => stream::run(&loaded, args).await,
        Command::Schedule(args) => schedule::run(&loaded, args).await,
        Command::Runs(args) => schedule::runs(&loaded, &args),
        Command::Config => config::run(&loaded),
        Command::Bench(cmd) => bench::run(&loaded, cmd).await,
    }
}

fn overrides(g: &GlobalArgs) -> Overrides {
    let mut o = Overrides { file: g.config.clone(), values: Vec::new() };
    o.set("data_dir", "--data-dir", g.data_dir.as_ref().map(|d| Value::from(d.display().to_string())));
    o.set("prefix", "--prefix", g.prefix.clone().map(Value::from));
    let (backend, servers) = match &g.log {
        None => (None, None),
        Some(crate::cli::LogUrl::Embedded) => (Some("embedded"), None),
        Some(crate::cli::LogUrl::Kafka(servers)) => (Some("kafka"), Some(servers.clone())),
    };
    o.set("log.topics", "--log", backend.map(Value::from));
    o.set("log.streams", "--log", backend.map(Value::from));
    o.set("log.kafka.bootstrap_servers", "--log", servers.map(Value::from));
    o
}

/// Opens the configured source database.
async fn open_source(loaded: &Loaded) -> anyhow::Result<Box<dyn pinpipe_source::SourceStore>> {
    Ok(loaded.resolved.source.open().await?)
}

/// Whether this process writes the embedded log (`serve`, `up`) or only reads it beside the
/// process that does (`sink`, `stream`, `log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Owner,
    Reader,
}

/// The logs topics and streams live in (one instance when both live in the same place).
struct Logs {
    topics: std::sync::Arc<dyn pinpipe_log::Log>,
    streams: std::sync::Arc<dyn pinpipe_log::Log>,
}

impl Logs {
    /// Where everything lives, for messages.
    fn describe(&self, loaded: &Loaded) -> String {
        if loaded.resolved.log.shared() {
            self.topics.describe()
        } else {
            format!("topics: {}; streams: {}", self.topics.describe(), self.streams.describe())
        }
    }
}

/// Opens where topics and streams live.
async fn open_logs(loaded: &Loaded, access: Access) -> anyhow::Result<Logs> {
    let topics = open_backend(loaded, &loaded.resolved.log.topics, access).await?;
    let streams = if loaded.resolved.log.shared() {
        std::sync::Arc::clone(&topics)
    } else {
        open_backend(loaded, &loaded.resolved.log.streams, access).await?
    };
    Ok(Logs { topics, streams })
}

/// Opens where topics live (only that).
async fn open_topics(loaded: &Loaded, access: Access) -> anyhow::Result<std::sync::Arc<dyn pinpipe_log::Log>> {
    open_backend(loaded, &loaded.resolved.log.topics, access).await
}

/// Opens where streams live (only that).
async fn open_streams(loaded: &Loaded, access: Access) -> anyhow::Result<std::sync::Arc<dyn pinpipe_log::Log>> {
    open_backend(loaded, &loaded.resolved.log.streams, access).await
}

async fn open_backend(
    loaded: &Loaded,
    backend: &pinpipe_log::Backend,
    access: Access,
) -> anyhow::Result<std::sync::Arc<dyn pinpipe_log::Log>> {
    use anyhow::Context;
    use pinpipe_log::Backend;
    let log: std::sync::Arc<dyn pinpipe_log::Log> = match backend {
        Backend::Embedded if access == Access::Owner => {
            std::sync::Arc::new(pinpipe_log::embedded::EmbeddedLog::open(&loaded.resolved.log)?)
        }
        Backend::Embedded => {
            let dir = &loaded.resolved.log.dir;
            let log = pinpipe_log::embedded::EmbeddedLog::open_read_only(dir).with_context(|| {
                format!("no embedded log at {}: run `pinpipe serve` (or `pinpipe up`) first", dir.display())
            })?;
            std::sync::Arc::new(log)
        }
        Backend::Kafka(k) => {
            std::sync::Arc::new(pinpipe_log::kafka::KafkaLog::connect(k).await.with_context(|| {
                format!("cannot connect to Kafka at {} (log.kafka.bootstrap_servers)", k.bootstrap_servers)
            })?)
        }
        Backend::Kinesis(k) => std::sync::Arc::new(
            pinpipe_log::kinesis::KinesisLog::connect(k)
                .await
                .context("cannot set up the Kinesis client (log.streams = \"kinesis\")")?,
        ),
    };
    Ok(log)
}

/// A token cancelled on Ctrl-C or SIGTERM.
fn stop_on_signal() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        serve::shutdown_signal().await;
        t.cancel();
    });
    token
}
