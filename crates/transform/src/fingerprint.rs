//! Row fingerprints: 128 bits of XXH3 over a clean row's Arrow row encoding (`arrow-row`), in
//! the clean table's types (other types are cast first; text as plain strings, large strings or
//! string views is encoded alike, since the row format encodes them byte for byte the same), so
//! a row has the same fingerprint whether it was just cleaned, from JSON or Parquet, read back
//! from a table's Parquet files, or cleaned by the other job. Exact duplicates are found by
//! fingerprint: two different rows share one with probability about n²/2¹²⁹, 10⁻²⁵ at ten
//! million rows (far below the rate of undetected disk errors).
//!
//! The encoding is the row format's, byte for byte, but built one row at a time into a small
//! buffer that stays in the cache while it is hashed ([`Fingerprinter`]): integers, timestamps,
//! floats, text and lists of those (the coordinates) are encoded here; any other column is
//! encoded by `arrow-row` itself a slice at a time and its bytes spliced in. The two give the same bytes
//! (tested against `RowConverter` in `crate::tests::fingerprints`), so fingerprints stored beside
//! tables stay valid.
//!
//! * [`Fingerprinter`]: fingerprints of the rows of a batch.
//! * [`raw_fingerprint`]: a raw record's bytes, for skipping a repeated record before parsing it.
//! * [`FingerprintSet`]: a set that many threads insert into at once (sharded), 23 to 46 bytes
//!   per fingerprint (16 in a slot, at most seven slots in ten full).

use std::sync::Mutex;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::{DataType, SchemaRef};
use pinpipe_model::{Kind, schema};
use twox_hash::XxHash3_128;

use crate::Result;

/// Seed of row fingerprints (fixed: fingerprints are stored beside tables).
pub(crate) const ROW_SEED: u64 = 0x7069_6e70_6970_6531;
/// Seed of raw record fingerprints (another seed: a raw record never equals a row encoding by
/// construction, but the two kinds live in different sets anyway).
pub(crate) const RAW_SEED: u64 = 0x7261_775f_6c69_6e65;

/// Rows of a column `arrow-row` encodes for us, encoded at a time.
const ENCODE_ROWS: usize = 4096;

/// Computes row fingerprints for rows of one schema.
pub struct Fingerprinter {
    schema: SchemaRef,
    /// Per column: `None` when encoded here, else `arrow-row`'s converter for it alone.
    converters: Vec<Option<RowConverter>>,
    /// XXH3's secret derived from [`ROW_SEED`], which it uses for rows over 240 bytes: derived
    /// once here instead of for every such row (the hashes are the same).
    secret: Box<[u8]>,
}

