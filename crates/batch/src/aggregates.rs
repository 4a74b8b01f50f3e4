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

use std::collections::{BTreeMap, HashSet};
use std::io::Cursor;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use futures_util::StreamExt;
use object_store::ObjectStoreExt;
use pinpipe_model::{Kind, schema};
use pinpipe_transform::Fingerprinter;
use serde::{Deserialize, Serialize};

use crate::delta::DataFile;
use crate::lookup::{self, Keys};
use crate::queries::{self, COUNTS, NEW_USERS, TOP_POSTER_CANDIDATES, TOP_POSTERS_TABLE, USERS_TABLE};
use crate::{Error, Result};

/// Key of the saved aggregates in the warehouse.
pub const KEY: &str = "batch/_pinpipe_aggregates";
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

/// The aggregates of `ctx`'s `pg_delta` and `pgu_delta` (registered by
/// [`queries::register_joins`]) added to `base` (none: they are the whole tables' joins).
/// `covers`: the files the result covers.
pub async fn compute(
    ctx: &SessionContext,
    base: Option<&Aggregates>,
    covers: BTreeMap<String, Vec<String>>,
) -> Result<Aggregates> {
    let mut out = Aggregates { covers, ..Default::default() };
    for count in COUNTS {
        let err = |source| Error::Query { question: count.name.into(), source };
        let sql = match base.and_then(|b| b.tables.get(count.name)) {
            None => count.sql.to_owned(),
            Some((schema, batches)) => {
                let old = format!("{}_saved", count.name);
                let table = MemTable::try_new(Arc::clone(schema), vec![batches.clone()]).map_err(err)?;
                ctx.register_table(old.as_str(), Arc::new(table)).map_err(err)?;
                let keys = count.keys.join(", ");
                format!(
                    "SELECT {keys}, CAST(SUM(n) AS BIGINT) AS n FROM (SELECT {keys}, n FROM {old} UNION ALL {}) t GROUP BY {keys}",
                    count.sql
                )
            }
        };
        out.tables.insert(count.name.to_owned(), collect(ctx, count.name, &sql).await?);
    }

    // q3: the top of (the top so far, the new rows).
    let err = |source| Error::Query { question: TOP_POSTERS_TABLE.into(), source };
    let mut input = "SELECT country, poster_name, follower_count FROM pg_delta".to_owned();
    if let Some((schema, batches)) = base.and_then(|b| b.tables.get(TOP_POSTERS_TABLE)) {
        let table = MemTable::try_new(Arc::clone(schema), vec![batches.clone()]).map_err(err)?;
        ctx.register_table("top_posters_saved", Arc::new(table)).map_err(err)?;
        input.push_str(" UNION ALL SELECT country, poster_name, follower_count FROM top_posters_saved");
    }
    ctx.register_table("top_posters_in", ctx.sql(&input).await.map_err(err)?.into_view()).map_err(err)?;
    out.tables.insert(TOP_POSTERS_TABLE.to_owned(), top_posters(ctx).await?);

    // q6: users not counted before, by fingerprint.
    let (users, joined) = count_users(ctx, base).await?;
    out.users = users;
    out.tables.insert(USERS_TABLE.to_owned(), joined);
    Ok(out)
}

/// q3's aggregate from [`TOP_POSTER_CANDIDATES`]: per country, every distinct poster with the
/// country's highest follower count (`country`, `poster_name`, `follower_count`, sorted).
async fn top_posters(ctx: &SessionContext) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    use datafusion::arrow::array::StringArray;
    let err = |source| Error::Query { question: TOP_POSTERS_TABLE.into(), source };
    let mut top: BTreeMap<String, (i64, std::collections::BTreeSet<String>)> = BTreeMap::new();
    let mut stream = ctx.sql(TOP_POSTER_CANDIDATES).await.map_err(err)?.execute_stream().await.map_err(err)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(err)?;
        let text = |i: usize| datafusion::arrow::compute::cast(batch.column(i), &DataType::Utf8);
        let (countries, posters) = (text(0)?, text(1)?);
        let (countries, posters) = (countries.as_string::<i32>(), posters.as_string::<i32>());
        let counts = datafusion::arrow::compute::cast(batch.column(2), &DataType::Int64)?;
        let counts = counts.as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            let (country, poster, count) = (countries.value(i), posters.value(i), counts.value(i));
            match top.get_mut(country) {
                Some((best, _)) if count < *best => {}
                Some((best, names)) if count == *best => {
                    if !names.contains(poster) {
                        names.insert(poster.to_owned());
                    }
                }
                Some(entry) => *entry = (count, std::collections::BTreeSet::from([poster.to_owned()])),
                None => {
                    top.insert(country.to_owned(), (count, std::collections::BTreeSet::from([poster.to_owned()])));
                }
            }
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("country", DataType::Utf8, true),
        Field::new("poster_name", DataType::Utf8, true),
        Field::new("follower_count", DataType::Int64, true),
    ]));
    let rows: Vec<(&String, &String, i64)> =
        top.iter().flat_map(|(c, (n, names))| names.iter().map(move |p| (c, p, *n))).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(rows.iter().map(|r| Some(r.0.as_str())).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(r.1.as_str())).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(r.2)).collect::<Int64Array>()),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok((schema, vec![batch].into_iter().filter(|b| b.num_rows() > 0).collect()))
}

