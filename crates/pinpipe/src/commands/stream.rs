//! `pinpipe stream`: the streaming job over the embedded log (opened read-only, so it runs beside
//! `pinpipe serve`) or Kinesis (`log.streams = "kinesis"`), printing progress while it follows
//! and a summary at the end; and `pinpipe stream status`, which reads each table's committed
//! position and compares it with the log.

use std::time::Duration;

use pinpipe_stream::{Mode, StreamJob, TableStatus};

use super::{Access, open_streams, stop_on_signal};
use crate::cli::{StreamArgs, StreamCommand};
use crate::config::Loaded;
use crate::output::{self, line};

/// How often a following job prints progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Runs the job, or `status`.
pub async fn run(loaded: &Loaded, args: StreamArgs) -> anyhow::Result<()> {
    let log = open_streams(loaded, Access::Reader).await?;
    let r = &loaded.resolved;
    if let Some(StreamCommand::Status { json, .. }) = args.command {
        let tables = pinpipe_stream::status(log.as_ref(), &r.warehouse, &r.names).await?;
        for t in &tables {
            if json {
                line(&serde_json::to_string(&serde_json::json!({
                    "stream": t.stream, "table": t.table, "location": t.location, "version": t.version,
                    "last_batch": t.last_batch, "last_commit_ms": t.last_commit_ms, "lag": t.lag(),
                    "partitions": t.partitions,
                }))?)?;
            } else {
                print_status(t)?;
            }
        }
        return Ok(());
    }
    let job = std::sync::Arc::new(StreamJob::new(log, r.warehouse.clone(), r.names.clone(), r.stream.clone()));
    let mode = if args.once { Mode::Once } else { Mode::Follow };
    let _metrics = crate::metrics::listen(
        args.metrics_listen,
        vec![Box::new(crate::metrics::StreamMetrics(std::sync::Arc::clone(&job)))],
    )
    .await?;
    let stop = stop_on_signal();
    let reporter = (mode == Mode::Follow).then(|| {
        let job = std::sync::Arc::clone(&job);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                for t in job.snapshot() {
                    eprintln!(
                        "stream: {} -> {}: {} batches, {} rows, {} dead letters, lag {}",
                        t.stream,
                        t.table,
                        t.batches,
                        t.rows,
                        t.dead_letters,
                        lag(&t)
                    );
                }
            }
        })
    });
    line(&format!(
        "stream: {} -> Delta tables under {}/stream (trigger every {})",
        pinpipe_model::Kind::ALL.map(|k| r.names.stream(k)).join(", "),
        r.warehouse.url.display(),
        humantime_like(r.stream.trigger_interval),
    ))?;
    let outcome = job.run(mode, stop).await;
    if let Some(t) = reporter {
        t.abort();
    }
    for t in job.snapshot() {
        line(&format!(
            "  {} -> {} ({}): {} micro-batches, {} records, {} rows, {} duplicates dropped, {} dead letters; lag {}",
            t.stream,
            t.table,
            t.location,
            output::int(t.batches),
            output::int(t.records),
            output::int(t.rows),
            output::int(t.duplicates),
            output::int(t.dead_letters),
            lag(&t),
        ))?;
    }
    Ok(outcome?)
}

fn humantime_like(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

fn print_status(t: &TableStatus) -> anyhow::Result<()> {
    let when = t
        .last_commit_ms
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "never".to_owned(), |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string());
    let version = t.version.map_or_else(|| "no table yet".to_owned(), |v| format!("version {v}"));
    let batch = t.last_batch.map_or_else(|| "none".to_owned(), |b| b.to_string());
    line(&format!(
        "{} -> {} ({version}, last micro-batch {batch}, last commit {when}): lag {}",
        t.stream,
        t.table,
        lag(t)
    ))?;
    line(&format!("  {}", t.location))?;
    if t.partitions.is_empty() {
        line("  the stream does not exist yet")?;
    }
    for p in &t.partitions {
        let shard = pinpipe_log::partitioner::shard_id(p.partition);
        match (p.committed, p.end) {
            (Some(committed), Some(end)) => line(&format!(
                "  {shard}: committed up to {} of {} (lag {})",
                output::int(committed),
                output::int(end),
                output::int(end.saturating_sub(committed))
            ))?,
            _ => line(&format!("  {shard}: continues {}", p.cursor))?,
        }
    }
    Ok(())
}

/// The lag in records, or why it is not known.
fn lag(t: &TableStatus) -> String {
    t.lag().map_or_else(|| "unknown (Kinesis positions are sequence numbers)".to_owned(), output::int)
}
