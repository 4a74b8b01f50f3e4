//! Where a partition resumes, where its dead letters go, and the audit of what the store
//! holds against the log. The object names themselves are `pinpipe_store::layout`'s.

use bytes::Bytes;
use object_store::ObjectStoreExt;
use pinpipe_store::Store;
use std::collections::BTreeMap;

use pinpipe_store::layout::listing::Layout;
use pinpipe_store::layout::{Format, SinkCommit, list_topic};

use crate::encode::covered;
use crate::{Error, Result};

pub use pinpipe_store::layout::{frame, object_name, parse_start, partition_dir};

/// `_pinpipe/sink/<topic>/<partition>/dead_letters/<group start>.jsonl`: the records of a group
/// the sink could not store in an object (not placeable, or not fitting the Parquet schema),
/// with their offsets and why.
pub fn dead_letter_key(topic: &str, partition: u32, start: u64) -> String {
    format!("{}/{start:010}.jsonl", dead_letter_dir(topic, partition))
}

/// Where a partition's dead letters are.
pub fn dead_letter_dir(topic: &str, partition: u32) -> String {
    format!("_pinpipe/sink/{topic}/{partition}/dead_letters")
}

async fn get(store: &Store, rel_or_key: &object_store::path::Path) -> Result<Bytes> {
    store
        .inner
        .get(rel_or_key)
        .await
        .map_err(|source| Error::Store { key: rel_or_key.to_string(), source })?
        .bytes()
        .await
        .map_err(|source| Error::Store { key: rel_or_key.to_string(), source })
}

/// The offset after the last record already stored for the partition (0 if none):
///
/// * after the newest object of its `partition=<p>` directory: its start plus its records (its
///   lines; for Parquet the offsets it covers, from its metadata) — every record is exactly one
///   line of a JSON object ([`pinpipe_store::layout::frame`]);
/// * or, when a commit marker says more (the field and time partitioners), its `next`, after
///   removing the objects of a group the sink did not finish writing.
pub async fn resume_offset(store: &Store, topic: &str, partition: u32) -> Result<u64> {
    let mut next = 0;
    if let Some(marker) = SinkCommit::read(store, topic, partition).await? {
        if !marker.writing.is_empty() {
            for rel in &marker.writing {
                let key = store.key(rel);
                match store.inner.delete(&key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(source) => return Err(Error::Store { key: key.to_string(), source }),
                }
            }
            tracing::info!(topic, partition, objects = marker.writing.len(), "removed what an unfinished commit left");
            SinkCommit { next: marker.next, writing: Vec::new() }.write(store, topic, partition).await?;
        }
        next = marker.next;
    }
    let newest = pinpipe_store::layout::list_objects(store, topic, partition, next).await?.into_iter().next_back();
    if let Some(o) = newest {
        let bytes = get(store, &o.meta.location).await?;
        next = next.max(covered(o.format, o.start, &bytes)?);
    }
    Ok(next)
}

/// What the store holds for one partition, checked against the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// Objects found.
    pub objects: u64,
    /// Records (lines) in them.
    pub records: u64,
    /// Offset after the last stored record.
    pub next: u64,
    /// Records in the sink's dead letters (not placeable, or not fitting the format).
    pub dead_letters: u64,
    /// Offset ranges `[from, to)` missing between objects.
    pub gaps: Vec<(u64, u64)>,
    /// Offsets stored more than once.
    pub duplicates: Vec<u64>,
    /// Offsets whose stored line differs from the log's value.
    pub mismatches: Vec<u64>,
}

impl Audit {
    /// True when every record from the first object on is stored exactly once and unchanged.
    pub fn is_exact(&self) -> bool {
        self.gaps.is_empty() && self.duplicates.is_empty() && self.mismatches.is_empty()
    }
}

