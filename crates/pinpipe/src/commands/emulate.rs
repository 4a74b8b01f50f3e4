//! `pinpipe emulate`: posts random source rows to the API with a progress bar and a summary.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::bail;
use pinpipe_emulate::{Emulator, Summary};

use super::{open_source, stop_on_signal};
use crate::cli::EmulateArgs;
use crate::config::Loaded;
use crate::output::{self, line};

/// Runs the emulator.
pub async fn run(loaded: &Loaded, args: EmulateArgs) -> anyhow::Result<()> {
    let source: Arc<dyn pinpipe_source::SourceStore> = Arc::from(open_source(loaded).await?);
    let config = loaded.resolved.emulate.clone();
    let (api, mode) = (config.api_url.clone(), config.mode);
    let emulator = Arc::new(Emulator::new(source, config, loaded.resolved.names.clone())?);
    let stop = stop_on_signal();
    let bar = output::bar(args.count.unwrap_or(0), "posts");
    let counters = emulator.counters();
    let ticker = {
        let (bar, counters) = (bar.clone(), Arc::clone(&counters));
        tokio::spawn(async move {
            loop {
                bar.set_position(counters.posts.load(Ordering::Relaxed));
                bar.set_message(format!("{} failed records", counters.failed.load(Ordering::Relaxed)));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let summary = emulator.run(args.count, args.seed, stop).await;
    ticker.abort();
    bar.finish_and_clear();
    let summary = summary?;
    print_summary(&summary, &api, &format!("{mode:?}").to_lowercase())?;
    if summary.failed > 0 {
        bail!("{} of {} records were not accepted by {api}", output::int(summary.failed), output::int(summary.records));
    }
    Ok(())
}

pub(super) fn print_summary(s: &Summary, api: &str, mode: &str) -> anyhow::Result<()> {
    let stopped = if s.interrupted { " (stopped early)" } else { "" };
    line(&format!(
        "emulate: {} posts ({} records) to {api} in {mode} mode in {:.2} s: {:.0} posts/s{stopped}",
        output::int(s.posts),
        output::int(s.records),
        s.elapsed.as_secs_f64(),
        s.posts_per_sec()
    ))?;
    line(&format!("  accepted: {} records", output::int(s.accepted)))?;
    line(&format!("  failed:   {} records", output::int(s.failed)))?;
    for (reason, f) in &s.failures {
        line(&format!("    {reason}: {} records ({})", output::int(f.records), f.example))?;
    }
    Ok(())
}
