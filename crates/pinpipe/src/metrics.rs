//! The metrics of the stages besides the API — the sink, the streaming job, the scheduler and
//! the emulator — as Prometheus collectors. Each reads its stage's status at every scrape (the
//! stages count for their own summaries anyway), so metrics cost their hot paths nothing. They are
//! served at the API's `/metrics` in `pinpipe up` and on `--metrics-listen` when a stage runs
//! alone.
//!
//! Names follow Prometheus conventions: `pinpipe_<stage>_<what>`, counters end in `_total`,
//! durations in seconds, sizes in bytes. Labels are topics, partitions and tables (bounded by the
//! configuration), never records.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, EncodeMetric, MetricEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// A stage's own metrics listener (`--metrics-listen`); stops serving when dropped.
pub struct Listener {
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serves `collectors` at `http://<addr>/metrics` (and `/healthz`) when `addr` is set.
pub async fn listen(
    addr: Option<std::net::SocketAddr>,
    collectors: Vec<Box<dyn Collector>>,
) -> anyhow::Result<Option<Listener>> {
    use anyhow::Context as _;
    let Some(addr) = addr else { return Ok(None) };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for metrics (in use? pick another --metrics-listen)"))?;
    let local = listener.local_addr()?;
    let stages = Arc::new(pinpipe_api::metrics::StageMetrics::default());
    for c in collectors {
        stages.register_collector(c);
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let cancelled = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        if let Err(e) = pinpipe_api::metrics::serve_metrics(listener, stages, cancelled).await {
            tracing::warn!("the metrics listener stopped: {e}");
        }
    });
    crate::output::line(&format!("metrics: http://{local}/metrics"))?;
    Ok(Some(Listener { stop }))
}

/// Writes one family of `kind`, each series' value by `encode`.
fn family<L: EncodeLabelSet, N>(
    enc: &mut DescriptorEncoder<'_>,
    (name, help, unit): (&str, &str, Option<&Unit>),
    kind: MetricType,
    series: &[(L, N)],
    encode: impl Fn(&N, MetricEncoder<'_>) -> fmt::Result,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, unit, kind)?;
    for (labels, value) in series {
        encode(value, family.encode_family(labels)?)?;
    }
    Ok(())
}

/// Writes one counter family.
fn counters<L: EncodeLabelSet, N: EncodeCounterValue + Copy>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    series: &[(L, N)],
) -> fmt::Result {
    family(enc, (name, help, unit), MetricType::Counter, series, |v, m| ConstCounter::new(*v).encode(m))
}

/// Writes one counter without labels.
fn counter<N: EncodeCounterValue>(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: N) -> fmt::Result {
    ConstCounter::new(value).encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

use pinpipe_api::metrics::latency_histograms as histograms;

/// Writes one gauge without labels.
fn gauge<N: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: N,
) -> fmt::Result {
    ConstGauge::new(value).encode(enc.encode_descriptor(name, help, unit, MetricType::Gauge)?)
}

/// Writes one gauge family.
fn gauges<L: EncodeLabelSet, N: EncodeGaugeValue + Copy>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    series: &[(L, N)],
) -> fmt::Result {
    family(enc, (name, help, unit), MetricType::Gauge, series, |v, m| ConstGauge::new(*v).encode(m))
}

/// `Debug` (which collectors need) by name: the stages' handles have no useful one.
macro_rules! debug_by_name {
    ($($t:ident),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($t))
            }
        }
    )*};
}
debug_by_name!(SinkMetrics, StreamMetrics, EmulatorMetrics, SchedulerMetrics, BatchMetrics);