/// How a column of a batch is encoded.
enum Column<'a> {
    /// 64-bit integers and timestamps (the row format encodes them alike).
    Int(&'a [i64], Option<&'a NullBuffer>),
    Float(&'a [f64], Option<&'a NullBuffer>),
    Text(&'a arrow_array::StringArray),
    LargeText(&'a arrow_array::LargeStringArray),
    Views(&'a arrow_array::StringViewArray),
    /// A list of elements encoded here.
    List(&'a arrow_array::ListArray, Box<Column<'a>>),
    /// Encoded by `arrow-row` (column `i`'s converter).
    Rows(usize),
}

/// Whether columns of type `t` are encoded here (else by arrow-row): text, 64-bit integers,
/// timestamps, floats, and lists of those.
fn encoded_here(t: &DataType) -> bool {
    match t {
        DataType::List(element) => {
            !matches!(element.data_type(), DataType::List(_)) && encoded_here(element.data_type())
        }
        t => matches!(
            t,
            DataType::Int64
                | DataType::Timestamp(..)
                | DataType::Float64
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
        ),
    }
}

/// Whether a column of type `t` needs no cast to be encoded as a column of `field`'s type.
fn same_encoding(t: &DataType, field: &DataType) -> bool {
    let text = |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    t == field || (text(t) && text(field))
}

impl Fingerprinter {
    /// A fingerprinter for rows of the clean table of `kind`.
    pub fn new(kind: Kind) -> Result<Self> {
        Self::for_schema(schema::clean(kind))
    }

    /// A fingerprinter for rows of `schema` (any columns, e.g. a few of a table's).
    pub fn for_schema(schema: SchemaRef) -> Result<Self> {
        let converters = schema
            .fields()
            .iter()
            .map(|f| {
                let t = f.data_type();
                (!encoded_here(t)).then(|| RowConverter::new(vec![SortField::new(t.clone())])).transpose()
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(Fingerprinter { schema, converters, secret: XxHash3_128::with_seed(ROW_SEED).into_secret() })
    }

    /// The fingerprint of every row of `batch`: any batch whose first columns, in order, cast to
    /// the schema (e.g. strings read back as views); columns after those are not part of it.
    pub fn fingerprints(&self, batch: &RecordBatch) -> Result<Vec<u128>> {
        let total = batch.num_rows();
        if total == 0 {
            return Ok(Vec::new());
        }
        let fields = self.schema.fields();
        if batch.num_columns() < fields.len() {
            return Err(crate::Error::Schema(format!(
                "{} columns to fingerprint, {} expected",
                batch.num_columns(),
                fields.len()
            )));
        }
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .zip(fields)
            .map(|(c, f)| {
                if same_encoding(c.data_type(), f.data_type()) {
                    Ok(std::sync::Arc::clone(c))
                } else {
                    Ok(arrow_cast::cast(c, f.data_type())?)
                }
            })
            .collect::<Result<_>>()?;
        let encoders: Vec<Column<'_>> =
            columns.iter().enumerate().map(|(i, c)| column(i, c, &self.converters)).collect::<Result<_>>()?;
        // The columns arrow-row encodes, a slice of rows at a time.
        let mut encoded: Vec<Option<Rows>> = self
            .converters
            .iter()
            .map(|c| c.as_ref().map(|c| c.empty_rows(ENCODE_ROWS.min(total), ENCODE_ROWS.min(total) * 32)))
            .collect();
        let (mut row, mut scratch) = (Vec::with_capacity(1024), Vec::with_capacity(64));
        let mut fingerprints = Vec::with_capacity(total);
        for start in (0..total).step_by(ENCODE_ROWS) {
            let len = ENCODE_ROWS.min(total - start);
            for (i, rows) in encoded.iter_mut().enumerate() {
                if let (Some(rows), Some(Some(converter))) = (rows.as_mut(), self.converters.get(i)) {
                    rows.clear();
                    converter.append(rows, &[columns[i].slice(start, len)])?;
                }
            }
            for r in start..start + len {
                row.clear();
                for c in &encoders {
                    match c {
                        Column::Rows(i) => {
                            let rows = encoded
                                .get(*i)
                                .and_then(Option::as_ref)
                                .ok_or_else(|| crate::Error::Schema(format!("column {i} has no row encoding")))?;
                            row.extend_from_slice(rows.row(r - start).as_ref());
                        }
                        Column::List(list, element) => push_list(&mut row, list, r, element, &mut scratch),
                        c => push_value(&mut row, c, r),
                    }
                }
                fingerprints.push(self.hash(&row));
            }
        }
        Ok(fingerprints)
    }

    /// `XxHash3_128::oneshot_with_seed(ROW_SEED, row)`, with the seed's secret derived once.
    fn hash(&self, row: &[u8]) -> u128 {
        XxHash3_128::oneshot_with_seed_and_secret(ROW_SEED, &self.secret, row)
            .unwrap_or_else(|_| XxHash3_128::oneshot_with_seed(ROW_SEED, row))
    }
}

/// How column `i` (`c`, of its field's type or, for text, of another text type) is encoded.
fn column<'a>(i: usize, c: &'a ArrayRef, converters: &[Option<RowConverter>]) -> Result<Column<'a>> {
    if matches!(converters.get(i), Some(Some(_))) {
        return Ok(Column::Rows(i));
    }
    column_of(c)
        .ok_or_else(|| crate::Error::Schema(format!("column {i} of type {} cannot be fingerprinted", c.data_type())))
}

/// How `c` is encoded here, if it is.
fn column_of(c: &ArrayRef) -> Option<Column<'_>> {
    use arrow_array::types::{
        TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
    };
    use arrow_schema::TimeUnit;
    let nulls = c.nulls().filter(|n| n.null_count() > 0);
    Some(match c.data_type() {
        DataType::Int64 => Column::Int(c.as_primitive::<Int64Type>().values(), nulls),
        // The row format encodes a timestamp as its 64-bit value, whatever its unit and zone.
        DataType::Timestamp(unit, _) => Column::Int(
            match unit {
                TimeUnit::Second => c.as_primitive::<TimestampSecondType>().values(),
                TimeUnit::Millisecond => c.as_primitive::<TimestampMillisecondType>().values(),
                TimeUnit::Microsecond => c.as_primitive::<TimestampMicrosecondType>().values(),
                TimeUnit::Nanosecond => c.as_primitive::<TimestampNanosecondType>().values(),
            },
            nulls,
        ),
        DataType::Float64 => Column::Float(c.as_primitive::<Float64Type>().values(), nulls),
        DataType::Utf8 => Column::Text(c.as_string::<i32>()),
        DataType::LargeUtf8 => Column::LargeText(c.as_string::<i64>()),
        DataType::Utf8View => Column::Views(c.as_string_view()),
        DataType::List(_) => {
            let list = c.as_list::<i32>();
            match column_of(list.values())? {
                Column::List(..) => return None,
                element => Column::List(list, Box::new(element)),
            }
        }
        _ => return None,
    })
}

/// Appends the encoding of value `r` of `c` (a column encoded here, not a list).
fn push_value(row: &mut Vec<u8>, c: &Column<'_>, r: usize) {
    match *c {
        Column::Int(values, nulls) => push_int(row, values[r], nulls.is_none_or(|n| n.is_valid(r))),
        Column::Float(values, nulls) => push_int(row, float_bits(values[r]), nulls.is_none_or(|n| n.is_valid(r))),
        Column::Text(a) => push_bytes(row, a.is_valid(r).then(|| a.value(r).as_bytes())),
        Column::LargeText(a) => push_bytes(row, a.is_valid(r).then(|| a.value(r).as_bytes())),
        Column::Views(a) => push_bytes(row, a.is_valid(r).then(|| a.value(r).as_bytes())),
        Column::List(..) | Column::Rows(_) => {}
    }
}

/// A 64-bit integer as the row format encodes it: a validity byte (1; a null is 0 followed by
/// zeros), then big-endian with the sign bit flipped, so that bytes sort as numbers.
fn push_int(row: &mut Vec<u8>, v: i64, valid: bool) {
    let mut out = [0u8; 9];
    if valid {
        out[0] = 1;
        out[1..].copy_from_slice(&v.to_be_bytes());
        out[1] ^= 0x80;
    }
    row.extend_from_slice(&out);
}

/// A float's bits as the row format orders them (then encoded as an integer).
fn float_bits(v: f64) -> i64 {
    let s = v.to_bits() as i64;
    s ^ (((s >> 63) as u64) >> 1) as i64
}

/// Text as the row format encodes it: 0 for null, 1 for empty, else 2 then the bytes in
/// four mini-blocks of 8 and then blocks of 32, each block zero-padded and followed by 0xFF
/// when another block follows, else by the number of bytes it holds.
///
/// The encoding's room is zeroed first and the blocks copied into it: the padding is then
/// already there (copying a short tail into a zeroed block on the stack and that block into the
/// row made the processor wait for the first copy to reach memory).
fn push_bytes(row: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => row.push(0),
        Some([]) => row.push(1),
        Some(v) => {
            let (first, rest) = v.split_at(v.len().min(32));
            let start = row.len();
            row.resize(start + 1 + blocks_len::<8>(first.len()) + blocks_len::<32>(rest.len()), 0);
            let out = &mut row[start..];
            out[0] = 2;
            let at = 1 + put_blocks::<8>(&mut out[1..], first);
            if !rest.is_empty() {
                out[at - 1] = 0xFF;
                put_blocks::<32>(&mut out[at..], rest);
            }
        }
    }
}

