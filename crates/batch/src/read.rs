//! Reading the raw objects of one topic that a run ingests, and cleaning them in parallel.
//!
//! [`plan`] lists, per partition, the objects the table has not ingested yet (a "start after"
//! listing from the partition's position, so a run lists only what is new). [`chunks`] groups
//! them into units of about [`UNIT_BYTES`] or [`UNIT_OBJECTS`], fetches each unit with
//! `read_concurrency` requests in flight and cleans it on the cleaning threads ([`crate::pool`]),
//! as many units at once as there are cores, yielding cleaned chunks in key order.
//!
//! Duplicates cost little: a record whose exact bytes were already cleaned in this run is
//! recognised by its raw fingerprint and skipped before it is parsed (the classic emulator posts
//! a third of its records more than once); every other row is kept only if its clean
//! fingerprint is new to the run ([`RunSets`]). Memory stays bounded by the units in flight.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStoreExt};
use pinpipe_model::Kind;
use pinpipe_store::Store;
use pinpipe_store::layout::{Format, list_topic};
use pinpipe_transform::{Cleaned, Cleaner, DeadLetter, FingerprintSet, Origin, raw_fingerprint};

use crate::{Error, Result};

/// Bytes of raw records per cleaning unit (objects' sizes times their format's [`expansion`]).
pub const UNIT_BYTES: u64 = 8 << 20;
/// Objects per cleaning unit (tiny objects: the classic one-record-per-object layout).
pub const UNIT_OBJECTS: usize = 2048;

/// Counters a progress display can poll while the job reads.
#[derive(Debug, Default)]
pub struct ReadProgress {
    /// Objects listed so far (the total once listing is done).
    pub objects_total: AtomicU64,
    /// Bytes listed so far.
    pub bytes_total: AtomicU64,
    /// Objects cleaned.
    pub objects_done: AtomicU64,
    /// Bytes cleaned.
    pub bytes_done: AtomicU64,
}

/// Busy time of the parallel work, summed over threads, in nanoseconds.
#[derive(Debug, Default)]
pub struct Busy {
    /// Parsing and cleaning records.
    pub clean_ns: AtomicU64,
    /// Recognising duplicates (raw and clean fingerprints, sets, filtering, the table's
    /// fingerprints).
    pub dedup_ns: AtomicU64,
    /// Encoding and writing the tables' files.
    pub write_ns: AtomicU64,
}

impl Busy {
    pub(crate) fn add(counter: &AtomicU64, since: Instant) {
        counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// Seconds of a counter.
    pub fn seconds(counter: &AtomicU64) -> f64 {
        counter.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// An object to ingest.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Its partition.
    pub partition: u32,
    /// Offset of its first record.
    pub start: u64,
    /// How it is encoded.
    pub format: Format,
    /// Key and size.
    pub meta: ObjectMeta,
}

/// What a run reads of one topic.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Whether the objects interleave (the field and time partitioners): an object's records are
    /// then not all the offsets from its start on.
    pub nested: bool,
    /// Partitions that hold objects.
    pub partitions: Vec<u32>,
    /// The objects to ingest, by partition then start offset.
    pub objects: Vec<Planned>,
}

impl Plan {
    /// Bytes to read.
    pub fn bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.meta.size).sum()
    }
}

/// Lists the objects of `topic` to ingest: per partition, those starting at `from[p]` or later
/// (all of them for a partition without a position), in any layout and format the sink (or the
/// connector) wrote ([`pinpipe_store::layout::list_topic`]).
pub async fn plan(store: &Store, topic: &str, from: &BTreeMap<u32, u64>) -> Result<Plan> {
    let nested = pinpipe_store::layout::listing::layout(store, topic).await? == pinpipe_store::layout::Layout::Nested;
    let listed = list_topic(store, topic, from).await?;
    let mut partitions: Vec<u32> = listed.iter().map(|o| o.partition).collect();
    partitions.dedup();
    let objects = listed
        .into_iter()
        .map(|o| Planned { partition: o.partition, start: o.start, format: o.format, meta: o.meta })
        .collect();
    Ok(Plan { nested, partitions, objects })
}

/// The sets a run de-duplicates against: clean rows kept so far, and raw records already
/// cleaned (a cache that skips parsing a repeated record; it stops growing at its cap).
pub struct RunSets {
    /// Fingerprints of the clean rows kept by this run.
    pub rows: FingerprintSet,
    raw: FingerprintSet,
    raw_len: AtomicUsize,
    raw_cap: usize,
}

