//! [`Seen`]: fingerprints of the clean rows a table already holds, so that a row delivered again
//! in a later micro-batch is recognised as the exact duplicate it is. This is the streaming job's
//! de-duplication across micro-batches (what Spark's stateful `dropDuplicates` does); within one
//! batch, [`crate::dedup`] runs first. Fingerprints are [`crate::fingerprint`]'s, kept in a
//! [`FingerprintSet`] (23 to 46 bytes per row, not floodable by crafted records).

use arrow_array::{BooleanArray, RecordBatch};
use pinpipe_model::Kind;

use crate::Result;
use crate::fingerprint::{FingerprintSet, Fingerprinter};

/// Fingerprints of rows of one clean table.
pub struct Seen {
    fingerprinter: Fingerprinter,
    set: FingerprintSet,
}

impl Seen {
    /// An empty set for the clean table of `kind`.
    pub fn new(kind: Kind) -> Result<Self> {
        Ok(Seen { fingerprinter: Fingerprinter::new(kind)?, set: FingerprintSet::default() })
    }

    /// Rows recorded.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The fingerprint of every row of `batch` (any batch whose columns cast to the clean schema,
    /// e.g. strings read back as views).
    pub fn fingerprints(&self, batch: &RecordBatch) -> Result<Vec<u128>> {
        self.fingerprinter.fingerprints(batch)
    }

    /// Records every row of `batch` (rows already in the table).
    pub fn insert_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let fps = self.fingerprints(batch)?;
        self.set.insert_all(&fps);
        Ok(())
    }

    /// The rows of `batch` not recorded yet, and their fingerprints (to [`extend`](Self::extend)
    /// with once those rows are durable). `batch` holds no duplicates itself ([`crate::dedup`]).
    pub fn unseen(&self, batch: &RecordBatch) -> Result<(RecordBatch, Vec<u128>)> {
        let fps = self.fingerprints(batch)?;
        let keep: Vec<bool> = fps.iter().map(|f| !self.set.contains(*f)).collect();
        if keep.iter().all(|&k| k) {
            return Ok((batch.clone(), fps));
        }
        let kept_fps = fps.iter().zip(&keep).filter(|(_, k)| **k).map(|(f, _)| *f).collect();
        let filtered = arrow_select::filter::filter_record_batch(batch, &BooleanArray::from(keep))?;
        Ok((filtered, kept_fps))
    }

    /// Records fingerprints returned by [`unseen`](Self::unseen).
    pub fn extend(&mut self, fingerprints: impl IntoIterator<Item = u128>) {
        for fp in fingerprints {
            self.set.insert(fp);
        }
    }
}
