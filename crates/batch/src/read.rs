//! Reading the raw objects of one topic (`topics/<topic>/partition=*/*.json`, one JSON value per
//! line, any number of lines per object) and cleaning them in parallel.
//!
//! Objects are listed, sorted by key (so "first occurrence" is deterministic), grouped into
//! units of about [`UNIT_BYTES`] or [`UNIT_OBJECTS`], fetched with `read_concurrency` requests
//! in flight and cleaned on the blocking pool, one [`Cleaner`] per unit, as many units at once
//! as there are cores. Memory stays bounded by the units in flight plus the clean rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStoreExt};
use pinpipe_model::Kind;
use pinpipe_store::Store;
use pinpipe_transform::{Cleaned, Cleaner, Origin};

use crate::{Error, Result};

/// Bytes of raw objects per cleaning unit.
pub const UNIT_BYTES: u64 = 8 << 20;
/// Objects per cleaning unit (tiny objects: the classic one-record-per-object layout).
pub const UNIT_OBJECTS: usize = 2048;

/// Counters a progress display can poll while the job reads.
#[derive(Debug, Default)]
pub struct ReadProgress {
    /// Objects listed so far (the total once listing is done).
    pub objects_total: AtomicU64,
    /// Bytes listed so far.
    pub bytes_total: AtomicU64,
    /// Objects cleaned.
    pub objects_done: AtomicU64,
    /// Bytes cleaned.
    pub bytes_done: AtomicU64,
}

/// The raw objects of one topic, cleaned.
#[derive(Debug)]
pub struct TopicRead {
    /// Cleaned chunks in key order.
    pub chunks: Vec<Cleaned>,
    /// Objects read.
    pub objects: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// Lists the raw objects of `topic`, sorted by key.
pub async fn list(store: &Store, topic: &str) -> Result<Vec<ObjectMeta>> {
    let prefix = store.key(&format!("topics/{topic}"));
    let mut objects: Vec<ObjectMeta> = store
        .inner
        .list(Some(&prefix))
        .try_filter(|m| std::future::ready(is_raw_object(store.relative(&m.location))))
        .try_collect()
        .await
        .map_err(|source| Error::Read { store: store.url.clone(), source })?;
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(objects)
}

/// `topics/<topic>/partition=<p>/<name>.json`: what the sink writes (other files, such as a
/// connector's temporary files, are not raw objects).
fn is_raw_object(rel: &str) -> bool {
    let mut parts = rel.split('/');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("topics"), Some(_), Some(p), Some(name), None) if p.starts_with("partition=") && name.ends_with(".json")
    )
}

/// Reads and cleans every raw object of `topic` as records of `kind`.
pub async fn read_topic(
    store: &Store,
    topic: &str,
    kind: Kind,
    read_concurrency: usize,
    progress: &Arc<ReadProgress>,
) -> Result<TopicRead> {
    let objects = list(store, topic).await?;
    let bytes: u64 = objects.iter().map(|m| m.size).sum();
    progress.objects_total.fetch_add(objects.len() as u64, Ordering::Relaxed);
    progress.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    let count = objects.len() as u64;

    let mut units: Vec<Vec<ObjectMeta>> = Vec::new();
    let mut unit_bytes = 0;
    for m in objects {
        if units.last().is_none_or(|u| u.len() >= UNIT_OBJECTS || unit_bytes >= UNIT_BYTES) {
            units.push(Vec::new());
            unit_bytes = 0;
        }
        unit_bytes += m.size;
        if let Some(u) = units.last_mut() {
            u.push(m);
        }
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_unit = read_concurrency.div_ceil(cores).max(1);
    let chunks: Vec<Cleaned> = futures_util::stream::iter(units)
        .map(|unit| {
            let progress = Arc::clone(progress);
            async move {
                let fetched: Vec<(ObjectMeta, Bytes)> = futures_util::stream::iter(unit)
                    .map(|m| async move {
                        let data = store.inner.get(&m.location).await?.bytes().await?;
                        Ok::<_, object_store::Error>((m, data))
                    })
                    .buffered(per_unit)
                    .try_collect()
                    .await
                    .map_err(|source| Error::Read { store: store.url.clone(), source })?;
                let prefix_len = store.prefix.as_ref().len();
                let cleaned = tokio::task::spawn_blocking(move || clean_unit(kind, &fetched, prefix_len, &progress)).await??;
                Ok::<_, Error>(cleaned)
            }
        })
        .buffered(cores + 1)
        .try_collect()
        .await?;
    Ok(TopicRead { chunks, objects: count, bytes })
}

fn clean_unit(kind: Kind, objects: &[(ObjectMeta, Bytes)], prefix_len: usize, progress: &ReadProgress) -> Result<Cleaned> {
    let mut cleaner = Cleaner::new(kind);
    for (meta, data) in objects {
        let mut line = 0u64;
        let mut start = 0;
        let data: &[u8] = data;
        while start < data.len() {
            let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
            line += 1;
            cleaner.push(&data[start..end], || Origin::Object { path: relative(&meta.location, prefix_len), line });
            start = end + 1;
        }
        progress.objects_done.fetch_add(1, Ordering::Relaxed);
        progress.bytes_done.fetch_add(meta.size, Ordering::Relaxed);
    }
    Ok(cleaner.finish()?)
}

fn relative(key: &object_store::path::Path, prefix_len: usize) -> String {
    let k = key.as_ref();
    if prefix_len == 0 { k.to_owned() } else { k.get(prefix_len..).unwrap_or(k).trim_start_matches('/').to_owned() }
}

#[cfg(test)]
mod tests {
    #[test]
    fn raw_object_keys() {
        assert!(super::is_raw_object("topics/p.pin/partition=0/p.pin+0+0000000000.json"));
        assert!(!super::is_raw_object("topics/p.pin/partition=0/p.pin+0+0000000000.json.tmp"));
        assert!(!super::is_raw_object("topics/p.pin/p.json"));
        assert!(!super::is_raw_object("topics/p.pin/partition=0/sub/x.json"));
    }
}