impl RunSets {
    /// Sets whose raw cache holds at most `raw_cap` fingerprints.
    pub fn new(raw_cap: usize) -> Self {
        RunSets {
            rows: FingerprintSet::default(),
            raw: FingerprintSet::default(),
            raw_len: AtomicUsize::new(0),
            raw_cap,
        }
    }

    /// Sets for a job whose memory limit is `memory_limit` bytes: the raw cache takes up to an
    /// eighth of it (at most 46 bytes a fingerprint, [`FingerprintSet`]).
    pub fn for_memory_limit(memory_limit: u64) -> Self {
        Self::new(usize::try_from(memory_limit / 8 / 46).unwrap_or(usize::MAX))
    }

    fn remember_raw(&self, fp: u128) {
        if self.raw_len.load(Ordering::Relaxed) < self.raw_cap && self.raw.insert(fp) {
            self.raw_len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Approximate bytes the sets hold.
    pub fn allocated_bytes(&self) -> usize {
        self.rows.allocated_bytes() + self.raw.allocated_bytes()
    }
}

/// One cleaned unit of objects.
#[derive(Debug)]
pub struct Chunk {
    /// The rows new to the run, with their fingerprints.
    pub cleaned: Cleaned,
    /// Raw records read (rows, duplicates and dead letters).
    pub records: u64,
    /// Bytes of the objects read.
    pub bytes: u64,
    /// Nanoseconds spent cleaning it elsewhere (a cluster's executor); 0 when cleaned here, where
    /// the job's busy counters measure it.
    pub cleaned_elsewhere_ns: u64,
    /// Exact duplicates dropped.
    pub duplicates: u64,
    /// Records refused, with their origins.
    pub dead_letters: Vec<DeadLetter>,
    /// Per object: partition, start offset, records.
    pub objects: Vec<(u32, u64, u64)>,
    /// Objects that could not be decoded: partition, start offset. Their partition's position
    /// must not pass them (a whole copy uploaded later is read then).
    pub unreadable: Vec<(u32, u64)>,
    /// The unit's number when a [`Reader`] cleaned it and keeps its rows for [`Reader::write`]
    /// (`cleaned` then holds the fingerprints only); `None` when the rows are in `cleaned`.
    pub held_by_reader: Option<u32>,
}

/// Reads, cleans and writes units of objects elsewhere than in this process (a cluster's
/// executors); the job decides which rows are new and commits.
///
/// The job's own reading ([`chunks`]) drops the run's duplicates as it goes and hands the rows
/// to the job's writer. A reader's chunks hold each unit's fingerprints, dead letters and
/// counts, not its rows ([`Chunk::held_by_reader`]); the job drops repeats across units and of
/// the table by fingerprint, exactly as in one process, and [`Reader::write`] then writes the
/// rows kept where the reader holds them. The rows kept, the files' contents and the commit are
/// the same either way.
pub trait Reader: Send + Sync {
    /// Where it reads, for the run's summary (e.g. `cluster df://10.0.0.5:50050`).
    fn describe(&self) -> String;

    /// Cleaned chunks of `objects` (in key order) of `store`, grouped into units as the reader
    /// sees fit ([`units_of`]), one chunk per unit, in key order; each holds its unit's own
    /// duplicates dropped, and fingerprints but no rows.
    fn chunks(&self, store: &Store, kind: Kind, objects: Vec<Planned>) -> BoxStream<'static, Result<Chunk>>;

    /// Writes the rows of the units of `kind` that [`Reader::chunks`] returned last where `keep`
    /// says so, as data files of the table at `table` (its path in the warehouse, as
    /// `pinpipe_store::warehouse::batch_table` names it) with their fingerprint files; commits
    /// nothing. Then, and when the run fails, forgets the units.
    fn write<'a>(&'a self, kind: Kind, table: &'a str, keep: Vec<Keep>) -> BoxFuture<'a, Result<Written>>;

    /// A DataFusion session whose plans run where the reader works (a cluster's executors), for
    /// questions over tables too large for the job: tables registered in it are read there.
    fn session(&self) -> Result<datafusion::prelude::SessionContext>;
}

/// Which rows of a unit held by a [`Reader`] to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keep {
    /// The unit ([`Chunk::held_by_reader`]).
    pub unit: u32,
    /// One flag per row of the unit, in its order.
    pub rows: Vec<bool>,
}

/// What a [`Reader`] wrote.
#[derive(Debug, Default)]
pub struct Written {
    /// The data files, as Delta `add` actions (not committed).
    pub adds: Vec<deltalake::kernel::Add>,
    /// Rows written.
    pub rows: u64,
    /// Nanoseconds spent writing, where it wrote.
    pub write_ns: u64,
}

/// Groups `objects` (in key order) into cleaning units of about [`UNIT_BYTES`] of records or
/// [`UNIT_OBJECTS`] objects.
pub fn units(objects: Vec<Planned>) -> Vec<Vec<Planned>> {
    units_of(objects, UNIT_BYTES)
}

/// Groups `objects` (in key order) into units of about `bytes` of records (objects' sizes
/// times their format's expansion) or [`UNIT_OBJECTS`] objects.
pub fn units_of(objects: Vec<Planned>, bytes: u64) -> Vec<Vec<Planned>> {
    let mut units: Vec<Vec<Planned>> = Vec::new();
    let mut unit_bytes = 0;
    for o in objects {
        if units.last().is_none_or(|u| u.len() >= UNIT_OBJECTS || unit_bytes >= bytes) {
            units.push(Vec::new());
            unit_bytes = 0;
        }
        unit_bytes += o.meta.size * expansion(o.format);
        if let Some(u) = units.last_mut() {
            u.push(o);
        }
    }
    units
}

/// Reads as many units at once as there are cores, with `read_concurrency` requests in flight
/// in all: the object requests each unit may have in flight.
pub fn requests_per_unit(read_concurrency: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    read_concurrency.div_ceil(cores).max(1)
}

/// Fetches and cleans `objects` as records of `kind`: cleaned chunks in key order.
pub fn chunks<'a>(
    store: &'a Store,
    kind: Kind,
    objects: Vec<Planned>,
    read_concurrency: usize,
    sets: &'a Arc<RunSets>,
    progress: &'a Arc<ReadProgress>,
    busy: &'a Arc<Busy>,
) -> impl Stream<Item = Result<Chunk>> + 'a {
    progress.objects_total.fetch_add(objects.len() as u64, Ordering::Relaxed);
    progress.bytes_total.fetch_add(objects.iter().map(|o| o.meta.size).sum(), Ordering::Relaxed);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_unit = requests_per_unit(read_concurrency);
    futures_util::stream::iter(units(objects))
        .map(move |unit| {
            let (sets, progress, busy) = (Arc::clone(sets), Arc::clone(progress), Arc::clone(busy));
            async move { read_unit(store, kind, unit, per_unit, sets, progress, busy).await }
        })
        .buffered(cores + 1)
}

