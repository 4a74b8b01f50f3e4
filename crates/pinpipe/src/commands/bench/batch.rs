//! `pinpipe bench batch`: the batch job on generated raw objects in the classic layout (one
//! record per object, like the sink at flush size 1) and/or NDJSON objects of 10,000 records.
//!
//! Each run starts `pinpipe batch` as a child process (so its wall time includes start-up and
//! its peak memory is its own, reported by the job from /proc/self/status), after a baseline in
//! the same run: listing and reading every raw object without parsing it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use pinpipe_model::{Kind, Names};
use pinpipe_source::Generator;

use super::median;
use crate::config::Loaded;
use crate::output::{self, line};

/// Records per object in the NDJSON layout.
const NDJSON_RECORDS: u64 = 10_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Classic,
    Ndjson,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Classic => "classic",
            Layout::Ndjson => "ndjson",
        }
    }
}

/// Writes the raw objects of `posts` posts (unless a complete copy is there already).
fn generate(dir: &Path, posts: u64, layout: Layout) -> anyhow::Result<u64> {
    let done = dir.join(".complete");
    if done.is_file() {
        return Ok(std::fs::read_to_string(&done)?.trim().parse()?);
    }
    let _ = std::fs::remove_dir_all(dir);
    let names = Names::new("pinterest")?;
    let g = Generator::new(7, posts);
    let mut bytes = 0u64;
    for kind in Kind::ALL {
        let topic = names.topic(kind);
        let part = dir.join(format!("topics/{topic}/partition=0"));
        std::fs::create_dir_all(&part)?;
        let per_object = if layout == Layout::Classic { 1 } else { NDJSON_RECORDS };
        let mut start = 0;
        while start < posts {
            let end = (start + per_object).min(posts);
            let mut buf = Vec::with_capacity(((end - start) * 700) as usize);
            for r in start..end {
                let p = g.post(r as i64);
                match kind {
                    Kind::Pin => serde_json::to_writer(&mut buf, &p.pin)?,
                    Kind::Geo => serde_json::to_writer(&mut buf, &p.geo)?,
                    Kind::User => serde_json::to_writer(&mut buf, &p.user)?,
                }
                buf.push(b'\n');
            }
            bytes += buf.len() as u64;
            let path = part.join(format!("{topic}+0+{start:010}.json"));
            std::fs::File::create(&path)?.write_all(&buf)?;
            start = end;
        }
    }
    std::fs::write(&done, bytes.to_string())?;
    Ok(bytes)
}

/// The baseline: list and read every object, no parsing.
async fn read_all(dir: &Path) -> anyhow::Result<u64> {
    let store = pinpipe_store::StoreConfig { url: Some(format!("file://{}", dir.display())), ..Default::default() }
        .validate(dir)?
        .open()?;
    let names = Names::new("pinterest")?;
    let mut total = 0;
    for kind in Kind::ALL {
        use futures_util::{StreamExt, TryStreamExt};
        use object_store::ObjectStoreExt;
        let objects = pinpipe_batch::read::list(&store, &names.topic(kind)).await?;
        let sizes: Vec<usize> = futures_util::stream::iter(objects)
            .map(|m| {
                let store = &store;
                async move { Ok::<_, object_store::Error>(store.inner.get(&m.location).await?.bytes().await?.len()) }
            })
            .buffer_unordered(64)
            .try_collect()
            .await?;
        total += sizes.iter().sum::<usize>() as u64;
    }
    Ok(total)
}

struct JobRun {
    wall: f64,
    summary: serde_json::Value,
}

fn run_job(data: &Path, scratch: &Path, run: u32) -> anyhow::Result<JobRun> {
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let out = std::process::Command::new(exe)
        .arg("batch")
        .arg("--data-dir")
        .arg(scratch)
        .arg("--store")
        .arg(format!("file://{}", data.display()))
        .args(["--run-id", &format!("bench-{run}"), "--quiet"])
        .output()?;
    let wall = start.elapsed().as_secs_f64();
    anyhow::ensure!(out.status.success(), "pinpipe batch failed: {}", String::from_utf8_lossy(&out.stderr));
    let path = scratch.join(format!("results/bench-{run}/summary.json"));
    let summary = serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| path.display().to_string())?)?;
    Ok(JobRun { wall, summary })
}

/// Runs the benchmark.
pub async fn run(loaded: &Loaded, posts: u64, layout: &str, runs: u32, keep: bool) -> anyhow::Result<()> {
    let layouts = match layout {
        "classic" => vec![Layout::Classic],
        "ndjson" => vec![Layout::Ndjson],
        "both" => vec![Layout::Classic, Layout::Ndjson],
        other => anyhow::bail!("--layout must be classic, ndjson or both, not {other:?}"),
    };
    let data_root = loaded.config.data_dir.join("bench").join("batch-data");
    for layout in layouts {
        let data: PathBuf = data_root.join(format!("{}-{posts}", layout.name()));
        let t = Instant::now();
        let bytes = tokio::task::spawn_blocking({
            let data = data.clone();
            move || generate(&data, posts, layout)
        })
        .await??;
        let objects = if layout == Layout::Classic { posts * 3 } else { posts.div_ceil(NDJSON_RECORDS) * 3 };
        line(&format!(
            "bench batch: {} posts, {} layout: {} objects, {} MB (ready in {:.1} s), {runs} runs",
            output::int(posts),
            layout.name(),
            output::int(objects),
            bytes / 1_000_000,
            t.elapsed().as_secs_f64()
        ))?;
        let mut rows = Vec::new();
        for run in 1..=runs {
            let scratch = super::Scratch::new(loaded, "batch")?;
            let t = Instant::now();
            let read = read_all(&data).await?;
            anyhow::ensure!(read == bytes, "read {read} bytes, expected {bytes}");
            let baseline = t.elapsed().as_secs_f64();
            let job = run_job(&data, &scratch.0, run)?;
            let rss = job.summary["peak_rss_bytes"].as_u64().unwrap_or(0) as f64 / (1u64 << 20) as f64;
            let ph = &job.summary["phases"];
            let f = |k: &str| ph[k].as_f64().unwrap_or(0.0);
            line(&format!(
                "  run {run}: job {:.2} s wall (read+clean {:.2}, dedup {:.2}, delta {:.2} | queries {:.2}, outputs {:.2}), peak {:.0} MiB; baseline read {:.2} s; ratio {:.1}x",
                job.wall,
                f("read_clean_s"),
                f("dedup_s"),
                f("delta_s"),
                f("queries_s"),
                f("outputs_s"),
                rss,
                baseline,
                job.wall / baseline.max(1e-9)
            ))?;
            anyhow::ensure!(
                job.summary["clean_rows"]["pin"].as_u64().unwrap_or(0) > 0,
                "the job produced no rows: {}",
                job.summary
            );
            rows.push([job.wall, rss, baseline]);
        }
        let m = |i: usize| median(rows.iter().map(|r| r[i]).collect());
        let goal = match (layout, posts) {
            (Layout::Classic, 11_154) => " (goal <= 2 s)",
            (Layout::Ndjson, 1_000_000) => " (goal <= 6 s, <= 1536 MiB)",
            _ => "",
        };
        line(&format!(
            "median ({}): job {:.2} s wall, peak {:.0} MiB; baseline read {:.2} s; ratio {:.1}x{goal}",
            layout.name(),
            m(0),
            m(1),
            m(2),
            m(0) / m(2).max(1e-9)
        ))?;
        if !keep {
            let _ = std::fs::remove_dir_all(&data);
        }
    }
    Ok(())
}
