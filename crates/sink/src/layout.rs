//! Where a partition resumes, and the audit of what the store holds against the log. The
//! object names themselves are `pinpipe_store::layout`'s.

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use pinpipe_store::Store;

use crate::{Error, Result};

pub use pinpipe_store::layout::{frame, object_name, parse_start, partition_dir};

/// The offset after the last record already stored for the partition (0 if none): the start of
/// its newest object plus the number of records in it, which is its number of lines: the sink
/// writes every record as exactly one line ([`pinpipe_store::layout::frame`]).
pub async fn resume_offset(store: &Store, topic: &str, partition: u32) -> Result<u64> {
    let dir = store.key(&partition_dir(topic, partition));
    let listing: Vec<object_store::ObjectMeta> = store
        .inner
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|source| Error::Store { key: dir.to_string(), source })?;
    let newest = listing
        .iter()
        .filter_map(|m| m.location.filename().and_then(|f| parse_start(topic, partition, f)).map(|s| (s, &m.location)))
        .max_by_key(|(s, _)| *s);
    let Some((start, key)) = newest else { return Ok(0) };
    let bytes: Bytes = store
        .inner
        .get(key)
        .await
        .map_err(|source| Error::Store { key: key.to_string(), source })?
        .bytes()
        .await
        .map_err(|source| Error::Store { key: key.to_string(), source })?;
    let lines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
    Ok(start + lines)
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

/// Reads every object of a partition and checks it against the log: contiguous, no overlaps,
/// each line equal to the log's value at its offset.
pub async fn audit(store: &Store, log: &dyn pinpipe_log::OffsetLog, topic: &str, partition: u32) -> Result<Audit> {
    let dir = store.key(&partition_dir(topic, partition));
    let listing: Vec<object_store::ObjectMeta> = store
        .inner
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|source| Error::Store { key: dir.to_string(), source })?;
    let mut objects: Vec<(u64, object_store::path::Path)> = listing
        .into_iter()
        .filter_map(|m| {
            m.location.filename().and_then(|f| parse_start(topic, partition, f)).map(|s| (s, m.location.clone()))
        })
        .collect();
    objects.sort_by_key(|(s, _)| *s);
    let mut a = Audit::default();
    let mut expected: Option<u64> = None;
    for (start, key) in objects {
        let bytes = store
            .inner
            .get(&key)
            .await
            .map_err(|source| Error::Store { key: key.to_string(), source })?
            .bytes()
            .await
            .map_err(|source| Error::Store { key: key.to_string(), source })?;
        let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        let lines = &lines[..lines.len().saturating_sub(1)];
        a.objects += 1;
        a.records += lines.len() as u64;
        match expected {
            Some(e) if start > e => a.gaps.push((e, start)),
            Some(e) if start < e => a.duplicates.extend(start..e.min(start + lines.len() as u64)),
            _ => {}
        }
        let stored = log
            .read(topic, partition, start, pinpipe_log::ReadLimits { max_records: lines.len(), max_bytes: usize::MAX })
            .await?;
        for (i, line) in lines.iter().enumerate() {
            let offset = start + i as u64;
            if stored.get(i).is_none_or(|r| r.offset != offset || frame(&r.value).as_ref() != *line) {
                a.mismatches.push(offset);
            }
        }
        let end = start + lines.len() as u64;
        expected = Some(expected.map_or(end, |e| e.max(end)));
    }
    a.next = expected.unwrap_or(0);
    Ok(a)
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
