//! `pinpipe serve`: the ingestion API on the configured log (embedded by default; topics and
//! streams on Kafka, streams on Kinesis by `[log]`), until Ctrl-C or SIGTERM. In-flight requests finish, then the log
//! commits what it holds and closes.

use anyhow::Context;
use pinpipe_api::AppState;

use super::{Access, open_logs};
use crate::config::Loaded;
use crate::output::line;

/// Runs the server.
pub async fn run(loaded: &Loaded) -> anyhow::Result<()> {
    let logs = open_logs(loaded, Access::Owner).await?;
    let api = loaded.resolved.api.clone();
    let listener =
        tokio::net::TcpListener::bind(api.listen).await.with_context(|| format!("cannot listen on {}", api.listen))?;
    let addr = listener.local_addr()?;
    let describe = logs.describe();
    line(&format!("pinpipe api listening on http://{addr}{} ({describe})", api.base_path))?;
    let state = AppState::with_streams(logs.topics, logs.streams, api);
    pinpipe_api::serve(listener, state, shutdown_signal()).await.context("the API server failed")?;
    // The state (and with it the log) is dropped here: the log writer has committed everything.
    line("pinpipe api stopped")
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