type PartitionLabels = [(&'static str, String); 2];
type TableLabels = [(&'static str, String); 2];

/// The sink's partitions.
pub struct SinkMetrics(pub Arc<pinpipe_sink::Sink>);

impl Collector for SinkMetrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let snapshot = self.0.snapshot();
        let series = |f: &dyn Fn(&pinpipe_sink::PartitionStatus) -> u64| -> Vec<(PartitionLabels, u64)> {
            snapshot
                .iter()
                .map(|((topic, p), s)| ([("topic", topic.clone()), ("partition", p.to_string())], f(s)))
                .collect()
        };
        let e = &mut enc;
        counters(e, "sink_records", "Records written to objects", None, &series(&|s| s.records))?;
        counters(e, "sink_objects", "Objects written", None, &series(&|s| s.objects))?;
        counters(
            e,
            "sink_written",
            "Bytes of objects and dead letters written",
            Some(&Unit::Bytes),
            &series(&|s| s.bytes),
        )?;
        counters(
            e,
            "sink_dead_letters",
            "Records that could not be placed or encoded, written to the sink's dead letters",
            None,
            &series(&|s| s.dead_letters),
        )?;
        let flush: Vec<(PartitionLabels, &pinpipe_model::histogram::Histogram)> = snapshot
            .iter()
            .map(|((topic, p), s)| ([("topic", topic.clone()), ("partition", p.to_string())], &s.flush_latency))
            .collect();
        histograms(e, "sink_flush_duration", "Time to write a group of objects (encode, store, commit)", &flush)?;
        gauges(e, "sink_lag_records", "Records in the log not yet in the store", None, &series(&|s| s.lag()))?;
        gauges(e, "sink_committed_offset", "Offset after the last record in the store", None, &series(&|s| s.written))?;
        Ok(())
    }
}

/// The streaming job's tables.
pub struct StreamMetrics(pub Arc<pinpipe_stream::StreamJob>);

impl Collector for StreamMetrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let tables = self.0.snapshot();
        let labels = |t: &pinpipe_stream::TableStatus| [("stream", t.stream.clone()), ("table", t.table.clone())];
        let series = |f: &dyn Fn(&pinpipe_stream::TableStatus) -> u64| -> Vec<(TableLabels, u64)> {
            tables.iter().map(|t| (labels(t), f(t))).collect()
        };
        let e = &mut enc;
        counters(e, "stream_micro_batches", "Micro-batches committed", None, &series(&|t| t.batches))?;
        counters(e, "stream_records", "Records read from the stream", None, &series(&|t| t.records))?;
        counters(e, "stream_rows", "Rows appended to the table", None, &series(&|t| t.rows))?;
        counters(e, "stream_duplicates_dropped", "Exact duplicate rows dropped", None, &series(&|t| t.duplicates))?;
        counters(e, "stream_dead_letters", "Records that could not be cleaned", None, &series(&|t| t.dead_letters))?;
        let batch: Vec<(TableLabels, &pinpipe_model::histogram::Histogram)> =
            tables.iter().map(|t| (labels(t), &t.batch_latency)).collect();
        histograms(e, "stream_micro_batch_duration", "Time a committed micro-batch took, read to commit", &batch)?;
        let visible: Vec<(TableLabels, &pinpipe_model::histogram::Histogram)> =
            tables.iter().map(|t| (labels(t), &t.visible_latency)).collect();
        histograms(
            e,
            "stream_visible_latency",
            "Per record: from its arrival in the log (the API's ack) to its commit in the table",
            &visible,
        )?;
        let lag: Vec<(TableLabels, u64)> = tables.iter().filter_map(|t| Some((labels(t), t.lag()?))).collect();
        gauges(e, "stream_lag_records", "Records in the stream not yet committed to the table", None, &lag)?;
        let version: Vec<(TableLabels, u64)> = tables.iter().filter_map(|t| Some((labels(t), t.version?))).collect();
        gauges(e, "stream_table_version", "The table's Delta version", None, &version)?;
        let commit: Vec<(TableLabels, f64)> =
            tables.iter().filter_map(|t| Some((labels(t), t.last_commit_ms? as f64 / 1e3))).collect();
        gauges(
            e,
            "stream_last_commit_timestamp",
            "Time of the table's last commit since the epoch (freshness: now minus this)",
            Some(&Unit::Seconds),
            &commit,
        )?;
        Ok(())
    }
}