/// Bytes that `len` bytes take in blocks of `N`, each with its marker.
fn blocks_len<const N: usize>(len: usize) -> usize {
    len.div_ceil(N) * (N + 1)
}

/// Writes `v` in blocks of `N` into `out` (zeroed, at least [`blocks_len`] long); returns the
/// bytes written.
fn put_blocks<const N: usize>(out: &mut [u8], v: &[u8]) -> usize {
    let (blocks, rest) = v.as_chunks::<N>();
    let mut at = 0;
    for b in blocks {
        out[at..at + N].copy_from_slice(b);
        out[at + N] = 0xFF;
        at += N + 1;
    }
    if rest.is_empty() {
        if at > 0 {
            out[at - 1] = N as u8;
        }
    } else {
        out[at..at + rest.len()].copy_from_slice(rest);
        out[at + N] = rest.len() as u8;
        at += N + 1;
    }
    at
}

/// A list as the row format encodes it: 0 for null, 1 for empty, else each element's own
/// encoding as text (see [`push_bytes`]), then 1.
fn push_list(row: &mut Vec<u8>, list: &arrow_array::ListArray, r: usize, element: &Column<'_>, scratch: &mut Vec<u8>) {
    if list.is_null(r) {
        row.push(0);
        return;
    }
    let offsets = list.value_offsets();
    let (start, end) = (offsets[r] as usize, offsets[r + 1] as usize);
    for i in start..end {
        scratch.clear();
        push_value(scratch, element, i);
        push_bytes(row, Some(scratch));
    }
    row.push(1);
}

