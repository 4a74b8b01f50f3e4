//! `pinpipe bench sink`: the sink copying one partition of realistic pin records into a local
//! directory at flush size 10,000 and 1, against reading the same records from the log alone
//! (the baseline: the sink cannot be faster than its input).

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

async fn sink_rate(
    log: &Arc<dyn OffsetLog>,
    dir: &std::path::Path,
    flush_size: usize,
    records: usize,
) -> anyhow::Result<f64> {
    let store =
        StoreConfig { url: Some(format!("file://{}", dir.display())), ..Default::default() }.validate(dir)?.open()?;
    let config = SinkConfig { flush_size, ..Default::default() }
        .validate("pinterest")
        .map_err(|(k, m)| anyhow::anyhow!("{k}: {m}"))?;
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
        let big = sink_rate(&log, &scratch.0.join("flush-10000"), 10_000, records).await?;
        let one = sink_rate(&log, &scratch.0.join("flush-1"), 1, records).await?;
        line(&format!(
            "  run {run}: log read {} rec/s; sink flush 10000 {} rec/s; sink flush 1 {} rec/s",
            output::int(read_rate as u64),
            output::int(big as u64),
            output::int(one as u64)
        ))?;
        rows.push([read_rate, big, one]);
    }
    let m = |i: usize| median(rows.iter().map(|r| r[i]).collect());
    line(&format!(
        "median: log read {} records/s; sink at flush size 10,000: {} records/s ({:.0}% of read; goal >= 200,000); at flush size 1: {} records/s (one object each)",
        output::int(m(0) as u64),
        output::int(m(1) as u64),
        m(1) / m(0).max(1e-9) * 100.0,
        output::int(m(2) as u64)
    ))
}
