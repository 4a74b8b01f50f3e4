//! Exact removal of duplicate clean rows ("exact duplicate rows dropped").
//!
//! Rows are bucketed by the hash [`crate::Cleaner`] computed over their clean values; rows with
//! equal hashes are compared value by value, so two different rows are never merged even if
//! their hashes collide. The first occurrence (in chunk order, then row order) is kept.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use arrow_array::{BooleanArray, RecordBatch};

use crate::{Cleaned, Result};

fn rows_equal(a: &RecordBatch, i: usize, b: &RecordBatch, j: usize) -> bool {
    a.columns().iter().zip(b.columns()).all(|(x, y)| x.slice(i, 1).as_ref() == y.slice(j, 1).as_ref())
}

/// The rows of `chunks` without exact duplicates, one batch per chunk (same order; a chunk whose
/// rows are all duplicates yields an empty batch). Each chunk is consumed as it is filtered, so
/// the memory held is the output plus one chunk, not twice the table.
pub fn dedup(chunks: Vec<Cleaned>) -> Result<Vec<RecordBatch>> {
    let total: usize = chunks.iter().map(|c| c.hashes.len()).sum();
    // hash -> first row with it, as (chunk, row in that chunk's OUTPUT batch); rows that collide
    // without being equal go to `more`.
    let mut first: HashMap<u64, (u32, u32), NoHash> = HashMap::with_capacity_and_hasher(total, NoHash);
    let mut more: HashMap<u64, Vec<(u32, u32)>> = HashMap::new();
    let mut out: Vec<RecordBatch> = Vec::with_capacity(chunks.len());
    for (ci, chunk) in chunks.into_iter().enumerate() {
        let ci = ci as u32;
        // Output row -> input row, for the rows of this chunk kept so far.
        let mut kept: Vec<u32> = Vec::with_capacity(chunk.hashes.len());
        let mut keep: Option<Vec<bool>> = None;
        for (ri, &hash) in chunk.hashes.iter().enumerate() {
            let same = |&(c, r): &(u32, u32)| {
                if c == ci {
                    rows_equal(&chunk.batch, kept[r as usize] as usize, &chunk.batch, ri)
                } else {
                    rows_equal(&out[c as usize], r as usize, &chunk.batch, ri)
                }
            };
            let here = (ci, kept.len() as u32);
            let duplicate = match first.entry(hash) {
                Entry::Vacant(v) => {
                    v.insert(here);
                    false
                }
                Entry::Occupied(o) => {
                    if same(o.get()) || more.get(&hash).is_some_and(|v| v.iter().any(same)) {
                        true
                    } else {
                        more.entry(hash).or_default().push(here);
                        false
                    }
                }
            };
            if duplicate {
                keep.get_or_insert_with(|| vec![true; chunk.hashes.len()])[ri] = false;
            } else {
                kept.push(ri as u32);
            }
        }
        out.push(match keep {
            None => chunk.batch,
            Some(mask) => arrow_select::filter::filter_record_batch(&chunk.batch, &BooleanArray::from(mask))?,
        });
    }
    Ok(out)
}

/// The keys are hashes already.
#[derive(Clone, Copy, Default)]
struct NoHash;

impl std::hash::BuildHasher for NoHash {
    type Hasher = NoHasher;
    fn build_hasher(&self) -> NoHasher {
        NoHasher(0)
    }
}

struct NoHasher(u64);

impl std::hash::Hasher for NoHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Rows in a list of batches.
pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}
