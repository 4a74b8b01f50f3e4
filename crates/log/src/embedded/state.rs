//! The state readers share with the writer: segments with their sparse indexes, committed sizes
//! and end offsets. Readers only ever see committed (fsynced) bytes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::batch::{BatchReader, Stop};
use crate::port::{ReadLimits, StoredRecord, TopicInfo};
use crate::{Error, Result};

/// Bytes between two sparse index entries.
pub(crate) const INDEX_INTERVAL: u64 = 4096;

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// File name of the segment starting at `base`.
pub(crate) fn segment_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// File name of the index of the segment starting at `base`.
pub(crate) fn index_name(base: u64) -> String {
    format!("{base:020}.idx")
}

/// One segment file.
pub(crate) struct Segment {
    /// Offset of its first record.
    pub base: u64,
    /// Its path (opened for each read: a partition holds no descriptor while nobody reads it).
    pub path: PathBuf,
    /// `(batch base offset, file position)`, ascending, one entry per [`INDEX_INTERVAL`] bytes.
    pub index: RwLock<Vec<(u64, u64)>>,
    /// Bytes readers may read (durable).
    pub size: AtomicU64,
}

impl Segment {
    pub(crate) fn new(base: u64, path: PathBuf, index: Vec<(u64, u64)>, size: u64) -> Result<Self> {
        Ok(Segment { base, path, index: RwLock::new(index), size: AtomicU64::new(size) })
    }

    /// A read handle.
    pub(crate) fn open(&self) -> Result<File> {
        File::open(&self.path).map_err(Error::io(&self.path))
    }

    /// Position of the batch holding `offset` or an earlier one.
    pub(crate) fn position_for(&self, offset: u64) -> u64 {
        let index = read_lock(&self.index);
        match index.partition_point(|e| e.0 <= offset) {
            0 => 0,
            i => index[i - 1].1,
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }
}

/// What a scan of a segment found.
pub(crate) struct Scan {
    /// Position after the last valid batch.
    pub valid_end: u64,
    /// Offset after the last valid batch (the segment's base if none).
    pub next_offset: u64,
    /// Index entries found.
    pub index: Vec<(u64, u64)>,
    /// Why it stopped before the end of the file, if it did.
    pub stop: Option<Stop>,
}

/// Scans `[from, len)` of a segment, validating every batch.
pub(crate) fn scan(
    file: &File,
    path: &Path,
    from: u64,
    len: u64,
    mut next_offset: u64,
    mut last_indexed: Option<u64>,
) -> Result<Scan> {
    let mut reader = BatchReader::new(file, path, from, len);
    let mut index = Vec::new();
    loop {
        let pos = reader.pos;
        match reader.next_batch()? {
            Ok(b) => {
                if b.base != next_offset {
                    let stop = Stop::Invalid(format!(
                        "batch at position {pos} starts at offset {} instead of {next_offset}",
                        b.base
                    ));
                    return Ok(Scan { valid_end: pos, next_offset, index, stop: Some(stop) });
                }
                if last_indexed.is_none_or(|l| pos - l >= INDEX_INTERVAL) {
                    index.push((b.base, pos));
                    last_indexed = Some(pos);
                }
                next_offset = b.next_offset();
            }
            Err(stop) => {
                let at_end = pos >= len;
                return Ok(Scan { valid_end: pos, next_offset, index, stop: (!at_end).then_some(stop) });
            }
        }
    }
}

/// Where a partition's files are damaged beyond a torn tail (found when it was opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// The damaged file.
    pub path: PathBuf,
    /// Byte position of the damage.
    pub position: u64,
    /// Offset of the first record that cannot be read.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// One partition: its segments and offsets.
pub(crate) struct Partition {
    pub topic: String,
    pub number: u32,
    pub dir: PathBuf,
    pub segments: RwLock<Vec<Arc<Segment>>>,
    /// First offset held.
    pub start: AtomicU64,
    /// Offset after the last durable record; readers wait on it.
    pub end: watch::Sender<u64>,
    /// Damage found on open: the partition is neither read nor written until it is repaired.
    pub damage: Option<Damage>,
    /// The last write failure, until a write succeeds again (shown by health checks).
    pub degraded: RwLock<Option<String>>,
    /// Bytes retention keeps only because a consumer has not read them yet.
    pub held: AtomicU64,
}

impl Partition {
    /// The error for any use of a damaged partition.
    pub(crate) fn damaged(&self) -> Option<Error> {
        self.damage.as_ref().map(|d| Error::Damaged {
            topic: self.topic.clone(),
            partition: self.number,
            path: d.path.clone(),
            position: d.position,
            offset: d.offset,
            reason: d.reason.clone(),
        })
    }

    pub(crate) fn end(&self) -> u64 {
        *self.end.borrow()
    }

    pub(crate) fn start(&self) -> u64 {
        self.start.load(Ordering::Acquire)
    }

    pub(crate) fn segments(&self) -> Vec<Arc<Segment>> {
        read_lock(&self.segments).clone()
    }

    /// Reads committed records from `from` (blocking file I/O). Offsets in a gap left by a
    /// repair are skipped: the records after it are returned.
    pub(crate) fn read(&self, from: u64, limits: ReadLimits) -> Result<Vec<StoredRecord>> {
        if let Some(e) = self.damaged() {
            return Err(e);
        }
        let (start, end) = (self.start(), self.end());
        if from < start || from > end {
            return Err(Error::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.number,
                offset: from,
                start,
                end,
            });
        }
        let mut out = Vec::new();
        if from == end || limits.max_records == 0 {
            return Ok(out);
        }
        let segments = self.segments();
        let mut i = segments.partition_point(|s| s.base <= from).saturating_sub(1);
        let mut bytes = 0usize;
        'segments: while i < segments.len() {
            let seg = &segments[i];
            let file = seg.open()?;
            let mut reader = BatchReader::new(&file, &seg.path, seg.position_for(from), seg.size());
            loop {
                match reader.next_batch()? {
                    Ok(b) if b.next_offset() <= from => continue,
                    Ok(b) => {
                        bytes += b
                            .decode_into(from, limits.max_records, &mut out)
                            .map_err(|reason| Error::Corrupt { path: seg.path.clone(), reason })?;
                        if out.len() >= limits.max_records || bytes >= limits.max_bytes {
                            break 'segments;
                        }
                    }
                    Err(Stop::Incomplete) => break,
                    Err(Stop::Invalid(reason)) => return Err(Error::Corrupt { path: seg.path.clone(), reason }),
                }
            }
            i += 1;
        }
        Ok(out)
    }
}

/// A topic and its partitions.
pub(crate) struct Topic {
    pub info: TopicInfo,
    pub dir: PathBuf,
    pub partitions: Vec<Arc<Partition>>,
}
