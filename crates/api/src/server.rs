//! The HTTP server around [`crate::app`], hardened against clients that hold resources:
//!
//! * a client has `api.header_timeout` to send a request's headers, and an idle keep-alive
//!   connection is closed after the same time (hyper's header-read timer, which runs while a
//!   connection waits for its next request), so slow or idle sockets cannot pile up;
//! * at most `api.max_connections` connections are open at once (lowered to half the process'
//!   file-descriptor limit when that is smaller); more wait in the listen backlog instead of
//!   exhausting file descriptors, and an `accept` that fails (e.g. `EMFILE`) is retried after a
//!   pause instead of stopping the server;
//! * a request body must arrive within `api.body_timeout` ([`crate::body::read`]);
//! * on shutdown the listener closes at once, in-flight requests get `api.shutdown_timeout` to
//!   finish, and then the remaining connections are closed: a stalled upload cannot keep the
//!   process alive.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::AppState;

/// Pause after a failed `accept` (out of file descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The connection limit: `configured`, or half the soft file-descriptor limit when smaller (the
/// log and the rest of the process need descriptors too).
pub fn connection_limit(configured: usize) -> usize {
    match nofile_soft_limit() {
        Some(n) => configured.min((n / 2).max(16)),
        None => configured,
    }
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits` (Linux).
fn nofile_soft_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Serves the API on `listener` until `shutdown` completes, then lets in-flight requests finish
/// for at most `api.shutdown_timeout`.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = state.config.clone();
    let router = crate::app(state);
    let limit = connection_limit(config.max_connections);
    let permits = Arc::new(Semaphore::new(limit));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(config.header_timeout).keep_alive(true);
    tracing::debug!(max_connections = limit, "serving");
    let mut shutdown = std::pin::pin!(shutdown);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!("accepting a connection failed (retrying): {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small responses go out at once (no Nagle delay on keep-alive connections).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY: {e}");
        }
        let conn = http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(router.clone()));
        let conn = graceful.watch(conn);
        connections.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(config.shutdown_timeout) => {
            tracing::warn!(
                "shutting down: requests still in flight after {:?}; closing their connections",
                config.shutdown_timeout
            );
        }
    }
    connections.abort_all();
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, Instant};

    use pinpipe_log::LogConfig;
    use pinpipe_log::embedded::EmbeddedLog;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use crate::{ApiConfig, AppState};

    struct Running {
        _dir: tempfile::TempDir,
        addr: std::net::SocketAddr,
        stop: tokio_util::sync::CancellationToken,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    async fn start(config: ApiConfig) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let log: std::sync::Arc<dyn pinpipe_log::OffsetLog> =
            std::sync::Arc::new(EmbeddedLog::open(&LogConfig::default().validate(dir.path()).unwrap()).unwrap());
        let state = AppState::new(log, config.validate(1).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(super::serve(listener, state, stop.clone().cancelled_owned()));
        Running { _dir: dir, addr, stop, task }
    }

    /// Sends `request` and reads the whole response (the server closes after it).
    async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Whether the server closes `s` (reads reach the end) within `within`.
    async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 1024];
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, s.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }

    #[tokio::test]
    async fn idle_and_slow_sockets_are_closed_and_health_still_answers() {
        let api = start(ApiConfig { header_timeout: "400ms".into(), max_connections: 4, ..ApiConfig::default() }).await;
        // Four idle sockets and four that trickle a request line byte by byte: more than the cap.
        let mut idle = Vec::new();
        for _ in 0..4 {
            idle.push(TcpStream::connect(api.addr).await.unwrap());
        }
        let mut slow = Vec::new();
        for _ in 0..4 {
            slow.push(TcpStream::connect(api.addr).await.unwrap());
        }
        let trickle = tokio::spawn(async move {
            for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\n".iter().cycle().take(60) {
                for s in &mut slow {
                    let _ = s.write_all(&[*b]).await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            slow
        });
        // Health answers once the server has shed what holds it (within a header timeout or two).
        let t = Instant::now();
        let health = exchange(api.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(health.ends_with(r#"{"status":"ok"}"#), "{health}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        for s in &mut idle {
            assert!(closed_within(s, Duration::from_secs(3)).await, "an idle socket was kept");
        }
        for mut s in trickle.await.unwrap() {
            assert!(closed_within(&mut s, Duration::from_secs(3)).await, "a slow socket was kept");
        }
        api.stop.cancel();
        api.task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_stalled_upload_gets_408_and_does_not_hold_up_shutdown() {
        let api = start(ApiConfig { body_timeout: "300ms".into(), ..ApiConfig::default() }).await;
        let stalled = b"POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.kafka.json.v2+json\r\nContent-Length: 100\r\n\r\n{\"records\"";
        let mut s = TcpStream::connect(api.addr).await.unwrap();
        s.write_all(stalled).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
        let response = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(response.starts_with("HTTP/1.1 408"), "{response}");
        assert!(response.contains(r#""error_code":408"#), "{response}");

        // A stalled upload while the server shuts down: it stops within the shutdown deadline.
        let api = start(ApiConfig { shutdown_timeout: "300ms".into(), ..ApiConfig::default() }).await;
        let mut s = TcpStream::connect(api.addr).await.unwrap();
        s.write_all(stalled).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        api.stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), api.task).await.expect("the server stopped").unwrap().unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(closed_within(&mut s, Duration::from_secs(2)).await);
    }

    #[test]
    fn the_connection_cap_follows_the_descriptor_limit() {
        let soft = super::nofile_soft_limit().unwrap();
        assert_eq!(super::connection_limit(usize::MAX), (soft / 2).max(16));
        assert_eq!(super::connection_limit(3), 3);
    }
}
