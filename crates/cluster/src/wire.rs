//! A cleaned unit of objects as Arrow batches, as an executor stages it in the warehouse: the
//! clean rows with their fingerprints, then one row describing the unit (records read, dead
//! letters, objects and their offsets).
//!
//! An executor stages each unit twice: whole ([`schema`], the rows it later writes to the table)
//! and as its keys ([`keys_schema`]: fingerprints and description, without the rows), which is
//! all the job reads to decide which rows are new. Every row carries its unit's number, so a
//! unit's file read as another's is refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeBinaryArray, RecordBatch, StringArray, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::{filter_record_batch, is_not_null, is_null, partition};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use pinpipe_batch::read::Chunk;
use pinpipe_model::{Kind, schema};
use pinpipe_transform::{Cleaned, DeadLetter};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The unit a row belongs to (its partition of the plan).
pub const UNIT: &str = "_pinpipe_unit";
/// A clean row's fingerprint, 16 bytes little-endian (null on the unit's description row).
pub const FINGERPRINT: &str = "_pinpipe_fingerprint";
/// The unit's description as JSON ([`UnitMeta`]), on its last row only.
pub const META: &str = "_pinpipe_unit_meta";

/// Rows per batch sent: well under the cluster's message size limits whatever the row width.
pub const BATCH_ROWS: usize = 8192;

/// The batches' schema for `kind`: the clean table's columns (nullable: the description row has
/// none), then [`UNIT`], [`FINGERPRINT`] and [`META`].
pub fn schema(kind: Kind) -> SchemaRef {
    let clean = schema::clean(kind);
    let mut fields: Vec<Field> = clean.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    fields.push(Field::new(UNIT, DataType::UInt32, false));
    fields.push(Field::new(FINGERPRINT, DataType::FixedSizeBinary(16), true));
    fields.push(Field::new(META, DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

/// The schema of a unit's keys: [`UNIT`], [`FINGERPRINT`] and [`META`], without the rows.
pub fn keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(UNIT, DataType::UInt32, false),
        Field::new(FINGERPRINT, DataType::FixedSizeBinary(16), true),
        Field::new(META, DataType::Utf8, true),
    ]))
}

/// The keys of a unit's batches (of [`schema`]): the same rows without the clean columns.
pub fn keys(batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    batches
        .iter()
        .map(|b| {
            let columns =
                [UNIT, FINGERPRINT, META].iter().map(|c| column(b, c).cloned()).collect::<Result<Vec<_>>>()?;
            Ok(RecordBatch::try_new(keys_schema(), columns)?)
        })
        .collect()
}

/// What a unit read besides its rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UnitMeta {
    /// Raw records read.
    pub records: u64,
    /// Bytes of the objects read.
    pub bytes: u64,
    /// Duplicates the unit dropped (of its own rows).
    pub duplicates: u64,
    /// Records refused.
    pub dead_letters: Vec<DeadLetter>,
    /// Per object: partition, start offset, records.
    pub objects: Vec<(u32, u64, u64)>,
    /// Objects that could not be decoded: partition, start offset.
    pub unreadable: Vec<(u32, u64)>,
    /// Nanoseconds spent cleaning, on the executor.
    pub clean_ns: u64,
    /// Nanoseconds spent de-duplicating, on the executor.
    pub dedup_ns: u64,
}

/// Encodes a cleaned unit: its rows in batches of at most [`BATCH_ROWS`], then its description.
pub fn encode(kind: Kind, unit: u32, chunk: Chunk, clean_ns: u64, dedup_ns: u64) -> Result<Vec<RecordBatch>> {
    let schema = schema(kind);
    let mut out = Vec::new();
    let Chunk { cleaned, records, bytes, duplicates, dead_letters, objects, unreadable, .. } = chunk;
    for (batch, fps) in cleaned.into_parts()? {
        let mut at = 0;
        while at < batch.num_rows() {
            let n = BATCH_ROWS.min(batch.num_rows() - at);
            let part = batch.slice(at, n);
            let mut columns: Vec<ArrayRef> = part.columns().to_vec();
            columns.push(Arc::new(UInt32Array::from(vec![unit; n])));
            let fp = FixedSizeBinaryArray::try_from_iter(fps[at..at + n].iter().map(|f| f.to_le_bytes()))?;
            columns.push(Arc::new(fp));
            columns.push(new_null_array(&DataType::Utf8, n));
            out.push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
            at += n;
        }
    }
    let meta = UnitMeta { records, bytes, duplicates, dead_letters, objects, unreadable, clean_ns, dedup_ns };
    let json = serde_json::to_string(&meta).map_err(|e| Error::Wire(format!("cannot encode a unit: {e}")))?;
    let data = schema.fields().len() - 3;
    let mut columns: Vec<ArrayRef> =
        schema.fields().iter().take(data).map(|f| new_null_array(f.data_type(), 1)).collect();
    columns.push(Arc::new(UInt32Array::from(vec![unit])));
    columns.push(new_null_array(&DataType::FixedSizeBinary(16), 1));
    columns.push(Arc::new(StringArray::from(vec![json])));
    out.push(RecordBatch::try_new(schema, columns)?);
    Ok(out)
}

