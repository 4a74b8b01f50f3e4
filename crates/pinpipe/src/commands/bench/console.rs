//! The web console's cost, for `pinpipe bench api --console`: the single-record scenario again
//! while a client does what an open `/ui` page does (fetch the page, then the overview every
//! second), against the same scenario without it in the same run; and the console's first
//! paint — the page and its first overview — once the log holds the scenarios' records.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// `GET path` on a fresh connection: the time to the whole answer, and its body.
async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(Duration, Vec<u8>)> {
    let start = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes()).await?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await?;
    let elapsed = start.elapsed();
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n").context("no HTTP head")?;
    anyhow::ensure!(
        answer.starts_with(b"HTTP/1.1 200"),
        "GET {path}: {}",
        String::from_utf8_lossy(&answer[..head_end])
    );
    Ok((elapsed, answer[head_end + 4..].to_vec()))
}

/// A client polling like an open console page, until dropped.
pub(super) struct Poller {
    stop: CancellationToken,
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts polling `addr` as the page does.
pub(super) fn poll(addr: SocketAddr) -> Poller {
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let _ = get(addr, "/ui").await;
        while !token.is_cancelled() {
            if let Err(e) = get(addr, "/api/v1/overview").await {
                tracing::warn!("console poll failed: {e}");
            }
            tokio::select! {
                () = token.cancelled() => break,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
    Poller { stop }
}

/// The console's first paint: the page and its first overview, fetched one after the other as a
/// browser does; with the number of records the overview reports.
pub(super) async fn first_paint(addr: SocketAddr) -> anyhow::Result<(Duration, u64)> {
    let (page, _) = get(addr, "/ui").await?;
    let (overview, body) = get(addr, "/api/v1/overview").await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let records = v["log"]["names"].as_array().map_or(0, |n| n.iter().filter_map(|t| t["records"].as_u64()).sum());
    Ok((page + overview, records))
}
