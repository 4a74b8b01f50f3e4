//! Exact removal of duplicate clean rows ("exact duplicate rows dropped"), by fingerprint
//! ([`crate::fingerprint`]): the first occurrence (in chunk order, then row order) is kept.

use arrow_array::{BooleanArray, RecordBatch};
use pinpipe_model::{Kind, schema};

use crate::fingerprint::FingerprintSet;
use crate::{Cleaned, Error, Result};

impl Cleaned {
    /// Keeps only the rows whose fingerprint `set` did not hold (adding them to it): drops the
    /// rows that repeat a row seen before, in this chunk or in any chunk offered to `set`
    /// earlier. Returns the number of rows dropped. Many chunks may be offered at once from
    /// several threads: each fingerprint is kept exactly once.
    pub fn retain_new(&mut self, set: &FingerprintSet) -> Result<usize> {
        let keep = set.insert_all(&self.fingerprints);
        self.retain(&keep)
    }

    /// Keeps the rows where `keep` (one per row) is true; returns the number dropped.
    pub fn retain(&mut self, keep: &[bool]) -> Result<usize> {
        if keep.len() != self.fingerprints.len() {
            return Err(Error::Schema(format!(
                "{} rows to keep or drop, {} held",
                keep.len(),
                self.fingerprints.len()
            )));
        }
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

    /// The rows as one batch, in the clean table's types (a copy when they are in several).
    pub fn batch(&self) -> Result<RecordBatch> {
        let parts = self.batches.iter().map(|b| clean_types(self.kind, b)).collect::<Result<Vec<_>>>()?;
        match parts.as_slice() {
            [one] => Ok(one.clone()),
            all => Ok(arrow_select::concat::concat_batches(&schema::clean(self.kind), all)?),
        }
    }

    /// Gives every batch the clean table's types (text cleaned column by column is held as string
    /// views until here): best after [`Cleaned::retain_new`], so only the rows kept are copied.
    pub fn to_clean_types(&mut self) -> Result<()> {
        for b in &mut self.batches {
            *b = clean_types(self.kind, b)?;
        }
        Ok(())
    }

    /// Each batch in the clean table's types (text cleaned column by column is held as string
    /// views until here: only the rows kept are copied into plain strings) with the fingerprints
    /// of its rows.
    pub fn into_parts(self) -> Result<Vec<(RecordBatch, Vec<u128>)>> {
        let mut fingerprints = self.fingerprints.into_iter();
        self.batches
            .into_iter()
            .map(|b| {
                let fps = fingerprints.by_ref().take(b.num_rows()).collect();
                Ok((clean_types(self.kind, &b)?, fps))
            })
            .collect()
    }
}

/// `batch` in the clean table's schema of `kind`.
fn clean_types(kind: Kind, batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = schema::clean(kind);
    if batch.schema() == schema {
        return Ok(batch.clone());
    }
    let columns = crate::cast_to(&schema, batch)?;
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The rows of `chunks` without exact duplicates: their batches, in order (a chunk whose rows are
/// all duplicates has none left).
pub fn dedup(chunks: Vec<Cleaned>) -> Result<Vec<RecordBatch>> {
    let set = FingerprintSet::default();
    let mut out = Vec::new();
    for mut c in chunks {
        c.retain_new(&set)?;
        out.extend(c.into_parts()?.into_iter().map(|(b, _)| b));
    }
    Ok(out)
}

/// Rows in a list of batches.
pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}