/// A unit's batches (all of one schema: [`schema`] or [`keys_schema`]) as the bytes of an
/// Arrow IPC file.
pub fn to_ipc(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let Some(first) = batches.first() else {
        return Err(Error::Wire("a unit has at least its description".into()));
    };
    let mut w = FileWriter::try_new(Vec::new(), &first.schema())?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()?;
    Ok(w.into_inner()?)
}

/// Decodes unit `unit` of `kind` from the bytes [`to_ipc`] wrote: with its rows, or from its
/// [`keys`] with its fingerprints only.
pub fn from_ipc(kind: Kind, unit: u32, bytes: bytes::Bytes) -> Result<Chunk> {
    let mut d = Decoder::new(kind);
    d.next = unit;
    for batch in FileReader::try_new(std::io::Cursor::new(bytes), None)? {
        d.push(&batch?)?;
    }
    d.ready().pop().ok_or_else(|| Error::Wire(format!("unit {unit} is incomplete")))
}

/// A unit being received.
#[derive(Default)]
struct Partial {
    batches: Vec<RecordBatch>,
    fingerprints: Vec<u128>,
    meta: Option<UnitMeta>,
}

/// Puts units back together from batches in any order, and hands them out in unit order.
struct Decoder {
    kind: Kind,
    clean: SchemaRef,
    partial: BTreeMap<u32, Partial>,
    next: u32,
}

impl Decoder {
    /// A decoder of `kind`'s batches, starting at unit 0.
    fn new(kind: Kind) -> Decoder {
        Decoder { kind, clean: schema::clean(kind), partial: BTreeMap::new(), next: 0 }
    }

    /// Takes one received batch (of [`schema`]).
    fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let meta = column(batch, META)?;
        let rows = filter_record_batch(batch, &is_null(meta)?)?;
        let metas = filter_record_batch(batch, &is_not_null(meta)?)?;
        self.push_rows(&rows)?;
        let units = column(&metas, UNIT)?.as_primitive::<UInt32Type>();
        let texts = column(&metas, META)?.as_string::<i32>();
        for i in 0..metas.num_rows() {
            let m: UnitMeta = serde_json::from_str(texts.value(i))
                .map_err(|e| Error::Wire(format!("a unit's description is not readable: {e}")))?;
            self.partial.entry(units.value(i)).or_default().meta = Some(m);
        }
        Ok(())
    }

    fn push_rows(&mut self, rows: &RecordBatch) -> Result<()> {
        if rows.num_rows() == 0 {
            return Ok(());
        }
        let units = Arc::clone(column(rows, UNIT)?);
        for range in partition(&[Arc::clone(&units)])?.ranges() {
            let part = rows.slice(range.start, range.end - range.start);
            let unit = units.as_primitive::<UInt32Type>().value(range.start);
            let fps = column(&part, FINGERPRINT)?.as_fixed_size_binary();
            let fingerprints = (0..fps.len())
                .map(|i| fps.value(i).try_into().map(u128::from_le_bytes))
                .collect::<std::result::Result<Vec<u128>, _>>()
                .map_err(|_| Error::Wire("a fingerprint is not 16 bytes".into()))?;
            let data = self.clean.fields().len();
            let p = self.partial.entry(unit).or_default();
            if part.num_columns() == data + 3 {
                p.batches.push(RecordBatch::try_new(Arc::clone(&self.clean), part.columns()[..data].to_vec())?);
            }
            p.fingerprints.extend(fingerprints);
        }
        Ok(())
    }

    /// The next units in order that are complete.
    fn ready(&mut self) -> Vec<Chunk> {
        let mut out = Vec::new();
        while self.partial.get(&self.next).is_some_and(|p| p.meta.is_some()) {
            let Some(p) = self.partial.remove(&self.next) else { break };
            let Some(m) = p.meta else { break };
            self.next += 1;
            let rows = p.fingerprints.len() as u64;
            let cleaned = Cleaned {
                kind: self.kind,
                batches: p.batches,
                fingerprints: p.fingerprints,
                dead_letters: Vec::new(),
                records: rows,
            };
            out.push(Chunk {
                cleaned,
                records: m.records,
                bytes: m.bytes,
                cleaned_elsewhere_ns: m.clean_ns + m.dedup_ns,
                duplicates: m.duplicates,
                dead_letters: m.dead_letters,
                objects: m.objects,
                unreadable: m.unreadable,
                held_by_reader: None,
            });
        }
        out
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| Error::Wire(format!("the column {name} is missing")))
}
