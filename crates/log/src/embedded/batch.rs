//! The on-disk unit of the embedded log: a batch of records with one checksum, written whole
//! or recognised as torn. Little-endian throughout.
//!
//! ```text
//! batch   = len:u32 crc:u32 base_offset:u64 count:u32 record*count
//!           (len counts the bytes after itself; crc is CRC-32C of the bytes after itself)
//! record  = timestamp_ms:i64 key_len:i32 (-1 = no key) key value_len:u32 value
//! ```

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::Bytes;

use crate::port::{Record, StoredRecord};
use crate::{Error, Result};

/// Bytes before the records: len, crc, base offset, count.
pub(crate) const HEADER: usize = 20;
/// Fixed bytes per record: timestamp, key length, value length.
const RECORD_FIXED: usize = 16;
/// Largest batch accepted (a safety bound for a corrupt length field too).
pub(crate) const MAX_BATCH_BYTES: usize = 64 << 20;

/// Encoded size of a batch of `records`.
pub(crate) fn encoded_len(records: &[Record]) -> usize {
    HEADER + records.iter().map(|r| RECORD_FIXED + r.key.as_ref().map_or(0, Bytes::len) + r.value.len()).sum::<usize>()
}

/// Appends the encoding of a batch to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, base: u64, now_ms: i64, records: &[Record]) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        out.extend_from_slice(&r.timestamp_ms.unwrap_or(now_ms).to_le_bytes());
        match &r.key {
            Some(k) => {
                out.extend_from_slice(&(k.len() as i32).to_le_bytes());
                out.extend_from_slice(k);
            }
            None => out.extend_from_slice(&(-1i32).to_le_bytes()),
        }
        out.extend_from_slice(&(r.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&r.value);
    }
    let len = (out.len() - start - 4) as u32;
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A whole, checksummed batch.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    /// The whole encoded batch, header included.
    pub bytes: Bytes,
    /// Offset of its first record.
    pub base: u64,
    /// Records in it.
    pub count: u32,
}

impl Batch {
    /// Offset after its last record.
    pub fn next_offset(&self) -> u64 {
        self.base + u64::from(self.count)
    }

    /// Decodes its records with offsets ≥ `from`, appending to `out`; stops before exceeding
    /// `max_records` records in `out`. Returns the bytes of keys and values added.
    pub fn decode_into(
        &self,
        from: u64,
        max_records: usize,
        out: &mut Vec<StoredRecord>,
    ) -> std::result::Result<usize, String> {
        let b = &self.bytes;
        let mut p = HEADER;
        let mut added = 0;
        let take = |p: &mut usize, n: usize| -> std::result::Result<std::ops::Range<usize>, String> {
            let r = *p..*p + n;
            if r.end > b.len() {
                return Err("record runs past the end of its batch".into());
            }
            *p = r.end;
            Ok(r)
        };
        for i in 0..u64::from(self.count) {
            let ts = i64::from_le_bytes(le8(&b[take(&mut p, 8)?]));
            let key_len = i32::from_le_bytes(le4(&b[take(&mut p, 4)?]));
            let key = if key_len < 0 { None } else { Some(b.slice(take(&mut p, key_len as usize)?)) };
            let value_len = u32::from_le_bytes(le4(&b[take(&mut p, 4)?])) as usize;
            let value = b.slice(take(&mut p, value_len)?);
            let offset = self.base + i;
            if offset < from {
                continue;
            }
            if out.len() >= max_records {
                break;
            }
            added += key.as_ref().map_or(0, Bytes::len) + value.len();
            out.push(StoredRecord { offset, timestamp_ms: ts, key, value });
        }
        Ok(added)
    }
}

fn le4(s: &[u8]) -> [u8; 4] {
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    a
}

fn le8(s: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    a
}

/// Why a scan stopped before the end of the readable bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The bytes end inside a batch (a torn write, or one still being written).
    Incomplete,
    /// A batch failed its checks.
    Invalid(String),
}

/// Reads whole batches from a segment file in large chunks.
pub(crate) struct BatchReader<'f> {
    file: &'f File,
    path: &'f Path,
    /// Position of the next batch.
    pub pos: u64,
    end: u64,
    buf: Bytes,
    buf_start: u64,
}

/// Most bytes read from the file at a time.
const CHUNK: usize = 1 << 20;
/// Bytes of the first read of a reader.
const FIRST_CHUNK: usize = 64 << 10;

impl<'f> BatchReader<'f> {
    /// Reads batches from `pos` up to (not beyond) `end`.
    pub fn new(file: &'f File, path: &'f Path, pos: u64, end: u64) -> Self {
        BatchReader { file, path, pos, end, buf: Bytes::new(), buf_start: pos }
    }