/// Runs `sql`: its rows with plain strings and nullable columns (however the plan typed them),
/// so that an aggregate table has one schema from run to run, also without rows.
async fn collect(ctx: &SessionContext, name: &str, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let err = |source| Error::Query { question: name.into(), source };
    let df = ctx.sql(sql).await.map_err(err)?;
    let fields: Vec<Field> = df
        .schema()
        .as_arrow()
        .fields()
        .iter()
        .map(|f| {
            let data_type = match f.data_type() {
                DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                other => other.clone(),
            };
            Field::new(f.name(), data_type, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batches = df.collect().await.map_err(err)?;
    let batches = batches
        .into_iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| {
            let columns = b
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RecordBatch::try_new(Arc::clone(&schema), columns)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((schema, batches))
}

/// q6's users: the fingerprints of every user counted (sorted), and the table of users per join
/// year (`join_year`, `n`).
async fn count_users(
    ctx: &SessionContext,
    base: Option<&Aggregates>,
) -> Result<(Vec<u128>, (SchemaRef, Vec<RecordBatch>))> {
    let err = |source| Error::Query { question: USERS_TABLE.into(), source };
    let user = schema::clean(Kind::User);
    let triple = Arc::new(Schema::new(
        ["user_name", "age", "date_joined"]
            .iter()
            .filter_map(|n| user.field_with_name(n).ok().cloned())
            .collect::<Vec<Field>>(),
    ));
    let fingerprinter = Fingerprinter::for_schema(triple)?;
    // Per join year, the fingerprints of its users among the new rows (a user's join year is
    // part of the user): 16 bytes a row, less than a hash table of the users' strings.
    let mut seen: BTreeMap<i64, Vec<u128>> = BTreeMap::new();
    let mut stream = ctx.sql(NEW_USERS).await.map_err(err)?.execute_stream().await.map_err(err)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(err)?;
        let fps = fingerprinter.fingerprints(&batch)?;
        let years = batch.column(3).as_primitive::<Int64Type>();
        for (fp, year) in fps.into_iter().zip(years.values()) {
            seen.entry(*year).or_default().push(fp);
        }
    }
    let empty = Vec::new();
    let before = base.map_or(&empty, |b| &b.users);
    let mut per_year: BTreeMap<i64, i64> = BTreeMap::new();
    if let Some((_, batches)) = base.and_then(|b| b.tables.get(USERS_TABLE)) {
        for b in batches {
            let (years, n) = (b.column(0).as_primitive::<Int64Type>(), b.column(1).as_primitive::<Int64Type>());
            for (y, n) in years.values().iter().zip(n.values()) {
                *per_year.entry(*y).or_default() += n;
            }
        }
    }
    let mut added = Vec::new();
    for (year, mut fps) in seen {
        fps.sort_unstable();
        fps.dedup();
        let new = fps.into_iter().filter(|fp| before.binary_search(fp).is_err());
        let before_len = added.len();
        added.extend(new);
        let n = i64::try_from(added.len() - before_len).unwrap_or(i64::MAX);
        if n > 0 {
            *per_year.entry(year).or_default() += n;
        }
    }
    added.sort_unstable();
    let users = merge_sorted(before, added);
    let schema = Arc::new(Schema::new(vec![
        Field::new("join_year", DataType::Int64, false),
        Field::new("n", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(per_year.keys().copied())),
        Arc::new(Int64Array::from_iter_values(per_year.values().copied())),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok((users, (schema, vec![batch])))
}

/// The union of two sorted lists without repeats (`b` holds none of `a`).
fn merge_sorted(a: &[u128], b: Vec<u128>) -> Vec<u128> {
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
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
mod tests {
    use super::*;

    fn sample() -> Aggregates {
        let mut tables = BTreeMap::new();
        for name in expected_tables() {
            let schema = Arc::new(Schema::new(vec![
                Field::new("k", DataType::Utf8, true),
                Field::new("n", DataType::Int64, true),
            ]));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(datafusion::arrow::array::StringArray::from(vec![Some(name), None])),
                    Arc::new(Int64Array::from(vec![3, 4])),
                ],
            )
            .unwrap();
            tables.insert(name.to_owned(), (schema, vec![batch]));
        }
        let covers = BTreeMap::from([("pin".to_owned(), vec!["part-1.parquet".to_owned()])]);
        Aggregates { covers, tables, users: vec![1, 5, u128::MAX] }
    }

    #[test]
    fn the_saved_form_reads_back_and_anything_damaged_is_refused() {
        let a = sample();
        let body = a.encode().unwrap();
        let b = Aggregates::decode(&body).unwrap();
        assert_eq!(b.covers, a.covers);
        assert_eq!(b.users, a.users);
        assert_eq!(b.tables.keys().collect::<Vec<_>>(), a.tables.keys().collect::<Vec<_>>());
        for (name, (_, batches)) in &a.tables {
            assert_eq!(&b.tables[name].1, batches, "{name}");
        }
        // Torn anywhere, another format, or users out of order: not used.
        for cut in [1, body.len() / 2, body.len() - 1] {
            assert!(Aggregates::decode(&body[..cut]).is_none(), "cut at {cut}");
        }
        let nl = body.iter().position(|&b| b == b'\n').unwrap();
        let header = std::str::from_utf8(&body[..nl]).unwrap();
        assert!(header.starts_with("{\"format\":1,"), "{header}");
        let mut other = header.replacen("\"format\":1", "\"format\":2", 1).into_bytes();
        other.extend_from_slice(&body[nl..]);
        assert!(Aggregates::decode(&other).is_none());
        let mut same = header.as_bytes().to_vec();
        same.extend_from_slice(&body[nl..]);
        assert!(Aggregates::decode(&same).is_some());
        let mut unsorted = a.clone();
        unsorted.users = vec![5, 1];
        assert!(Aggregates::decode(&unsorted.encode().unwrap()).is_none());
        let mut missing = a;
        missing.tables.remove(TOP_POSTERS_TABLE);
        assert!(Aggregates::decode(&missing.encode().unwrap()).is_none());
    }

    #[test]
    fn merging_sorted_users_keeps_them_sorted() {
        assert_eq!(merge_sorted(&[], vec![2, 9]), [2, 9]);
        assert_eq!(merge_sorted(&[1, 4, 8], vec![2, 9]), [1, 2, 4, 8, 9]);
        assert_eq!(merge_sorted(&[3], vec![]), [3]);
    }

    #[test]
    fn a_plan_updates_only_while_every_covered_file_is_in_its_table() {
        let file = |p: &str, rows| DataFile { path: p.into(), rows: Some(rows), size: 0 };
        let saved = Aggregates {
            covers: BTreeMap::from([
                ("pin".to_owned(), vec!["a".to_owned()]),
                ("geo".to_owned(), vec!["b".to_owned()]),
                ("user".to_owned(), vec![]),
            ]),
            ..Default::default()
        };
        let files = [vec![file("a", 100)], vec![file("b", 100)], vec![]];
        assert!(matches!(plan(Some(saved.clone()), &files, 1 << 30), Plan::Unchanged(_)));
        let grown = [vec![file("a", 100), file("c", 10)], vec![file("b", 100)], vec![file("d", 10)]];
        match plan(Some(saved.clone()), &grown, 1 << 30) {
            Plan::Update { files, new_rows, .. } => {
                assert_eq!(new_rows, 20);
                assert_eq!(files[0], (vec!["a".to_owned()], vec!["c".to_owned()]));
                assert_eq!(files[2], (vec![], vec!["d".to_owned()]));
            }
            other => panic!("{other:?}"),
        }
        // More new rows than old, or than a quarter of the memory limit holds: recompute.
        let many = [vec![file("a", 100), file("c", 300)], vec![file("b", 100)], vec![]];
        assert!(matches!(plan(Some(saved.clone()), &many, 1 << 30), Plan::Recompute));
        assert!(matches!(plan(Some(saved.clone()), &grown, 4 * 400 * 19), Plan::Recompute));
        // A covered file gone (a rebuild): recompute; nothing saved: recompute.
        let rebuilt = [vec![file("e", 100)], vec![file("b", 100)], vec![]];
        assert!(matches!(plan(Some(saved), &rebuilt, 1 << 30), Plan::Recompute));
        assert!(matches!(plan(None, &files, 1 << 30), Plan::Recompute));
    }
}
