//! One micro-batch, step by step: clean what was read, drop duplicates (within the batch and,
//! with `stream.dedup = "table"`, against the table), write its dead letters, commit rows and
//! positions in one Delta commit (retried on conflicts), then advance and report.

use std::collections::BTreeMap;
use std::time::Instant;

use arrow_array::RecordBatch;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use object_store::ObjectStoreExt;
use pinpipe_log::Cursor;
use pinpipe_log::partitioner::{sequence_of, shard_id};
use pinpipe_model::schema;
use pinpipe_transform::{Cleaned, Cleaner, DeadLetter, Origin, Seen, dedup};

use super::read::PartitionRead;
use super::{Progress, Worker};
use crate::commit::{self, BatchInfo, PartitionRange, Tracking};
use crate::job::CommitEvent;
use crate::{Error, Result};

/// Commit attempts of one micro-batch before its error stands.
const COMMIT_ATTEMPTS: u32 = 4;

/// A micro-batch cleaned and de-duplicated, ready to commit.
struct Prepared {
    /// The rows to append (at least one batch: an empty one still commits the positions).
    data: Vec<RecordBatch>,
    /// Records that could not be cleaned.
    dead_letters: Vec<DeadLetter>,
    /// Fingerprints of the rows appended, remembered once they are committed.
    fingerprints: Vec<u128>,
    /// What the commit records.
    info: BatchInfo,
    /// Where each partition continues once the batch is committed.
    next: BTreeMap<u32, Cursor>,
}

/// How a commit ended.
enum Committed {
    /// Ours is in; the table at its version.
    Ours(DeltaTable),
    /// Another job committed this batch first; `pos` follows the table.
    ByAnother(DeltaTable),
}

/// What to do after a failed commit.
enum AfterFailure {
    /// Nobody else committed the batch: try again on this (newer) table version.
    Retry(DeltaTable),
    /// Another job committed it: the position was updated; continue with this table.
    TakenByAnother(DeltaTable),
}

impl Worker {
    /// Cleans, de-duplicates and commits one micro-batch; advances `pos` when it is committed.
    pub(super) async fn micro_batch(
        &self,
        table: DeltaTable,
        pos: &mut Progress,
        seen: &mut Option<Seen>,
        reads: Vec<PartitionRead>,
    ) -> Result<DeltaTable> {
        let started = std::time::Instant::now();
        let prepared = self.prepare(pos, seen.as_ref(), &reads)?;
        if !prepared.dead_letters.is_empty() {
            self.write_dead_letters(pos.batch, &prepared.dead_letters).await?;
        }
        match self.commit(table, pos, &prepared).await? {
            Committed::ByAnother(table) => {
                *seen = self.restore_seen(&table).await?;
                Ok(table)
            }
            Committed::Ours(table) => {
                self.advance(&table, pos, seen, prepared).await;
                let now_ms = chrono::Utc::now().timestamp_millis();
                self.update_status(|s| {
                    s.batch_latency.observe(started.elapsed());
                    for r in reads.iter().flat_map(|r| &r.records) {
                        let ms = u64::try_from(now_ms.saturating_sub(r.timestamp_ms)).unwrap_or(0);
                        s.visible_latency.observe(std::time::Duration::from_millis(ms));
                    }
                });
                Ok(table)
            }
        }
    }

    /// Cleans the records read and drops duplicates; says what the commit will record.
    fn prepare(&self, pos: &Progress, seen: Option<&Seen>, reads: &[PartitionRead]) -> Result<Prepared> {
        let (mut cleaned, offsets, next) = self.clean(pos, reads)?;
        let dead_letters = std::mem::take(&mut cleaned.dead_letters);
        let clean_rows = cleaned.rows();
        let (data, fingerprints) = unique_rows(cleaned, seen)?;
        let rows: usize = data.iter().map(RecordBatch::num_rows).sum();
        let info = BatchInfo {
            stream: self.stream.clone(),
            batch: pos.batch,
            offsets,
            records: reads.iter().map(|r| r.records.len() as u64).sum(),
            rows: rows as u64,
            duplicates: (clean_rows - rows) as u64,
            dead_letters: dead_letters.len() as u64,
            cursors: match self.tracking {
                Tracking::Offsets => BTreeMap::new(),
                Tracking::Cursors => next.clone(),
            },
        };
        let mut data: Vec<RecordBatch> = data.into_iter().filter(|b| b.num_rows() > 0).collect();
        if data.is_empty() {
            // Positions still advance (every record was a dead letter): an empty append commits them.
            data.push(RecordBatch::new_empty(schema::clean(self.kind)));
        }
        Ok(Prepared { data, dead_letters, fingerprints, info, next })
    }

    /// Cleans every record read with the shared rules; returns the clean rows, the range read
    /// from each partition and where each continues.
    fn clean(
        &self,
        pos: &Progress,
        reads: &[PartitionRead],
    ) -> Result<(Cleaned, Vec<PartitionRange>, BTreeMap<u32, Cursor>)> {
        let mut cleaner = Cleaner::new(self.kind)?;
        let mut ranges = Vec::with_capacity(reads.len());
        let mut next = pos.next.clone();
        for read in reads {
            let (p, records) = (read.partition, &read.records);
            let (Some(first), Some(last)) = (records.first(), records.last()) else { continue };
            for r in records {
                cleaner.push(&r.value, || Origin::Stream {
                    stream: self.stream.clone(),
                    shard: shard_id(p),
                    sequence_number: sequence_of(p, &r.position),
                });
            }
            ranges.push(PartitionRange {
                partition: p,
                shard: shard_id(p),
                from: first.position.clone(),
                last: last.position.clone(),
                to: last.position.offset().map(|o| o + 1),
            });
            next.insert(p, read.next.clone());
        }
        Ok((cleaner.finish()?, ranges, next))
    }

