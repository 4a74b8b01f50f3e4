//! One partition's worker: resume after what the store holds, read records from the log, place
//! each in its directory, and write a group of objects at every rotation ([`crate::group`]).
//!
//! **Exactly once.** With the default partitioner a group is one object, written whole and named
//! by its first offset; a partition resumes after its newest object. With the field and time
//! partitioners a group is several objects: the partition's commit marker first names them
//! (`writing`), then they are written, then the marker moves past them (`next`); a restart
//! removes what an unfinished group left and resumes at `next`
//! ([`pinpipe_store::layout::SinkCommit`]). Either way every record is in exactly one object or
//! one dead letter, whatever the moment of a crash.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::{ObjectStoreExt, PutPayload};
use pinpipe_log::{OffsetLog, ReadLimits, StoredRecord};
use pinpipe_model::Kind;
use pinpipe_store::Store;
use pinpipe_store::layout::{SinkCommit, object_key};
use tokio_util::sync::CancellationToken;

use crate::config::Resolved;
use crate::group::Group;
use crate::layout::{dead_letter_key, resume_offset};
use crate::partitioner::{Placer, Scheme};
use crate::runtime::{Mode, PartitionStatus};
use crate::{Error, Result};

/// Longest wait for new data before looking again (also bounds how late a rotation can be).
const POLL: Duration = Duration::from_secs(1);
/// Backoff bounds when the store refuses a write.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// What one worker needs.
pub(crate) struct Worker {
    pub log: Arc<dyn OffsetLog>,
    pub store: Store,
    pub config: Resolved,
    pub topic: String,
    pub partition: u32,
    pub status: Arc<Mutex<PartitionStatus>>,
}

/// The wall-clock rotation schedule (`rotate_schedule_interval`, aligned in the time zone).
struct Schedule {
    interval_ms: Option<i64>,
    next_ms: i64,
}

impl Schedule {
    fn new(config: &Resolved) -> Schedule {
        let interval_ms =
            config.rotate_schedule_interval.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1));
        let mut s = Schedule { interval_ms, next_ms: i64::MAX };
        s.advance(config, now_ms());
        s
    }

    /// Sets the next rotation to the first multiple of the interval (local time) after `now`.
    fn advance(&mut self, config: &Resolved, now: i64) {
        if let Some(every) = self.interval_ms {
            let offset = config.timezone.offset_ms(now);
            let local = now + offset;
            self.next_ms = local - local.rem_euclid(every) + every - offset;
        }
    }

    fn due(&self, now: i64) -> bool {
        now >= self.next_ms
    }

    /// How long until the next rotation (at most `POLL`).
    fn wait(&self, now: i64) -> Duration {
        let left = u64::try_from(self.next_ms.saturating_sub(now)).unwrap_or(0);
        Duration::from_millis(left.max(10)).min(POLL)
    }
}

