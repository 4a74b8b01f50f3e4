//! `pinpipe bench batch`: the batch job on raw objects shaped like production, in the classic
//! layout (one record per object, like the sink at flush size 1) and/or NDJSON objects of 10,000
//! records.
//!
//! The data is posted the way the classic emulator posts: each post is a random row of a source
//! table of `--source-rows` rows (default: as many rows as posts), drawn with replacement, so
//! about 37% of all records repeat an earlier one exactly; with `--loss`, that share of posts lose
//! their geo or their user record (a failed post). Values carry the generator's placeholders.
//!
//! Scenarios, each run in a child process (wall time includes start-up; peak memory is its
//! own), after a baseline in the same run: listing and reading the objects the job reads, without
//! parsing them.
//!
//! * full: a first run over all objects, then a run with no new objects (no-op);
//! * incremental (`--new N`): tables of `--posts` posts already built, then N new posts.
//!
//! With several `--format`s, each format's read+clean is compared with JSON's ([`formats`]).

mod cluster;
mod formats;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use pinpipe_model::{Kind, Names};
use pinpipe_source::Generator;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::median;
use crate::config::Loaded;
use crate::output::{self, line};
pub use formats::read_alone;
use formats::{ReadClean, compare_formats, format_name, parse_formats, read_and_clean_child};

/// Records per object in the NDJSON layout.
const NDJSON_RECORDS: u64 = 10_000;
/// Seed of the source table and of the posting sequence.
const SEED: u64 = 7;

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

/// How the posts of a benchmark are drawn, and how their objects are encoded.
#[derive(Clone, Copy)]
struct Posting {
    source_rows: u64,
    loss: f64,
    layout: Layout,
    format: pinpipe_store::layout::Format,
}

impl Posting {
    /// Post `i`: its source row, and which of its records arrive (pin, geo, user).
    fn post(&self, i: u64) -> (i64, [bool; 3]) {
        let mut rng = Pcg64Mcg::seed_from_u64(SEED.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i);
        let row = rng.random_range(0..self.source_rows) as i64;
        let lost: f64 = rng.random();
        let arrive = [true, lost >= self.loss / 2.0, !(self.loss / 2.0..self.loss).contains(&lost)];
        (row, arrive)
    }

    /// Records of `kind` posted before post `i` (the offset post `i`'s record gets).
    fn offset_at(&self, kind: Kind, i: u64) -> u64 {
        let k = kind_index(kind);
        (0..i).filter(|&j| self.post(j).1[k]).count() as u64
    }
}

fn kind_index(kind: Kind) -> usize {
    match kind {
        Kind::Pin => 0,
        Kind::Geo => 1,
        Kind::User => 2,
    }
}

/// Raw objects written.
struct Dataset {
    bytes: u64,
    objects: u64,
    records: u64,
}