/// Fetches one unit of objects (`requests` in flight) and cleans it on a cleaning thread
/// ([`crate::pool`]), keeping only rows new to `sets`.
pub async fn read_unit(
    store: &Store,
    kind: Kind,
    unit: Vec<Planned>,
    requests: usize,
    sets: Arc<RunSets>,
    progress: Arc<ReadProgress>,
    busy: Arc<Busy>,
) -> Result<Chunk> {
    let fetched: Vec<(Planned, Bytes)> = futures_util::stream::iter(unit)
        .map(|o| async move {
            let data = store.inner.get(&o.meta.location).await?.bytes().await?;
            Ok::<_, object_store::Error>((o, data))
        })
        .buffered(requests)
        .try_collect()
        .await
        .map_err(|source| Error::Read { store: store.url.clone(), source })?;
    let store = store.clone();
    crate::pool::run(move || clean_unit(kind, &fetched, &store, &sets, &progress, &busy)).await?
}

/// Bytes of records in `objects` (their sizes times their format's expansion).
pub fn record_bytes(objects: &[Planned]) -> u64 {
    objects.iter().map(|o| o.meta.size * expansion(o.format)).sum()
}

/// About how many bytes of records one byte of an object in `format` holds (gzip JSON and
/// Parquet hold about four times their size): a unit's memory follows its records, not its
/// objects' sizes.
fn expansion(format: Format) -> u64 {
    match format {
        Format::Json => 1,
        Format::JsonGzip | Format::Parquet(_) => 4,
    }
}

