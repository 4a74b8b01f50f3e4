//! Ingesting one topic into its clean table, exactly once.
//!
//! 1. What the table has ingested (its `txn` positions, [`crate::delta`]) decides which raw
//!    objects are new ([`crate::read::plan`]); `--full` takes them all.
//! 2. The new objects are read and cleaned in parallel; duplicates within the run are dropped
//!    as they come ([`crate::read`]).
//! 3. Rows that repeat rows the table already holds are dropped by the table's fingerprint files
//!    ([`crate::fingerprints`]): the run's rows wait in a [`Buffer`] (spilled beyond its budget)
//!    while those are scanned. A table without rows (a first run, `--full`) needs no check, and
//!    the rows go straight to the writer.
//! 4. Rows are written as Parquet files with their fingerprint files ([`crate::write`]), and
//!    committed in ONE Delta commit with the positions of the objects read. Nothing is visible
//!    before that commit; a run killed at any point leaves the table as it was (files it wrote
//!    are unreferenced and removed by `VACUUM`), and the next run ingests the same objects again.
//!
//! On a cluster (the job's [`Reader`]) steps 2 and 4 run on its executors, which keep each
//! unit's rows: the job receives fingerprints, decides in steps 2–3 which rows are new exactly as
//! above, sends that decision back with the units, and commits the files the executors wrote.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::BooleanArray;
use futures_util::TryStreamExt;
use pinpipe_model::Kind;
use pinpipe_store::TableLocation;
use pinpipe_store::lease::Lease;
use pinpipe_transform::DeadLetter;
use serde::Serialize;

use crate::delta::{self, PartitionIngest, RunInfo};
use crate::read::{self, Busy, Chunk, Keep, ReadProgress, Reader, RunSets};
use crate::spill::Buffer;
use crate::write::TableWriter;
use crate::{Error, Result, fingerprints};

/// What the job gives every table's ingestion.
pub(crate) struct Context<'a> {
    pub input: &'a pinpipe_store::Store,
    pub run: &'a str,
    pub full: bool,
    pub read_concurrency: usize,
    /// Bytes of new rows held in memory before they spill.
    pub buffer_budget: usize,
    /// The job's memory limit, in bytes (it bounds the parse-skipping cache of raw fingerprints).
    pub memory_limit: u64,
    pub spill_dir: &'a std::path::Path,
    pub lease: &'a Lease,
    pub progress: &'a Arc<ReadProgress>,
    pub busy: &'a Arc<Busy>,
    /// Where objects are read and cleaned when not in this process (a cluster).
    pub reader: Option<&'a Arc<dyn Reader>>,
}

/// What a run did to one table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ingested {
    /// `incremental` or `full`.
    pub mode: String,
    /// Objects read.
    pub objects: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Raw records read.
    pub records: u64,
    /// Rows appended.
    pub rows: u64,
    /// Exact duplicates dropped (within the run and of rows already in the table).
    pub duplicates: u64,
    /// Records sent to the dead letters.
    pub dead_letters: u64,
    /// Rows of the table after the run.
    pub table_rows: u64,
    /// The table's version after the run (unchanged when nothing was new).
    pub version: Option<u64>,
    /// Whether this run committed.
    pub committed: bool,
    /// Whether the run's new rows were spilled to disk while the table was checked.
    pub spilled: bool,
    /// Offset ranges `[from, to)` missing between the objects read, per partition.
    pub gaps: BTreeMap<u32, Vec<(u64, u64)>>,
}