/// The fingerprint of a raw record's bytes (trimmed as the cleaner trims them).
pub fn raw_fingerprint(record: &[u8]) -> u128 {
    XxHash3_128::oneshot_with_seed(RAW_SEED, record.trim_ascii())
}

/// Number of shards of a [`FingerprintSet`]: enough that threads rarely wait for each other.
const SHARDS: usize = 64;

/// The shard of a fingerprint: its high bits (the tables use the low 64).
fn shard_of(fp: u128) -> usize {
    (fp >> 122) as usize % SHARDS
}

/// Fingerprints [`FingerprintSet::insert_all`] looks up together before inserting them: their
/// slots are loaded at once, so their cache misses overlap instead of following each other.
const PROBE_AHEAD: usize = 16;

/// A set of fingerprints many threads use at once.
pub struct FingerprintSet {
    shards: Vec<Mutex<Table>>,
}

/// One shard: open addressing with linear probing over the fingerprints themselves, 0 marking
/// an empty slot and the fingerprint 0 kept aside. A lookup touches one slot, usually one cache
/// line, where a general hash set touches a control byte and then the entry.
///
/// A fingerprint's first slot is the top bits of its 64 low bits times a random odd number
/// drawn for each set: records can be crafted offline so that their fingerprints share low
/// bits (the seeds are public), and would then pile up in one run of slots, but not so that
/// they share a slot under a multiplier they cannot know. Doubling the table maps slot `i` to
/// `2i` or `2i + 1`, so growing re-inserts in order, one sequential stream.
struct Table {
    /// A power of two of slots (none until the first insert).
    slots: Vec<u128>,
    /// 64 minus the number of bits of a slot's index.
    shift: u32,
    /// The set's random odd multiplier.
    multiplier: u64,
    /// Fingerprints in `slots`.
    len: usize,
    /// Whether the fingerprint 0 is in the set.
    zero: bool,
}

impl Table {
    fn new(multiplier: u64) -> Self {
        Table { slots: Vec::new(), shift: 64, multiplier, len: 0, zero: false }
    }

    /// The slot probing for `fp` starts from (the table has slots).
    fn home(&self, fp: u128) -> usize {
        ((fp as u64).wrapping_mul(self.multiplier) >> self.shift) as usize
    }

    /// Adds `fp`; true if it was not there.
    fn insert(&mut self, fp: u128) -> bool {
        if fp == 0 {
            return !std::mem::replace(&mut self.zero, true);
        }
        let Err(mut empty) = self.find(fp) else {
            return false;
        };
        // Room is made only for a fingerprint that is new; growing moves every slot.
        if self.reserve(1) {
            empty = self.find(fp).err().unwrap_or(empty);
        }
        self.slots[empty] = fp;
        self.len += 1;
        true
    }

    /// Whether `fp` is there.
    fn contains(&self, fp: u128) -> bool {
        if fp == 0 { self.zero } else { self.find(fp).is_ok() }
    }

