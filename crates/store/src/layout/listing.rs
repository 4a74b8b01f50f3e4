//! Listing a topic's raw objects, whatever partitioner and format wrote them, and the sink's
//! commit marker.
//!
//! With the default partitioner a partition's objects are one directory, `partition=<p>`, listed
//! from a given offset on with the store's "start after" listing. With the field and time
//! partitioners a partition's objects are spread over many directories: the topic is listed
//! whole and each object's partition and start offset come from its file name.
//!
//! **Commit markers.** The field and time partitioners cut a log partition's records into several
//! objects at once (one per directory its records go to); the sink writes them as a group and
//! then records the group in the partition's marker, `_pinpipe/sink/<topic>/<partition>.json`:
//! `{"next": <the offset after the group>, "writing": [...]}`. Before writing a group it records
//! the group's keys in `writing`, so that a sink restarted after a crash removes the objects of
//! a group it did not finish. Readers take only objects that start before `next`: a group is
//! visible whole or not at all. (Objects of a store without markers, written by the connector
//! itself, are all taken.)

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::{Format, object_name, parse_object_file, parse_partition, partition_dir, topic_dir};
use crate::Store;

/// One raw object.
#[derive(Debug, Clone)]
pub struct RawObject {
    /// The log partition its records come from.
    pub partition: u32,
    /// Offset of its first record (from its name).
    pub start: u64,
    /// How it is encoded (from its name).
    pub format: Format,
    /// Key and size.
    pub meta: ObjectMeta,
}

/// Errors of a listing, with the key that failed.
fn listing_error(key: &ObjectPath, source: object_store::Error) -> crate::Error {
    crate::Error::List { key: key.to_string(), source }
}

/// How a topic's objects are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `partition=<p>/` directories only (the default partitioner), or nothing yet.
    ByPartition,
    /// Other directories (the field and time partitioners).
    Nested,
}

/// The layout of `topic`'s objects, from its top directories.
pub async fn layout(store: &Store, topic: &str) -> crate::Result<Layout> {
    let dir = store.key(&topic_dir(topic));
    let listing = store.inner.list_with_delimiter(Some(&dir)).await.map_err(|e| listing_error(&dir, e))?;
    let nested = listing.common_prefixes.iter().any(|p| p.filename().and_then(parse_partition).is_none());
    Ok(if nested { Layout::Nested } else { Layout::ByPartition })
}

/// The partitions of `topic` that hold objects (directories `partition=<p>`), ascending.
pub async fn list_partitions(store: &Store, topic: &str) -> crate::Result<Vec<u32>> {
    let dir = store.key(&topic_dir(topic));
    let listing = store.inner.list_with_delimiter(Some(&dir)).await.map_err(|e| listing_error(&dir, e))?;
    let mut partitions: Vec<u32> =
        listing.common_prefixes.iter().filter_map(|p| p.filename().and_then(parse_partition)).collect();
    partitions.sort_unstable();
    partitions.dedup();
    Ok(partitions)
}

/// The log partitions `topic`'s objects come from, ascending, in any layout (a nested layout is
/// listed whole for it).
pub async fn partitions(store: &Store, topic: &str) -> crate::Result<Vec<u32>> {
    if layout(store, topic).await? == Layout::ByPartition {
        return list_partitions(store, topic).await;
    }
    let dir = store.key(&topic_dir(topic));
    let listing: Vec<ObjectMeta> =
        store.inner.list(Some(&dir)).try_collect().await.map_err(|e| listing_error(&dir, e))?;
    let mut p: Vec<u32> = listing
        .iter()
        .filter_map(|m| m.location.filename().and_then(|f| parse_object_file(topic, f)))
        .map(|f| f.partition)
        .collect();
    p.sort_unstable();
    p.dedup();
    Ok(p)
}

/// Names below this offset are zero-padded with a leading `0`, so they sort by offset and before
/// every name of 11 digits or more: a "start after" listing is exact for them.
const SORTABLE_BELOW: u64 = 1_000_000_000;

