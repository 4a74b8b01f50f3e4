//! One partition's worker: resume after what the store holds, read records from the log, and
//! write an object every `flush_size` records (or after `rotate_interval` without new data).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;
use pinpipe_log::{OffsetLog, ReadLimits};
use pinpipe_store::Store;
use tokio_util::sync::CancellationToken;

use crate::config::Resolved;
use crate::layout::{object_name, resume_offset};
use crate::runtime::{Mode, PartitionStatus};
use crate::{Error, Result};
use pinpipe_store::layout::frame;

/// Longest wait for new data before looking again (also bounds how late a rotation can be).
const POLL: Duration = Duration::from_secs(1);
/// Backoff bounds when the store refuses a write.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The records of the object being built: one line each.
struct Pending {
    /// The object's bytes so far.
    bytes: Vec<u8>,
    /// Offset of its first record (its name).
    start: u64,
    /// Records in it.
    count: usize,
}

impl Pending {
    /// An empty object starting at `start`.
    fn at(start: u64) -> Self {
        Pending { bytes: Vec::new(), start, count: 0 }
    }

    /// Adds a record as exactly one line, whatever its bytes: resuming counts lines.
    fn push(&mut self, value: &[u8]) {
        self.bytes.extend_from_slice(&frame(value));
        self.bytes.push(b'\n');
        self.count += 1;
    }
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

impl Worker {
    fn update(&self, f: impl FnOnce(&mut PartitionStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    /// Runs until the end (`Once`) or until `stop` (`Follow`); writes what it holds before stopping.
    pub(crate) async fn run(self, mode: Mode, stop: CancellationToken) -> Result<()> {
        let (topic, p) = (self.topic.as_str(), self.partition);
        let (next, end) = self.resume().await?;
        let target = match mode {
            Mode::Once => end,
            Mode::Follow => u64::MAX,
        };
        let mut pending = Pending::at(next);
        let mut read_at = next;
        let mut last_data = Instant::now();
        loop {
            if read_at >= target || stop.is_cancelled() {
                break;
            }
            // Read ahead across several objects when they are small; never past `target`.
            let want = (self.config.flush_size - pending.count).clamp(1_000, 10_000);
            let want = want.min(usize::try_from(target - read_at).unwrap_or(usize::MAX));
            let limits = ReadLimits { max_records: want, max_bytes: 64 << 20 };
            let records = match self.log.read(topic, p, read_at, limits).await {
                Ok(r) => r,
                Err(pinpipe_log::Error::OffsetOutOfRange { start, end, .. }) if read_at < start => {
                    // Retention removed records under us; nothing can bring them back.
                    tracing::warn!(
                        topic,
                        partition = p,
                        "records {read_at}..{start} were removed by retention before the sink wrote them"
                    );
                    self.flush(&mut pending, read_at).await?;
                    read_at = start;
                    pending.start = start;
                    self.update(|s| s.end = end);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if records.is_empty() {
                let idle = last_data.elapsed();
                if pending.count > 0 && self.config.rotate_interval.is_some_and(|r| idle >= r) {
                    self.flush(&mut pending, read_at).await?;
                    continue;
                }
                if !self.wait(&stop, read_at, pending.count, idle).await? {
                    break;
                }
                continue;
            }
            last_data = Instant::now();
            for r in &records {
                // Offsets a repair of the log cut: the records after them start a new object (an
                // object never spans a gap, so its name plus its lines is always where it ends).
                if r.offset > read_at {
                    tracing::warn!(
                        topic,
                        partition = p,
                        "records {read_at}..{} are missing from the log (cut by a repair)",
                        r.offset
                    );
                    self.flush(&mut pending, read_at).await?;
                    pending.start = r.offset;
                }
                pending.push(&r.value);
                read_at = r.offset + 1;
                if pending.count >= self.config.flush_size {
                    self.update(|s| s.end = s.end.max(read_at));
                    self.flush(&mut pending, read_at).await?;
                }
            }
            self.update(|s| s.end = s.end.max(read_at));
        }
        // Whatever is held when stopping or at the end of `--once` is written as a last,
        // partial object; a restart continues after it.
        self.flush(&mut pending, read_at).await?;
        Ok(())
    }

    /// Where the partition resumes: after what the store holds (or at the log's start, when
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

    /// Waits for data after `read_at` (at most until a rotation is due for `held` pending
    /// records, `idle` after the last data), then refreshes the log's end in the status.
    /// `false` when stopped.
    async fn wait(&self, stop: &CancellationToken, read_at: u64, held: usize, idle: Duration) -> Result<bool> {
        let (topic, p) = (self.topic.as_str(), self.partition);
        let wait = match self.config.rotate_interval {
            Some(r) if held > 0 => r.saturating_sub(idle).clamp(Duration::from_millis(10), POLL),
            _ => POLL,
        };
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

    /// Writes the pending records (if any) as the object named by their first offset,
    /// retrying until the store takes it (the same name and content each time, so a retry is
    /// harmless); the next object starts at `next`.
    async fn flush(&self, pending: &mut Pending, next: u64) -> Result<()> {
        if pending.count == 0 {
            return Ok(());
        }
        let key = self.store.key(&object_name(&self.topic, self.partition, pending.start));
        let payload = bytes::Bytes::from(std::mem::take(&mut pending.bytes));
        let mut backoff = RETRY_MIN;
        loop {
            match self.store.inner.put(&key, payload.clone().into()).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(key = %key, "writing an object failed, retrying in {backoff:?}: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        }
        // Retention keeps what the sink has not written yet (embedded log).
        if let Err(e) = self.log.hold(&self.topic, self.partition, "sink", next).await {
            tracing::warn!(topic = %self.topic, partition = self.partition, "could not record the sink's position for retention: {e}");
        }
        let records = pending.count as u64;
        self.update(|s| {
            s.written = next;
            s.objects += 1;
            s.records += records;
        });
        *pending = Pending::at(next);
        Ok(())
    }
}
