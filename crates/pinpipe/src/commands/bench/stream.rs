//! `pinpipe bench stream`: the streaming job, in one process with the API (on loopback) and the
//! embedded log.
//!
//! * Latency: records are PUT to the three streams at a fixed total rate; for every record, the
//!   time from the API's acknowledgement (the client receiving the response) to the Delta commit
//!   that made its row visible. Baseline: the acknowledgement round trip itself.
//! * Throughput: the job draining a backlog of posts (`--once`), against reading the same
//!   backlog from the log alone (the job cannot be faster than its input).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use pinpipe_log::embedded::EmbeddedLog;
use pinpipe_log::partitioner::parse_sequence_number;
use pinpipe_log::{Log, LogConfig, OffsetLog, ReadLimits, Record, TopicKind};
use pinpipe_model::{Kind, Names};
use pinpipe_store::StoreConfig;
use pinpipe_stream::{Mode, StreamConfig, StreamJob};
use tokio_util::sync::CancellationToken;

use super::{Scratch, median};
use crate::config::Loaded;
use crate::output::{self, line};

/// Shards per stream.
const SHARDS: u32 = 2;
/// Records acknowledged in the first seconds are not measured (table creation, warm-up).
const WARMUP: Duration = Duration::from_secs(2);
/// Requests per second per stream.
const REQUESTS_PER_SEC: f64 = 100.0;

type Key = (Kind, u32, u64);

/// Raw records of `kind` for posts `0..n`.
fn values(kind: Kind, n: u64) -> Vec<Bytes> {
    let g = pinpipe_source::Generator::new(7, n);
    (0..n).map(|i| Bytes::from(g.post(i as i64).json(kind).to_string())).collect()
}

fn names() -> anyhow::Result<Names> {
    Ok(Names::new(pinpipe_model::names::DEFAULT_PREFIX)?)
}

fn stream_config(trigger: &str) -> anyhow::Result<pinpipe_stream::config::Resolved> {
    StreamConfig { trigger_interval: trigger.to_owned(), ..Default::default() }
        .validate()
        .map_err(|(k, m)| anyhow::anyhow!("{k}: {m}"))
}

