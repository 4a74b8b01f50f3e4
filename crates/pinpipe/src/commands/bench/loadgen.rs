//! A small HTTP/1.1 load generator: C workers, each with its own keep-alive connection, sending
//! one request after another for a fixed time and recording every latency.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

/// One kind of request to repeat.
#[derive(Clone)]
pub struct Scenario {
    /// Method.
    pub method: hyper::Method,
    /// Path (with query).
    pub path: String,
    /// Content type, if any.
    pub content_type: Option<&'static str>,
    /// Body.
    pub body: Bytes,
    /// Concurrent connections.
    pub concurrency: usize,
    /// How long to send (after a short warm-up).
    pub duration: Duration,
}

/// What a scenario measured.
pub struct Outcome {
    /// Successful requests.
    pub ok: u64,
    /// Failed requests (non-2xx or transport errors).
    pub failed: u64,
    /// Wall time of the measured part.
    pub elapsed: Duration,
    /// Sorted latencies of the successful requests.
    pub latencies: Vec<Duration>,
}

impl Outcome {
    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile of latency (nearest rank).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[i]
    }
}

const WARMUP: Duration = Duration::from_millis(500);

/// Runs a scenario against `addr`.
pub async fn run(addr: SocketAddr, s: &Scenario) -> anyhow::Result<Outcome> {
    let start_measuring = Instant::now() + WARMUP;
    let deadline = start_measuring + s.duration;
    let mut workers = Vec::with_capacity(s.concurrency);
    for _ in 0..s.concurrency {
        let s = s.clone();
        workers.push(tokio::spawn(async move { worker(addr, s, start_measuring, deadline).await }));
    }
    let mut out = Outcome { ok: 0, failed: 0, elapsed: s.duration, latencies: Vec::new() };
    for w in workers {
        let (ok, failed, lat) = w.await??;
        out.ok += ok;
        out.failed += failed;
        out.latencies.extend(lat);
    }
    out.latencies.sort_unstable();
    Ok(out)
}

async fn worker(
    addr: SocketAddr,
    s: Scenario,
    start: Instant,
    deadline: Instant,
) -> anyhow::Result<(u64, u64, Vec<Duration>)> {
    let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let mut req = Request::builder().method(s.method.clone()).uri(&s.path).header("host", addr.to_string());
        if let Some(ct) = s.content_type {
            req = req.header("content-type", ct);
        }
        let req = req.body(Full::new(s.body.clone()))?;
        sender.ready().await?;
        let sent = Instant::now();
        let result = sender.send_request(req).await;
        let good = match result {
            Ok(resp) => {
                let status = resp.status();
                let _ = resp.into_body().collect().await;
                status.is_success()
            }
            Err(_) => false,
        };
        let took = sent.elapsed();
        if sent >= start {
            if good {
                ok += 1;
                latencies.push(took);
            } else {
                failed += 1;
            }
        }
        if !good && sender.is_closed() {
            break;
        }
    }
    Ok((ok, failed, latencies))
}
