//! `pinpipe batch`: runs the batch job once over the raw objects of the store, with a progress
//! bar on long runs, then prints the answers, where everything was written, and the summary.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use pinpipe_batch::read::ReadProgress;
use pinpipe_batch::{Job, output::text_table};

use crate::cli::BatchArgs;
use crate::config::Loaded;
use crate::output::{self, line};

/// One run of the batch job, as the command line, the scheduler and `pinpipe up` ask for it.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// The logical date that names the run folder (`None`: the time now).
    pub date: Option<chrono::NaiveDate>,
    /// The run folder's id.
    pub run_id: Option<String>,
    /// Rebuild the tables from every object instead of ingesting the new ones.
    pub full: bool,
    /// Print the summary only, not the answers.
    pub quiet: bool,
}

impl Run {
    /// The run `pinpipe batch` asks for.
    fn from_args(args: &BatchArgs) -> anyhow::Result<Run> {
        let date = args
            .date
            .as_deref()
            .map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d"))
            .transpose()
            .context("--date must be a date as YYYY-MM-DD, e.g. --date 2026-11-24")?;
        Ok(Run { date, run_id: args.run_id.clone(), full: args.full, quiet: args.quiet })
    }
}

/// Runs `pinpipe batch`.
pub async fn run(loaded: &Loaded, args: BatchArgs) -> anyhow::Result<()> {
    run_job(loaded, &Run::from_args(&args)?).await.map(|_| ())
}

/// The run folder: named by the date and run id, or after the time (then never another run's:
/// two runs in one second get `-2`, `-3`, ...).
fn run_dir(output: &std::path::Path, run: &Run) -> anyhow::Result<std::path::PathBuf> {
    let folder = pinpipe_batch::run_folder(run.date, run.run_id.as_deref(), chrono::Utc::now())
        .map_err(|e| anyhow::anyhow!("--run-id: {e}"))?;
    let mut dir = output.join(&folder);
    if run.date.is_none() && run.run_id.is_none() {
        let mut n = 2;
        while dir.exists() {
            dir = output.join(format!("{folder}-{n}"));
            n += 1;
        }
    }
    Ok(dir)
}

/// Runs the job and prints its results; returns the run folder.
pub async fn run_job(loaded: &Loaded, run: &Run) -> anyhow::Result<std::path::PathBuf> {
    let r = &loaded.resolved;
    let run_dir = run_dir(&r.batch.output, run)?;
    let input = r.store.open()?;
    let reader = match &r.cluster {
        Some(scheduler) => {
            let reader = pinpipe_cluster::ClusterReader::new(
                scheduler.clone(),
                &r.store,
                &r.warehouse,
                pinpipe_batch::read::requests_per_unit(r.batch.read_concurrency),
                r.batch.memory_limit,
            )?;
            reader.check().await?;
            Some(Arc::new(reader) as Arc<dyn pinpipe_batch::read::Reader>)
        }
        None => None,
    };
    let progress = Arc::new(ReadProgress::default());
    let job = Job {
        names: r.names.clone(),
        input,
        warehouse: r.batch.write_tables.then(|| r.warehouse.clone()),
        run_dir: run_dir.clone(),
        read_concurrency: r.batch.read_concurrency,
        full: run.full,
        memory_limit: r.batch.memory_limit,
        spill_dir: r.batch.spill_dir.clone(),
        progress: Arc::clone(&progress),
        reader,
        cluster_questions: r.batch.cluster_questions,
    };
    let bar_task = tokio::spawn(show_progress(progress));
    let outcome = pinpipe_batch::run(&job).await;
    bar_task.abort();
    let outcome = outcome?;
    print_outcome(&outcome, &run_dir, run.quiet)?;
    Ok(run_dir)
}

/// Prints the answers (unless `quiet`), what the run did, and where everything went.
fn print_outcome(outcome: &pinpipe_batch::Outcome, run_dir: &std::path::Path, quiet: bool) -> anyhow::Result<()> {
    let s = &outcome.summary;
    if !quiet {
        for (q, table) in &outcome.answers {
            line(&format!("{}. {}", q.id, q.title))?;
            line(&text_table(table))?;
        }
    }
    let per = |p: &pinpipe_batch::PerKind| {
        format!("pin {}, geo {}, user {}", output::int(p.pin), output::int(p.geo), output::int(p.user))
    };
    line(&format!(
        "batch ({}): {} new objects ({} MB) from {} in {:.2} s",
        s.mode,
        output::int(s.objects.total()),
        s.bytes / 1_000_000,
        s.input,
        s.phases.total_s
    ))?;
    if s.read_on != "this process" {
        line(&format!("  read, cleaned and written on {}", s.read_on))?;
    }
    if s.questions_on != "this process" {
        line(&format!("  questions' aggregates computed on {}", s.questions_on))?;
    }
    line(&format!("  raw records:        {}", per(&s.raw_records)))?;
    line(&format!("  rows added:         {}", per(&s.clean_rows)))?;
    line(&format!("  duplicates dropped: {}", per(&s.duplicates_dropped)))?;
    line(&format!("  dead letters:       {}", per(&s.dead_letters)))?;
    line(&format!("  rows in the tables: {}", per(&s.table_rows)))?;
    for (name, t) in &s.tables {
        let what = if t.committed { "committed" } else { "unchanged" };
        line(&format!("  table {name}: {} (version {}, {what})", t.url, t.version))?;
    }
    let ph = &s.phases;
    line(&format!(
        "  phases: ingest {:.2} s (busy: clean {:.2} s, dedup {:.2} s, write {:.2} s), queries {:.2} s, outputs {:.2} s",
        ph.ingest_s, ph.clean_busy_s, ph.dedup_busy_s, ph.write_busy_s, ph.queries_s, ph.outputs_s
    ))?;
    line(&format!("  results: {}", run_dir.display()))?;
    line(&format!("  report:  {}", run_dir.join("report.html").display()))?;
    if s.dead_letters.total() > 0 {
        line(&format!("  dead letters: {}", run_dir.join("dead_letters.jsonl").display()))?;
    }
    Ok(())
}

/// A bar over bytes read, shown once the run has taken a second (short runs stay quiet).
async fn show_progress(p: Arc<ReadProgress>) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bar = output::bar(p.bytes_total.load(Ordering::Relaxed), "bytes");
    loop {
        bar.set_length(p.bytes_total.load(Ordering::Relaxed));
        bar.set_position(p.bytes_done.load(Ordering::Relaxed));
        if p.bytes_done.load(Ordering::Relaxed) >= p.bytes_total.load(Ordering::Relaxed) {
            bar.finish_and_clear();
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
