//! Exact removal of duplicate clean rows ("exact duplicate rows dropped"), by fingerprint
//! ([`crate::fingerprint`]): the first occurrence (in chunk order, then row order) is kept.

use arrow_array::{BooleanArray, RecordBatch};
use pinpipe_model::schema;

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
            let mut first = 0;
            let mut kept = Vec::with_capacity(self.batches.len());
            for b in std::mem::take(&mut self.batches) {
                let rows = &keep[first..first + b.num_rows()];
                first += b.num_rows();
                if rows.iter().all(|k| *k) {
                    kept.push(b);
                } else if rows.iter().any(|k| *k) {
                    kept.push(arrow_select::filter::filter_record_batch(&b, &BooleanArray::from(rows.to_vec()))?);
                }
            }
            self.batches = kept;
            let mut i = 0;
            self.fingerprints.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        Ok(dropped)
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The rows as one batch (a copy when they are in several).
    pub fn batch(&self) -> Result<RecordBatch> {
        match self.batches.as_slice() {
            [one] => Ok(one.clone()),
            all => Ok(arrow_select::concat::concat_batches(&schema::clean(self.kind), all)?),
        }
    }

    /// Each batch with the fingerprints of its rows.
    pub fn into_parts(self) -> Vec<(RecordBatch, Vec<u128>)> {
        let mut fingerprints = self.fingerprints.into_iter();
        self.batches
            .into_iter()
            .map(|b| {
                let fps = fingerprints.by_ref().take(b.num_rows()).collect();
                (b, fps)
            })
            .collect()
    }
}

/// The rows of `chunks` without exact duplicates: their batches, in order (a chunk whose rows are
/// all duplicates has none left).
pub fn dedup(chunks: Vec<Cleaned>) -> Result<Vec<RecordBatch>> {
    let set = FingerprintSet::default();
    let mut out = Vec::new();
    for mut c in chunks {
        c.retain_new(&set)?;
        out.append(&mut c.batches);
    }
    Ok(out)
}

/// Rows in a list of batches.
pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}