impl Worker {
    fn update(&self, f: impl FnOnce(&mut PartitionStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    /// The kind of records the topic holds (`<prefix>.pin`, ...), for Parquet's schema.
    fn kind(&self) -> Option<Kind> {
        pinpipe_model::Names::new(&self.config.prefix).ok()?.kind_of_topic(&self.topic)
    }

    fn placer(&self) -> Placer {
        Placer {
            scheme: self.config.scheme.clone(),
            extractor: self.config.extractor,
            timestamp_field: self.config.timestamp_field.clone(),
            timezone: self.config.timezone,
            last_dir: None,
        }
    }

    /// Runs until the end (`Once`) or until `stop` (`Follow`); writes what it holds before stopping.
    pub(crate) async fn run(self, mode: Mode, stop: CancellationToken) -> Result<()> {
        let (next, end) = self.resume().await?;
        let target = match mode {
            Mode::Once => end,
            Mode::Follow => u64::MAX,
        };
        let (mut placer, kind, format) = (self.placer(), self.kind(), self.config.format);
        let rotate_ms = self.config.rotate_interval.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut schedule = Schedule::new(&self.config);
        let mut group = Group::at(next, format, kind);
        let mut read_at = next;
        while read_at < target && !stop.is_cancelled() {
            // Read ahead across several objects when they are small; never past `target`.
            let want = (self.config.flush_size.saturating_sub(group.records)).clamp(1_000, 10_000);
            let want = want.min(usize::try_from(target - read_at).unwrap_or(usize::MAX));
            let records = match self.read(read_at, want).await? {
                Read::Records(r) => r,
                Read::Moved { start, end } => {
                    // Retention removed records under us; nothing can bring them back.
                    self.flush(&mut group, read_at).await?;
                    read_at = start;
                    group = Group::at(start, format, kind);
                    self.update(|s| s.end = end);
                    continue;
                }
            };
            if records.is_empty() {
                if schedule.due(now_ms()) {
                    self.flush(&mut group, read_at).await?;
                    schedule.advance(&self.config, now_ms());
                }
                if !self.wait(&stop, read_at, schedule.wait(now_ms())).await? {
                    break;
                }
                continue;
            }
            for r in &records {
                // Offsets a repair of the log cut: the records after them start a new group (an
                // object never spans a gap, so its name plus its records is always where it ends).
                if r.offset > read_at {
                    tracing::warn!(
                        topic = %self.topic, partition = self.partition,
                        "records {read_at}..{} are missing from the log (cut by a repair)", r.offset
                    );
                    self.flush(&mut group, read_at).await?;
                    group = Group::at(r.offset, format, kind);
                }
                let now = now_ms();
                if schedule.due(now) {
                    self.flush(&mut group, r.offset).await?;
                    schedule.advance(&self.config, now);
                }
                self.take(&mut group, &mut placer, rotate_ms, r, now).await?;
                read_at = r.offset + 1;
                if group.records >= self.config.flush_size {
                    self.update(|s| s.end = s.end.max(read_at));
                    self.flush(&mut group, read_at).await?;
                }
            }
            self.update(|s| s.end = s.end.max(read_at));
        }
        // Whatever is held when stopping or at the end of `--once` is written as a last,
        // partial group; a restart continues after it.
        self.flush(&mut group, read_at).await?;
        Ok(())
    }

    /// Places record `r` and adds it to the group (closing the group first when the record's
    /// time or directory rotates it).
    async fn take(
        &self,
        group: &mut Group,
        placer: &mut Placer,
        rotate_ms: Option<i64>,
        r: &StoredRecord,
        now: i64,
    ) -> Result<()> {
        match placer.place(self.partition, r.timestamp_ms, now, &r.value) {
            Ok(placed) => {
                if group.rotates_before(&placed, rotate_ms) {
                    self.flush(group, r.offset).await?;
                }
                group.add(&self.topic, self.partition, r.offset, &r.value, placed);
            }
            // The default partitioner places every record: a time it cannot read is the log's.
            Err(_) if self.config.scheme == Scheme::Default => {
                let placed = crate::partitioner::Placed {
                    dir: std::sync::Arc::from(format!("partition={}", self.partition)),
                    time_ms: r.timestamp_ms,
                };
                if group.rotates_before(&placed, rotate_ms) {
                    self.flush(group, r.offset).await?;
                }
                group.add(&self.topic, self.partition, r.offset, &r.value, placed);
            }
            Err(reason) => group.refuse(&self.topic, self.partition, r.offset, &r.value, reason),
        }
        Ok(())
    }

    /// Reads from `at`: records, or where the partition now starts when retention removed `at`.
    async fn read(&self, at: u64, want: usize) -> Result<Read> {
        let limits = ReadLimits { max_records: want, max_bytes: 64 << 20 };
        match self.log.read(&self.topic, self.partition, at, limits).await {
            Ok(r) => Ok(Read::Records(r)),
            Err(pinpipe_log::Error::OffsetOutOfRange { start, end, .. }) if at < start => {
                tracing::warn!(
                    topic = %self.topic, partition = self.partition,
                    "records {at}..{start} were removed by retention before the sink wrote them"
                );
                Ok(Read::Moved { start, end })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Where the partition resumes (after what the store holds, or at the log's start when
    /// retention removed records the sink never wrote); with the log's end.
    async fn resume(&self) -> Result<(u64, u64)> {
        let (topic, p) = (self.topic.as_str(), self.partition);
        let offsets = self.log.offsets(topic).await?;
        let bounds = offsets.iter().find(|o| o.partition == p).copied().ok_or_else(|| {
            Error::Log(pinpipe_log::Error::PartitionNotFound {
                topic: topic.to_owned(),
                partition: p,
                partitions: offsets.len() as u32,
            })
        })?;
        let mut next = resume_offset(&self.store, topic, p).await?;
        if next > bounds.end {
            return Err(Error::AheadOfLog { topic: topic.to_owned(), partition: p, stored: next, log_end: bounds.end });
        }
        if next < bounds.start {
            tracing::warn!(
                topic,
                partition = p,
                "records {next}..{} were removed by retention before the sink wrote them",
                bounds.start
            );
            next = bounds.start;
        }
        self.update(|s| {
            s.written = next;
            s.end = bounds.end;
        });
        Ok((next, bounds.end))
    }

    /// Waits up to `wait` for data after `read_at`, then refreshes the log's end in the status.
    /// `false` when stopped.
    async fn wait(&self, stop: &CancellationToken, read_at: u64, wait: Duration) -> Result<bool> {
        let (topic, p) = (self.topic.as_str(), self.partition);
        tokio::select! {
            () = stop.cancelled() => return Ok(false),
            ready = self.log.wait_for(topic, p, read_at, wait) => { ready?; }
        }
        if let Ok(o) = self.log.offsets(topic).await
            && let Some(o) = o.iter().find(|o| o.partition == p)
        {
            self.update(|s| s.end = o.end);
        }
        Ok(true)
    }

    /// Writes the group (if it holds records): its dead letters, its objects, and with the
    /// partitioners whose objects interleave the commit marker around them; the next group
    /// starts at `next`.
    async fn flush(&self, group: &mut Group, next: u64) -> Result<()> {
        if group.is_empty() {
            *group = Group::at(next, self.config.format, self.kind());
            return Ok(());
        }
        let started = std::time::Instant::now();
        let done = std::mem::replace(group, Group::at(next, self.config.format, self.kind()));
        let (start, end) = (done.start, done.next);
        let mut writes: Vec<(String, bytes::Bytes)> = Vec::with_capacity(done.objects.len() + 1);
        if !done.dead.is_empty() {
            let mut body = Vec::new();
            for d in &done.dead {
                if serde_json::to_writer(&mut body, d).is_ok() {
                    body.push(b'\n');
                }
            }
            writes.push((dead_letter_key(&self.topic, self.partition, start), bytes::Bytes::from(body)));
        }
        let objects = done.objects.len() as u64;
        let dead = done.dead.len() as u64;
        let records = (done.records as u64).saturating_sub(dead);
        for (dir, o) in done.objects {
            let key = object_key(&self.topic, &dir, self.partition, o.start, self.config.format);
            // A default object covers its whole group (refused records included).
            let covers = if self.config.scheme == Scheme::Default { end } else { o.next };
            writes.push((key, o.encoder.finish(o.start, covers)?));
        }
        let bytes: u64 = writes.iter().map(|(_, b)| b.len() as u64).sum();
        let nested = self.config.scheme != Scheme::Default;
        if nested {
            let writing = writes.iter().map(|(k, _)| k.clone()).collect();
            SinkCommit { next: start, writing }.write(&self.store, &self.topic, self.partition).await?;
        }
        for (key, body) in writes {
            self.put(&key, body).await;
        }
        if nested {
            SinkCommit { next: end, writing: Vec::new() }.write(&self.store, &self.topic, self.partition).await?;
        }
        // Retention keeps what the sink has not written yet (embedded log).
        if let Err(e) = self.log.hold(&self.topic, self.partition, "sink", end).await {
            tracing::warn!(topic = %self.topic, partition = self.partition, "could not record the sink's position for retention: {e}");
        }
        self.update(|s| {
            s.written = end;
            s.objects += objects;
            s.records += records;
            s.dead_letters += dead;
            s.bytes += bytes;
            s.flush_latency.observe(started.elapsed());
        });
        Ok(())
    }

    /// Writes one object, retrying until the store takes it (the same name and content each
    /// time, so a retry is harmless).
    async fn put(&self, rel: &str, body: bytes::Bytes) {
        let key = self.store.key(rel);
        let mut backoff = RETRY_MIN;
        loop {
            match self.store.inner.put(&key, PutPayload::from(body.clone())).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::error!(key = %key, "writing an object failed, retrying in {backoff:?}: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        }
    }
}

/// What a read found.
enum Read {
    /// Records (none at the end).
    Records(Vec<StoredRecord>),
    /// Retention removed the records asked for: the partition now starts at `start`.
    Moved { start: u64, end: u64 },
}