    /// The slot holding `fp` (not 0), or else the empty slot where probing for it stopped
    /// (`Err(0)` in a table without slots).
    fn find(&self, fp: u128) -> std::result::Result<usize, usize> {
        if self.slots.is_empty() {
            return Err(0);
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(fp);
        loop {
            match self.slots[i] {
                0 => return Err(i),
                s if s == fp => return Ok(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The slot `fp` probing starts from (0 when there are no slots), loaded so that it is in
    /// the cache when `fp` is inserted.
    fn first_slot(&self, fp: u128) -> u128 {
        if self.slots.is_empty() {
            return 0;
        }
        self.slots[self.home(fp)]
    }

    /// Makes room for `more` fingerprints, keeping at most seven slots in ten full (linear
    /// probing then looks at about two slots for a fingerprint that is not there); true if the
    /// table grew.
    fn reserve(&mut self, more: usize) -> bool {
        let needed = self.len + more;
        if needed * 10 <= self.slots.len() * 7 {
            return false;
        }
        let slots = (needed * 10 / 7 + 1).next_power_of_two().max(16).max(self.slots.len() * 2);
        let old = std::mem::replace(&mut self.slots, vec![0; slots]);
        self.shift = 64 - slots.trailing_zeros();
        self.len = 0;
        for fp in old.into_iter().filter(|&fp| fp != 0) {
            self.insert(fp);
        }
        true
    }

    fn len(&self) -> usize {
        self.len + usize::from(self.zero)
    }

    /// The farthest any fingerprint sits from its first slot.
    #[cfg(test)]
    fn longest_probe(&self) -> usize {
        let mask = self.slots.len().wrapping_sub(1);
        let at = |(i, fp): (usize, &u128)| (*fp != 0).then(|| i.wrapping_sub(self.home(*fp)) & mask);
        self.slots.iter().enumerate().filter_map(at).max().unwrap_or(0)
    }
}

impl Default for FingerprintSet {
    fn default() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // Randomly keyed by the standard library (from the operating system's randomness).
        let multiplier = std::hash::RandomState::new().build_hasher().finish() | 1;
        FingerprintSet { shards: (0..SHARDS).map(|_| Mutex::new(Table::new(multiplier))).collect() }
    }
}

impl std::fmt::Debug for FingerprintSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FingerprintSet").field("len", &self.len()).finish()
    }
}

impl FingerprintSet {
    fn shard(&self, fp: u128) -> std::sync::MutexGuard<'_, Table> {
        self.shards[shard_of(fp)].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `fp`; true if it was not there.
    pub fn insert(&self, fp: u128) -> bool {
        self.shard(fp).insert(fp)
    }

    /// Adds each of `fps`; per fingerprint, true if it was not there (nor earlier in `fps`).
    /// Each shard is locked once for all of its fingerprints, and they are looked up
    /// [`PROBE_AHEAD`] at a time.
    pub fn insert_all(&self, fps: &[u128]) -> Vec<bool> {
        let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); SHARDS];
        for (i, &fp) in fps.iter().enumerate() {
            by_shard[shard_of(fp)].push(i);
        }
        let mut new = vec![false; fps.len()];
        for (shard, rows) in by_shard.iter().enumerate().filter(|(_, rows)| !rows.is_empty()) {
            let mut set = self.shards[shard].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            set.reserve(rows.len());
            for group in rows.chunks(PROBE_AHEAD) {
                // Independent loads: the processor fetches all of their lines at once.
                let loaded = group.iter().fold(0u128, |acc, &i| acc ^ set.first_slot(fps[i]));
                std::hint::black_box(loaded);
                for &i in group {
                    new[i] = set.insert(fps[i]);
                }
            }
        }
        new
    }

    /// Whether `fp` is there.
    pub fn contains(&self, fp: u128) -> bool {
        self.shard(fp).contains(fp)
    }

    /// Fingerprints held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map_or(0, |s| s.len())).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The farthest any fingerprint sits from its first slot, in any shard.
    #[cfg(test)]
    pub(crate) fn longest_probe(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map_or(0, |s| s.longest_probe())).max().unwrap_or(0)
    }

    /// Approximate bytes held (for memory accounting).
    pub fn allocated_bytes(&self) -> usize {
        let slots: usize = self.shards.iter().map(|s| s.lock().map_or(0, |s| s.slots.len())).sum();
        slots * std::mem::size_of::<u128>()
    }
}
