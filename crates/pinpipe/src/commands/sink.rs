//! `pinpipe sink`: copies topics from the embedded log (opened read-only, so it runs beside
//! `pinpipe serve`) into the object store, printing lag lines while it follows and a summary.

use std::time::Duration;

use pinpipe_sink::{Mode, Sink};

use super::{Access, open_topics, stop_on_signal};
use crate::cli::SinkArgs;
use crate::config::Loaded;
use crate::output::{self, line};

/// How often a following sink prints its lag.
const LAG_EVERY: Duration = Duration::from_secs(10);

/// Runs the sink.
pub async fn run(loaded: &Loaded, args: SinkArgs) -> anyhow::Result<()> {
    let log = open_topics(loaded, Access::Reader).await?;
    let store = loaded.resolved.store.open()?;
    let url = store.url.clone();
    let sink = std::sync::Arc::new(Sink::new(log, store, loaded.resolved.sink.clone()));
    let mode = if args.once { Mode::Once } else { Mode::Follow };
    let _metrics = crate::metrics::listen(
        args.metrics_listen,
        vec![Box::new(crate::metrics::SinkMetrics(std::sync::Arc::clone(&sink)))],
    )
    .await?;
    let stop = stop_on_signal();
    let reporter = (mode == Mode::Follow).then(|| {
        let sink = std::sync::Arc::clone(&sink);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LAG_EVERY).await;
                for ((topic, p), s) in sink.snapshot() {
                    eprintln!("sink: {topic}/{p} written up to {} of {} (lag {})", s.written, s.end, s.lag());
                }
            }
        })
    });
    line(&format!("sink: copying topics matching {} into {url}", loaded.resolved.sink.topics.as_str()))?;
    let outcome = sink.run(mode, stop).await;
    if let Some(r) = reporter {
        r.abort();
    }
    let snapshot = sink.snapshot();
    let (objects, records, dead) =
        snapshot.values().fold((0, 0, 0), |(o, r, d), s| (o + s.objects, r + s.records, d + s.dead_letters));
    line(&format!("sink: wrote {} objects ({} records) to {url}", output::int(objects), output::int(records)))?;
    if dead > 0 {
        line(&format!(
            "sink: {} records could not be placed or encoded: dead letters under {url}/_pinpipe/sink/<topic>/<partition>/dead_letters/",
            output::int(dead)
        ))?;
    }
    for ((topic, p), s) in &snapshot {
        line(&format!("  {topic}/{p}: next offset {}, log end {}, lag {}", s.written, s.end, s.lag()))?;
    }
    Ok(outcome?)
}
