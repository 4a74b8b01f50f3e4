//! `pinpipe up`: the whole pipeline in one process on embedded defaults — the source database
//! (generated when missing), the ingestion API on the configured log (embedded; Kafka with
//! `--log kafka://...`; streams on Kinesis when configured), the sink, the streaming job and
//! the scheduler — with the emulator posting `--posts` posts in both modes. With `--once` it then drains everything (sink and streaming
//! job to the log's end), runs the batch job once and prints the answers and a summary; without
//! it, everything keeps running until Ctrl-C, then stops gracefully (the API finishes its
//! requests, the sink and the streaming job commit what they hold).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use pinpipe_api::AppState;
use pinpipe_sink::Sink;
use pinpipe_source::ops;
use pinpipe_stream::StreamJob;
use tokio_util::sync::CancellationToken;

use super::{Access, open_logs, open_source, stop_on_signal};
use crate::cli::UpArgs;
use crate::config::Loaded;
use crate::console::UpStages;
use crate::output::{self, line};

/// Runs `pinpipe up`: start the API and its followers, post, stop, drain, answer, report.
pub async fn run(loaded: &Loaded, args: UpArgs) -> anyhow::Result<()> {
    let source: Arc<dyn pinpipe_source::SourceStore> = Arc::from(open_source(loaded).await?);
    prepare_source(source.as_ref(), &args).await?;
    let api = Api::start(loaded).await?;
    let followers = Followers::start(loaded, &api.logs, args.once)?;
    let stages = followers.observe(loaded, &api.state)?;
    let user_stop = stop_on_signal();
    let posted = post(loaded, source, &api, &stages, &args, &user_stop).await?;
    if !args.once && !user_stop.is_cancelled() {
        line(&format!("pinpipe up: running (API at {}, sink, streaming job, scheduler); Ctrl-C to stop", api.url))?;
        user_stop.cancelled().await;
    }
    let mut done = followers.stop().await?;
    let logs = api.stop().await?;
    drain(loaded, &logs, &mut done).await?;
    let results =
        if args.once { Some(super::batch::run_job(loaded, &super::batch::Run::default()).await?) } else { None };
    print_summary(loaded, &posted, &done, results.as_deref())?;
    if posted.failed > 0 {
        anyhow::bail!(
            "{} of {} records were not accepted by the API",
            output::int(posted.failed),
            output::int(posted.records)
        );
    }
    Ok(())
}

/// The ingestion API, serving in a task, over the logs it owns.
struct Api {
    logs: pinpipe_log::Logs,
    url: String,
    /// Its state: its `/metrics` carries every stage's metrics.
    state: AppState,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Api {
    /// Opens the logs and starts serving on `api.listen`.
    async fn start(loaded: &Loaded) -> anyhow::Result<Api> {
        let r = &loaded.resolved;
        let logs = open_logs(loaded, Access::Owner).await?;
        let listener = tokio::net::TcpListener::bind(r.api.listen).await.with_context(|| {
            format!("cannot listen on {} (another pinpipe? use --listen 127.0.0.1:0)", r.api.listen)
        })?;
        let url = format!("http://{}{}", listener.local_addr()?, r.api.base_path);
        let state = AppState::with_streams(Arc::clone(&logs.topics), Arc::clone(&logs.streams), r.api.clone());
        let stop = CancellationToken::new();
        let task = {
            let (state, stop) = (state.clone(), stop.clone());
            tokio::spawn(async move { pinpipe_api::serve(listener, state, stop.cancelled_owned()).await })
        };
        line(&format!("api: listening on {url} ({})", logs.describe()))?;
        line(&format!("metrics: {url}/metrics (every stage); console: {url}/ui"))?;
        Ok(Api { logs, url, state, stop, task })
    }

    /// Stops serving once the requests in flight are answered; hands back the logs.
    async fn stop(self) -> anyhow::Result<pinpipe_log::Logs> {
        self.stop.cancel();
        self.task.await.context("the API task failed")?.context("the API server failed")?;
        Ok(self.logs)
    }
}

/// The sink, the streaming job and (without `--once`) the scheduler, following the log.
struct Followers {
    sink: Arc<Sink>,
    job: Arc<StreamJob>,
    stop: CancellationToken,
    sink_task: tokio::task::JoinHandle<pinpipe_sink::Result<()>>,
    stream_task: tokio::task::JoinHandle<pinpipe_stream::Result<()>>,
    scheduler_task: Option<tokio::task::JoinHandle<pinpipe_schedule::Result<()>>>,
}

/// What the sink and the streaming job did, run by run (following, then draining).
struct Done {
    sink: Vec<std::collections::BTreeMap<(String, u32), pinpipe_sink::PartitionStatus>>,
    stream: Vec<Vec<pinpipe_stream::TableStatus>>,
}

impl Followers {
    fn start(loaded: &Loaded, logs: &pinpipe_log::Logs, once: bool) -> anyhow::Result<Followers> {
        let r = &loaded.resolved;
        let stop = CancellationToken::new();
        let sink = Arc::new(Sink::new(Arc::clone(&logs.topics), r.store.open()?, r.sink.clone()));
        let job =
            Arc::new(StreamJob::new(Arc::clone(&logs.streams), r.warehouse.clone(), r.names.clone(), r.stream.clone()));
        let sink_task = {
            let (sink, stop) = (Arc::clone(&sink), stop.clone());
            tokio::spawn(async move { sink.run(pinpipe_sink::Mode::Follow, stop).await })
        };
        let stream_task = {
            let (job, stop) = (Arc::clone(&job), stop.clone());
            tokio::spawn(async move { job.run(pinpipe_stream::Mode::Follow, stop).await })
        };
        let scheduler_task = (!once).then(|| {
            let (scheduler, stop) = (super::schedule::scheduler(loaded), stop.clone());
            tokio::spawn(async move { scheduler.run_forever(stop).await })
        });
        line(&format!(
            "sink: topics -> {}; stream: streams -> Delta tables under {}/stream; schedule: {}",
            r.store.url.display(),
            r.warehouse.url.display(),
            if once {
                "not started (--once runs the batch job itself)".to_owned()
            } else {
                format!("the batch job at {:?} UTC", r.schedule.expression)
            }
        ))?;
        Ok(Followers { sink, job, stop, sink_task, stream_task, scheduler_task })
    }

