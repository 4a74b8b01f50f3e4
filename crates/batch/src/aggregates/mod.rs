//! The questions' aggregates ([`crate::queries`]), kept beside the tables and brought up to
//! date from the rows each run adds, so that an incremental run answers the questions in time
//! proportional to what it added, not to the history.
//!
//! The tables only grow between two `--full` runs, and so do their joins: the joined rows of the
//! whole tables are those the aggregates already cover plus the joined rows with at least one new
//! side. Those all share an `ind` with a new row, so an update reads the new data files whole and,
//! of the older files, only the rows whose `ind` is among the new rows' ([`crate::lookup`]), joins
//! those few, and adds their aggregates to the saved ones: counts add up, q3's top posters are the
//! top of (the top so far, the new rows), and q6's users are counted when their fingerprint is not
//! among those of the users counted before.
//!
//! The aggregates are saved in one object, `batch/_pinpipe_aggregates`, after the run's commits:
//! a header line (JSON: the format, the data files of each table they cover), each aggregate
//! table as an Arrow IPC stream, then the sorted 16-byte fingerprints of q6's users. They are
//! recomputed over the whole tables instead when they are missing or unreadable, when a file they
//! cover is no longer in its table (`--full`, a compaction), or when the new rows are many (more
//! than the old ones, or more than a quarter of the memory limit holds). A run killed after its
//! commits but before the save leaves the older aggregates, whose files are all still in the
//! tables: the next run adds every file since.
//!
//! Here: the saved form, the plan (update, recompute, unchanged) and the update's inputs;
//! [`compute`](mod@compute): the aggregates themselves.

mod compute;

pub use compute::compute;

use std::collections::{BTreeMap, HashSet};
use std::io::Cursor;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use object_store::ObjectStoreExt;
use pinpipe_model::{Kind, schema};
use serde::{Deserialize, Serialize};

use crate::delta::DataFile;
use crate::lookup::{self, Keys};
use crate::queries::{self, COUNTS, TOP_POSTERS_TABLE, USERS_TABLE};
use crate::{Error, Result};

/// Key of the saved aggregates in the warehouse.
pub const KEY: &str = pinpipe_store::warehouse::BATCH_AGGREGATES;
/// Format of the saved aggregates (a change of the questions' semantics changes it, so that
/// aggregates saved by another release are recomputed).
const FORMAT: u32 = 1;
/// Bytes of memory a new row costs an update (its columns, the older rows it joins with, the
/// joins), for deciding between an update and a recomputation.
const UPDATE_ROW_BYTES: u64 = 400;

/// The aggregates of the questions, and what they cover.
#[derive(Debug, Clone, Default)]
pub struct Aggregates {
    /// Per table (`pin`, `geo`, `user`): the data files the aggregates cover.
    pub covers: BTreeMap<String, Vec<String>>,
    /// The aggregate tables, by name.
    pub tables: BTreeMap<String, (SchemaRef, Vec<RecordBatch>)>,
    /// Fingerprints of q6's users counted so far, sorted.
    pub users: Vec<u128>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: u32,
    covers: BTreeMap<String, Vec<String>>,
    /// Aggregate tables in the order of their sections, with their lengths in bytes.
    tables: Vec<(String, u64)>,
    users: u64,
}

impl Aggregates {
    /// Registers every aggregate table in `ctx`.
    pub fn register(&self, ctx: &SessionContext) -> Result<()> {
        for (name, (schema, batches)) in &self.tables {
            let err = |source| Error::Query { question: name.clone(), source };
            let table = MemTable::try_new(Arc::clone(schema), vec![batches.clone()]).map_err(err)?;
            ctx.register_table(name.as_str(), Arc::new(table)).map_err(err)?;
        }
        Ok(())
    }

    /// The serialised form.
    pub fn encode(&self) -> Result<Bytes> {
        let mut sections = Vec::new();
        let mut lengths = Vec::new();
        for (name, (schema, batches)) in &self.tables {
            let mut w = StreamWriter::try_new(Vec::new(), schema)?;
            for b in batches {
                w.write(b)?;
            }
            let bytes = w.into_inner()?;
            lengths.push((name.clone(), bytes.len() as u64));
            sections.push(bytes);
        }
        let header =
            Header { format: FORMAT, covers: self.covers.clone(), tables: lengths, users: self.users.len() as u64 };
        let header = serde_json::to_vec(&header).map_err(|e| Error::Config(format!("aggregates: {e}")))?;
        let size = header.len() + 1 + sections.iter().map(Vec::len).sum::<usize>() + self.users.len() * 16;
        let mut out = BytesMut::with_capacity(size);
        out.put_slice(&header);
        out.put_u8(b'\n');
        for s in sections {
            out.put_slice(&s);
        }
        for fp in &self.users {
            out.put_u128_le(*fp);
        }
        Ok(out.freeze())
    }