/// Reads every object of a partition (JSON and gzip JSON, any layout) and the sink's dead
/// letters, and checks them against the log: together they hold every record from the first one
/// on exactly once, each line equal to the log's value at its offset. With the default partitioner an object's lines are the
/// records from its start on; with the others an object's lines are some of the records from
/// its start on, in order (its group's other records are in other directories). Parquet objects
/// are not audited here: the tests that write them read their rows.
pub async fn audit(store: &Store, log: &dyn pinpipe_log::OffsetLog, topic: &str, partition: u32) -> Result<Audit> {
    let nested = pinpipe_store::layout::listing::layout(store, topic).await? == Layout::Nested;
    let objects: Vec<_> = list_topic(store, topic, &BTreeMap::new())
        .await?
        .into_iter()
        .filter(|o| o.partition == partition && o.format.is_lines())
        .collect();
    let mut a = Audit::default();
    let mut held = BTreeMap::<u64, usize>::new();
    for o in objects {
        let text = lines_of(store, &o).await?;
        let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
        let lines = &lines[..lines.len().saturating_sub(1)];
        a.objects += 1;
        a.records += lines.len() as u64;
        let limits = pinpipe_log::ReadLimits {
            max_records: if nested { usize::MAX } else { lines.len() },
            max_bytes: usize::MAX,
        };
        let stored = log.read(topic, partition, o.start, limits).await?;
        if nested {
            // Each line is the next record of the log that equals it and no object holds yet.
            let mut candidates = stored.iter();
            for line in lines {
                let found =
                    candidates.by_ref().find(|r| !held.contains_key(&r.offset) && frame(&r.value).as_ref() == *line);
                match found {
                    Some(r) => *held.entry(r.offset).or_default() += 1,
                    None => a.mismatches.push(o.start),
                }
            }
        } else {
            for (i, line) in lines.iter().enumerate() {
                let offset = o.start + i as u64;
                *held.entry(offset).or_default() += 1;
                if stored.get(i).is_none_or(|r| r.offset != offset || frame(&r.value).as_ref() != *line) {
                    a.mismatches.push(offset);
                }
            }
        }
    }
    // Records the sink refused are held by its dead letters.
    let letters = store.key(&dead_letter_dir(topic, partition));
    let listed: Vec<object_store::ObjectMeta> =
        futures_util::TryStreamExt::try_collect(store.inner.list(Some(&letters)))
            .await
            .map_err(|source| Error::Store { key: letters.to_string(), source })?;
    for m in listed {
        let body = get(store, &m.location).await?;
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let offset = serde_json::from_slice::<serde_json::Value>(line).ok().and_then(|v| v["offset"].as_u64());
            if let Some(o) = offset {
                a.dead_letters += 1;
                *held.entry(o).or_default() += 1;
            }
        }
    }
    let mut expected: Option<u64> = None;
    for (&offset, &times) in &held {
        if let Some(e) = expected
            && offset > e
        {
            a.gaps.push((e, offset));
        }
        if times > 1 {
            a.duplicates.push(offset);
        }
        expected = Some(offset + 1);
    }
    a.next = expected.unwrap_or(0);
    Ok(a)
}

/// The text of a JSON object, decompressed.
async fn lines_of(store: &Store, o: &pinpipe_store::layout::RawObject) -> Result<Vec<u8>> {
    let bytes = get(store, &o.meta.location).await?;
    if o.format != Format::JsonGzip {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
        .map_err(|e| Error::Encode(format!("{}: {e}", o.meta.location)))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resume_after_the_newest_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = pinpipe_store::StoreConfig::default().validate(dir.path()).unwrap().open().unwrap();
        assert_eq!(resume_offset(&store, "t", 0).await.unwrap(), 0);
        for (start, body) in [(0u64, "a\nb\n"), (2, "c\n"), (3, "d\ne\nf\n")] {
            store.inner.put(&store.key(&object_name("t", 0, start)), Bytes::from(body).into()).await.unwrap();
        }
        store.inner.put(&store.key(&object_name("t", 1, 0)), Bytes::from("x\n").into()).await.unwrap();
        assert_eq!(resume_offset(&store, "t", 0).await.unwrap(), 6);
        assert_eq!(resume_offset(&store, "t", 1).await.unwrap(), 1);
    }
}
