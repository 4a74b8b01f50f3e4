//! [`Seen`]: fingerprints of the clean rows a table already holds, so that a row delivered again
//! in a later micro-batch is recognised as the exact duplicate it is. This is the streaming job's
//! de-duplication across micro-batches (what Spark's stateful `dropDuplicates` does); within one
//! batch, [`crate::dedup`] runs first.
//!
//! A fingerprint is 128 bits of hash over the row's Arrow row encoding (`arrow-row`), computed
//! after casting the batch to the clean table's schema, so it is the same whether the row was
//! just cleaned or read back from the table's Parquet files. Two different rows share a
//! fingerprint with probability about n²/2¹²⁹: 10⁻²⁵ at ten million rows. The set costs about
//! 32 bytes per row.

use std::collections::HashSet;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_row::{RowConverter, SortField};
use arrow_schema::SchemaRef;
use pinpipe_model::{Kind, schema};

use crate::Result;

/// Fingerprints of rows of one clean table.
pub struct Seen {
    schema: SchemaRef,
    converter: RowConverter,
    hashers: (ahash::RandomState, ahash::RandomState),
    set: HashSet<u128>,
}

impl Seen {
    /// An empty set for the clean table of `kind`.
    pub fn new(kind: Kind) -> Result<Self> {
        let schema = schema::clean(kind);
        let fields = schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        Ok(Seen {
            converter: RowConverter::new(fields)?,
            schema,
            hashers: (
                ahash::RandomState::with_seeds(0x7365_656e, 0x6669_6e67, 0x6572_7072, 0x696e_7431),
                ahash::RandomState::with_seeds(0x7069_6e70, 0x6970_6573, 0x7472_6561, 0x6d5f_3238),
            ),
            set: HashSet::new(),
        })
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
        let columns: Vec<ArrayRef> = self
            .schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| {
                if c.data_type() == f.data_type() { Ok(c.clone()) } else { arrow_cast::cast(c, f.data_type()) }
            })
            .collect::<Result<_, _>>()?;
        let rows = self.converter.convert_columns(&columns)?;
        Ok(rows
            .iter()
            .map(|r| {
                let bytes = r.as_ref();
                (u128::from(self.hashers.0.hash_one(bytes)) << 64) | u128::from(self.hashers.1.hash_one(bytes))
            })
            .collect())
    }

    /// Records every row of `batch` (rows already in the table).
    pub fn insert_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let fps = self.fingerprints(batch)?;
        self.set.extend(fps);
        Ok(())
    }

    /// The rows of `batch` not recorded yet, and their fingerprints (to [`extend`](Self::extend)
    /// with once those rows are durable). `batch` holds no duplicates itself ([`crate::dedup`]).
    pub fn unseen(&self, batch: &RecordBatch) -> Result<(RecordBatch, Vec<u128>)> {
        let fps = self.fingerprints(batch)?;
        let keep: Vec<bool> = fps.iter().map(|f| !self.set.contains(f)).collect();
        if keep.iter().all(|&k| k) {
            return Ok((batch.clone(), fps));
        }
        let kept_fps = fps.iter().zip(&keep).filter(|(_, k)| **k).map(|(f, _)| *f).collect();
        let filtered = arrow_select::filter::filter_record_batch(batch, &BooleanArray::from(keep))?;
        Ok((filtered, kept_fps))
    }

    /// Records fingerprints returned by [`unseen`](Self::unseen).
    pub fn extend(&mut self, fingerprints: impl IntoIterator<Item = u128>) {
        self.set.extend(fingerprints);
    }
}
