//! The formats compared: parsing `--format`, reading and cleaning the objects of one format
//! alone (in a child process, `pinpipe bench batch-read`), and each format's read+clean against
//! JSON's.

use std::path::Path;
use std::time::Instant;

use pinpipe_model::{Kind, Names};

use crate::output::line;

/// Reads and cleans every object in `dir` as the job does (its read module: units fetched and
/// cleaned on every core, repeats dropped, rows in the table's types), with nothing else running
/// in the process: the job's read+clean alone. Returns the wall time and the clean rows kept.
pub(super) async fn read_and_clean(dir: &Path) -> anyhow::Result<(f64, u64)> {
    use futures_util::TryStreamExt;
    use pinpipe_batch::read::{self, Busy, ReadProgress, RunSets};
    let store = pinpipe_store::StoreConfig { url: Some(format!("file://{}", dir.display())), ..Default::default() }
        .validate(dir)?
        .open()?;
    let names = Names::new("pinterest")?;
    let job = pinpipe_batch::BatchConfig::default();
    let (progress, busy) = (std::sync::Arc::new(ReadProgress::default()), std::sync::Arc::new(Busy::default()));
    let t = Instant::now();
    let mut rows = 0;
    for kind in Kind::ALL {
        let plan = read::plan(&store, &names.topic(kind), &std::collections::BTreeMap::new()).await?;
        let sets = std::sync::Arc::new(RunSets::for_memory_limit(job.memory_limit.0));
        let chunks = read::chunks(&store, kind, plan.objects, job.read_concurrency, &sets, &progress, &busy);
        let mut chunks = std::pin::pin!(chunks);
        while let Some(c) = chunks.try_next().await? {
            // As the job hands them to the table writer: in the clean table's types.
            rows += c.cleaned.into_parts()?.iter().map(|(b, _)| b.num_rows() as u64).sum::<u64>();
        }
    }
    Ok((t.elapsed().as_secs_f64(), rows))
}

/// `bench batch-read DIR`: [`read_and_clean`] over DIR; prints the seconds and the rows kept.
pub async fn read_alone(dir: &Path) -> anyhow::Result<()> {
    let (seconds, rows) = read_and_clean(dir).await?;
    line(&format!("{seconds} {rows}"))
}

/// [`read_and_clean`] over `data` in a child process (`bench batch-read`), so that neither the
/// memory it leaves behind nor this process's weighs on the other measurements.
pub(super) fn read_and_clean_child(data: &Path) -> anyhow::Result<(f64, u64)> {
    let out = std::process::Command::new(std::env::current_exe()?).args(["bench", "batch-read"]).arg(data).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "bench batch-read failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut words = text.split_whitespace();
    match (words.next().and_then(|s| s.parse().ok()), words.next().and_then(|r| r.parse().ok())) {
        (Some(seconds), Some(rows)) => Ok((seconds, rows)),
        _ => anyhow::bail!("bench batch-read printed {text:?}"),
    }
}

pub(super) fn parse_formats(text: &str) -> anyhow::Result<Vec<pinpipe_store::layout::Format>> {
    use pinpipe_store::layout::{Format, ParquetCodec};
    text.split(',')
        .map(|f| match f.trim() {
            "json" => Ok(Format::Json),
            "gzip" => Ok(Format::JsonGzip),
            "parquet" => Ok(Format::Parquet(ParquetCodec::Snappy)),
            other => {
                anyhow::bail!("--format must be json, gzip or parquet (or several, comma-separated), not {other:?}")
            }
        })
        .collect()
}

pub(super) fn format_name(f: pinpipe_store::layout::Format) -> &'static str {
    match f {
        pinpipe_store::layout::Format::Json => "json",
        pinpipe_store::layout::Format::JsonGzip => "gzip",
        pinpipe_store::layout::Format::Parquet(_) => "parquet",
    }
}

/// Reading and cleaning the same posts in each format, against JSON.
pub(super) fn compare_formats(compared: &[(pinpipe_store::layout::Format, ReadClean)]) -> anyhow::Result<()> {
    use pinpipe_store::layout::Format;
    let Some((_, json)) = compared.iter().find(|(f, _)| *f == Format::Json) else {
        return Ok(());
    };
    if compared.len() < 2 {
        return Ok(());
    }
    line(
        "read+clean by format (medians; alone = the job's read module in a process of its own, wall time; busy = inside the job, summed over its cleaning threads):",
    )?;
    for (format, m) in compared {
        let speed = |json: f64, this: f64| json / this.max(1e-9);
        let goal = if matches!(format, Format::Parquet(_)) {
            let met = speed(json.alone, m.alone) >= 3.0;
            format!(" (goal: read+clean >= 3x faster than JSON: {})", if met { "met" } else { "NOT met" })
        } else {
            String::new()
        };
        line(&format!(
            "  {:<8} read+clean alone {:.2} s ({:.1}x JSON's speed); in the job: busy {:.2} s ({:.1}x), ingest {:.2} s ({:.1}x){goal}",
            format_name(*format),
            m.alone,
            speed(json.alone, m.alone),
            m.busy,
            speed(json.busy, m.busy),
            m.ingest,
            speed(json.ingest, m.ingest),
        ))?;
    }
    Ok(())
}

/// Medians of how long the full scenario took to read and clean its objects, in seconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadClean {
    /// The job's ingest phase (reading, cleaning, de-duplicating, writing the tables).
    pub ingest: f64,
    /// Reading and cleaning inside the job, summed over its cleaning threads.
    pub busy: f64,
    /// Reading and cleaning alone ([`read_and_clean`]), wall time.
    pub alone: f64,
}
