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
use crate::cli::{BatchArgs, UpArgs};
use crate::config::Loaded;
use crate::output::{self, line};

/// Runs `pinpipe up`.
pub async fn run(loaded: &Loaded, args: UpArgs) -> anyhow::Result<()> {
    let r = &loaded.resolved;
    let source: Arc<dyn pinpipe_source::SourceStore> = Arc::from(open_source(loaded).await?);
    prepare_source(source.as_ref(), &args).await?;

    // The log, and the API over it.
    let logs = open_logs(loaded, Access::Owner).await?;
    let describe = logs.describe(loaded);
    let (topics, streams) = (logs.topics, logs.streams);
    let listener = tokio::net::TcpListener::bind(r.api.listen)
        .await
        .with_context(|| format!("cannot listen on {} (another pinpipe? use --listen 127.0.0.1:0)", r.api.listen))?;
    let addr = listener.local_addr()?;
    let api_url = format!("http://{addr}{}", r.api.base_path);
    let state = AppState::with_streams(Arc::clone(&topics), Arc::clone(&streams), r.api.clone());
    let api_stop = CancellationToken::new();
    let api = {
        let stop = api_stop.clone();
        tokio::spawn(async move { pinpipe_api::serve(listener, state, stop.cancelled_owned()).await })
    };
    line(&format!("api: listening on {api_url} ({describe})"))?;

    // The sink, the streaming job and (without --once) the scheduler, following.
    let followers = CancellationToken::new();
    let sink = Arc::new(Sink::new(Arc::clone(&topics), r.store.open()?, r.sink.clone()));
    let job = Arc::new(StreamJob::new(Arc::clone(&streams), r.warehouse.clone(), r.names.clone(), r.stream.clone()));
    let sink_task = {
        let (sink, stop) = (Arc::clone(&sink), followers.clone());
        tokio::spawn(async move { sink.run(pinpipe_sink::Mode::Follow, stop).await })
    };
    let stream_task = {
        let (job, stop) = (Arc::clone(&job), followers.clone());
        tokio::spawn(async move { job.run(pinpipe_stream::Mode::Follow, stop).await })
    };
    let scheduler_task = (!args.once).then(|| {
        let (scheduler, stop) = (super::schedule::scheduler(loaded), followers.clone());
        tokio::spawn(async move { scheduler.run_forever(stop).await })
    });
    line(&format!(
        "sink: topics -> {}; stream: streams -> Delta tables under {}/stream; schedule: {}",
        r.store.url.display(),
        r.warehouse.url.display(),
        if args.once {
            "not started (--once runs the batch job itself)".to_owned()
        } else {
            format!("the batch job at {:?} UTC", r.schedule.expression)
        }
    ))?;

    // The emulator, in both modes, against our own API.
    let user_stop = stop_on_signal();
    let mut emulate = r.emulate.clone();
    emulate.api_url = api_url.clone();
    emulate.mode = pinpipe_emulate::config::Mode::Both;
    let emulator = Arc::new(pinpipe_emulate::Emulator::new(Arc::clone(&source), emulate, r.names.clone())?);
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
    let posted = emulator.run(Some(args.posts), args.seed, user_stop.clone()).await;
    ticker.abort();
    bar.finish_and_clear();
    let posted = posted?;
    super::emulate::print_summary(&posted, &api_url, "both")?;

    if !args.once && !user_stop.is_cancelled() {
        line(&format!("pinpipe up: running (API at {api_url}, sink, streaming job, scheduler); Ctrl-C to stop"))?;
        user_stop.cancelled().await;
    }
    // Stop the followers; each commits what it holds.
    followers.cancel();
    let sink_outcome = sink_task.await.context("the sink task failed")?;
    let stream_outcome = stream_task.await.context("the streaming job task failed")?;
    if let Some(t) = scheduler_task {
        t.await.context("the scheduler task failed")??;
    }
    sink_outcome.context("the sink failed")?;
    stream_outcome.context("the streaming job failed")?;

    let mut runs = vec![sink.snapshot()];
    let mut jobs = vec![job.snapshot()];
    // Drain: everything acknowledged is in the log; the sink and the streaming job take it to
    // the log's end (new topics and streams included), so nothing is left behind.
    api_stop.cancel();
    api.await.context("the API task failed")?.context("the API server failed")?;
    let drain_sink = Sink::new(Arc::clone(&topics), r.store.open()?, r.sink.clone());
    drain_sink.run(pinpipe_sink::Mode::Once, CancellationToken::new()).await.context("the sink failed")?;
    runs.push(drain_sink.snapshot());
    let drain_job = StreamJob::new(Arc::clone(&streams), r.warehouse.clone(), r.names.clone(), r.stream.clone());
    drain_job.run(pinpipe_stream::Mode::Once, CancellationToken::new()).await.context("the streaming job failed")?;
    jobs.push(drain_job.snapshot());
    let mut results = None;
    if args.once {
        let batch = BatchArgs {
            store: None,
            s3_endpoint: None,
            warehouse: None,
            output: None,
            date: None,
            run_id: None,
            no_tables: false,
            full: false,
            memory_limit: None,
            quiet: false,
        };
        results = Some(super::batch::run_job(loaded, &batch).await?);
    }

    // The summary.
    let objects: u64 = runs.iter().flat_map(|s| s.values()).map(|s| s.objects).sum();
    let sink_lag: u64 = runs.last().map_or(0, |s| s.values().map(pinpipe_sink::PartitionStatus::lag).sum());
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
        r.store.url.display(),
        output::int(sink_lag)
    ))?;
    let last = jobs.last().cloned().unwrap_or_default();
    for t in &last {
        let (rows, dead, dups): (u64, u64, u64) = jobs
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
    if posted.failed > 0 {
        anyhow::bail!(
            "{} of {} records were not accepted by the API",
            output::int(posted.failed),
            output::int(posted.records)
        );
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