/// Ingests `topic` into the table at `location`; `dead` receives the dead letters.
pub(crate) async fn ingest(
    cx: &Context<'_>,
    kind: Kind,
    topic: &str,
    name: &str,
    location: &TableLocation,
    dead: &mut (dyn FnMut(&[DeadLetter]) -> Result<()> + Send),
) -> Result<Ingested> {
    let url = location.url.to_string();
    let table = pinpipe_store::delta::open(location).await.map_err(Error::delta(&url))?;
    let partitions = pinpipe_store::layout::partitions(cx.input, topic).await?;
    let state = delta::state(&table, kind, topic, &partitions).await?;
    let full = cx.full || rebuild_needed(&table, &state, &url)?;
    let from = if full { BTreeMap::new() } else { state.ingested.clone() };
    let plan = read::plan(cx.input, topic, &from).await?;
    let mut out = Ingested {
        mode: if full { "full" } else { "incremental" }.to_owned(),
        objects: plan.objects.len() as u64,
        bytes: plan.bytes(),
        version: state.version,
        ..Default::default()
    };
    if plan.objects.is_empty() && !full {
        out.table_rows = state.rows();
        return Ok(out);
    }
    let table = delta::ensure_table(table, location, name, kind).await?;
    let sets = Arc::new(RunSets::for_memory_limit(cx.memory_limit));
    let mut read = ReadTally { nested: plan.nested, ..ReadTally::default() };
    let check_table = !(full || state.files.is_empty());
    let (adds, rows) = match cx.reader {
        Some(reader) => {
            let keep = read_elsewhere(cx, reader, kind, plan.objects, &sets, &mut read, &mut out, dead).await?;
            let repeated =
                if check_table { held_already(cx, kind, &table, &url, &state, &sets).await? } else { HashSet::new() };
            out.duplicates += repeated.len() as u64;
            let keep: Vec<Keep> = keep
                .into_iter()
                .map(|(unit, fps, new)| {
                    let rows = fps.iter().zip(new).map(|(fp, new)| new && !repeated.contains(fp)).collect();
                    Keep { unit, rows }
                })
                .collect();
            let kept: usize = keep.iter().map(|k| k.rows.iter().filter(|r| **r).count()).sum();
            let table_dir = pinpipe_store::warehouse::batch_table(name);
            let written = reader.write(kind, &table_dir, keep).await?;
            if written.rows != kept as u64 {
                // Nothing is committed: the next run reads the same objects again.
                return Err(Error::Reader {
                    reader: reader.describe(),
                    reason: format!("{} rows were written to {url}, not the {kept} kept", written.rows),
                });
            }
            cx.busy.write_ns.fetch_add(written.write_ns, std::sync::atomic::Ordering::Relaxed);
            (written.adds, written.rows)
        }
        None => {
            let mut writer = TableWriter::new(&table, &url, cx.busy)?;
            let mut chunks =
                read::chunks(cx.input, kind, plan.objects, cx.read_concurrency, &sets, cx.progress, cx.busy);
            if check_table {
                let mut buffer = Buffer::new(cx.buffer_budget, cx.spill_dir);
                while let Some(mut c) = chunks.try_next().await? {
                    read.take(&mut c, &mut out, dead)?;
                    for (batch, fingerprints) in c.cleaned.into_parts()? {
                        buffer.push(batch, fingerprints)?;
                    }
                }
                out.spilled = buffer.spilled();
                let repeated = held_already(cx, kind, &table, &url, &state, &sets).await?;
                out.duplicates += repeated.len() as u64;
                write_unless(&mut writer, buffer, &repeated).await?;
            } else {
                // Nothing in the table to compare with: rows go straight to the writer.
                while let Some(mut c) = chunks.try_next().await? {
                    read.take(&mut c, &mut out, dead)?;
                    for (batch, fingerprints) in c.cleaned.into_parts()? {
                        writer.write(batch, fingerprints).await?;
                    }
                }
            }
            writer.finish().await?
        }
    };
    out.rows = rows;
    commit(cx, &table, adds, read.positions(), &state, full, topic, &mut out).await?;
    for (p, gaps) in &out.gaps {
        tracing::warn!(topic, partition = p, ?gaps, "records are missing between the raw objects read");
    }
    Ok(out)
}

/// Reads and cleans `objects` through the job's [`Reader`] (a cluster): counts, dead letters and
/// positions as in one process, and per unit the rows' fingerprints with whether each is new to
/// the run (the first occurrence in key order, as [`read::chunks`] keeps them).
#[allow(clippy::too_many_arguments)]
async fn read_elsewhere(
    cx: &Context<'_>,
    reader: &Arc<dyn Reader>,
    kind: Kind,
    objects: Vec<read::Planned>,
    sets: &RunSets,
    read: &mut ReadTally,
    out: &mut Ingested,
    dead: &mut (dyn FnMut(&[DeadLetter]) -> Result<()> + Send),
) -> Result<Vec<(u32, Vec<u128>, Vec<bool>)>> {
    use std::sync::atomic::Ordering::Relaxed;
    let progress = cx.progress;
    progress.objects_total.fetch_add(objects.len() as u64, Relaxed);
    progress.bytes_total.fetch_add(objects.iter().map(|o| o.meta.size).sum(), Relaxed);
    let mut chunks = reader.chunks(cx.input, kind, objects);
    let mut units = Vec::new();
    while let Some(mut c) = chunks.try_next().await? {
        let unit = c.held_by_reader.ok_or_else(|| Error::Reader {
            reader: reader.describe(),
            reason: "a unit came back without its number".into(),
        })?;
        let t = Instant::now();
        let fps = std::mem::take(&mut c.cleaned.fingerprints);
        let new = sets.rows.insert_all(&fps);
        c.duplicates += new.iter().filter(|n| !**n).count() as u64;
        Busy::add(&cx.busy.dedup_ns, t);
        cx.busy.clean_ns.fetch_add(c.cleaned_elsewhere_ns, Relaxed);
        progress.objects_done.fetch_add(c.objects.len() as u64, Relaxed);
        progress.bytes_done.fetch_add(c.bytes, Relaxed);
        read.take(&mut c, out, dead)?;
        units.push((unit, fps, new));
    }
    Ok(units)
}

/// Whether the table must be rebuilt from every object although the run is incremental: it
/// holds rows but no ingested positions, as an older pinpipe (which replaced the tables on
/// every run) left them. A table with rows of unknown origin is refused.
fn rebuild_needed(table: &deltalake::DeltaTable, state: &delta::TableState, url: &str) -> Result<bool> {
    if !state.ingested.is_empty() || state.files.is_empty() {
        return Ok(false);
    }
    if !delta::created_by_batch_job(table) {
        return Err(Error::NotOurs {
            table: url.to_owned(),
            reason: "it holds rows but no record of the raw objects they came from".into(),
        });
    }
    tracing::info!(table = %url, "the table has no ingested positions (older pinpipe): rebuilding it from all objects");
    Ok(true)
}