    /// Adds their metrics to the API's `/metrics` and their state to its console (`/ui`).
    fn observe(&self, loaded: &Loaded, api: &AppState) -> anyhow::Result<Arc<UpStages>> {
        use crate::metrics::{BatchMetrics, SchedulerMetrics, SinkMetrics, StreamMetrics};
        let r = &loaded.resolved;
        let metrics = api.metrics();
        metrics.register_collector(Box::new(SinkMetrics(Arc::clone(&self.sink))));
        metrics.register_collector(Box::new(StreamMetrics(Arc::clone(&self.job))));
        metrics.register_collector(Box::new(BatchMetrics { results: r.batch.output.clone() }));
        let schedule = self.scheduler_task.is_some().then(|| {
            let history = super::schedule::scheduler(loaded).history().clone();
            (history, r.schedule.clone())
        });
        if let Some((history, schedule)) = &schedule {
            metrics.register_collector(Box::new(SchedulerMetrics {
                history: history.clone(),
                schedule: schedule.clone(),
            }));
        }
        let stages = Arc::new(UpStages {
            sink: Arc::clone(&self.sink),
            job: Arc::clone(&self.job),
            warehouse: r.warehouse.open()?,
            schedule,
            results: r.batch.output.clone(),
            emulator: std::sync::OnceLock::new(),
        });
        pinpipe_api::console::set_stages(api, Arc::clone(&stages) as Arc<dyn pinpipe_api::console::Stages>);
        Ok(stages)
    }