/// The objects of `topic`'s `partition` in its `partition=<p>` directory whose start offset is
/// `from` or more, by start offset. Other files (a connector's temporary files, notes) are not
/// objects and are left out.
pub async fn list_objects(store: &Store, topic: &str, partition: u32, from: u64) -> crate::Result<Vec<RawObject>> {
    let dir = store.key(&partition_dir(topic, partition));
    let listing: Vec<ObjectMeta> = if from > 0 && from - 1 < SORTABLE_BELOW {
        // Everything named after the object that would start at `from - 1` (every extension
        // sorts after the digits).
        let after = store.key(&object_name(topic, partition, from - 1));
        store.inner.list_with_offset(Some(&dir), &after).try_collect().await
    } else {
        store.inner.list(Some(&dir)).try_collect().await
    }
    .map_err(|e| listing_error(&dir, e))?;
    let mut objects: Vec<RawObject> = listing
        .into_iter()
        // Only the partition's own directory: not a deeper key that happens to share the prefix.
        .filter(|m| {
            m.location.prefix_match(&dir).is_some_and(|mut rest| rest.next().is_some() && rest.next().is_none())
        })
        .filter_map(|meta| {
            let file = meta.location.filename().and_then(|f| parse_object_file(topic, f))?;
            (file.partition == partition && file.start >= from).then_some(RawObject {
                partition,
                start: file.start,
                format: file.format,
                meta,
            })
        })
        .collect();
    objects.sort_by_key(|o| o.start);
    Ok(objects)
}

/// The objects of `topic` to read: per partition those starting at `from[p]` or later (all of
/// them for a partition without a position), in any layout and format; by partition, then start
/// offset. In a nested layout, objects a sink has not committed yet are left out.
pub async fn list_topic(store: &Store, topic: &str, from: &BTreeMap<u32, u64>) -> crate::Result<Vec<RawObject>> {
    if layout(store, topic).await? == Layout::ByPartition {
        let mut out = Vec::new();
        for p in list_partitions(store, topic).await? {
            out.extend(list_objects(store, topic, p, from.get(&p).copied().unwrap_or(0)).await?);
        }
        return Ok(out);
    }
    let dir = store.key(&topic_dir(topic));
    let listing: Vec<ObjectMeta> =
        store.inner.list(Some(&dir)).try_collect().await.map_err(|e| listing_error(&dir, e))?;
    let mut objects: Vec<RawObject> = listing
        .into_iter()
        .filter_map(|meta| {
            let file = meta.location.filename().and_then(|f| parse_object_file(topic, f))?;
            let from = from.get(&file.partition).copied().unwrap_or(0);
            (file.start >= from).then_some(RawObject {
                partition: file.partition,
                start: file.start,
                format: file.format,
                meta,
            })
        })
        .collect();
    let partitions: Vec<u32> = {
        let mut p: Vec<u32> = objects.iter().map(|o| o.partition).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let mut committed = BTreeMap::new();
    for p in partitions {
        if let Some(c) = SinkCommit::read(store, topic, p).await? {
            committed.insert(p, c.next);
        }
    }
    objects.retain(|o| committed.get(&o.partition).is_none_or(|next| o.start < *next));
    objects.sort_by_key(|o| (o.partition, o.start));
    Ok(objects)
}

/// A sink's commit marker for one log partition (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkCommit {
    /// The offset after the last committed group: every record before it is in committed objects.
    pub next: u64,
    /// Keys (below the store's root) of the group being written, not committed yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writing: Vec<String>,
}

impl SinkCommit {
    /// `_pinpipe/sink/<topic>/<partition>.json`.
    pub fn key(topic: &str, partition: u32) -> String {
        format!("_pinpipe/sink/{topic}/{partition}.json")
    }

