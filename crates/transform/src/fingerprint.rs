//! Row fingerprints: 128 bits of XXH3 over a clean row's Arrow row encoding (`arrow-row`), in
//! the clean table's types (other types are cast first; text as string views is encoded as is,
//! since the row format encodes it byte for byte as plain strings), so a row has the same
//! fingerprint whether it was just cleaned, from JSON or Parquet, read back from a table's
//! Parquet files, or cleaned by the other job. Rows are encoded a slice at a time into one reused
//! buffer. Exact duplicates are found by fingerprint: two different rows share one
//! with probability about n²/2¹²⁹, 10⁻²⁵ at ten million rows (far below the rate of undetected
//! disk errors).
//!
//! * [`Fingerprinter`]: fingerprints of the rows of a batch.
//! * [`raw_fingerprint`]: a raw record's bytes, for skipping a repeated record before parsing it.
//! * [`FingerprintSet`]: a set that many threads insert into at once (sharded), about 18 bytes
//!   per fingerprint.

use std::collections::HashSet;
use std::sync::Mutex;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_row::{RowConverter, SortField};
use arrow_schema::{Schema, SchemaRef};
use pinpipe_model::{Kind, schema};
use twox_hash::XxHash3_128;

use crate::Result;

/// Seed of row fingerprints (fixed: fingerprints are stored beside tables).
const ROW_SEED: u64 = 0x7069_6e70_6970_6531;
/// Seed of raw record fingerprints (another seed: a raw record never equals a row encoding by
/// construction, but the two kinds live in different sets anyway).
const RAW_SEED: u64 = 0x7261_775f_6c69_6e65;

/// Rows encoded at a time.
const ENCODE_ROWS: usize = 4096;

/// Computes row fingerprints for one clean table.
pub struct Fingerprinter {
    schema: SchemaRef,
    converter: RowConverter,
    view_schema: SchemaRef,
    /// The same columns with text as string views, which the row format encodes exactly as
    /// plain strings: batches in these types are encoded without a cast.
    views: RowConverter,
}

impl Fingerprinter {
    /// A fingerprinter for rows of the clean table of `kind`.
    pub fn new(kind: Kind) -> Result<Self> {
        Self::for_schema(schema::clean(kind))
    }

    /// A fingerprinter for rows of `schema` (any columns, e.g. a few of a table's).
    pub fn for_schema(schema: SchemaRef) -> Result<Self> {
        let fields = |s: &Schema| s.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        let view_schema = crate::columns::with_string_views(&schema);
        Ok(Fingerprinter {
            converter: RowConverter::new(fields(&schema))?,
            views: RowConverter::new(fields(&view_schema))?,
            view_schema,
            schema,
        })
    }

    /// The fingerprint of every row of `batch`: any batch whose columns, in order, cast to the
    /// clean schema (e.g. strings read back as views).
    pub fn fingerprints(&self, batch: &RecordBatch) -> Result<Vec<u128>> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let fields = self.view_schema.fields();
        let as_views = batch.num_columns() == fields.len()
            && batch.columns().iter().zip(fields).all(|(c, f)| c.data_type() == f.data_type());
        let (converter, columns) = if as_views {
            (&self.views, batch.columns().to_vec())
        } else {
            (&self.converter, crate::cast_to(&self.schema, batch)?)
        };
        // Encoded a slice at a time into one reused buffer: fresh memory for every row of a
        // large batch costs more (page faults, zeroing) than the encoding itself.
        let total = batch.num_rows();
        let mut rows = converter.empty_rows(ENCODE_ROWS.min(total), ENCODE_ROWS.min(total) * 128);
        let mut fingerprints = Vec::with_capacity(total);
        for start in (0..total).step_by(ENCODE_ROWS) {
            let len = ENCODE_ROWS.min(total - start);
            let slice: Vec<ArrayRef> = columns.iter().map(|c| c.slice(start, len)).collect();
            rows.clear();
            converter.append(&mut rows, &slice)?;
            fingerprints.extend(rows.iter().map(|r| XxHash3_128::oneshot_with_seed(ROW_SEED, r.as_ref())));
        }
        Ok(fingerprints)
    }
}

/// The fingerprint of a raw record's bytes (trimmed as the cleaner trims them).
pub fn raw_fingerprint(record: &[u8]) -> u128 {
    XxHash3_128::oneshot_with_seed(RAW_SEED, record.trim_ascii())
}

/// Number of shards of a [`FingerprintSet`]: enough that threads rarely wait for each other.
const SHARDS: usize = 64;

/// The shard of a fingerprint: its high bits (the hash tables use the low ones).
fn shard_of(fp: u128) -> usize {
    (fp >> 122) as usize % SHARDS
}

/// A set of fingerprints many threads use at once.
pub struct FingerprintSet {
    shards: Vec<Mutex<HashSet<u128, Identity>>>,
}

impl Default for FingerprintSet {
    fn default() -> Self {
        FingerprintSet { shards: (0..SHARDS).map(|_| Mutex::new(HashSet::with_hasher(Identity))).collect() }
    }
}

impl std::fmt::Debug for FingerprintSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FingerprintSet").field("len", &self.len()).finish()
    }
}

impl FingerprintSet {
    fn shard(&self, fp: u128) -> std::sync::MutexGuard<'_, HashSet<u128, Identity>> {
        self.shards[shard_of(fp)].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `fp`; true if it was not there.
    pub fn insert(&self, fp: u128) -> bool {
        self.shard(fp).insert(fp)
    }

    /// Adds each of `fps`; per fingerprint, true if it was not there (nor earlier in `fps`).
    /// Each shard is locked once for all of its fingerprints.
    pub fn insert_all(&self, fps: &[u128]) -> Vec<bool> {
        let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); SHARDS];
        for (i, &fp) in fps.iter().enumerate() {
            by_shard[shard_of(fp)].push(i);
        }
        let mut new = vec![false; fps.len()];
        for (shard, rows) in by_shard.iter().enumerate().filter(|(_, rows)| !rows.is_empty()) {
            let mut set = self.shards[shard].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for &i in rows {
                new[i] = set.insert(fps[i]);
            }
        }
        new
    }

    /// Whether `fp` is there.
    pub fn contains(&self, fp: u128) -> bool {
        self.shard(fp).contains(&fp)
    }

    /// Fingerprints held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map_or(0, |s| s.len())).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate bytes held (for memory accounting).
    pub fn allocated_bytes(&self) -> usize {
        let slots: usize = self.shards.iter().map(|s| s.lock().map_or(0, |s| s.capacity())).sum();
        slots * (std::mem::size_of::<u128>() + 1)
    }
}

/// Fingerprints are uniformly distributed already: hash tables use their low 64 bits as is.
#[derive(Clone, Copy, Default)]
pub(crate) struct Identity;

impl std::hash::BuildHasher for Identity {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

pub(crate) struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
