//! The one writer thread: group commit. It takes every append waiting in its queue, writes each
//! partition's batches with one `write`, makes them durable with one `fdatasync` per partition,
//! and only then publishes the new end offsets and acknowledges. Topic creation and deletion
//! go through the same queue, so they are ordered with appends.
//!
//! The active segment is extended with zeros ahead of the data ([`PREALLOCATE`] at a time), so
//! that most `fdatasync`s write data only: an append that grows the file would also have to
//! write the inode (its size) synchronously, a second round trip to the disk for every commit.
//! The zeros past the data are cut when the segment is closed or the log shut down, and after a
//! crash by recovery, which treats a zero tail as the torn tail it is.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pinpipe_model::histogram::Histogram;
use tokio::sync::oneshot;

use super::batch::{self, MAX_BATCH_BYTES};
use super::load::{
    self, Loaded, Mode, create_segment_file, open_durable, sync_dir, topics_dir, trash_dir, write_durable, write_index,
};
use super::state::{INDEX_INTERVAL, Segment, Topic, segment_name, write_lock};
use crate::config::ResolvedLog;
use crate::port::{Record, TopicInfo};
use crate::{Error, Result};

/// Requests to the writer.
pub(crate) enum Command {
    Append {
        topic: String,
        partition: u32,
        records: Vec<Record>,
        reply: oneshot::Sender<Result<u64>>,
    },
    /// Moves a topic built at `staged` into place and opens it.
    Create {
        info: TopicInfo,
        staged: PathBuf,
        reply: oneshot::Sender<Result<TopicInfo>>,
    },
    Delete {
        name: String,
        reply: oneshot::Sender<Result<()>>,
    },
    Retention {
        reply: oneshot::Sender<Result<()>>,
    },
}

/// An append the writer did not take: its reply and why.
type Refused = Box<(oneshot::Sender<Result<u64>>, Error)>;

/// Bytes the active segment is extended by, with zeros, when a write would pass its end.
pub(crate) const PREALLOCATE: u64 = 1 << 20;

/// Most commands taken into one group.
const MAX_GROUP: usize = 4096;
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(30);

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The writer's side of one partition.
struct Active {
    partition: Arc<super::state::Partition>,
    segment: Arc<Segment>,
    file: File,
    /// Bytes written to the segment and durable.
    written: u64,
    /// The segment file's length: `written`, then zeros written ahead of the data.
    allocated: u64,
    /// Encoded batches not yet written.
    pending: Vec<u8>,
    /// Index entries for `pending` (positions in the segment).
    pending_index: Vec<(u64, u64)>,
    /// Position of the last index entry of the segment.
    last_indexed: Option<u64>,
    /// Offset the next batch gets (pending included).
    next_offset: u64,
    /// Acknowledgements waiting for the next commit.
    replies: Vec<(oneshot::Sender<Result<u64>>, u64)>,
    /// Set after a failed write or fsync: the next append first truncates what may have been
    /// half written, then tries again (a disk that was full may have room now).
    failed: bool,
    /// Where other processes learn how far the partition is durable.
    durable: File,
    /// The log's fsync latencies.
    syncs: Arc<Mutex<Histogram>>,
}

impl Active {
    fn new(l: Loaded, syncs: Arc<Mutex<Histogram>>) -> Result<Self> {
        let segment = l.partition.segments().last().cloned().ok_or_else(|| Error::Corrupt {
            path: l.partition.dir.clone(),
            reason: "partition has no segment".into(),
        })?;
        let file = File::options().read(true).write(true).open(&segment.path).map_err(Error::io(&segment.path))?;
        let allocated = file.metadata().map_err(Error::io(&segment.path))?.len().max(l.last_size);
        let last_indexed = segment.index.read().ok().and_then(|i| i.last().map(|e| e.1));
        let durable = open_durable(&l.partition.dir)?;
        write_durable(&durable, (segment.base, l.last_size, l.next_offset)).map_err(Error::io(&l.partition.dir))?;
        Ok(Active {
            partition: l.partition,
            segment,
            file,
            written: l.last_size,
            allocated,
            pending: Vec::new(),
            pending_index: Vec::new(),
            last_indexed,
            next_offset: l.next_offset,
            replies: Vec::new(),
            failed: false,
            durable,
            syncs,
        })
    }

    fn failed_error(&self, reason: String) -> Error {
        Error::Failed { topic: self.partition.topic.clone(), partition: self.partition.number, reason }
    }

    /// After a failed write: cuts what may have been half written; the partition takes writes
    /// again if that works.
    fn recover(&mut self) -> Result<()> {
        match self.cut() {
            Ok(()) => {
                self.failed = false;
                Ok(())
            }
            Err(e) => Err(self.failed_error(e.to_string())),
        }
    }

