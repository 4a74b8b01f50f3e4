//! `pinpipe bench sink`: the sink copying one partition of realistic pin records into a local
//! directory, at flush size 10,000 in every format (JSON, gzip JSON, Parquet) and with the time
//! partitioner, and at flush size 1, against reading the same records from the log alone (the
//! baseline: the sink cannot be faster than its input).

use std::sync::Arc;
use std::time::Instant;

use pinpipe_log::embedded::EmbeddedLog;
use pinpipe_log::{LogConfig, OffsetLog, ReadLimits, Record, TopicKind};
use pinpipe_sink::{Mode, Sink, SinkConfig};
use pinpipe_store::StoreConfig;
use tokio_util::sync::CancellationToken;

use super::{Scratch, median, pin_values};
use crate::config::Loaded;
use crate::output::{self, line};

const TOPIC: &str = "pinterest.pin";

/// The scenarios: name, configuration, goal (records/s).
fn scenarios() -> Vec<(&'static str, SinkConfig, Option<u64>)> {
    use pinpipe_sink::config::{FormatKind, PartitionerKind};
    let big = SinkConfig { flush_size: 10_000, ..Default::default() };
    vec![
        ("json, flush 10,000", big.clone(), Some(200_000)),
        ("gzip json, flush 10,000", SinkConfig { compression: Some("gzip".into()), ..big.clone() }, Some(150_000)),
        ("parquet, flush 10,000", SinkConfig { format: FormatKind::Parquet, ..big.clone() }, Some(200_000)),
        (
            "hourly json, flush 10,000",
            SinkConfig {
                partitioner: PartitionerKind::Time,
                path_format: "'dt'=YYYY-MM-dd/'hour'=HH".into(),
                partition_duration: "1h".into(),
                ..big
            },
            None,
        ),
        ("json, flush 1", SinkConfig::default(), None),
    ]
}

async fn sink_rate(
    log: &Arc<dyn OffsetLog>,
    dir: &std::path::Path,
    config: &SinkConfig,
    records: usize,
) -> anyhow::Result<f64> {
    let store =
        StoreConfig { url: Some(format!("file://{}", dir.display())), ..Default::default() }.validate(dir)?.open()?;
    let config = config.validate("pinterest").map_err(|(k, m)| anyhow::anyhow!("{k}: {m}"))?;
    let sink = Sink::new(Arc::clone(log), store, config);
    let start = Instant::now();
    sink.run(Mode::Once, CancellationToken::new()).await?;
    let written: u64 = sink.snapshot().values().map(|s| s.records).sum();
    anyhow::ensure!(written == records as u64, "the sink wrote {written} records, expected {records}");
    Ok(records as f64 / start.elapsed().as_secs_f64())
}

/// Runs the benchmark.
pub async fn run(loaded: &Loaded, records: usize, runs: u32) -> anyhow::Result<()> {
    let values = pin_values(1000);
    line(&format!(
        "bench sink: {} records (~{} bytes each) in one partition, {runs} runs",
        output::int(records as u64),
        values[0].len()
    ))?;
    let mut rows = Vec::new();
    for run in 1..=runs {
        let scratch = Scratch::new(loaded, "sink")?;
        let config = LogConfig::default().validate(&scratch.0).map_err(|(k, m)| anyhow::anyhow!("{k}: {m}"))?;
        let log: Arc<dyn OffsetLog> = Arc::new(EmbeddedLog::open(&config)?);
        log.create_topic(TOPIC, TopicKind::Topic, 1).await?;
        for chunk in (0..records).collect::<Vec<_>>().chunks(1000) {
            log.append(TOPIC, 0, chunk.iter().map(|i| Record::value(values[i % values.len()].clone())).collect())
                .await?;
        }
        // Baseline: read everything.
        let start = Instant::now();
        let (mut offset, mut read) = (0u64, 0usize);
        while read < records {
            let batch = log.read(TOPIC, 0, offset, ReadLimits { max_records: 10_000, max_bytes: 64 << 20 }).await?;
            read += batch.len();
            offset = batch.last().map_or(offset, |r| r.offset + 1);
        }
        let read_rate = records as f64 / start.elapsed().as_secs_f64();
        let mut row = vec![read_rate];
        let mut text = format!("  run {run}: log read {} rec/s", output::int(read_rate as u64));
        for (i, (name, config, _)) in scenarios().iter().enumerate() {
            let rate = sink_rate(&log, &scratch.0.join(format!("s{i}")), config, records).await?;
            text.push_str(&format!("; {name} {} rec/s", output::int(rate as u64)));
            row.push(rate);
        }
        line(&text)?;
        rows.push(row);
    }
    let m = |i: usize| median(rows.iter().map(|r| r[i]).collect());
    line(&format!("median: log read {} records/s", output::int(m(0) as u64)))?;
    for (i, (name, _, goal)) in scenarios().into_iter().enumerate() {
        let rate = m(i + 1);
        let goal = goal.map_or(String::new(), |g| {
            format!("; goal >= {}: {}", output::int(g), if rate >= g as f64 { "met" } else { "NOT met" })
        });
        line(&format!(
            "  {name:<26} {:>10} records/s ({:.0}% of read{goal})",
            output::int(rate as u64),
            rate / m(0).max(1e-9) * 100.0
        ))?;
    }
    Ok(())
}
