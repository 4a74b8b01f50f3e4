//! The emulation loop: workers take post numbers from a shared counter, read the rows, send them,
//! and add what happened to shared counters that the caller can watch (progress) and that end up
//! in the [`Summary`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pinpipe_model::{Kind, Names, Post};
use pinpipe_source::SourceStore;
use pinpipe_source::ops::KeyRange;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::client::{Client, Outcome};
use crate::config::{Mode, Resolved};
use crate::{Error, Result};

const JSON_V2: &str = "application/vnd.kafka.json.v2+json";
const JSON: &str = "application/json";

/// Failures of one kind (e.g. `HTTP 403`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failures {
    /// Records that failed this way.
    pub records: u64,
    /// The first message seen.
    pub example: String,
}

/// Live counters of a run.
#[derive(Debug, Default)]
pub struct Counters {
    /// Posts whose requests all finished.
    pub posts: AtomicU64,
    /// Records sent.
    pub records: AtomicU64,
    /// Records accepted.
    pub accepted: AtomicU64,
    /// Records not accepted.
    pub failed: AtomicU64,
    /// Failed records by reason.
    pub failures: Mutex<BTreeMap<String, Failures>>,
    /// Time of each request, sent to answered (retries included).
    pub latency: Mutex<pinpipe_model::histogram::Histogram>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Posts done.
    pub posts: u64,
    /// Records sent.
    pub records: u64,
    /// Records accepted.
    pub accepted: u64,
    /// Records not accepted.
    pub failed: u64,
    /// Failed records by reason.
    pub failures: BTreeMap<String, Failures>,
    /// Wall time.
    pub elapsed: Duration,
    /// Whether the run was stopped before its count.
    pub interrupted: bool,
}

impl Summary {
    /// Posts per second.
    pub fn posts_per_sec(&self) -> f64 {
        self.posts as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The emulator.
pub struct Emulator {
    source: Arc<dyn SourceStore>,
    client: Client,
    config: Resolved,
    names: Names,
    counters: Arc<Counters>,
}

/// The row of post number `i` of a run with `seed`.
fn post_rng(seed: u64, i: u64) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17))
}

impl Emulator {
    /// An emulator reading `source` and posting to the API of `config`.
    pub fn new(source: Arc<dyn SourceStore>, config: Resolved, names: Names) -> Result<Self> {
        let client = Client::new(&config.api_url, config.timeout, config.retries, config.api_key.as_deref())
            .map_err(|source| Error::Client { url: config.api_url.clone(), source })?;
        Ok(Emulator { source, client, config, names, counters: Arc::default() })
    }

    /// Live counters (for a progress display).
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Posts `count` posts (until `stop` when `None`), post i being row `random(seed, i)`.
    pub async fn run(self: &Arc<Self>, count: Option<u64>, seed: u64, stop: CancellationToken) -> Result<Summary> {
        let range = KeyRange::of(&*self.source).await?;
        let start = Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        let mut workers = tokio::task::JoinSet::new();
        if let Some(range) = range {
            for w in 0..self.config.concurrency {
                let (me, next, stop) = (Arc::clone(self), Arc::clone(&next), stop.clone());
                workers.spawn(async move { me.worker(w as u64, range, count, seed, next, start, stop).await });
            }
        }
        let mut error = None;
        while let Some(done) = workers.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    stop.cancel();
                    error.get_or_insert(e);
                }
                Err(e) => {
                    stop.cancel();
                    error.get_or_insert(Error::Task(e.to_string()));
                }
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        let c = &self.counters;
        let posts = c.posts.load(Ordering::Relaxed);
        Ok(Summary {
            posts,
            records: c.records.load(Ordering::Relaxed),
            accepted: c.accepted.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            failures: c.failures.lock().map(|f| f.clone()).unwrap_or_default(),
            elapsed: start.elapsed(),
            interrupted: count.is_some_and(|n| posts < n),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn worker(
        &self,
        w: u64,
        range: KeyRange,
        count: Option<u64>,
        seed: u64,
        next: Arc<AtomicU64>,
        start: Instant,
        stop: CancellationToken,
    ) -> Result<()> {
        let batch = self.config.batch_size as u64;
        let mut think = Pcg64Mcg::seed_from_u64(seed ^ w ^ 0x5EED);
        loop {
            if stop.is_cancelled() {
                return Ok(());
            }
            let first = next.fetch_add(batch, Ordering::Relaxed);
            let last = match count {
                Some(n) if first >= n => return Ok(()),
                Some(n) => (first + batch).min(n),
                None => first + batch,
            };
            if let Some(rate) = self.config.rate {
                let due = start + Duration::from_secs_f64(first as f64 / rate);
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep_until(due.into()) => {}
                }
            }
            let mut posts = Vec::with_capacity((last - first) as usize);
            for i in first..last {
                let mut rng = post_rng(seed, i);
                if let Some(p) = range.random_post(&*self.source, &mut rng).await? {
                    posts.push(p);
                }
            }
            self.send(&posts, &stop).await;
            self.counters.posts.fetch_add(posts.len() as u64, Ordering::Relaxed);
            if self.config.think_time {
                let pause = Duration::from_secs_f64(think.random::<f64>());
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }

    /// Sends the three records of each post to the topics and/or streams.
    async fn send(&self, posts: &[Post], stop: &CancellationToken) {
        let mut requests = Vec::new();
        for kind in Kind::ALL {
            let values: Vec<Value> = posts.iter().map(|p| p.json(kind)).collect();
            if matches!(self.config.mode, Mode::Batch | Mode::Both) {
                let records: Vec<Value> = values.iter().map(|v| json!({ "value": v })).collect();
                let body = Bytes::from(json!({ "records": records }).to_string());
                requests.push((reqwest::Method::POST, format!("/topics/{}", self.names.topic(kind)), JSON_V2, body));
            }
            if matches!(self.config.mode, Mode::Stream | Mode::Both) {
                let stream = self.names.stream(kind);
                let keys = posts.iter().map(|p| p.pin.index.to_string());
                let (path, body) = if posts.len() == 1 {
                    let body = json!({ "StreamName": stream, "Data": values[0], "PartitionKey": keys.clone().next() });
                    (format!("/streams/{stream}/record"), body)
                } else {
                    let records: Vec<Value> =
                        values.iter().zip(keys).map(|(v, k)| json!({ "data": v, "partition-key": k })).collect();
                    (format!("/streams/{stream}/records"), json!({ "records": records }))
                };
                requests.push((reqwest::Method::PUT, path, JSON, Bytes::from(body.to_string())));
            }
        }
        let n = posts.len() as u64;
        let sends = requests.into_iter().map(|(method, path, ct, body)| async move {
            let started = std::time::Instant::now();
            let outcome = self.client.send(method, &path, ct, body, n, stop).await;
            (outcome, started.elapsed())
        });
        for (outcome, took) in futures_util::future::join_all(sends).await {
            self.record(n, &outcome);
            if let Ok(mut h) = self.counters.latency.lock() {
                h.observe(took);
            }
        }
    }

    fn record(&self, sent: u64, o: &Outcome) {
        let c = &self.counters;
        c.records.fetch_add(sent, Ordering::Relaxed);
        c.accepted.fetch_add(o.accepted, Ordering::Relaxed);
        c.failed.fetch_add(o.failed, Ordering::Relaxed);
        if let Some((key, message)) = &o.failure
            && let Ok(mut f) = c.failures.lock()
        {
            let entry = f.entry(key.clone()).or_default();
            entry.records += o.failed;
            if entry.example.is_empty() {
                entry.example.clone_from(message);
            }
        }
    }
}
