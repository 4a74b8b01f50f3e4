//! `pinpipe up`: the main job on embedded defaults. Today it prepares the source database
//! (generating it when missing or empty) and shows sample posts exactly as the emulator will send
//! them; the ingestion, sink, batch and streaming stages join it as they are built.

use pinpipe_source::ops;

use super::open_source;
use super::source::{print_post, random_post};
use crate::cli::UpArgs;
use crate::config::Loaded;
use crate::output::{self, line};

/// Runs `pinpipe up`.
pub async fn run(loaded: &Loaded, args: UpArgs) -> anyhow::Result<()> {
    let store = open_source(loaded).await?;
    let store = store.as_ref();
    let existing = if store.tables_exist().await? { store.counts().await?.pinterest_data } else { 0 };
    if existing == 0 {
        let bar = output::bar(args.source_rows, "posts");
        let report = ops::generate(store, args.source_rows, args.seed, false, |n| bar.set_position(n)).await;
        bar.finish_and_clear();
        let report = report?;
        line(&format!(
            "source: generated {} posts into {} ({} posts/s)",
            output::int(report.rows),
            store.target(),
            output::int(report.rows_per_sec() as u64)
        ))?;
    } else {
        line(&format!("source: {} holds {} posts (reused)", store.target(), output::int(existing)))?;
    }
    let names = &loaded.resolved.names;
    line(&format!(
        "sample posts, as the emulator sends them to topics {} / {} / {}:",
        names.topic(pinpipe_model::Kind::Pin),
        names.topic(pinpipe_model::Kind::Geo),
        names.topic(pinpipe_model::Kind::User)
    ))?;
    for i in 0..args.samples {
        let post = random_post(store, Some(args.seed.wrapping_add(u64::from(i)))).await?;
        print_post(&post, false)?;
    }
    Ok(())
}