    /// Cuts the segment file to the data written (no zeros ahead of it).
    fn cut(&mut self) -> std::io::Result<()> {
        self.file.set_len(self.written)?;
        self.allocated = self.written;
        Ok(())
    }

    /// Writes what is pending after the data, first extending the file with zeros when it would
    /// pass its end (at most to `limit`, the segment size, unless the pending bytes need more).
    fn write_pending(&mut self, limit: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let end = self.written + self.pending.len() as u64;
        if end > self.allocated {
            let ahead = (self.allocated + PREALLOCATE).min(limit).max(end);
            let zeros = vec![0u8; (ahead - end) as usize];
            // The zeros go after the data (a disk too full for them still takes the data).
            match self.file.write_all_at(&zeros, end) {
                Ok(()) => self.allocated = ahead,
                Err(e) => {
                    tracing::debug!(topic = %self.partition.topic, partition = self.partition.number, "no room to preallocate: {e}");
                    let _ = self.file.set_len(self.written);
                    self.allocated = self.written;
                }
            }
        }
        self.file.write_all_at(&self.pending, self.written)?;
        self.allocated = self.allocated.max(end);
        Ok(())
    }

    fn set_degraded(&self, problem: Option<String>) {
        *write_lock(&self.partition.degraded) = problem;
    }

    /// Writes and syncs what is pending, then publishes and acknowledges it.
    fn commit(&mut self, limit: u64) {
        if self.pending.is_empty() {
            return;
        }
        let outcome = self.write_pending(limit).and_then(|()| {
            let started = Instant::now();
            let synced = self.file.sync_data();
            if let Ok(mut h) = self.syncs.lock() {
                h.observe(started.elapsed());
            }
            synced
        });
        match outcome {
            Ok(()) => {
                self.written += self.pending.len() as u64;
                write_lock(&self.segment.index).append(&mut self.pending_index);
                self.segment.size.store(self.written, Ordering::Release);
                self.partition.end.send_replace(self.next_offset);
                if let Err(e) = write_durable(&self.durable, (self.segment.base, self.written, self.next_offset)) {
                    tracing::warn!(topic = %self.partition.topic, partition = self.partition.number, "could not record the durable position: {e}");
                }
                if self.partition.degraded.read().is_ok_and(|d| d.is_some()) {
                    tracing::info!(topic = %self.partition.topic, partition = self.partition.number, "writes succeed again");
                    self.set_degraded(None);
                }
                for (reply, base) in self.replies.drain(..) {
                    let _ = reply.send(Ok(base));
                }
            }
            Err(e) => {
                tracing::error!(topic = %self.partition.topic, partition = self.partition.number, "log write failed: {e}");
                self.failed = true;
                self.set_degraded(Some(format!("writes fail: {e}")));
                // Drop what may have been half written now; the next append tries again.
                if self.cut().is_ok() {
                    self.failed = false;
                }
                self.next_offset = self.partition.end();
                self.pending_index.clear();
                let reason = e.to_string();
                for (reply, _) in std::mem::take(&mut self.replies) {
                    let _ = reply.send(Err(self.failed_error(reason.clone())));
                }
            }
        }
        self.pending.clear();
    }

    /// Closes the active segment (index written, cut to its data and synced: a closed segment
    /// has no zeros after its data) and starts a new one at `next_offset`.
    fn roll(&mut self, limit: u64) -> Result<()> {
        self.commit(limit);
        if self.failed {
            return Err(self.failed_error("the last write failed".into()));
        }
        let path = self.segment.path.clone();
        self.cut().and_then(|()| self.file.sync_all()).map_err(Error::io(&path))?;
        let dir = self.partition.dir.clone();
        let index = self.segment.index.read().map(|i| i.clone()).unwrap_or_default();
        write_index(&dir, self.segment.base, &index)?;
        let path = create_segment_file(&dir, self.next_offset)?;
        let segment = Arc::new(Segment::new(self.next_offset, path.clone(), Vec::new(), 0)?);
        self.file = File::options().read(true).write(true).open(&path).map_err(Error::io(&path))?;
        self.allocated = 0;
        write_lock(&self.partition.segments).push(Arc::clone(&segment));
        self.segment = segment;
        self.written = 0;
        self.last_indexed = None;
        write_durable(&self.durable, (self.segment.base, 0, self.next_offset)).map_err(Error::io(&dir))?;
        Ok(())
    }
}

/// The writer thread's state.
pub(crate) struct Writer {
    root: PathBuf,
    config: ResolvedLog,
    topics: Arc<RwLock<HashMap<String, Arc<Topic>>>>,
    active: HashMap<(String, u32), Active>,
    /// Partitions nobody has written to since they were opened: they hold no file descriptor
    /// until their first append.
    idle: HashMap<(String, u32), Loaded>,
    /// Partitions with pending data in the current group.
    touched: Vec<(String, u32)>,
    last_retention: Instant,
    /// fsync latencies, shared with the log ([`super::EmbeddedLog::sync_latency`]).
    syncs: Arc<Mutex<Histogram>>,
}