fn clean_unit(
    kind: Kind,
    objects: &[(Planned, Bytes)],
    store: &Store,
    sets: &RunSets,
    progress: &ReadProgress,
    busy: &Busy,
) -> Result<Chunk> {
    let mut cleaner = Cleaner::new(kind)?;
    let mut skipped = 0u64;
    let mut undecodable = Vec::new();
    let mut unreadable = Vec::new();
    let mut per_object = Vec::with_capacity(objects.len());
    let started = Instant::now();
    for (o, data) in objects {
        let path = || store.relative(&o.meta.location).to_owned();
        let covered = match o.format {
            Format::Json => Ok(clean_lines(&mut cleaner, data, sets, &mut skipped, &path)),
            Format::JsonGzip => gunzip(data).map(|text| clean_lines(&mut cleaner, &text, sets, &mut skipped, &path)),
            Format::Parquet(_) => clean_parquet(&mut cleaner, data, o.start, &path),
        };
        let covered = covered.unwrap_or_else(|reason| {
            // An object that cannot be decoded is one dead letter: nothing of it is lost silently.
            unreadable.push((o.partition, o.start));
            undecodable.push(DeadLetter {
                kind,
                reason: format!("the object cannot be read as {:?}: {reason}", o.format),
                origin: Origin::Object { path: path(), line: 0 },
                record: String::new(),
            });
            0
        });
        per_object.push((o.partition, o.start, covered));
        progress.objects_done.fetch_add(1, Ordering::Relaxed);
        progress.bytes_done.fetch_add(o.meta.size, Ordering::Relaxed);
    }
    let mut cleaned = cleaner.finish()?;
    // Cleaning includes the raw fingerprints (they make it cheaper); de-duplication is the rows'.
    Busy::add(&busy.clean_ns, started);
    let t = Instant::now();
    let dropped = cleaned.retain_new(&sets.rows)? as u64;
    Busy::add(&busy.dedup_ns, t);
    // The rows kept, in the table's types (Parquet's text was held as views): part of cleaning.
    let t = Instant::now();
    cleaned.to_clean_types()?;
    Busy::add(&busy.clean_ns, t);
    let mut dead_letters = std::mem::take(&mut cleaned.dead_letters);
    dead_letters.extend(undecodable);
    Ok(Chunk {
        records: cleaned.records + skipped,
        bytes: objects.iter().map(|(o, _)| o.meta.size).sum(),
        cleaned_elsewhere_ns: 0,
        duplicates: dropped + skipped,
        cleaned,
        dead_letters,
        objects: per_object,
        unreadable,
        held_by_reader: None,
    })
}

/// Cleans the records of a JSON-lines object (one record per line); returns how many it holds.
/// A record whose exact bytes were cleaned before is a duplicate, skipped before parsing.
fn clean_lines(
    cleaner: &mut Cleaner,
    data: &[u8],
    sets: &RunSets,
    skipped: &mut u64,
    path: &dyn Fn() -> String,
) -> u64 {
    let (mut line, mut records) = (0u64, 0u64);
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        line += 1;
        let record = data[start..end].trim_ascii();
        start = end + 1;
        if record.is_empty() {
            continue;
        }
        records += 1;
        let fp = raw_fingerprint(record);
        if sets.raw.contains(fp) {
            // The same bytes were cleaned into a row before: an exact duplicate.
            *skipped += 1;
            continue;
        }
        if cleaner.push(record, || Origin::Object { path: path(), line }) {
            sets.remember_raw(fp);
        }
    }
    records
}

/// A gzip object's text.
fn gunzip(data: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut text = Vec::with_capacity(data.len() * 4);
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(data), &mut text).map_err(|e| e.to_string())?;
    Ok(text)
}

/// Cleans the rows of a Parquet object (the raw schema of its topic) through the same rules;
/// returns how many records it covers (from the sink's metadata: refused records included).
fn clean_parquet(
    cleaner: &mut Cleaner,
    data: &Bytes,
    start: u64,
    path: &dyn Fn() -> String,
) -> std::result::Result<u64, String> {
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    // Text as string views: the reader points them into its pages instead of copying each string.
    let e = |e: parquet::errors::ParquetError| e.to_string();
    let meta = ArrowReaderMetadata::load(data, ArrowReaderOptions::new()).map_err(e)?;
    let views = ArrowReaderOptions::new().with_schema(pinpipe_transform::with_string_views(meta.schema()));
    let meta = ArrowReaderMetadata::try_new(Arc::clone(meta.metadata()), views).map_err(e)?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(data.clone(), meta);
    let next = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == pinpipe_store::layout::PARQUET_NEXT_OFFSET))
        .and_then(|k| k.value.as_deref()?.parse::<u64>().ok());
    // Whole objects (the sink's flush size) in as few batches as fit: the rules run per column.
    let batch_rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0).clamp(1024, 1 << 16);
    let mut rows = 0u64;
    for batch in builder.with_batch_size(batch_rows).build().map_err(|e| e.to_string())? {
        let batch = batch.map_err(|e| e.to_string())?;
        let first = rows;
        cleaner
            .push_raw_batch(&batch, |i| Origin::Object { path: path(), line: first + i as u64 + 1 })
            .map_err(|e| e.to_string())?;
        rows += batch.num_rows() as u64;
    }
    Ok(next.map_or(rows, |n| n.saturating_sub(start)))
}