/// The emulator's requests.
pub struct EmulatorMetrics(pub Arc<pinpipe_emulate::run::Counters>);

impl Collector for EmulatorMetrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let c = &self.0;
        let e = &mut enc;
        counter(e, "emulate_posts", "Posts whose requests all finished", c.posts.load(Ordering::Relaxed))?;
        counter(e, "emulate_records_sent", "Records sent to the API", c.records.load(Ordering::Relaxed))?;
        counter(e, "emulate_records_accepted", "Records the API accepted", c.accepted.load(Ordering::Relaxed))?;
        counter(e, "emulate_records_refused", "Records the API did not accept", c.failed.load(Ordering::Relaxed))?;
        if let Ok(h) = c.latency.lock().map(|h| h.clone()) {
            let help = "Time of each request, sent to answered (retries included)";
            pinpipe_api::metrics::encode_latency(e, "emulate_request_duration", help, &h)?;
        }
        Ok(())
    }
}

/// The scheduler's attempts (from its run history) and its next tick.
pub struct SchedulerMetrics {
    /// The run history.
    pub history: pinpipe_schedule::History,
    /// The schedule.
    pub schedule: pinpipe_schedule::Resolved,
}

impl Collector for SchedulerMetrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        use pinpipe_schedule::Outcome;
        let runs = self.history.list().unwrap_or_default();
        let count = |o: Outcome| runs.iter().filter(|r| r.outcome == o).count() as u64;
        let outcomes: Vec<([(&str, &str); 1], u64)> =
            [("success", Outcome::Success), ("failed", Outcome::Failed), ("skipped", Outcome::Skipped)]
                .into_iter()
                .map(|(name, o)| ([("outcome", name)], count(o)))
                .collect();
        let e = &mut enc;
        counters(e, "schedule_attempts", "Batch job attempts (and skipped ticks) by outcome", None, &outcomes)?;
        if let Some(next) = pinpipe_schedule::plan::next_tick(&self.schedule.cron, chrono::Utc::now()) {
            let at = next.timestamp_millis() as f64 / 1e3;
            gauge(e, "schedule_next_run_timestamp", "Time of the next scheduled run", Some(&Unit::Seconds), at)?;
        }
        Ok(())
    }
}

/// The batch job's runs, from the summaries under its results directory: how many, and the
/// newest one's phases, records and rows.
pub struct BatchMetrics {
    /// `batch.output`.
    pub results: std::path::PathBuf,
}