    /// Parses the serialised form; `None` if it is not one this release wrote.
    pub fn decode(body: &[u8]) -> Option<Aggregates> {
        let nl = memchr::memchr(b'\n', body)?;
        let header: Header = serde_json::from_slice(&body[..nl]).ok()?;
        if header.format != FORMAT {
            return None;
        }
        let mut rest = &body[nl + 1..];
        let mut tables = BTreeMap::new();
        for (name, len) in header.tables {
            let len = usize::try_from(len).ok()?;
            if rest.len() < len {
                return None;
            }
            let (section, tail) = rest.split_at(len);
            rest = tail;
            let reader = StreamReader::try_new(Cursor::new(section), None).ok()?;
            let schema = reader.schema();
            let batches = reader.collect::<Result<Vec<_>, _>>().ok()?;
            tables.insert(name, (schema, batches));
        }
        if rest.len() as u64 != header.users.checked_mul(16)? {
            return None;
        }
        let users: Vec<u128> =
            rest.chunks_exact(16).map(|c| u128::from_le_bytes(c.try_into().unwrap_or([0; 16]))).collect();
        if !users.is_sorted() || !expected_tables().iter().all(|t| tables.contains_key(*t)) {
            return None;
        }
        Some(Aggregates { covers: header.covers, tables, users })
    }
}

fn expected_tables() -> Vec<&'static str> {
    COUNTS.iter().map(|c| c.name).chain([TOP_POSTERS_TABLE, USERS_TABLE]).collect()
}

/// The table name the aggregates use for `kind`.
fn kind_key(kind: Kind) -> &'static str {
    match kind {
        Kind::Pin => "pin",
        Kind::Geo => "geo",
        Kind::User => "user",
    }
}

/// Reads the saved aggregates; `None` (with a warning) when there are none or they are
/// unreadable: the caller then recomputes them.
pub async fn load(store: &pinpipe_store::Store) -> Result<Option<Aggregates>> {
    let key = store.key(KEY);
    let body = match store.inner.get(&key).await {
        Ok(got) => got.bytes().await,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => Err(e),
    };
    let body = body.map_err(|source| Error::Read { store: store.url.clone(), source })?;
    let decoded = Aggregates::decode(&body);
    if decoded.is_none() {
        tracing::warn!(key = %key, "the saved aggregates are unreadable or from another release: recomputing them");
    }
    Ok(decoded)
}

/// Saves the aggregates (one put: readers see the old object or the new one).
pub async fn save(store: &pinpipe_store::Store, aggregates: &Aggregates) -> Result<()> {
    let body = aggregates.encode()?;
    store
        .inner
        .put(&store.key(KEY), body.into())
        .await
        .map_err(|source| Error::Fingerprints { table: format!("{}/{KEY}", store.url), source })?;
    Ok(())
}

/// What a run does to bring the aggregates up to date with the tables.
#[derive(Debug)]
pub enum Plan {
    /// They cover every file of the tables already.
    Unchanged(Aggregates),
    /// Add the rows of the files they do not cover.
    Update {
        /// The saved aggregates.
        saved: Aggregates,
        /// Per table: files covered, files new.
        files: [(Vec<String>, Vec<String>); 3],
        /// Rows of the new files.
        new_rows: u64,
    },
    /// Compute them over the whole tables.
    Recompute,
}

impl Plan {
    /// How the answers were reached, for the summary.
    pub fn describe(&self) -> &'static str {
        match self {
            Plan::Unchanged(_) => "unchanged",
            Plan::Update { .. } => "updated",
            Plan::Recompute => "recomputed",
        }
    }
}