async fn open_log(dir: &std::path::Path) -> anyhow::Result<Arc<dyn OffsetLog>> {
    let config = LogConfig::default().validate(dir).map_err(|(k, m)| anyhow::anyhow!("{k}: {m}"))?;
    let log: Arc<dyn OffsetLog> = Arc::new(EmbeddedLog::open(&config)?);
    let names = names()?;
    for kind in Kind::ALL {
        log.create_topic(&names.stream(kind), TopicKind::Stream, SHARDS).await?;
    }
    Ok(log)
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// One stream's producer: `per_sec` records per second in requests of a few records, on one
/// keep-alive connection; records the acknowledgement time of every record.
async fn produce(
    addr: SocketAddr,
    kind: Kind,
    per_sec: f64,
    until: Instant,
    acks: Arc<Mutex<HashMap<Key, Instant>>>,
) -> anyhow::Result<Vec<Duration>> {
    let names = names()?;
    let stream = names.stream(kind);
    let pool = values(kind, 5_000);
    let tcp = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    tcp.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let start = Instant::now();
    let (mut sent, mut round_trips, mut n) = (0u64, Vec::new(), 0u64);
    while Instant::now() < until {
        n += 1;
        let at = start + Duration::from_secs_f64(n as f64 / REQUESTS_PER_SEC);
        tokio::time::sleep_until(at.into()).await;
        let due = (at - start).as_secs_f64() * per_sec;
        let count = (due as u64).saturating_sub(sent);
        if count == 0 {
            continue;
        }
        let mut body = String::from("{\"records\":[");
        for i in 0..count {
            if i > 0 {
                body.push(',');
            }
            let v = &pool[((sent + i) % pool.len() as u64) as usize];
            body.push_str(&format!("{{\"data\":{},\"partition-key\":\"{}\"}}", String::from_utf8_lossy(v), sent + i));
        }
        body.push_str("]}");
        sent += count;
        let req = Request::builder()
            .method("PUT")
            .uri(format!("/streams/{stream}/records"))
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        sender.ready().await?;
        let t0 = Instant::now();
        let resp = sender.send_request(req).await?;
        anyhow::ensure!(resp.status().is_success(), "PUT records: {}", resp.status());
        let bytes = resp.into_body().collect().await?.to_bytes();
        let acked = Instant::now();
        round_trips.push(acked - t0);
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        let mut acks = acks.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        for r in v["Records"].as_array().into_iter().flatten() {
            if let Some((p, offset)) = r["SequenceNumber"].as_str().and_then(parse_sequence_number) {
                acks.insert((kind, p, offset), acked);
            }
        }
    }
    Ok(round_trips)
}

struct LatencyRun {
    records: u64,
    rate: f64,
    latencies: Vec<Duration>,
    round_trips: Vec<Duration>,
    batches: u64,
}

async fn latency_run(
    loaded: &Loaded,
    rate: f64,
    seconds: u64,
    trigger: &str,
    with_console: bool,
) -> anyhow::Result<LatencyRun> {
    let scratch = Scratch::new(loaded, "stream")?;
    let log = open_log(&scratch.0).await?;
    let api = pinpipe_api::ApiConfig::default().validate(SHARDS).map_err(|(k, m)| anyhow::anyhow!("{k}: {m}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop_api = CancellationToken::new();
    let state = pinpipe_api::AppState::new(Arc::clone(&log), api);
    let server = {
        let (stop, state) = (stop_api.clone(), state.clone());
        tokio::spawn(async move { pinpipe_api::serve(listener, state, async move { stop.cancelled().await }).await })
    };
    let warehouse = StoreConfig::default().validate_or(scratch.0.join("warehouse"))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let job = Arc::new(
        StreamJob::new(Arc::clone(&log) as Arc<dyn Log>, warehouse, names()?, stream_config(trigger)?)
            .with_commit_events(tx),
    );
    pinpipe_api::console::set_stages(&state, Arc::new(crate::console::JobStages(Arc::clone(&job))));
    let poller = with_console.then(|| super::console::poll(addr));
    let stop_job = CancellationToken::new();
    let running = {
        let (job, stop) = (Arc::clone(&job), stop_job.clone());
        tokio::spawn(async move { job.run(Mode::Follow, stop).await })
    };
    let names = names()?;
    let kind_of: HashMap<String, Kind> = Kind::ALL.into_iter().map(|k| (names.stream(k), k)).collect();
    let commits: Arc<Mutex<HashMap<Key, Instant>>> = Arc::default();
    let collector = {
        let commits = Arc::clone(&commits);
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let Some(&kind) = kind_of.get(&e.stream) else { continue };
                if let Ok(mut c) = commits.lock() {
                    for r in &e.offsets {
                        let (Some(from), Some(to)) = (r.from.offset(), r.to) else { continue };
                        for o in from..to {
                            c.insert((kind, r.partition, o), e.at);
                        }
                    }
                }
            }
        })
    };

    let started = Instant::now();
    let until = started + WARMUP + Duration::from_secs(seconds);
    let acks: Arc<Mutex<HashMap<Key, Instant>>> = Arc::default();
    let producers: Vec<_> =
        Kind::ALL.into_iter().map(|k| tokio::spawn(produce(addr, k, rate / 3.0, until, Arc::clone(&acks)))).collect();
    let mut round_trips = Vec::new();
    for p in producers {
        round_trips.extend(p.await??);
    }
    let sent_secs = started.elapsed().as_secs_f64();
    // Wait until every acknowledged record is committed (or give up after 60 s).
    let all_acked: Vec<Key> = acks.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.keys().copied().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = commits.lock().map(|c| all_acked.iter().all(|k| c.contains_key(k))).unwrap_or(false);
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(poller);
    stop_job.cancel();
    running.await??;
    stop_api.cancel();
    server.await??;
    collector.abort();
    let acks = acks.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let commits = commits.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let missing = acks.keys().filter(|k| !commits.contains_key(k)).count();
    anyhow::ensure!(missing == 0, "{missing} acknowledged records were not committed within 60 s");
    let measure_from = started + WARMUP;
    let mut latencies: Vec<Duration> = acks
        .iter()
        .filter(|&(_, &acked)| acked >= measure_from)
        .map(|(k, &acked)| commits[k].saturating_duration_since(acked))
        .collect();
    latencies.sort_unstable();
    round_trips.sort_unstable();
    let batches = job.snapshot().iter().map(|s| s.batches).sum();
    Ok(LatencyRun { records: acks.len() as u64, rate: acks.len() as f64 / sent_secs, latencies, round_trips, batches })
}

