//! `pinpipe schedule`: the batch job on a schedule (or once with `--trigger-now`) with the
//! classic DAG's policy; `pinpipe runs`: the run history. State lives in `<data_dir>/schedule`.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use pinpipe_schedule::{Outcome, RunSpec, Scheduler, Task};

use super::stop_on_signal;
use crate::cli::{RunsArgs, ScheduleArgs};
use crate::config::Loaded;
use crate::output::line;

/// The batch job as the scheduler's task.
struct BatchTask {
    loaded: Arc<Loaded>,
}

#[async_trait]
impl Task for BatchTask {
    async fn run(&self, spec: &RunSpec, attempt: u32) -> Result<String, String> {
        // The run folder: <logical date>_<trigger>-<time>, the same for every attempt of a run.
        let id = spec.run_id.replace("__", "-").replace(':', "");
        let run = super::batch::Run { date: Some(spec.logical_date), run_id: Some(id), full: false, quiet: true };
        line(&format!("schedule: {} (logical date {}), attempt {attempt}", spec.run_id, spec.logical_date))
            .map_err(|e| e.to_string())?;
        super::batch::run_job(&self.loaded, &run)
            .await
            .map(|dir| dir.display().to_string())
            .map_err(|e| format!("{e:#}"))
    }
}

/// The scheduler of the batch job, with its state in `<data_dir>/schedule`.
pub fn scheduler(loaded: &Loaded) -> Scheduler {
    let dir = loaded.config.data_dir.join("schedule");
    let task = Arc::new(BatchTask { loaded: Arc::new(loaded.clone()) });
    Scheduler::new(loaded.resolved.schedule.clone(), &dir, task)
}

/// Runs the scheduler, or one run.
pub async fn run(loaded: &Loaded, args: ScheduleArgs) -> anyhow::Result<()> {
    let config = loaded.resolved.schedule.clone();
    let scheduler = scheduler(loaded);
    let stop = stop_on_signal();
    if args.trigger_now {
        let spec = RunSpec::manual(chrono::Utc::now());
        line(&format!(
            "schedule: triggering {} now ({} retries, {:?} apart)",
            spec.run_id, config.retries, config.retry_delay
        ))?;
        return match scheduler.run_once(&spec, &stop).await? {
            Outcome::Success => line(&format!(
                "schedule: {} succeeded; history in {}",
                spec.run_id,
                scheduler.history().path().display()
            )),
            _ => anyhow::bail!(
                "{} failed after {} attempts; see `pinpipe runs` for each attempt's error",
                spec.run_id,
                config.retries + 1
            ),
        };
    }
    let _metrics = crate::metrics::listen(
        args.metrics_listen,
        vec![
            Box::new(crate::metrics::SchedulerMetrics {
                history: scheduler.history().clone(),
                schedule: config.clone(),
            }),
            Box::new(crate::metrics::BatchMetrics { results: loaded.resolved.batch.output.clone() }),
        ],
    )
    .await?;
    line(&format!(
        "schedule: the batch job at {:?} (UTC), {} retries {:?} apart, no catch-up, one run at a time; history in {}",
        config.expression,
        config.retries,
        config.retry_delay,
        scheduler.history().path().display()
    ))?;
    scheduler.run_forever(stop).await.context("the scheduler stopped")?;
    line("schedule: stopped")
}

/// Lists the history.
pub fn runs(loaded: &Loaded, args: &RunsArgs) -> anyhow::Result<()> {
    let history = pinpipe_schedule::History::new(&loaded.config.data_dir.join("schedule"));
    let all = history.list()?;
    let shown = &all[all.len().saturating_sub(args.limit.unwrap_or(usize::MAX))..];
    if args.json {
        for r in shown {
            line(&serde_json::to_string(r)?)?;
        }
        return Ok(());
    }
    if shown.is_empty() {
        return line(&format!("no runs yet ({} does not list any)", history.path().display()));
    }
    line(&format!(
        "{:<36} {:<10} {:>7} {:<9} {:<24} {:<24} detail",
        "run", "date", "attempt", "outcome", "start", "end"
    ))?;
    for r in shown {
        let outcome = match r.outcome {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        };
        let detail = r.output.as_deref().or(r.error.as_deref()).unwrap_or("");
        line(&format!(
            "{:<36} {:<10} {:>7} {:<9} {:<24} {:<24} {}",
            r.run_id, r.logical_date, r.attempt, outcome, r.start, r.end, detail
        ))?;
    }
    Ok(())
}