    /// The partition's marker, if the sink wrote one.
    pub async fn read(store: &Store, topic: &str, partition: u32) -> crate::Result<Option<SinkCommit>> {
        let key = store.key(&Self::key(topic, partition));
        let bytes = match store.inner.get(&key).await {
            Ok(r) => r.bytes().await,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => Err(e),
        }
        .map_err(|e| listing_error(&key, e))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| crate::Error::Marker { key: key.to_string(), reason: e.to_string() })
    }

    /// Writes the marker (whole: an object store put replaces it atomically).
    pub async fn write(&self, store: &Store, topic: &str, partition: u32) -> crate::Result<()> {
        let key = store.key(&Self::key(topic, partition));
        let body = serde_json::to_vec(self).unwrap_or_default();
        store.inner.put(&key, PutPayload::from(body)).await.map_err(|e| listing_error(&key, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::{ParquetCodec, object_key};
    use super::*;

    async fn put(store: &Store, key: String) {
        store.inner.put(&store.key(&key), Bytes::from_static(b"x\n").into()).await.unwrap();
    }

    fn store(dir: &tempfile::TempDir) -> Store {
        crate::StoreConfig::default().validate(dir.path()).unwrap().open().unwrap()
    }

    #[tokio::test]
    async fn lists_partitions_and_objects_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        for start in [0u64, 2, 5, 999_999_999, 1_000_000_000, 12_345_678_901] {
            put(&store, object_name("t", 0, start)).await;
        }
        put(&store, object_name("t", 4, 0)).await;
        put(&store, format!("{}/notes.txt", partition_dir("t", 0))).await;
        put(&store, format!("{}/sub/t+0+0000000009.json", partition_dir("t", 0))).await;
        put(&store, object_name("t2", 0, 3)).await;
        // Other formats in the same directory are objects too, and sort with the others.
        put(&store, object_key("t", "partition=0", 0, 6, Format::JsonGzip)).await;
        put(&store, object_key("t", "partition=0", 0, 7, Format::Parquet(ParquetCodec::Snappy))).await;

        assert_eq!(list_partitions(&store, "t").await.unwrap(), vec![0, 4]);
        assert!(list_partitions(&store, "none").await.unwrap().is_empty());
        let starts = |from: u64| {
            let store = store.clone();
            async move { list_objects(&store, "t", 0, from).await.unwrap().iter().map(|o| o.start).collect::<Vec<_>>() }
        };
        assert_eq!(starts(0).await, vec![0, 2, 5, 6, 7, 999_999_999, 1_000_000_000, 12_345_678_901]);
        assert_eq!(starts(2).await, vec![2, 5, 6, 7, 999_999_999, 1_000_000_000, 12_345_678_901]);
        assert_eq!(starts(3).await, vec![5, 6, 7, 999_999_999, 1_000_000_000, 12_345_678_901]);
        assert_eq!(starts(7).await, vec![7, 999_999_999, 1_000_000_000, 12_345_678_901]);
        assert_eq!(starts(1_000_000_000).await, vec![1_000_000_000, 12_345_678_901]);
        assert_eq!(starts(1_000_000_001).await, vec![12_345_678_901]);
        assert!(starts(u64::MAX).await.is_empty());
        let formats: Vec<Format> =
            list_objects(&store, "t", 0, 6).await.unwrap().iter().map(|o| o.format).take(2).collect();
        assert_eq!(formats, [Format::JsonGzip, Format::Parquet(ParquetCodec::Snappy)]);
        // The whole topic, by partition, from each partition's position.
        let all = list_topic(&store, "t", &BTreeMap::from([(0, 999_999_999)])).await.unwrap();
        let got: Vec<(u32, u64)> = all.iter().map(|o| (o.partition, o.start)).collect();
        assert_eq!(got, [(0, 999_999_999), (0, 1_000_000_000), (0, 12_345_678_901), (4, 0)]);
    }

    #[tokio::test]
    async fn nested_layouts_are_listed_whole_and_only_committed_groups_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let gz = Format::JsonGzip;
        for (path, p, start) in [
            ("dt=2026-11-29/hour=13", 0, 0),
            ("dt=2026-11-29/hour=14", 0, 3),
            ("dt=2026-11-29/hour=13", 1, 0),
            ("dt=2026-11-30/hour=00", 0, 10),
            ("dt=2026-11-30/hour=00", 1, 4),
        ] {
            put(&store, object_key("t", path, p, start, gz)).await;
        }
        put(&store, "topics/t/dt=2026-11-29/notes.txt".into()).await;
        assert_eq!(layout(&store, "t").await.unwrap(), Layout::Nested);
        // Partition 0 committed up to 10 (its object at 10 belongs to a group being written);
        // partition 1 has no marker: everything is taken.
        SinkCommit { next: 10, writing: vec![] }.write(&store, "t", 0).await.unwrap();
        assert_eq!(partitions(&store, "t").await.unwrap(), [0, 1]);
        let all = list_topic(&store, "t", &BTreeMap::new()).await.unwrap();
        let got: Vec<(u32, u64)> = all.iter().map(|o| (o.partition, o.start)).collect();
        assert_eq!(got, [(0, 0), (0, 3), (1, 0), (1, 4)]);
        let from = list_topic(&store, "t", &BTreeMap::from([(0, 1), (1, 1)])).await.unwrap();
        assert_eq!(from.iter().map(|o| (o.partition, o.start)).collect::<Vec<_>>(), [(0, 3), (1, 4)]);
        let marker = SinkCommit::read(&store, "t", 0).await.unwrap().unwrap();
        assert_eq!(marker, SinkCommit { next: 10, writing: vec![] });
        assert!(SinkCommit::read(&store, "t", 1).await.unwrap().is_none());
    }
}