/// Drains `posts` posts (three records each) with the job; returns (baseline, job) records/s.
async fn throughput_run(loaded: &Loaded, posts: u64) -> anyhow::Result<(f64, f64)> {
    let scratch = Scratch::new(loaded, "stream-drain")?;
    let log = open_log(&scratch.0).await?;
    let names = names()?;
    for kind in Kind::ALL {
        let v = values(kind, posts);
        for (p, chunk) in v.chunks(1000).enumerate() {
            let records = chunk.iter().map(|v| Record::value(v.clone())).collect();
            log.append(&names.stream(kind), p as u32 % SHARDS, records).await?;
        }
    }
    let total = posts * 3;
    // Baseline: read every record.
    let start = Instant::now();
    let mut read = 0u64;
    for kind in Kind::ALL {
        for o in log.offsets(&names.stream(kind)).await? {
            let mut at = o.start;
            while at < o.end {
                let got = log.read(&names.stream(kind), o.partition, at, ReadLimits::default()).await?;
                let Some(last) = got.last() else { break };
                at = last.offset + 1;
                read += got.len() as u64;
            }
        }
    }
    anyhow::ensure!(read == total, "read {read} of {total} records");
    let baseline = total as f64 / start.elapsed().as_secs_f64();
    let warehouse = StoreConfig::default().validate_or(scratch.0.join("warehouse"))?;
    let job = StreamJob::new(log, warehouse, names, stream_config("1s")?);
    let start = Instant::now();
    job.run(Mode::Once, CancellationToken::new()).await?;
    let rate = total as f64 / start.elapsed().as_secs_f64();
    let done: u64 = job.snapshot().iter().map(|s| s.records).sum();
    anyhow::ensure!(done == total, "the job read {done} of {total} records");
    Ok((baseline, rate))
}

/// Runs the benchmark.
pub async fn run(
    loaded: &Loaded,
    rate: u64,
    seconds: u64,
    backlog: u64,
    runs: u32,
    trigger: Option<String>,
    with_console: bool,
) -> anyhow::Result<()> {
    let trigger = trigger.unwrap_or_else(|| loaded.config.stream.trigger_interval.clone());
    line(&format!(
        "bench stream: {} records/s over 3 streams for {seconds} s (after {} s warm-up), trigger {trigger}; \
         then draining {} posts; {runs} runs",
        output::int(rate),
        WARMUP.as_secs(),
        output::int(backlog)
    ))?;
    let (mut p50s, mut p99s, mut rt50s, mut rt99s, mut bases, mut drains) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut console: Vec<(f64, f64)> = Vec::new();
    for run in 1..=runs {
        let l = latency_run(loaded, rate as f64, seconds, &trigger, false).await?;
        let (p50, p99, max) = (quantile(&l.latencies, 0.5), quantile(&l.latencies, 0.99), quantile(&l.latencies, 1.0));
        let (rt50, rt99) = (quantile(&l.round_trips, 0.5), quantile(&l.round_trips, 0.99));
        line(&format!(
            "  run {run}: {} records at {} records/s in {} micro-batches; ack -> visible in Delta p50 {} p99 {} max {}; \
             ack round trip p50 {} p99 {}",
            output::int(l.records),
            output::int(l.rate as u64),
            output::int(l.batches),
            ms(p50),
            ms(p99),
            ms(max),
            ms(rt50),
            ms(rt99)
        ))?;
        let (base, drain) = throughput_run(loaded, backlog).await?;
        line(&format!(
            "  run {run}: draining {} records: log read alone {} records/s; streaming job {} records/s (ratio {:.2})",
            output::int(backlog * 3),
            output::int(base as u64),
            output::int(drain as u64),
            drain / base.max(1e-9)
        ))?;
        if with_console {
            let c = latency_run(loaded, rate as f64, seconds, &trigger, true).await?;
            let (c50, c99) = (quantile(&c.latencies, 0.5), quantile(&c.latencies, 0.99));
            line(&format!("  run {run}: with a /ui page polling: ack -> visible p50 {} p99 {}", ms(c50), ms(c99)))?;
            console.push((c50.as_secs_f64(), c99.as_secs_f64()));
        }
        p50s.push(p50.as_secs_f64());
        p99s.push(p99.as_secs_f64());
        rt50s.push(rt50.as_secs_f64());
        rt99s.push(rt99.as_secs_f64());
        bases.push(base);
        drains.push(drain);
    }
    let secs = |v: Vec<f64>| ms(Duration::from_secs_f64(median(v)));
    let (b, d) = (median(bases), median(drains));
    line(&format!(
        "median: ack -> visible p50 {} p99 {} (ack round trip p50 {} p99 {}); max throughput {} records/s \
         (log read alone {} records/s, ratio {:.2})",
        secs(p50s),
        secs(p99s),
        secs(rt50s),
        secs(rt99s),
        output::int(d as u64),
        output::int(b as u64),
        d / b.max(1e-9)
    ))?;
    if !console.is_empty() {
        line(&format!(
            "console: with a /ui page polling, ack -> visible p50 {} p99 {}",
            secs(console.iter().map(|c| c.0).collect()),
            secs(console.iter().map(|c| c.1).collect())
        ))?;
    }
    Ok(())
}
