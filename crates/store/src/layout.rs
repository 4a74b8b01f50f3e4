//! The raw object layout, written by the sink and read by the batch job: the Confluent S3 sink
//! connector's default partitioner, `topics/<topic>/partition=<p>/<topic>+<p>+<start>.json`,
//! `<start>` being the offset of the object's first record zero-padded to 10 digits.
//!
//! This module is the one place that knows the names: building them, parsing them, and listing
//! a partition's objects from a given offset on (with the store's "start after" listing, so a
//! reader that has ingested most of a partition does not list all of it again); and how a
//! record becomes exactly one line of an object ([`frame`]), whatever its bytes.

use std::borrow::Cow;

use base64::Engine as _;
use futures_util::TryStreamExt;
use object_store::ObjectMeta;
use object_store::path::Path as ObjectPath;

use crate::Store;

/// The field of the one-line object that carries a record whose bytes are neither one line nor
/// JSON: `{"pinpipe_raw_base64":"<the bytes, base64>"}`.
pub const RAW_FIELD: &str = "pinpipe_raw_base64";

/// A record's value as exactly one line of a JSON-lines object (without the line feed), so that
/// an object holds one line per record and a reader (or the sink resuming) counts records by
/// counting lines:
///
/// * a value without line breaks is written as it is (the usual case: compact JSON);
/// * a JSON value with line breaks (pretty-printed) has them replaced by spaces: in JSON they
///   can only be whitespace between tokens, so the value is the same;
/// * anything else with line breaks (binary data, broken JSON) is written as
///   `{"pinpipe_raw_base64":"..."}` holding its exact bytes.
///
/// (Checking JSON skips values without building them, so it has no nesting limit.)
pub fn frame(value: &[u8]) -> Cow<'_, [u8]> {
    let breaks = |b: &u8| *b == b'\n' || *b == b'\r';
    if !value.iter().any(breaks) {
        return Cow::Borrowed(value);
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(value).is_ok() {
        return Cow::Owned(value.iter().map(|b| if breaks(b) { b' ' } else { *b }).collect());
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(value);
    Cow::Owned(format!("{{\"{RAW_FIELD}\":\"{encoded}\"}}").into_bytes())
}

/// `topics/<topic>`.
pub fn topic_dir(topic: &str) -> String {
    format!("topics/{topic}")
}

/// `topics/<topic>/partition=<p>`.
pub fn partition_dir(topic: &str, partition: u32) -> String {
    format!("{}/partition={partition}", topic_dir(topic))
}

/// `topics/<topic>/partition=<p>/<topic>+<p>+<start, 10 digits>.json`.
pub fn object_name(topic: &str, partition: u32, start: u64) -> String {
    format!("{}/{topic}+{partition}+{start:010}.json", partition_dir(topic, partition))
}

/// The start offset in an object's file name, if it is one of this partition's objects.
pub fn parse_start(topic: &str, partition: u32, file_name: &str) -> Option<u64> {
    let rest = file_name.strip_prefix(topic)?.strip_prefix('+')?;
    let rest = rest.strip_prefix(partition.to_string().as_str())?.strip_prefix('+')?;
    let digits = rest.strip_suffix(".json")?;
    if digits.len() < 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The partition number of a directory name `partition=<p>`.
pub fn parse_partition(dir_name: &str) -> Option<u32> {
    let digits = dir_name.strip_prefix("partition=")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One raw object of a partition.
#[derive(Debug, Clone)]
pub struct RawObject {
    /// Offset of its first record (from its name).
    pub start: u64,
    /// Key and size.
    pub meta: ObjectMeta,
}

/// Errors of a listing, with the key that failed.
fn listing_error(key: &ObjectPath, source: object_store::Error) -> crate::Error {
    crate::Error::List { key: key.to_string(), source }
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

/// Names below this offset are zero-padded with a leading `0`, so they sort by offset and before
/// every name of 11 digits or more: a "start after" listing is exact for them.
const SORTABLE_BELOW: u64 = 1_000_000_000;

/// The objects of `topic`'s `partition` whose start offset is `from` or more, by start offset.
/// Other files (a connector's temporary files, notes) are not objects and are left out.
pub async fn list_objects(store: &Store, topic: &str, partition: u32, from: u64) -> crate::Result<Vec<RawObject>> {
    let dir = store.key(&partition_dir(topic, partition));
    let listing: Vec<ObjectMeta> = if from > 0 && from - 1 < SORTABLE_BELOW {
        // Everything named after the object that would start at `from - 1`.
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
            let start = meta.location.filename().and_then(|f| parse_start(topic, partition, f))?;
            (start >= from).then_some(RawObject { start, meta })
        })
        .collect();
    objects.sort_by_key(|o| o.start);
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use object_store::ObjectStoreExt;

    use super::*;

    #[test]
    fn names_follow_the_confluent_scheme() {
        assert_eq!(
            object_name("pinterest.pin", 0, 7),
            "topics/pinterest.pin/partition=0/pinterest.pin+0+0000000007.json"
        );
        assert_eq!(object_name("t", 3, 12_345_678_901), "topics/t/partition=3/t+3+12345678901.json");
        assert_eq!(parse_start("pinterest.pin", 0, "pinterest.pin+0+0000000007.json"), Some(7));
        assert_eq!(parse_start("t", 3, "t+3+12345678901.json"), Some(12_345_678_901));
        assert_eq!(parse_start("t", 1, "t+1+0000000007.json"), Some(7));
        for other in [
            "t+13+0000000007.json",
            "t+3+7.json",
            "u+3+0000000007.json",
            "tt+3+0000000007.json",
            "t+3+0000000007.json.tmp",
            "t+3+000000000x.json",
        ] {
            assert_eq!(parse_start("t", 3, other), None, "{other}");
        }
        assert_eq!(parse_partition("partition=12"), Some(12));
        for other in ["partition=", "partition=x", "part=1", "partition=-1"] {
            assert_eq!(parse_partition(other), None, "{other}");
        }
    }

    #[test]
    fn every_value_is_one_line() {
        assert_eq!(frame(br#"{"a":1}"#).as_ref(), br#"{"a":1}"#);
        assert!(matches!(frame(b"not json, one line"), Cow::Borrowed(_)));
        // Pretty JSON: the same value on one line.
        let pretty = b"{\n  \"a\": [1,\r\n 2],\n  \"s\": \"x\\ny\"\n}";
        let framed = frame(pretty);
        assert!(!framed.contains(&b'\n') && !framed.contains(&b'\r'));
        let a: serde_json::Value = serde_json::from_slice(pretty).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&framed).unwrap();
        assert_eq!(a, b);
        // JSON nested deeper than a parser builds values for is still JSON: one line.
        let deep = format!("{}\n{}", "[".repeat(300), "]".repeat(300));
        assert_eq!(frame(deep.as_bytes()).as_ref(), deep.replace('\n', " ").as_bytes());
        // Anything else with line feeds: its exact bytes, base64, in a one-line object.
        for raw in [b"a\nb\nc".to_vec(), vec![0xff, b'\n', 0x00, b'\r'], b"{\"a\":\n".to_vec()] {
            let framed = frame(&raw);
            assert!(!framed.contains(&b'\n'), "{framed:?}");
            let v: serde_json::Value = serde_json::from_slice(&framed).unwrap();
            let back = base64::engine::general_purpose::STANDARD.decode(v[RAW_FIELD].as_str().unwrap()).unwrap();
            assert_eq!(back, raw);
        }
    }

    #[tokio::test]
    async fn lists_partitions_and_objects_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::StoreConfig::default().validate(dir.path()).unwrap().open().unwrap();
        let put = |key: String| {
            let store = store.clone();
            async move { store.inner.put(&store.key(&key), Bytes::from_static(b"x\n").into()).await.unwrap() }
        };
        for start in [0u64, 2, 5, 999_999_999, 1_000_000_000, 12_345_678_901] {
            put(object_name("t", 0, start)).await;
        }
        put(object_name("t", 4, 0)).await;
        put(format!("{}/notes.txt", partition_dir("t", 0))).await;
        put(format!("{}/sub/t+0+0000000009.json", partition_dir("t", 0))).await;
        put(object_name("t2", 0, 3)).await;

        assert_eq!(list_partitions(&store, "t").await.unwrap(), vec![0, 4]);
        assert!(list_partitions(&store, "none").await.unwrap().is_empty());
        let starts = |from: u64| {
            let store = store.clone();
            async move { list_objects(&store, "t", 0, from).await.unwrap().iter().map(|o| o.start).collect::<Vec<_>>() }
        };
        assert_eq!(starts(0).await, vec![0, 2, 5, 999_999_999, 1_000_000_000, 12_345_678_901]);
        assert_eq!(starts(2).await, vec![2, 5, 999_999_999, 1_000_000_000, 12_345_678_901]);
        assert_eq!(starts(3).await, vec![5, 999_999_999, 1_000_000_000, 12_345_678_901]);
        assert_eq!(starts(1_000_000_000).await, vec![1_000_000_000, 12_345_678_901]);
        assert_eq!(starts(1_000_000_001).await, vec![12_345_678_901]);
        assert!(starts(u64::MAX).await.is_empty());
    }
}
