//! Exact removal of duplicate clean rows ("exact duplicate rows dropped"), by fingerprint
//! ([`crate::fingerprint`]): the first occurrence (in chunk order, then row order) is kept.

use arrow_array::{BooleanArray, RecordBatch};

use crate::fingerprint::FingerprintSet;
use crate::{Cleaned, Result};

impl Cleaned {
    /// Keeps only the rows whose fingerprint `set` did not hold (adding them to it): drops the
    /// rows that repeat a row seen before, in this chunk or in any chunk offered to `set`
    /// earlier. Returns the number of rows dropped. Many chunks may be offered at once from
    /// several threads: each fingerprint is kept exactly once.
    pub fn retain_new(&mut self, set: &FingerprintSet) -> Result<usize> {
        let keep: Vec<bool> = self.fingerprints.iter().map(|&fp| set.insert(fp)).collect();
        self.retain(&keep)
    }

    /// Keeps the rows where `keep` is true; returns the number dropped.
    pub fn retain(&mut self, keep: &[bool]) -> Result<usize> {
        let dropped = keep.iter().filter(|k| !**k).count();
        if dropped > 0 {
            self.batch = arrow_select::filter::filter_record_batch(&self.batch, &BooleanArray::from(keep.to_vec()))?;
            let mut i = 0;
            self.fingerprints.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        Ok(dropped)
    }
}

/// The rows of `chunks` without exact duplicates, one batch per chunk (same order; a chunk whose
/// rows are all duplicates yields an empty batch).
pub fn dedup(chunks: Vec<Cleaned>) -> Result<Vec<RecordBatch>> {
    let set = FingerprintSet::default();
    chunks
        .into_iter()
        .map(|mut c| {
            c.retain_new(&set)?;
            Ok(c.batch)
        })
        .collect()
}

/// Rows in a list of batches.
pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}
