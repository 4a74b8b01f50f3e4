//! Operations on any [`SourceStore`]: bulk generation, CSV loading and random row access.
//!
//! Bulk work is a two-stage pipeline: one blocking thread produces batches (generating or
//! parsing), the store writes them, with a small bounded queue between, so memory stays flat at
//! any row count and both cores are busy.

use std::path::Path;
use std::time::{Duration, Instant};

use pinpipe_model::Post;
use rand::RngExt;

use crate::csv_load::CsvFiles;
use crate::store::{Rows, SourceStore, ensure_tables};
use crate::{Error, Generator, Result};

/// Rows per insert transaction.
pub const BATCH_ROWS: usize = 10_000;

/// What a bulk operation did.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BulkReport {
    /// Posts written (rows per table).
    pub rows: u64,
    /// Wall time.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
    /// Whether pins were generated because no pin CSV was given.
    pub generated_pins: bool,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl BulkReport {
    /// Posts per second.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Creates the tables, refusing to write into non-empty ones unless `replace`.
pub async fn prepare(store: &dyn SourceStore, replace: bool) -> Result<()> {
    store.create_tables(replace).await?;
    let counts = store.counts().await?;
    let rows = counts.pinterest_data.max(counts.geolocation_data).max(counts.user_data);
    if rows > 0 {
        return Err(Error::NotEmpty { target: store.target(), rows });
    }
    Ok(())
}

/// Runs `produce` on a blocking thread and writes every batch it sends; `progress` gets the
/// number of rows written so far.
async fn pipeline(
    store: &dyn SourceStore,
    produce: impl FnOnce(&tokio::sync::mpsc::Sender<Result<Rows>>) -> Result<()> + Send + 'static,
    mut progress: impl FnMut(u64) + Send,
) -> Result<u64> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Rows>>(2);
    let producer = tokio::task::spawn_blocking(move || {
        if let Err(e) = produce(&tx) {
            // The receiver reports it; if it is gone, the writer already failed.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let mut written = 0u64;
    let outcome = async {
        while let Some(batch) = rx.recv().await {
            let batch = batch?;
            let n = batch.len() as u64;
            store.insert(batch).await?;
            written += n;
            progress(written);
        }
        Ok::<_, Error>(())
    }
    .await;
    drop(rx);
    producer.await.map_err(|e| Error::Task(e.to_string()))?;
    outcome.map(|()| written)
}

/// Generates `rows` posts with `seed` into the store.
pub async fn generate(
    store: &dyn SourceStore,
    rows: u64,
    seed: u64,
    replace: bool,
    progress: impl FnMut(u64) + Send,
) -> Result<BulkReport> {
    prepare(store, replace).await?;
    let start = Instant::now();
    let generator = Generator::new(seed, rows);
    let written = pipeline(
        store,
        move |tx| {
            let mut r = 0u64;
            while r < rows {
                let end = (r + BATCH_ROWS as u64).min(rows);
                let posts: Vec<Post> = (r..end).map(|i| generator.post(i as i64)).collect();
                if tx.blocking_send(Ok(Rows::from_posts(posts))).is_err() {
                    break;
                }
                r = end;
            }
            Ok(())
        },
        progress,
    )
    .await?;
    Ok(BulkReport { rows: written, elapsed: start.elapsed(), generated_pins: true })
}

/// Loads the classic CSV files of `dir`; pins are generated with `seed` when no pin file exists.
///
/// The files are read twice: a first pass checks every row (so a malformed file writes nothing),
/// the second loads them.
pub async fn load_csv(
    store: &dyn SourceStore,
    dir: &Path,
    seed: u64,
    replace: bool,
    progress: impl FnMut(u64) + Send,
) -> Result<BulkReport> {
    let files = CsvFiles::find(dir)?;
    let check = files.clone();
    let rows = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut reader = check.rows()?;
        let mut n = 0;
        while reader.next_row()?.is_some() {
            n += 1;
        }
        Ok(n)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    prepare(store, replace).await?;
    let start = Instant::now();
    let generator = Generator::new(seed, rows);
    let generated_pins = files.pin.is_none();
    let written = pipeline(
        store,
        move |tx| {
            let mut reader = files.rows()?;
            loop {
                let mut batch = Rows::default();
                while batch.geos.len() < BATCH_ROWS {
                    let Some((pin, geo, user)) = reader.next_row()? else { break };
                    batch.pins.push(pin.unwrap_or_else(|| generator.pin(geo.ind)));
                    batch.geos.push(geo);
                    batch.users.push(user);
                }
                if batch.is_empty() || tx.blocking_send(Ok(batch)).is_err() {
                    return Ok(());
                }
            }
        },
        progress,
    )
    .await?;
    Ok(BulkReport { rows: written, elapsed: start.elapsed(), generated_pins })
}

/// A uniformly chosen key range for random rows, read once and reused by callers in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange {
    /// Smallest key.
    pub lo: i64,
    /// Largest key.
    pub hi: i64,
}

impl KeyRange {
    /// The store's key range; `Error::NoTables` without tables, `None` when empty.
    pub async fn of(store: &dyn SourceStore) -> Result<Option<KeyRange>> {
        ensure_tables(store).await?;
        Ok(store.key_range().await?.map(|(lo, hi)| KeyRange { lo, hi }))
    }

    /// A random row: a random key in the range, then the first row at or after it (an index
    /// seek, so gaps in the keys are fine and nothing is scanned).
    pub async fn random_post(&self, store: &dyn SourceStore, rng: &mut impl rand::Rng) -> Result<Option<Post>> {
        let k = rng.random_range(self.lo..=self.hi);
        match store.next_key(k).await? {
            Some(key) => store.post(key).await,
            None => Ok(None),
        }
    }
}

/// Row `key`, with a clear error if the tables are missing.
pub async fn post(store: &dyn SourceStore, key: i64) -> Result<Option<Post>> {
    ensure_tables(store).await?;
    store.post(key).await
}