    /// Makes `[pos, pos + n)` available in the buffer, if the file has it below `end`.
    fn ensure(&mut self, n: usize) -> Result<bool> {
        let want_end = self.pos + n as u64;
        if want_end > self.end {
            return Ok(false);
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if self.pos >= self.buf_start && want_end <= buf_end {
            return Ok(true);
        }
        // Small reads stay small (a consumer asking for one record must not pull a megabyte);
        // sequential scans grow the chunk up to CHUNK.
        let chunk = if self.buf.is_empty() { FIRST_CHUNK } else { (self.buf.len() * 2).min(CHUNK) };
        let len = ((self.end - self.pos) as usize).min(n.max(chunk));
        let mut v = vec![0u8; len];
        self.file.read_exact_at(&mut v, self.pos).map_err(Error::io(self.path))?;
        self.buf = Bytes::from(v);
        self.buf_start = self.pos;
        Ok(true)
    }

    /// The next valid batch, `Ok(Err(stop))` where the valid data ends.
    pub fn next_batch(&mut self) -> Result<std::result::Result<Batch, Stop>> {
        if self.pos >= self.end {
            return Ok(Err(Stop::Incomplete));
        }
        if !self.ensure(HEADER)? {
            return Ok(Err(Stop::Incomplete));
        }
        let at = (self.pos - self.buf_start) as usize;
        let len = u32::from_le_bytes(le4(&self.buf[at..at + 4])) as usize;
        if !(HEADER - 4..=MAX_BATCH_BYTES).contains(&len) {
            return Ok(Err(Stop::Invalid(format!("impossible batch length {len} at position {}", self.pos))));
        }
        if !self.ensure(4 + len)? {
            return Ok(Err(Stop::Incomplete));
        }
        let at = (self.pos - self.buf_start) as usize;
        let bytes = self.buf.slice(at..at + 4 + len);
        let crc = u32::from_le_bytes(le4(&bytes[4..8]));
        if crc32c::crc32c(&bytes[8..]) != crc {
            return Ok(Err(Stop::Invalid(format!("checksum mismatch in the batch at position {}", self.pos))));
        }
        let base = u64::from_le_bytes(le8(&bytes[8..16]));
        let count = u32::from_le_bytes(le4(&bytes[16..20]));
        if count == 0 {
            return Ok(Err(Stop::Invalid(format!("empty batch at position {}", self.pos))));
        }
        self.pos += bytes.len() as u64;
        Ok(Ok(Batch { bytes, base, count }))
    }
}

/// The highest offset any whole, checksummed batch in `[from, len)` of a damaged file claims
/// (searching at every byte position, so batches after garbage are found too): how far offsets
/// were handed out beyond a damage.
pub(crate) fn highest_offset_after(file: &File, path: &Path, from: u64, len: u64) -> Result<Option<u64>> {
    let mut best = None;
    let mut pos = from;
    while pos + HEADER as u64 <= len {
        let mut reader = BatchReader::new(file, path, pos, len);
        match reader.next_batch()? {
            Ok(b) => {
                best = best.max(Some(b.next_offset()));
                pos = reader.pos;
            }
            Err(_) => pos += 1,
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn rec(key: Option<&str>, value: &str, ts: i64) -> Record {
        Record {
            timestamp_ms: Some(ts),
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: Bytes::copy_from_slice(value.as_bytes()),
        }
    }

    #[test]
    fn batches_round_trip_and_torn_tails_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let mut data = Vec::new();
        let a = vec![rec(Some("k"), "{\"a\":1}", 5), rec(None, "", 6)];
        encode(&mut data, 0, 0, &a);
        assert_eq!(data.len(), encoded_len(&a));
        encode(&mut data, 2, 77, &[Record::value(Bytes::from_static(b"x"))]);
        let whole = data.len();
        encode(&mut data, 3, 0, &[rec(None, "torn", 1)]);
        data.truncate(data.len() - 2);
        std::fs::File::create(&path).unwrap().write_all(&data).unwrap();

        let f = File::open(&path).unwrap();
        let mut r = BatchReader::new(&f, &path, 0, data.len() as u64);
        let b1 = r.next_batch().unwrap().unwrap();
        let mut out = Vec::new();
        b1.decode_into(0, 10, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(out[1].key, None);
        assert_eq!((out[1].offset, out[1].timestamp_ms, out[1].value.len()), (1, 6, 0));
        let b2 = r.next_batch().unwrap().unwrap();
        out.clear();
        b2.decode_into(0, 10, &mut out).unwrap();
        assert_eq!((out[0].offset, out[0].timestamp_ms), (2, 77));
        assert_eq!(r.next_batch().unwrap().unwrap_err(), Stop::Incomplete);
        assert_eq!(r.pos, whole as u64);
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let mut data = Vec::new();
        encode(&mut data, 0, 0, &[rec(None, "hello", 1)]);
        data[30] ^= 1;
        std::fs::write(&path, &data).unwrap();
        let f = File::open(&path).unwrap();
        let mut r = BatchReader::new(&f, &path, 0, data.len() as u64);
        assert!(matches!(r.next_batch().unwrap(), Err(Stop::Invalid(m)) if m.contains("checksum")));
    }
}