/// Decides how to bring `saved` up to date with tables whose data files are `files` (pin, geo,
/// user), within `memory_limit`.
pub fn plan(saved: Option<Aggregates>, files: &[Vec<DataFile>; 3], memory_limit: u64) -> Plan {
    let Some(saved) = saved else { return Plan::Recompute };
    let mut split: [(Vec<String>, Vec<String>); 3] = Default::default();
    let (mut old_rows, mut new_rows) = (0u64, 0u64);
    for (i, kind) in Kind::ALL.into_iter().enumerate() {
        let covered: HashSet<&str> =
            saved.covers.get(kind_key(kind)).map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default();
        let current: HashSet<&str> = files[i].iter().map(|f| f.path.as_str()).collect();
        if !covered.iter().all(|f| current.contains(f)) {
            tracing::info!(table = kind_key(kind), "files the aggregates cover have left the table: recomputing them");
            return Plan::Recompute;
        }
        for f in &files[i] {
            // A file without statistics counts as large: rows are rarely under 20 bytes.
            let rows = f.rows.unwrap_or(f.size / 20);
            if covered.contains(f.path.as_str()) {
                old_rows += rows;
                split[i].0.push(f.path.clone());
            } else {
                new_rows += rows;
                split[i].1.push(f.path.clone());
            }
        }
    }
    if split.iter().all(|(_, new)| new.is_empty()) {
        return Plan::Unchanged(saved);
    }
    if new_rows > old_rows || new_rows.saturating_mul(UPDATE_ROW_BYTES) > memory_limit / 4 {
        tracing::info!(new_rows, old_rows, "many new rows: recomputing the aggregates over the whole tables");
        return Plan::Recompute;
    }
    Plan::Update { saved, files: split, new_rows }
}

/// The columns of `kind`'s table the questions use (`ind` first).
pub fn columns(kind: Kind) -> SchemaRef {
    let names: &[&str] = match kind {
        Kind::Pin => &["ind", "category", "poster_name", "follower_count"],
        Kind::Geo => &["ind", "country", "timestamp"],
        Kind::User => &["ind", "user_name", "age", "date_joined"],
    };
    let clean = schema::clean(kind);
    Arc::new(Schema::new(names.iter().filter_map(|n| clean.field_with_name(n).ok().cloned()).collect::<Vec<Field>>()))
}

/// A table's store and location, for [`register_update`].
pub struct TableFiles {
    /// The table's object store (rooted at the table).
    pub store: Arc<dyn deltalake::ObjectStore>,
    /// Its URL, for messages.
    pub url: String,
}

/// For an update: registers in `ctx` the tables `pin`, `geo` and `users` holding the rows of the
/// `new` files (column `_new` true) and those of the `old` files that share an `ind` with them
/// (`_new` false), each with the columns of [`columns`]. Returns the rows registered.
pub async fn register_update(
    ctx: &SessionContext,
    tables: &[TableFiles; 3],
    files: &[(Vec<String>, Vec<String>); 3],
) -> Result<u64> {
    let mut new = Vec::with_capacity(3);
    let mut keys = Keys::default();
    for (i, kind) in Kind::ALL.into_iter().enumerate() {
        let t = &tables[i];
        let batches = lookup::read(Arc::clone(&t.store), &t.url, &files[i].1, &columns(kind), None).await?;
        for b in &batches {
            keys.extend(b.column(0).as_primitive::<Int64Type>().values().iter().copied());
        }
        new.push(batches);
    }
    let keys = Arc::new(keys);
    let mut rows = 0u64;
    for ((i, kind), new) in Kind::ALL.into_iter().enumerate().zip(new) {
        let t = &tables[i];
        let old =
            lookup::read(Arc::clone(&t.store), &t.url, &files[i].0, &columns(kind), Some(Arc::clone(&keys))).await?;
        let schema = flagged_schema(&columns(kind));
        let mut batches = Vec::with_capacity(new.len() + old.len());
        for (flag, list) in [(true, new), (false, old)] {
            for b in list {
                rows += b.num_rows() as u64;
                let mut cols: Vec<ArrayRef> = b.columns().to_vec();
                cols.push(Arc::new(BooleanArray::from(vec![flag; b.num_rows()])));
                batches.push(RecordBatch::try_new(Arc::clone(&schema), cols)?);
            }
        }
        let name = queries::table_name(kind);
        ctx.register_table(name, queries::mem_table(batches, schema)?)
            .map_err(|source| Error::Query { question: name.into(), source })?;
    }
    Ok(rows)
}

fn flagged_schema(columns: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = columns.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("_new", DataType::Boolean, false));
    Arc::new(Schema::new(fields))
}

/// The files of each table, by the aggregates' table names.
pub fn covers(files: &[Vec<DataFile>; 3]) -> BTreeMap<String, Vec<String>> {
    Kind::ALL
        .into_iter()
        .zip(files)
        .map(|(kind, f)| (kind_key(kind).to_owned(), f.iter().map(|f| f.path.clone()).collect()))
        .collect()
}

#[cfg(test)]
mod tests;
