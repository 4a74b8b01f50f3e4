//! A cleaned unit of objects as Arrow batches, as an executor stages it in the warehouse: the
//! clean rows with their fingerprints, then one row describing the unit (records read, dead
//! letters, objects and their offsets).
//!
//! An executor stages each unit twice: whole ([`schema`], the rows it later writes to the table)
//! and as its keys ([`keys_schema`]: fingerprints and description, without the rows), which is
//! all the job reads to decide which rows are new. Every row carries its unit's number, so a
//! unit's file read as another's is refused.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeBinaryArray, RecordBatch, StringArray, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::{filter_record_batch, is_not_null, is_null};
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
/// [`keys`] with its fingerprints only. A row of another unit, a second description or none is
/// refused.
pub fn from_ipc(kind: Kind, unit: u32, bytes: bytes::Bytes) -> Result<Chunk> {
    let clean = schema::clean(kind);
    let data = clean.fields().len();
    let (mut batches, mut fingerprints, mut meta) = (Vec::new(), Vec::new(), None::<UnitMeta>);
    for batch in FileReader::try_new(std::io::Cursor::new(bytes), None)? {
        let batch = batch?;
        let units = column(&batch, UNIT)?.as_primitive::<UInt32Type>();
        if let Some(other) = units.values().iter().find(|u| **u != unit) {
            return Err(Error::Wire(format!("unit {unit} holds a row of unit {other}")));
        }
        let described = column(&batch, META)?;
        let rows = filter_record_batch(&batch, &is_null(described)?)?;
        if rows.num_rows() > 0 {
            let fps = column(&rows, FINGERPRINT)?.as_fixed_size_binary();
            for i in 0..fps.len() {
                let fp: [u8; 16] =
                    fps.value(i).try_into().map_err(|_| Error::Wire("a fingerprint is not 16 bytes".into()))?;
                fingerprints.push(u128::from_le_bytes(fp));
            }
            if rows.num_columns() == data + 3 {
                batches.push(RecordBatch::try_new(Arc::clone(&clean), rows.columns()[..data].to_vec())?);
            }
        }
        let texts = filter_record_batch(&batch, &is_not_null(described)?)?;
        let texts = column(&texts, META)?.as_string::<i32>();
        for text in texts.iter().flatten() {
            if meta.is_some() {
                return Err(Error::Wire(format!("unit {unit} is described twice")));
            }
            meta = Some(
                serde_json::from_str(text)
                    .map_err(|e| Error::Wire(format!("a unit's description is not readable: {e}")))?,
            );
        }
    }
    let m = meta.ok_or_else(|| Error::Wire(format!("unit {unit} is incomplete")))?;
    let rows = fingerprints.len() as u64;
    Ok(Chunk {
        cleaned: Cleaned { kind, batches, fingerprints, dead_letters: Vec::new(), records: rows },
        records: m.records,
        bytes: m.bytes,
        cleaned_elsewhere_ns: m.clean_ns + m.dedup_ns,
        duplicates: m.duplicates,
        dead_letters: m.dead_letters,
        objects: m.objects,
        unreadable: m.unreadable,
        held_by_reader: None,
    })
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| Error::Wire(format!("the column {name} is missing")))
}