/// Writes the raw objects of posts `from..to` into `dir` (unless a complete copy is there).
fn generate(dir: &Path, posting: Posting, from: u64, to: u64) -> anyhow::Result<Dataset> {
    let done = dir.join(".complete");
    if let Ok(text) = std::fs::read_to_string(&done) {
        let v: Vec<u64> = text.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if let [bytes, objects, records] = v[..] {
            return Ok(Dataset { bytes, objects, records });
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    let names = Names::new("pinterest")?;
    let g = Generator::new(SEED, posting.source_rows);
    let per_object = if posting.layout == Layout::Classic { 1 } else { NDJSON_RECORDS };
    let mut d = Dataset { bytes: 0, objects: 0, records: 0 };
    for kind in Kind::ALL {
        let topic = names.topic(kind);
        let part = dir.join(format!("topics/{topic}/partition=0"));
        std::fs::create_dir_all(&part)?;
        let mut offset = posting.offset_at(kind, from);
        let (mut buf, mut start, mut in_buf) = (Vec::<Vec<u8>>::new(), offset, 0u64);
        let format = posting.format;
        let flush = |buf: &mut Vec<Vec<u8>>, start: u64, d: &mut Dataset| -> anyhow::Result<()> {
            let next = start + buf.len() as u64;
            let bytes =
                pinpipe_sink::encode::encode_records(format, Some(kind), buf.iter().map(Vec::as_slice), start, next)?;
            let name = pinpipe_store::layout::object_file(&topic, 0, start, format);
            std::fs::File::create(part.join(name))?.write_all(&bytes)?;
            d.bytes += bytes.len() as u64;
            d.objects += 1;
            buf.clear();
            Ok(())
        };
        for i in from..to {
            let (row, arrive) = posting.post(i);
            if !arrive[kind_index(kind)] {
                continue;
            }
            buf.push(serde_json::to_vec(&g.post(row).json(kind))?);
            offset += 1;
            in_buf += 1;
            d.records += 1;
            if in_buf == per_object {
                flush(&mut buf, start, &mut d)?;
                (start, in_buf) = (offset, 0);
            }
        }
        if in_buf > 0 {
            flush(&mut buf, start, &mut d)?;
        }
    }
    std::fs::write(&done, format!("{} {} {}", d.bytes, d.objects, d.records))?;
    Ok(d)
}

/// Writes the raw objects of `posts` posts (NDJSON objects of 10,000 records, or one record per
/// object with `classic`) into `dir`, as `bench batch` generates them: for tests and other tools.
pub fn write_data(dir: &Path, posts: u64, layout: &str) -> anyhow::Result<()> {
    let layout = match layout {
        "classic" => Layout::Classic,
        "ndjson" => Layout::Ndjson,
        other => anyhow::bail!("--layout must be classic or ndjson, not {other:?}"),
    };
    let posting =
        Posting { source_rows: posts.max(1), loss: 0.01, layout, format: pinpipe_store::layout::Format::Json };
    let d = generate(dir, posting, 0, posts)?;
    line(&format!("{} records in {} objects, {} bytes, in {}", d.records, d.objects, d.bytes, dir.display()))
}

/// Hard-links every file under `from` into `to` (same tree), except leases and markers.
fn link_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".complete" || name == "_pinpipe_lease" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            link_tree(&entry.path(), &target)?;
        } else {
            std::fs::hard_link(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The baseline: list and read every object under `dir`, no parsing.
async fn read_all(dir: &Path) -> anyhow::Result<u64> {
    use futures_util::{StreamExt, TryStreamExt};
    use object_store::ObjectStoreExt;
    let store = pinpipe_store::StoreConfig { url: Some(format!("file://{}", dir.display())), ..Default::default() }
        .validate(dir)?
        .open()?;
    let names = Names::new("pinterest")?;
    let mut total = 0;
    for kind in Kind::ALL {
        let objects = pinpipe_store::layout::list_objects(&store, &names.topic(kind), 0, 0).await?;
        let sizes: Vec<usize> =
            futures_util::stream::iter(objects)
                .map(|o| {
                    let store = &store;
                    async move {
                        Ok::<_, object_store::Error>(store.inner.get(&o.meta.location).await?.bytes().await?.len())
                    }
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

impl JobRun {
    fn peak_mib(&self) -> f64 {
        self.summary["peak_rss_bytes"].as_u64().unwrap_or(0) as f64 / (1u64 << 20) as f64
    }

    fn phase(&self, k: &str) -> f64 {
        self.summary["phases"][k].as_f64().unwrap_or(0.0)
    }

    fn describe(&self) -> String {
        format!(
            "{:.2} s wall (ingest {:.2} [busy clean {:.2}, dedup {:.2}, write {:.2}], queries {:.2}), peak {:.0} MiB, {} rows added, {} duplicates dropped",
            self.wall,
            self.phase("ingest_s"),
            self.phase("clean_busy_s"),
            self.phase("dedup_busy_s"),
            self.phase("write_busy_s"),
            self.phase("queries_s"),
            self.peak_mib(),
            output::int(sum3(&self.summary["clean_rows"])),
            output::int(sum3(&self.summary["duplicates_dropped"])),
        )
    }
}

fn sum3(v: &serde_json::Value) -> u64 {
    ["pin", "geo", "user"].iter().map(|k| v[k].as_u64().unwrap_or(0)).sum()
}

fn run_job(data: &Path, scratch: &Path, run_id: &str) -> anyhow::Result<JobRun> {
    run_job_with(data, scratch, run_id, &[])
}

/// [`run_job`] with more arguments for `pinpipe batch`.
fn run_job_with(data: &Path, scratch: &Path, run_id: &str, extra: &[&str]) -> anyhow::Result<JobRun> {
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let out = std::process::Command::new(exe)
        .arg("batch")
        .arg("--data-dir")
        .arg(scratch)
        .arg("--store")
        .arg(format!("file://{}", data.display()))
        .args(["--run-id", run_id, "--quiet"])
        .args(extra)
        .output()?;
    let wall = start.elapsed().as_secs_f64();
    anyhow::ensure!(out.status.success(), "pinpipe batch failed: {}", String::from_utf8_lossy(&out.stderr));
    let path = scratch.join(format!("results/{run_id}/summary.json"));
    let summary = serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| path.display().to_string())?)?;
    Ok(JobRun { wall, summary })
}

/// What `pinpipe bench batch` was asked.
pub struct Options {
    /// Posts in the tables (full scenario: all posts).
    pub posts: u64,
    /// `classic`, `ndjson` or `both`.
    pub layout: String,
    /// Runs per scenario.
    pub runs: u32,
    /// Keep generated data.
    pub keep: bool,
    /// Rows of the source table posts are drawn from (default: `posts`).
    pub source_rows: Option<u64>,
    /// Share of posts that lose their geo or user record.
    pub loss: f64,
    /// New posts of the incremental scenario (none: the full scenario).
    pub new: Option<u64>,
    /// Object formats: `json`, `gzip`, `parquet`, or several separated by commas (the full
    /// scenario then compares reading and cleaning them).
    pub formats: String,
    /// Compare the job in one process with the job on a cluster: `local` (started for the
    /// benchmark) or `df://HOST:PORT`.
    pub cluster: Option<String>,
    /// The cluster runs' `--cluster-questions`.
    pub cluster_questions: Option<String>,
}

/// Runs the benchmark.
pub async fn run(loaded: &Loaded, o: Options) -> anyhow::Result<()> {
    let layouts = match o.layout.as_str() {
        "classic" => vec![Layout::Classic],
        "ndjson" => vec![Layout::Ndjson],
        "both" => vec![Layout::Classic, Layout::Ndjson],
        other => anyhow::bail!("--layout must be classic, ndjson or both, not {other:?}"),
    };
    anyhow::ensure!((0.0..1.0).contains(&o.loss), "--loss must be a share in [0, 1), e.g. 0.01");
    anyhow::ensure!(o.posts > 0, "--posts must be at least 1");
    let source_rows = o.source_rows.unwrap_or(o.posts).max(1);
    let data_root = loaded.config.data_dir.join("bench").join("batch-data");
    let formats = parse_formats(&o.formats)?;
    for layout in layouts {
        let mut compared = Vec::new();
        for &format in &formats {
            let posting = Posting { source_rows, loss: o.loss, layout, format };
            let measured = scenario(loaded, &o, &data_root, posting, source_rows).await?;
            if let Some(m) = measured {
                compared.push((format, m));
            }
        }
        compare_formats(&compared)?;
    }
    Ok(())
}

/// The full (or incremental) scenario on the objects of `posting`; returns the full scenario's
/// medians of read+clean.
async fn scenario(
    loaded: &Loaded,
    o: &Options,
    data_root: &Path,
    posting: Posting,
    source_rows: u64,
) -> anyhow::Result<Option<ReadClean>> {
    let layout = posting.layout;
    let tag =
        format!("{}-{}-{}-rows{}-loss{}", layout.name(), format_name(posting.format), o.posts, source_rows, o.loss);
    let base_dir: PathBuf = data_root.join(&tag);
    let t = Instant::now();
    let base = tokio::task::spawn_blocking({
        let dir = base_dir.clone();
        let posts = o.posts;
        move || generate(&dir, posting, 0, posts)
    })
    .await??;
    line(&format!(
        "bench batch: {} posts drawn from {} source rows ({:.1}% loss), {} layout, {} objects: {} records in {} objects, {} MB (ready in {:.1} s), {} runs",
        output::int(o.posts),
        output::int(source_rows),
        o.loss * 100.0,
        layout.name(),
        format_name(posting.format),
        output::int(base.records),
        output::int(base.objects),
        base.bytes / 1_000_000,
        t.elapsed().as_secs_f64(),
        o.runs
    ))?;
    if let Some(target) = &o.cluster {
        let local = match target.as_str() {
            "local" => Some(cluster::LocalCluster::start(&data_root.join("cluster"), 2)?),
            _ => None,
        };
        let url = local.as_ref().map_or(target.as_str(), |l| l.url.as_str());
        line(&format!("the job in one process against the job on the cluster at {url}"))?;
        cluster::compare(loaded, &base_dir, url, o.cluster_questions.as_deref(), o.runs)?;
        if !o.keep {
            let _ = std::fs::remove_dir_all(&base_dir);
        }
        return Ok(None);
    }
    let measured = match o.new {
        None => Some(full_scenario(loaded, &base_dir, &base, layout, o.posts, o.runs).await?),
        Some(new) => {
            let new_dir = data_root.join(format!("{tag}-new{new}"));
            let posts = o.posts;
            let added = tokio::task::spawn_blocking({
                let dir = new_dir.clone();
                move || generate(&dir, posting, posts, posts + new)
            })
            .await??;
            incremental_scenario(loaded, &base_dir, &new_dir, &added, new, o.runs).await?;
            if !o.keep {
                let _ = std::fs::remove_dir_all(&new_dir);
            }
            None
        }
    };
    if !o.keep {
        let _ = std::fs::remove_dir_all(&base_dir);
    }
    Ok(measured)
}

async fn full_scenario(
    loaded: &Loaded,
    data: &Path,
    d: &Dataset,
    layout: Layout,
    posts: u64,
    runs: u32,
) -> anyhow::Result<ReadClean> {
    let mut rows = Vec::new();
    let mut clean_rows = 0;
    for run in 1..=runs {
        let scratch = super::Scratch::new(loaded, "batch")?;
        let t = Instant::now();
        let read = read_all(data).await?;
        anyhow::ensure!(read == d.bytes, "read {read} bytes, expected {}", d.bytes);
        let baseline = t.elapsed().as_secs_f64();
        let first = run_job(data, &scratch.0, &format!("bench-{run}"))?;
        anyhow::ensure!(sum3(&first.summary["clean_rows"]) > 0, "the job produced no rows: {}", first.summary);
        let noop = run_job(data, &scratch.0, &format!("bench-{run}-noop"))?;
        anyhow::ensure!(
            sum3(&noop.summary["clean_rows"]) == 0,
            "a run without new objects added rows: {}",
            noop.summary
        );
        anyhow::ensure!(
            first.summary["answers"] == noop.summary["answers"],
            "a run without new objects answered differently"
        );
        line(&format!("  run {run}: full {}", first.describe()))?;
        line(&format!(
            "         no new objects: {:.2} s wall, peak {:.0} MiB; baseline read {:.2} s; full/baseline {:.1}x",
            noop.wall,
            noop.peak_mib(),
            baseline,
            first.wall / baseline.max(1e-9)
        ))?;
        rows.push([
            first.wall,
            first.peak_mib(),
            baseline,
            noop.wall,
            noop.peak_mib(),
            first.phase("ingest_s"),
            first.phase("clean_busy_s"),
        ]);
        clean_rows = sum3(&first.summary["clean_rows"]);
    }
    let mut alone = Vec::new();
    for _ in 0..runs {
        let (wall, kept) = read_and_clean_child(data)?;
        anyhow::ensure!(kept == clean_rows, "read+clean alone kept {kept} rows, the job {clean_rows}");
        alone.push(wall);
    }
    let m = |i: usize| median(rows.iter().map(|r| r[i]).collect());
    let goal = match (layout, posts) {
        (Layout::Classic, 11_154) => " (goals: full <= 1.2 s, no new objects <= 0.5 s)",
        (Layout::Ndjson, 1_000_000) => " (goal: full <= 4 s, <= 1024 MiB)",
        (Layout::Ndjson, 10_000_000) => " (goal: full <= 45 s, <= 1536 MiB)",
        _ => "",
    };
    line(&format!(
        "median ({}): full {:.2} s wall, peak {:.0} MiB; no new objects {:.2} s, peak {:.0} MiB; baseline read {:.2} s; full/baseline {:.1}x{goal}",
        layout.name(),
        m(0),
        m(1),
        m(3),
        m(4),
        m(2),
        m(0) / m(2).max(1e-9)
    ))?;
    let alone = median(alone);
    line(&format!(
        "read+clean alone (the job's read module in a process of its own, nothing else running): {alone:.2} s"
    ))?;
    Ok(ReadClean { ingest: m(5), busy: m(6), alone })
}

async fn incremental_scenario(
    loaded: &Loaded,
    base_dir: &Path,
    new_dir: &Path,
    added: &Dataset,
    new: u64,
    runs: u32,
) -> anyhow::Result<()> {
    // The tables of the base posts, built once (not timed) and linked into every run.
    let built = super::Scratch::new(loaded, "batch-base")?;
    let t = Instant::now();
    let base_run = run_job(base_dir, &built.0, "base")?;
    line(&format!(
        "  tables of the base posts built in {:.1} s ({} rows)",
        t.elapsed().as_secs_f64(),
        output::int(sum3(&base_run.summary["table_rows"]))
    ))?;
    let mut rows = Vec::new();
    for run in 1..=runs {
        let scratch = super::Scratch::new(loaded, "batch")?;
        let store = scratch.0.join("store");
        std::fs::create_dir_all(&store)?;
        link_tree(base_dir, &store)?;
        link_tree(new_dir, &store)?;
        let warehouse = scratch.0.join("warehouse");
        std::fs::create_dir_all(&warehouse)?;
        link_tree(&built.0.join("warehouse"), &warehouse)?;
        let t = Instant::now();
        let read = read_all(new_dir).await?;
        anyhow::ensure!(read == added.bytes, "read {read} bytes, expected {}", added.bytes);
        let baseline = t.elapsed().as_secs_f64();
        let job = run_job(&store, &scratch.0, &format!("bench-incremental-{run}"))?;
        anyhow::ensure!(
            sum3(&job.summary["raw_records"]) == added.records,
            "the incremental run read {} records, not the {} new ones",
            job.summary["raw_records"],
            added.records
        );
        line(&format!(
            "  run {run}: {} new posts: {}; baseline read of the new objects {:.2} s",
            output::int(new),
            job.describe(),
            baseline
        ))?;
        rows.push([job.wall, job.peak_mib(), baseline]);
    }
    let m = |i: usize| median(rows.iter().map(|r| r[i]).collect());
    line(&format!(
        "median (incremental, {} new posts): {:.2} s wall, peak {:.0} MiB; baseline read {:.2} s; ratio {:.1}x",
        output::int(new),
        m(0),
        m(1),
        m(2),
        m(0) / m(2).max(1e-9)
    ))?;
    Ok(())
}