impl Writer {
    pub(crate) fn new(
        root: PathBuf,
        config: ResolvedLog,
        topics: Arc<RwLock<HashMap<String, Arc<Topic>>>>,
        loaded: Vec<Loaded>,
        syncs: Arc<Mutex<Histogram>>,
    ) -> Result<Self> {
        let mut idle = HashMap::new();
        for l in loaded {
            // A damaged partition takes no writes until it is repaired.
            if l.partition.damage.is_some() {
                continue;
            }
            idle.insert((l.partition.topic.clone(), l.partition.number), l);
        }
        Ok(Writer {
            root,
            config,
            topics,
            active: HashMap::new(),
            idle,
            touched: Vec::new(),
            last_retention: Instant::now(),
            syncs,
        })
    }

    /// Runs until every sender is gone, then commits what is pending and cuts the active
    /// segments to their data.
    pub(crate) fn run(mut self, rx: Receiver<Command>) {
        loop {
            let first = match rx.recv_timeout(RETENTION_EVERY) {
                Ok(cmd) => cmd,
                Err(RecvTimeoutError::Timeout) => {
                    self.retention();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            self.handle(first);
            let mut taken = 1;
            while taken < MAX_GROUP {
                match rx.try_recv() {
                    Ok(cmd) => self.handle(cmd),
                    Err(_) => break,
                }
                taken += 1;
            }
            self.commit();
            if self.last_retention.elapsed() >= RETENTION_EVERY {
                self.retention();
            }
        }
        self.commit();
        for a in self.active.values_mut() {
            if let Err(e) = a.cut() {
                tracing::warn!(topic = %a.partition.topic, partition = a.partition.number, "could not cut the zeros after the active segment's data (recovery will): {e}");
            }
        }
    }

    fn commit(&mut self) {
        let limit = self.config.segment_bytes;
        for key in self.touched.drain(..) {
            if let Some(a) = self.active.get_mut(&key) {
                a.commit(limit);
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Append { topic, partition, records, reply } => {
                if let Err(e) = self.stage(topic, partition, &records, reply) {
                    // `stage` hands the reply back only when it did not keep it.
                    let (reply, e) = *e;
                    let _ = reply.send(Err(e));
                }
            }
            Command::Create { info, staged, reply } => {
                self.commit();
                let created = self.create(info, &staged);
                if created.is_err() {
                    let _ = fs::remove_dir_all(&staged);
                }
                let _ = reply.send(created);
            }
            Command::Delete { name, reply } => {
                self.commit();
                let _ = reply.send(self.delete(&name));
            }
            Command::Retention { reply } => {
                self.commit();
                self.retention();
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// Encodes a batch into its partition's pending buffer; the reply waits for the commit.
    fn stage(
        &mut self,
        topic: String,
        partition: u32,
        records: &[Record],
        reply: oneshot::Sender<Result<u64>>,
    ) -> std::result::Result<(), Refused> {
        let refuse = |reply, e| Err(Box::new((reply, e)));
        if records.is_empty() {
            return refuse(reply, Error::EmptyBatch);
        }
        let len = batch::encoded_len(records);
        if len > MAX_BATCH_BYTES {
            return refuse(reply, Error::BatchTooLarge { bytes: len, max: MAX_BATCH_BYTES });
        }
        let key = (topic, partition);
        if let Some(l) = self.idle.get(&key) {
            // First append since the partition was opened: open its files now.
            match Active::new(l.clone(), Arc::clone(&self.syncs)) {
                Ok(a) => {
                    self.idle.remove(&key);
                    self.active.insert(key.clone(), a);
                }
                Err(e) => return refuse(reply, e),
            }
        }
        let Some(a) = self.active.get_mut(&key) else {
            let (topic, partition) = key;
            let known = self.topics.read().ok().and_then(|t| t.get(&topic).cloned());
            let e = match known {
                Some(t) => match t.partitions.get(partition as usize).and_then(|p| p.damaged()) {
                    Some(damaged) => damaged,
                    None => Error::PartitionNotFound { topic, partition, partitions: t.info.partitions },
                },
                None => Error::TopicNotFound(topic),
            };
            return refuse(reply, e);
        };
        if a.failed
            && let Err(e) = a.recover()
        {
            return refuse(reply, e);
        }
        let in_segment = a.written + a.pending.len() as u64;
        if in_segment > 0
            && in_segment + len as u64 > self.config.segment_bytes
            && let Err(e) = a.roll(self.config.segment_bytes)
        {
            return refuse(reply, e);
        }
        let was_idle = a.pending.is_empty();
        let pos = a.written + a.pending.len() as u64;
        if a.last_indexed.is_none_or(|l| pos - l >= INDEX_INTERVAL) {
            a.pending_index.push((a.next_offset, pos));
            a.last_indexed = Some(pos);
        }
        let base = a.next_offset;
        batch::encode(&mut a.pending, base, now_ms(), records);
        a.next_offset += records.len() as u64;
        a.replies.push((reply, base));
        if was_idle {
            self.touched.push(key);
        }
        Ok(())
    }

    /// Moves a topic staged by [`super::EmbeddedLog::create_topic`] into place, in one rename.
    fn create(&mut self, info: TopicInfo, staged: &std::path::Path) -> Result<TopicInfo> {
        let name = info.name.clone();
        let final_dir = topics_dir(&self.root).join(&name);
        let (exists, count) =
            self.topics.read().map(|t| (t.contains_key(&name), t.len())).unwrap_or((true, usize::MAX));
        if exists || final_dir.exists() {
            return Err(Error::TopicExists(name));
        }
        if count >= self.config.max_topics as usize {
            return Err(Error::TooManyTopics { max: self.config.max_topics });
        }
        fs::rename(staged, &final_dir).map_err(Error::io(&final_dir))?;
        sync_dir(&topics_dir(&self.root))?;
        let (topic, loaded) = load::load_topic(&final_dir, Mode::Recover)?;
        for l in loaded {
            self.idle.insert((name.clone(), l.partition.number), l);
        }
        write_lock(&self.topics).insert(name, Arc::new(topic));
        Ok(info)
    }

    fn delete(&mut self, name: &str) -> Result<()> {
        let topic = write_lock(&self.topics).remove(name).ok_or_else(|| Error::TopicNotFound(name.to_owned()))?;
        self.active.retain(|(t, _), _| t != name);
        self.idle.retain(|(t, _), _| t != name);
        let doomed = trash_dir(&self.root).join(format!("delete-{name}-{}", now_ms()));
        fs::rename(&topic.dir, &doomed).map_err(Error::io(&topic.dir))?;
        sync_dir(&topics_dir(&self.root))?;
        std::thread::spawn(move || {
            if let Err(e) = fs::remove_dir_all(&doomed) {
                tracing::warn!(path = %doomed.display(), "could not remove a deleted topic's files: {e}");
            }
        });
        Ok(())
    }

    /// Removes closed segments beyond the retention limits.
    fn retention(&mut self) {
        self.last_retention = Instant::now();
        if self.config.retention.is_none() && self.config.retention_bytes.is_none() {
            return;
        }
        let cutoff = self.config.retention.and_then(|r| SystemTime::now().checked_sub(r));
        let topics: Vec<Arc<Topic>> = self.topics.read().map(|t| t.values().cloned().collect()).unwrap_or_default();
        for p in topics.iter().flat_map(|t| t.partitions.iter()).filter(|p| p.damage.is_none()) {
            // Records a consumer (the sink, the streaming job) has not read yet stay.
            let hold = if self.config.retention_respects_consumers { load::lowest_hold(&p.dir) } else { None };
            let mut segments = write_lock(&p.segments);
            let mut total: u64 = segments.iter().map(|s| s.size()).sum();
            let mut held = 0;
            let mut kept = 0;
            while segments.len() - kept > 1 {
                let oldest = &segments[kept];
                let too_big = self.config.retention_bytes.is_some_and(|max| total > max);
                let too_old =
                    cutoff.is_some_and(|c| fs::metadata(&oldest.path).and_then(|m| m.modified()).is_ok_and(|m| m < c));
                if !(too_big || too_old) {
                    break;
                }
                let next_base = segments[kept + 1].base;
                if let Some((next, consumer)) = hold.as_ref().filter(|(next, _)| *next < next_base) {
                    // Kept for the consumer: counted, not removed (nor anything after it).
                    if held == 0 {
                        tracing::warn!(
                            topic = %p.topic, partition = p.number, consumer, next,
                            "retention keeps records the {consumer} has not consumed yet (log.retention_respects_consumers)"
                        );
                    }
                    held += oldest.size();
                    total -= oldest.size();
                    kept += 1;
                    continue;
                }
                p.start.store(next_base, Ordering::Release);
                total -= oldest.size();
                let (path, base) = (oldest.path.clone(), oldest.base);
                segments.remove(0);
                let _ = fs::remove_file(&path);
                let _ = fs::remove_file(p.dir.join(super::state::index_name(base)));
                tracing::info!(topic = %p.topic, partition = p.number, segment = %segment_name(base), "retention removed a segment");
            }
            p.held.store(held, Ordering::Relaxed);
        }
    }
}