/// What was read, per raw partition: objects, their offsets, and the gaps between them.
#[derive(Default)]
struct ReadTally {
    per_partition: BTreeMap<u32, PartitionIngest>,
    /// Per partition, the first object that could not be decoded.
    held_back: BTreeMap<u32, u64>,
    /// Objects interleave (no gaps to see between them).
    nested: bool,
}

impl ReadTally {
    /// Counts a chunk's records into `out` and hands its dead letters to `dead`.
    fn take(
        &mut self,
        c: &mut Chunk,
        out: &mut Ingested,
        dead: &mut (dyn FnMut(&[DeadLetter]) -> Result<()> + Send),
    ) -> Result<()> {
        out.records += c.records;
        out.duplicates += c.duplicates;
        out.dead_letters += c.dead_letters.len() as u64;
        dead(&c.dead_letters)?;
        for &(p, start, records) in &c.objects {
            let e = self.per_partition.entry(p).or_insert(PartitionIngest { first_start: start, ..Default::default() });
            if !self.nested && e.objects > 0 && start > e.next_offset {
                out.gaps.entry(p).or_default().push((e.next_offset, start));
            }
            e.objects += 1;
            e.last_start = start;
            e.next_offset = e.next_offset.max(start + records);
        }
        for &(p, start) in &c.unreadable {
            let first = self.held_back.entry(p).or_insert(start);
            *first = (*first).min(start);
        }
        Ok(())
    }

    /// The positions to commit: a partition with an object that could not be decoded keeps its
    /// previous position, so the next run reads that object again (and the objects after it,
    /// whose rows the table then holds already: dropped as duplicates). Nothing in a torn object
    /// is skipped for good.
    fn positions(mut self) -> BTreeMap<u32, PartitionIngest> {
        for p in self.held_back.keys() {
            self.per_partition.remove(p);
        }
        self.per_partition
    }
}

/// The fingerprints of the run's rows that the table holds already (from the fingerprint
/// files beside its data files).
async fn held_already(
    cx: &Context<'_>,
    kind: Kind,
    table: &deltalake::DeltaTable,
    url: &str,
    state: &delta::TableState,
    sets: &RunSets,
) -> Result<HashSet<u128>> {
    let t = Instant::now();
    let repeated = std::sync::Mutex::new(HashSet::<u128>::new());
    let probe = |fp: u128| {
        if sets.rows.contains(fp)
            && let Ok(mut r) = repeated.lock()
        {
            r.insert(fp);
        }
    };
    fingerprints::scan(table.object_store(), url, kind, &state.files, &probe).await?;
    Busy::add(&cx.busy.dedup_ns, t);
    Ok(repeated.into_inner().unwrap_or_default())
}

/// Writes the buffered rows whose fingerprints are not in `repeated`.
async fn write_unless(writer: &mut TableWriter<'_>, buffer: Buffer, repeated: &HashSet<u128>) -> Result<()> {
    for item in buffer.into_batches()? {
        let (batch, fps) = item?;
        if repeated.is_empty() {
            writer.write(batch, fps).await?;
            continue;
        }
        let keep: Vec<bool> = fps.iter().map(|f| !repeated.contains(f)).collect();
        let batch = datafusion::arrow::compute::filter_record_batch(&batch, &BooleanArray::from(keep.clone()))?;
        let fps = fps.into_iter().zip(keep).filter_map(|(f, k)| k.then_some(f)).collect();
        writer.write(batch, fps).await?;
    }
    Ok(())
}

/// Commits the run's files with its ingested positions (a rebuild also removes the table's
/// files and resets partitions that lost their objects), unless the lease was lost.
#[allow(clippy::too_many_arguments)]
async fn commit(
    cx: &Context<'_>,
    table: &deltalake::DeltaTable,
    adds: Vec<deltalake::kernel::Add>,
    partitions: BTreeMap<u32, PartitionIngest>,
    state: &delta::TableState,
    full: bool,
    topic: &str,
    out: &mut Ingested,
) -> Result<()> {
    let info = RunInfo {
        run: cx.run.to_owned(),
        mode: out.mode.clone(),
        topic: topic.to_owned(),
        partitions,
        records: out.records,
        rows: out.rows,
        duplicates: out.duplicates,
        dead_letters: out.dead_letters,
    };
    // Partitions that lost their objects go back to 0 on a rebuild.
    let reset: Vec<u32> = if full {
        state.ingested.keys().copied().filter(|p| !info.partitions.contains_key(p)).collect()
    } else {
        Vec::new()
    };
    if cx.lease.is_lost() {
        return Err(cx.lease.lost_error().into());
    }
    let version = delta::commit(table, adds, &info, full.then_some(state), &reset).await?;
    out.version = Some(version);
    out.committed = true;
    out.table_rows = if full { out.rows } else { state.rows() + out.rows };
    Ok(())
}