    /// Stops them; each commits what it holds.
    async fn stop(self) -> anyhow::Result<Done> {
        self.stop.cancel();
        let sink_outcome = self.sink_task.await.context("the sink task failed")?;
        let stream_outcome = self.stream_task.await.context("the streaming job task failed")?;
        if let Some(t) = self.scheduler_task {
            t.await.context("the scheduler task failed")??;
        }
        sink_outcome.context("the sink failed")?;
        stream_outcome.context("the streaming job failed")?;
        Ok(Done { sink: vec![self.sink.snapshot()], stream: vec![self.job.snapshot()] })
    }
}

/// The emulator, in both modes, against our own API, with a progress bar.
async fn post(
    loaded: &Loaded,
    source: Arc<dyn pinpipe_source::SourceStore>,
    api: &Api,
    stages: &UpStages,
    args: &UpArgs,
    stop: &CancellationToken,
) -> anyhow::Result<pinpipe_emulate::Summary> {
    let r = &loaded.resolved;
    let api_url = api.url.as_str();
    let mut emulate = r.emulate.clone();
    emulate.api_url = api_url.to_owned();
    emulate.mode = pinpipe_emulate::config::Mode::Both;
    let emulator = Arc::new(pinpipe_emulate::Emulator::new(source, emulate, r.names.clone())?);
    api.state.metrics().register_collector(Box::new(crate::metrics::EmulatorMetrics(emulator.counters())));
    let _ = stages.emulator.set(emulator.counters());
    let bar = output::bar(args.posts, "posts");
    let ticker = {
        let (bar, counters) = (bar.clone(), emulator.counters());
        tokio::spawn(async move {
            loop {
                bar.set_position(counters.posts.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let posted = emulator.run(Some(args.posts), args.seed, stop.clone()).await;
    ticker.abort();
    bar.finish_and_clear();
    let posted = posted?;
    super::emulate::print_summary(&posted, api_url, "both")?;
    Ok(posted)
}

/// Everything acknowledged is in the log: the sink and the streaming job take it to the log's
/// end (new topics and streams included), so nothing is left behind.
async fn drain(loaded: &Loaded, logs: &pinpipe_log::Logs, done: &mut Done) -> anyhow::Result<()> {
    let r = &loaded.resolved;
    let sink = Sink::new(Arc::clone(&logs.topics), r.store.open()?, r.sink.clone());
    sink.run(pinpipe_sink::Mode::Once, CancellationToken::new()).await.context("the sink failed")?;
    done.sink.push(sink.snapshot());
    let job = StreamJob::new(Arc::clone(&logs.streams), r.warehouse.clone(), r.names.clone(), r.stream.clone());
    job.run(pinpipe_stream::Mode::Once, CancellationToken::new()).await.context("the streaming job failed")?;
    done.stream.push(job.snapshot());
    Ok(())
}

/// Records in, objects out, the stream tables, and where the batch results are.
fn print_summary(
    loaded: &Loaded,
    posted: &pinpipe_emulate::Summary,
    done: &Done,
    results: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let objects: u64 = done.sink.iter().flat_map(|s| s.values()).map(|s| s.objects).sum();
    let sink_lag: u64 = done.sink.last().map_or(0, |s| s.values().map(pinpipe_sink::PartitionStatus::lag).sum());
    line("pinpipe up: summary")?;
    line(&format!(
        "  records in:      {} accepted by the API ({} posts in both modes), {} refused",
        output::int(posted.accepted),
        output::int(posted.posts),
        output::int(posted.failed)
    ))?;
    line(&format!(
        "  objects written: {} under {} (sink lag {})",
        output::int(objects),
        loaded.resolved.store.url.display(),
        output::int(sink_lag)
    ))?;
    for t in done.stream.last().into_iter().flatten() {
        let (rows, dead, dups): (u64, u64, u64) = done
            .stream
            .iter()
            .flatten()
            .filter(|s| s.table == t.table)
            .fold((0, 0, 0), |(r, d, u), s| (r + s.rows, d + s.dead_letters, u + s.duplicates));
        line(&format!(
            "  stream table {}: {} rows appended, {} duplicates dropped, {} dead letters, lag {} ({})",
            t.table,
            output::int(rows),
            output::int(dups),
            output::int(dead),
            t.lag().map_or_else(|| "unknown".to_owned(), output::int),
            t.location
        ))?;
    }
    if let Some(dir) = results {
        line(&format!("  batch results:   {}", dir.display()))?;
        line(&format!("  report:          {}", dir.join("report.html").display()))?;
    }
    Ok(())
}

/// Generates the source database when it is missing or empty; reuses it otherwise.
async fn prepare_source(store: &dyn pinpipe_source::SourceStore, args: &UpArgs) -> anyhow::Result<()> {
    let existing = if store.tables_exist().await? { store.counts().await?.pinterest_data } else { 0 };
    if existing == 0 {
        let bar = output::bar(args.source_rows, "posts");
        let report = ops::generate(store, args.source_rows, args.seed, false, |n| bar.set_position(n)).await;
        bar.finish_and_clear();
        let report = report?;
        line(&format!(
            "source: generated {} posts into {} ({} posts/s)",
            output::int(report.rows),
            store.target(),
            output::int(report.rows_per_sec() as u64)
        ))?;
    } else {
        line(&format!("source: {} holds {} posts (reused)", store.target(), output::int(existing)))?;
    }
    Ok(())
}
