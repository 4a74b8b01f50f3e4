//! `pinpipe bench ...`: benchmarks. Each reports the median of several runs and the ratio to a
//! baseline measured in the same run, because the machines are shared and noisy.
//!
//! * `source`: source generation ([`source`] below); baseline: the generator alone.
//! * `log`: the embedded log's durable appends ([`log`]); baseline: SQLite doing the same.
//! * `sink`: the sink into a directory ([`sink`]); baseline: reading the log alone.
//! * `batch`: the batch job in a child process on data posted like the classic emulator posts
//!   ([`batch`]): a full run, a run with nothing new, and an incremental run; baseline: reading
//!   the same raw objects without parsing them.
//! * `stream`: the streaming job ([`stream`]): ack-to-visible latency at a fixed rate (baseline:
//!   the ack round trip) and throughput draining a backlog (baseline: reading the log alone).
//! * `api`: the real server over loopback ([`api`], with our load generator [`loadgen`] and,
//!   when installed, [`wrk`] as the independent one); baseline: `GET /healthz` on the same server.

mod api;
mod batch;
pub(crate) mod console;
mod loadgen;
mod log;
mod sink;
mod stream;
mod wrk;

use std::time::{Duration, Instant};

use pinpipe_source::{Generator, SourceUrl, ops};

use crate::cli::BenchCommand;
use crate::config::Loaded;
use crate::output::{self, line};

/// Runs one benchmark.
pub async fn run(loaded: &Loaded, cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Source { rows, runs, source_url } => source(loaded, rows, runs.max(1), source_url).await,
        BenchCommand::Log { records, runs } => log::run(loaded, records, runs.max(1)).await,
        BenchCommand::Sink { records, runs } => sink::run(loaded, records, runs.max(1)).await,
        BenchCommand::Batch {
            posts,
            layout,
            runs,
            keep_data,
            source_rows,
            loss,
            new,
            format,
            cluster,
            cluster_questions,
        } => {
            let options = batch::Options {
                posts,
                layout,
                runs: runs.max(1),
                keep: keep_data,
                source_rows,
                loss,
                new,
                formats: format,
                cluster,
                cluster_questions,
            };
            batch::run(loaded, options).await
        }
        BenchCommand::BatchRead { dir } => batch::read_alone(&dir).await,
        BenchCommand::BatchData { dir, posts, layout } => {
            tokio::task::spawn_blocking(move || batch::write_data(&dir, posts, &layout)).await?
        }
        BenchCommand::Stream { rate, seconds, backlog, runs, trigger_interval, console } => {
            stream::run(loaded, rate, seconds, backlog, runs.max(1), trigger_interval, console).await
        }
        BenchCommand::Api { seconds, runs, concurrency, console } => {
            api::run(loaded, seconds, runs.max(1), concurrency, console).await
        }
    }
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

async fn source(loaded: &Loaded, rows: u64, runs: u32, url: Option<String>) -> anyhow::Result<()> {
    let scratch = loaded.config.data_dir.join("bench");
    let url = match url {
        Some(u) => SourceUrl::parse(&u)?,
        None => SourceUrl::Sqlite(scratch.join("bench-source.db")),
    };
    line(&format!("bench source: {} posts per run, {runs} runs, into {}", output::int(rows), url.display()))?;
    let (mut baseline, mut into_db) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        // Baseline: the generator alone, on one thread, as the pipeline's producer runs it.
        let start = Instant::now();
        let generated = tokio::task::spawn_blocking(move || {
            let g = Generator::new(run.into(), rows);
            let mut bytes = 0usize;
            for r in 0..rows {
                bytes += g.post(r as i64).pin.title.map_or(0, |t| t.len());
            }
            bytes
        })
        .await?;
        let gen_rate = rows as f64 / start.elapsed().as_secs_f64().max(1e-9);
        std::hint::black_box(generated);

        if let SourceUrl::Sqlite(path) = &url {
            remove_sqlite(path);
        }
        let store = url.open().await?;
        let report = ops::generate(store.as_ref(), rows, run.into(), true, |_| {}).await?;
        drop(store);
        line(&format!(
            "  run {run}: generator alone {} posts/s; generate into database {} posts/s ({:.2} s)",
            output::int(gen_rate as u64),
            output::int(report.rows_per_sec() as u64),
            report.elapsed.as_secs_f64()
        ))?;
        baseline.push(gen_rate);
        into_db.push(report.rows_per_sec());
    }
    if let SourceUrl::Sqlite(path) = &url {
        remove_sqlite(path);
    }
    let (b, d) = (median(baseline), median(into_db));
    line(&format!(
        "median: generator alone {} posts/s; into database {} posts/s ({} rows/s over 3 tables); ratio {:.2}; {} per 1M posts",
        output::int(b as u64),
        output::int(d as u64),
        output::int((d * 3.0) as u64),
        d / b.max(1e-9),
        humantime(Duration::from_secs_f64(1_000_000.0 / d.max(1e-9)))
    ))
}

pub(crate) fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
}

pub(crate) fn humantime(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// A fresh scratch directory for one benchmark, removed when dropped.
pub(crate) struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub(crate) fn new(loaded: &Loaded, name: &str) -> anyhow::Result<Self> {
        let dir = loaded.config.data_dir.join("bench").join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Realistic raw pin records (the emulator's payloads), as JSON text.
pub(crate) fn pin_values(n: usize) -> Vec<bytes::Bytes> {
    let g = pinpipe_source::Generator::new(42, n as u64);
    (0..n).map(|i| bytes::Bytes::from(g.post(i as i64).json(pinpipe_model::Kind::Pin).to_string())).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(super::median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
