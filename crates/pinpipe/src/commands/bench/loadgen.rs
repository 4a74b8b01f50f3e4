//! A small HTTP/1.1 load generator: C workers, each with its own keep-alive connection, sending
//! one prepared request after another for a fixed time and recording every latency (status
//! and framing are checked on every response; anything but 2xx counts as failed).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;

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

/// The request bytes of a scenario (HTTP/1.1, keep-alive).
fn request_bytes(addr: SocketAddr, s: &Scenario) -> Vec<u8> {
    let mut head = format!("{} {} HTTP/1.1\r\nhost: {addr}\r\n", s.method, s.path);
    if let Some(ct) = s.content_type {
        head.push_str(&format!("content-type: {ct}\r\n"));
    }
    if !s.body.is_empty() || s.method == hyper::Method::POST {
        head.push_str(&format!("content-length: {}\r\n", s.body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&s.body);
    bytes
}

/// Reads one response from `stream` (into `buf`, which keeps what follows it); returns its
/// status and whether the server keeps the connection open.
async fn read_response(stream: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<(u16, bool)> {
    use tokio::io::AsyncReadExt;
    let mut chunk = [0u8; 16 << 10];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("a response head that is not text")?;
    let status: u16 = head.split(' ').nth(1).and_then(|c| c.parse().ok()).context("no status in the response")?;
    let mut length = 0usize;
    let mut keep = true;
    for line in head.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().context("a bad content-length")?;
        } else if name.eq_ignore_ascii_case("connection") && value.trim().eq_ignore_ascii_case("close") {
            keep = false;
        }
    }
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the server closed the connection inside a response");
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..head_end + length);
    Ok((status, keep))
}

/// One connection sending the scenario's request, one after another, until `deadline`: raw
/// HTTP/1.1 with a prepared request (as wrk does), so the generator spends little of the CPU it
/// shares with the server.
async fn worker(
    addr: SocketAddr,
    s: Scenario,
    start: Instant,
    deadline: Instant,
) -> anyhow::Result<(u64, u64, Vec<Duration>)> {
    use tokio::io::AsyncWriteExt;
    let request = request_bytes(addr, &s);
    let connect = || async move {
        let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        anyhow::Ok(stream)
    };
    let mut stream = connect().await?;
    let mut buf = Vec::with_capacity(16 << 10);
    let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
    while Instant::now() < deadline {
        let sent = Instant::now();
        let outcome = match stream.write_all(&request).await {
            Ok(()) => read_response(&mut stream, &mut buf).await,
            Err(e) => Err(e.into()),
        };
        let took = sent.elapsed();
        let good = matches!(outcome, Ok((200..=299, _)));
        if sent >= start {
            if good {
                ok += 1;
                latencies.push(took);
            } else {
                failed += 1;
            }
        }
        if !matches!(outcome, Ok((_, true))) {
            buf.clear();
            stream = connect().await?;
        }
    }
    Ok((ok, failed, latencies))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn responses_are_framed_by_their_length_and_close_is_seen() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = vec![0u8; 1024];
            let n = s.read(&mut req).await.unwrap();
            // Two responses in one write, the second in two parts and closing.
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloHTTP/1.1 413 Payload Too Large\r\n")
                .await
                .unwrap();
            s.write_all(b"Content-Length: 2\r\nConnection: close\r\n\r\n{}").await.unwrap();
            String::from_utf8_lossy(&req[..n]).into_owned()
        });
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let s = Scenario {
            method: hyper::Method::POST,
            path: "/topics/t".into(),
            content_type: Some("application/json"),
            body: Bytes::from_static(b"{\"records\":[]}"),
            concurrency: 1,
            duration: Duration::from_secs(1),
        };
        stream.write_all(&request_bytes(addr, &s)).await.unwrap();
        let mut buf = Vec::new();
        assert_eq!(read_response(&mut stream, &mut buf).await.unwrap(), (200, true));
        assert_eq!(read_response(&mut stream, &mut buf).await.unwrap(), (413, false));
        assert!(buf.is_empty());
        let sent = server.await.unwrap();
        assert!(sent.starts_with("POST /topics/t HTTP/1.1\r\n"), "{sent}");
        assert!(sent.contains("content-length: 14\r\n") && sent.ends_with("\r\n\r\n{\"records\":[]}"), "{sent}");
    }
}