impl Collector for BatchMetrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let runs = crate::console::runs(&self.results);
        let e = &mut enc;
        counter(e, "batch_runs", "Batch job runs that wrote a summary", runs.len() as u64)?;
        let Some(dir) = runs.last() else { return Ok(()) };
        let path = dir.join("summary.json");
        let Some(summary) =
            std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            return Ok(());
        };
        if let Some(t) = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        {
            gauge(
                e,
                "batch_last_run_timestamp",
                "When the newest run finished",
                Some(&Unit::Seconds),
                t.as_secs_f64(),
            )?;
        }
        let phases: Vec<([(&str, String); 1], f64)> = summary["phases"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some(([("phase", k.trim_end_matches("_s").to_owned())], v.as_f64()?)))
            .collect();
        gauges(
            e,
            "batch_last_run_phase_duration",
            "The newest run's phases (busy: summed over threads)",
            Some(&Unit::Seconds),
            &phases,
        )?;
        let per_kind = |key: &str, outcome: &'static str| -> Vec<([(&'static str, String); 2], u64)> {
            summary[key]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some(([("kind", k.clone()), ("outcome", outcome.to_owned())], v.as_u64()?)))
                .collect()
        };
        let records: Vec<_> = [
            ("raw_records", "read"),
            ("dead_letters", "dead_letter"),
            ("duplicates_dropped", "duplicate"),
            ("clean_rows", "added"),
        ]
        .into_iter()
        .flat_map(|(key, outcome)| per_kind(key, outcome))
        .collect();
        gauges(e, "batch_last_run_records", "The newest run's records by kind and outcome", None, &records)?;
        let rows: Vec<([(&str, String); 1], u64)> = summary["table_rows"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some(([("kind", k.clone())], v.as_u64()?)))
            .collect();
        gauges(e, "batch_table_rows", "Rows in each batch table after the newest run", None, &rows)?;
        if let Some(peak) = summary["peak_rss_bytes"].as_u64() {
            gauge(e, "batch_last_run_peak_memory", "The newest run's peak resident memory", Some(&Unit::Bytes), peak)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_named_by_convention_and_carry_their_values() {
        let counters = Arc::new(pinpipe_emulate::run::Counters::default());
        counters.records.store(12, Ordering::Relaxed);
        counters.accepted.store(11, Ordering::Relaxed);
        counters.failed.store(1, Ordering::Relaxed);
        let stages = pinpipe_api::metrics::StageMetrics::default();
        stages.register_collector(Box::new(EmulatorMetrics(counters)));
        let text = stages.render();
        for line in [
            "# TYPE pinpipe_emulate_records_sent counter",
            "pinpipe_emulate_records_sent_total 12",
            "pinpipe_emulate_records_accepted_total 11",
            "pinpipe_emulate_records_refused_total 1",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing in:\n{text}");
        }
    }

    #[test]
    fn the_newest_batch_run_is_read_from_its_summary() {
        let dir = tempfile::tempdir().unwrap();
        let stages = pinpipe_api::metrics::StageMetrics::default();
        stages.register_collector(Box::new(BatchMetrics { results: dir.path().to_owned() }));
        assert!(stages.render().contains("pinpipe_batch_runs_total 0\n"), "{}", stages.render());
        // run-b is the newest by its summary's time, whatever the names.
        for (run, pins, age) in [("run-b", 9, 10), ("run-a", 7, 20)] {
            std::fs::create_dir(dir.path().join(run)).unwrap();
            let summary = serde_json::json!({
                "phases": {"ingest_s": 1.5, "total_s": 2.25},
                "raw_records": {"pin": pins, "geo": 3}, "dead_letters": {"pin": 1, "geo": 0},
                "duplicates_dropped": {"pin": 2, "geo": 0}, "clean_rows": {"pin": pins - 3, "geo": 3},
                "table_rows": {"pin": 40 + pins, "geo": 30}, "peak_rss_bytes": 1234,
            });
            let path = dir.path().join(run).join("summary.json");
            std::fs::write(&path, summary.to_string()).unwrap();
            let at = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
            std::fs::File::options().write(true).open(&path).unwrap().set_modified(at).unwrap();
        }
        let text = stages.render();
        for line in [
            "pinpipe_batch_runs_total 2",
            r#"pinpipe_batch_last_run_phase_duration_seconds{phase="ingest"} 1.5"#,
            r#"pinpipe_batch_last_run_phase_duration_seconds{phase="total"} 2.25"#,
            r#"pinpipe_batch_last_run_records{kind="pin",outcome="read"} 9"#,
            r#"pinpipe_batch_last_run_records{kind="pin",outcome="dead_letter"} 1"#,
            r#"pinpipe_batch_last_run_records{kind="pin",outcome="duplicate"} 2"#,
            r#"pinpipe_batch_last_run_records{kind="pin",outcome="added"} 6"#,
            r#"pinpipe_batch_table_rows{kind="pin"} 49"#,
            "pinpipe_batch_last_run_peak_memory_bytes 1234",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing in:\n{text}");
        }
    }
}