    /// Appends the rows with the batch's positions in one Delta commit, retrying a commit that
    /// lost a race to a compaction; gives way to another job that committed the batch first.
    async fn commit(&self, mut table: DeltaTable, pos: &mut Progress, prepared: &Prepared) -> Result<Committed> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if self.lease.is_lost() {
                return Err(self.lease.lost_error().into());
            }
            let written = table
                .write(prepared.data.clone())
                .with_writer_properties(pinpipe_store::delta::writer_properties())
                .with_save_mode(SaveMode::Append)
                .with_table_name(&self.table)
                .with_commit_properties(commit::properties(&prepared.info))
                .await;
            match written {
                Ok(t) => return Ok(Committed::Ours(t)),
                Err(e) => match self.after_failed_commit(pos, e, attempt).await? {
                    AfterFailure::Retry(t) => table = t,
                    AfterFailure::TakenByAnother(t) => return Ok(Committed::ByAnother(t)),
                },
            }
        }
    }

    /// After the commit: remembers the rows' fingerprints, lets retention go past what was
    /// consumed, advances `pos` and reports the batch.
    async fn advance(&self, table: &DeltaTable, pos: &mut Progress, seen: &mut Option<Seen>, prepared: Prepared) {
        let at = Instant::now();
        let Prepared { fingerprints, info, next, .. } = prepared;
        if let Some(s) = seen.as_mut() {
            s.extend(fingerprints);
        }
        // Retention keeps what the job has not committed yet (embedded log, dense offsets).
        if let Some(log) = self.log.as_offsets() {
            for r in &info.offsets {
                if let Some(to) = r.to
                    && let Err(e) = log.hold(&self.stream, r.partition, "stream", to).await
                {
                    tracing::warn!(stream = %self.stream, partition = r.partition, "could not record the job's position for retention: {e}");
                }
            }
        }
        pos.next = next;
        pos.batch += 1;
        let last_commit_ms = chrono::Utc::now().timestamp_millis();
        self.update_status(|s| {
            s.version = table.version();
            s.last_batch = Some(info.batch);
            s.last_commit_ms = Some(last_commit_ms);
            s.batches += 1;
            s.records += info.records;
            s.rows += info.rows;
            s.duplicates += info.duplicates;
            s.dead_letters += info.dead_letters;
            for p in &mut s.partitions {
                if let Some(next) = pos.next.get(&p.partition) {
                    p.committed = p.committed.and_then(|_| next.dense_offset(0).ok());
                    p.cursor = next.clone();
                }
            }
        });
        tracing::debug!(stream = %self.stream, batch = info.batch, records = info.records, rows = info.rows, "committed");
        if let Some(events) = &self.events {
            let _ = events.send(CommitEvent { stream: self.stream.clone(), offsets: info.offsets, at });
        }
    }

    /// A commit failed. If another job committed this batch (or later) in the meantime, Delta's
    /// conflict check refused ours: continue from what the table now says. If nobody did (a
    /// conflict with a compaction or a table creation), retry a few times on the new version;
    /// then the error stands (nothing was committed; a restart redoes the batch).
    async fn after_failed_commit(
        &self,
        pos: &mut Progress,
        e: deltalake::DeltaTableError,
        attempt: u32,
    ) -> Result<AfterFailure> {
        let table = pinpipe_store::delta::open(&self.location).await.map_err(Error::delta(&self.url))?;
        let parts = pos.next.keys().map(|p| p + 1).max().unwrap_or(0);
        let c = commit::committed(&table, &self.stream, parts, self.tracking).await.map_err(Error::delta(&self.url))?;
        match c.batch {
            Some(b) if b >= pos.batch => {
                tracing::warn!(
                    stream = %self.stream, batch = pos.batch, error = %e,
                    "another stream job committed to this table; continuing from its offsets (is a second job running?)"
                );
                pos.next.extend(c.positions());
                pos.batch = b + 1;
                Ok(AfterFailure::TakenByAnother(table))
            }
            _ if attempt < COMMIT_ATTEMPTS => {
                tracing::warn!(stream = %self.stream, batch = pos.batch, error = %e, attempt, "commit failed; retrying");
                Ok(AfterFailure::Retry(table))
            }
            _ => Err(Error::delta(&self.url)(e)),
        }
    }

    /// Writes the batch's dead letters, before the commit and named by the batch id: a batch
    /// redone after a crash rewrites the same object.
    async fn write_dead_letters(&self, batch: u64, letters: &[DeadLetter]) -> Result<()> {
        let mut body = Vec::new();
        for l in letters {
            // A dead letter always serialises (plain strings and numbers).
            if serde_json::to_writer(&mut body, l).is_ok() {
                body.push(b'\n');
            }
        }
        let key = self.dead_store.key(&pinpipe_store::warehouse::stream_dead_letters(&self.table, batch));
        self.dead_store
            .inner
            .put(&key, bytes::Bytes::from(body).into())
            .await
            .map_err(|source| Error::DeadLetters { key: key.to_string(), source })?;
        Ok(())
    }
}

/// The rows of `cleaned` without exact duplicates within the batch and, given `seen`, without
/// rows the table already holds (delivered again in a later micro-batch); with the
/// fingerprints of the rows kept, for `seen`.
fn unique_rows(cleaned: Cleaned, seen: Option<&Seen>) -> Result<(Vec<RecordBatch>, Vec<u128>)> {
    let mut deduped = dedup(vec![cleaned])?;
    let mut fingerprints = Vec::new();
    if let Some(s) = seen {
        for b in &mut deduped {
            let (kept, fps) = s.unseen(b)?;
            *b = kept;
            fingerprints.extend(fps);
        }
    }
    Ok((deduped, fingerprints))
}
