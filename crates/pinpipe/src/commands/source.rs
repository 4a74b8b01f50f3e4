//! `pinpipe source ...`: generate, load, sample, info and export on the configured database.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::bail;
use pinpipe_model::{Kind, Post};
use pinpipe_source::ops::{self, KeyRange};
use pinpipe_source::{SourceStore, store};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use super::open_source;
use crate::cli::SourceCommand;
use crate::config::Loaded;
use crate::output::{self, line};

/// Runs one `pinpipe source` subcommand.
pub async fn run(loaded: &Loaded, cmd: SourceCommand) -> anyhow::Result<()> {
    let store = open_source(loaded).await?;
    let store = store.as_ref();
    match cmd {
        SourceCommand::Generate { rows, seed, replace } => {
            let bar = output::bar(rows, "posts");
            let report = ops::generate(store, rows, seed, replace, |n| bar.set_position(n)).await;
            bar.finish_and_clear();
            let report = report?;
            line(&format!(
                "generated {} posts (seed {seed}) into {} in {:.2} s: {} posts/s",
                output::int(report.rows),
                store.target(),
                report.elapsed.as_secs_f64(),
                output::int(report.rows_per_sec() as u64)
            ))
        }
        SourceCommand::Load { csv_dir, seed, replace } => {
            let bar = output::bar(0, "posts");
            let report = ops::load_csv(store, &csv_dir, seed, replace, |n| bar.set_position(n)).await;
            bar.finish_and_clear();
            let report = report?;
            let pins = if report.generated_pins {
                format!("; no pinterest_data.csv, so pins were generated (seed {seed})")
            } else {
                String::new()
            };
            line(&format!(
                "loaded {} posts from {} into {} in {:.2} s{pins}",
                output::int(report.rows),
                csv_dir.display(),
                store.target(),
                report.elapsed.as_secs_f64()
            ))
        }
        SourceCommand::Sample { row, seed, pretty } => {
            let post = match row {
                Some(r) => ops::post(store, r)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("row {r} does not exist in {}", store.target()))?,
                None => random_post(store, seed).await?,
            };
            print_post(&post, pretty)
        }
        SourceCommand::Info { json } => info(store, json).await,
        SourceCommand::Export { from, limit } => export(store, from, limit).await,
    }
}

/// Prints the three raw records of a post, one JSON document each.
pub fn print_post(post: &Post, pretty: bool) -> anyhow::Result<()> {
    for kind in Kind::ALL {
        let v = post.json(kind);
        line(&if pretty { serde_json::to_string_pretty(&v)? } else { serde_json::to_string(&v)? })?;
    }
    Ok(())
}

/// A random post; reproducible with a seed.
pub async fn random_post(store: &dyn SourceStore, seed: Option<u64>) -> anyhow::Result<Post> {
    let seed = seed.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    let Some(range) = KeyRange::of(store).await? else {
        bail!("the source database {} is empty: run `pinpipe source generate` first", store.target());
    };
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    match range.random_post(store, &mut rng).await? {
        Some(p) => Ok(p),
        None => bail!("the source database {} changed while sampling; try again", store.target()),
    }
}

async fn info(store: &dyn SourceStore, json: bool) -> anyhow::Result<()> {
    let counts = store.counts().await?;
    let range = store.key_range().await?;
    if json {
        let v = serde_json::json!({
            "target": store.target(),
            "counts": counts,
            "key_range": range.map(|(lo, hi)| [lo, hi]),
        });
        return line(&serde_json::to_string(&v)?);
    }
    line(&format!("source: {}", store.target()))?;
    line(&format!("  pinterest_data:   {:>12} rows", output::int(counts.pinterest_data)))?;
    line(&format!("  geolocation_data: {:>12} rows", output::int(counts.geolocation_data)))?;
    line(&format!("  user_data:        {:>12} rows", output::int(counts.user_data)))?;
    match range {
        Some((lo, hi)) => line(&format!("  keys {lo}..={hi}")),
        None => line("  (empty)"),
    }
}

async fn export(store: &dyn SourceStore, from: Option<i64>, limit: Option<u64>) -> anyhow::Result<()> {
    store::ensure_tables(store).await?;
    let mut next = from.unwrap_or(i64::MIN);
    let mut left = limit.unwrap_or(u64::MAX);
    while left > 0 {
        let page = store.posts_from(next, ops::BATCH_ROWS.min(usize::try_from(left).unwrap_or(usize::MAX))).await?;
        let Some(last) = page.last().map(|p| p.pin.index) else { break };
        for post in &page {
            line(&serde_json::to_string(post)?)?;
        }
        left = left.saturating_sub(page.len() as u64);
        match last.checked_add(1) {
            Some(n) => next = n,
            None => break,
        }
    }
    Ok(())
}
