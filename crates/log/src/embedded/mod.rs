//! The embedded log: pinpipe's default, durable log on local disk (no server).
//!
//! * Each partition is a sequence of segment files of checksummed batches ([`batch`]).
//! * One writer thread does group commit ([`writer`]): an append is acknowledged only after an
//!   `fdatasync` that covers it, and many concurrent producers share each sync.
//! * Readers read committed bytes only, concurrently with the writer ([`state`]), and wait on the
//!   partition's end offset instead of polling.
//! * Opening recovers from a crash ([`load`]): the torn tail of a partition's last segment is cut
//!   off; every acknowledged batch is intact because it was synced before it was acknowledged.
//! * Another process may open the same directory read-only ([`EmbeddedLog::open_read_only`],
//!   e.g. `pinpipe log read` beside a running `pinpipe serve`); it sees new data by re-scanning
//!   and waits for it by polling every 50 ms, since it shares no memory with the writer. It reads
//!   no further than the writer's durable position (`durable`, rewritten after every sync), so it
//!   never consumes a record that a machine crash could still take back.
//! * Damage beyond a torn tail stops its partition (reads and appends fail naming the file and
//!   offset) until [`EmbeddedLog::repair`] cuts it; offsets are never handed out twice.

mod batch;
mod load;
mod state;
mod writer;

pub use load::Repaired;

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;

use self::load::{Mode, topic_dirs, topics_dir, trash_dir};
use self::state::{Partition, Segment, Topic, scan, segment_name, write_lock};
use self::writer::{Command, Writer};
use crate::config::ResolvedLog;
use crate::port::{Log, OffsetLog, PartitionOffsets, ReadLimits, Record, StoredRecord, TopicInfo, TopicKind, dense};
use crate::position::{Chunk, Cursor, Position};
use crate::{Error, Result};

/// How often a read-only view looks for new data while waiting.
const READ_ONLY_POLL: Duration = Duration::from_millis(50);

/// The embedded log.
pub struct EmbeddedLog {
    root: PathBuf,
    topics: Arc<RwLock<HashMap<String, Arc<Topic>>>>,
    /// The writer's queue; `None` for a read-only view.
    writer: Option<mpsc::Sender<Command>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    _lock: Option<File>,
    /// `log.max_partitions`.
    max_partitions: u32,
    /// Topics that could not be opened, with why (the others work).
    broken: Vec<String>,
    /// The writer's fsync latencies.
    syncs: Arc<Mutex<pinpipe_model::histogram::Histogram>>,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log for writing: takes its lock, recovers every partition
    /// and starts the writer thread.
    pub fn open(config: &ResolvedLog) -> Result<Self> {
        let root = config.dir.clone();
        for dir in [topics_dir(&root), trash_dir(&root)] {
            fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        }
        let lock = take_lock(&root)?;
        // Leftovers of interrupted creations and deletions.
        let trash = trash_dir(&root);
        for entry in fs::read_dir(&trash).map_err(Error::io(&trash))?.flatten() {
            let _ = fs::remove_dir_all(entry.path());
        }
        let mut topics = HashMap::new();
        let mut loaded = Vec::new();
        let mut broken = Vec::new();
        for dir in topic_dirs(&root)? {
            // One topic that cannot be opened does not keep the others from working.
            match load::load_topic(&dir, Mode::Recover) {
                Ok((topic, partitions)) => {
                    loaded.extend(partitions);
                    topics.insert(topic.info.name.clone(), Arc::new(topic));
                }
                Err(e) => {
                    tracing::error!(dir = %dir.display(), "cannot open this topic; it is left out: {e}");
                    broken.push(format!("topic at {} cannot be opened: {e}", dir.display()));
                }
            }
        }
        let topics = Arc::new(RwLock::new(topics));
        let syncs = Arc::new(Mutex::new(pinpipe_model::histogram::Histogram::default()));
        let writer = Writer::new(root.clone(), config.clone(), Arc::clone(&topics), loaded, Arc::clone(&syncs))?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("pinpipe-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(Error::io(&root))?;
        Ok(EmbeddedLog {
            root,
            topics,
            writer: Some(tx),
            thread: Mutex::new(Some(thread)),
            _lock: Some(lock),
            max_partitions: config.max_partitions,
            broken,
            syncs,
        })
    }

    /// Opens another process' log for reading only; nothing on disk is changed.
    pub fn open_read_only(dir: &Path) -> Result<Self> {
        if !topics_dir(dir).is_dir() {
            return Err(Error::Io {
                path: dir.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no embedded log here (no topics/ directory)",
                ),
            });
        }
        let log = EmbeddedLog {
            root: dir.to_owned(),
            topics: Arc::new(RwLock::new(HashMap::new())),
            writer: None,
            thread: Mutex::new(None),
            _lock: None,
            max_partitions: crate::port::MAX_PARTITIONS,
            broken: Vec::new(),
            syncs: Arc::default(),
        };
        log.rescan_topics()?;
        Ok(log)
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Cuts the damage of the partitions of `topic` (all topics when `None`; one partition with
    /// `partition`), which must not be open for writing elsewhere (the log's lock is taken), and
    /// reports what was cut. Undamaged partitions are left as they are.
    pub fn repair(dir: &Path, topic: Option<&str>, partition: Option<u32>) -> Result<Vec<Repaired>> {
        let _lock = take_lock(dir)?;
        let mut found = false;
        let mut out = Vec::new();
        for tdir in topic_dirs(dir)? {
            let info = load::read_meta(&tdir)?;
            if topic.is_some_and(|t| t != info.name) {
                continue;
            }
            found = true;
            for p in (0..info.partitions).filter(|p| partition.is_none_or(|want| want == *p)) {
                out.extend(load::repair_partition(&info.name, p, &tdir.join(p.to_string()))?);
            }
        }
        if let Some(t) = topic.filter(|_| !found) {
            return Err(Error::TopicNotFound(t.to_owned()));
        }
        Ok(out)
    }

    /// Partitions that need attention: damaged ones, and ones whose writes fail (a full disk).
    fn partition_problems(&self) -> Vec<String> {
        let topics = self.topics.read().map(|t| t.values().cloned().collect::<Vec<_>>()).unwrap_or_default();
        let mut out = self.broken.clone();
        for t in topics {
            for p in &t.partitions {
                if let Some(e) = p.damaged() {
                    out.push(e.to_string());
                } else if let Some(d) = p.degraded.read().ok().and_then(|d| d.clone()) {
                    out.push(format!("partition {}/{}: {d}", p.topic, p.number));
                }
            }
        }
        out.sort();
        out
    }

    /// Applies the retention limits now (the writer also does so every 30 seconds).
    pub async fn enforce_retention(&self) -> Result<()> {
        self.request(|reply| Command::Retention { reply }).await
    }

    fn sender(&self) -> Result<&mpsc::Sender<Command>> {
        self.writer.as_ref().ok_or_else(|| Error::ReadOnly(self.root.clone()))
    }

    fn topic_state(&self, name: &str) -> Result<Arc<Topic>> {
        if let Some(t) = self.topics.read().ok().and_then(|t| t.get(name).cloned()) {
            return Ok(t);
        }
        if self.writer.is_none() {
            self.rescan_topics()?;
            if let Some(t) = self.topics.read().ok().and_then(|t| t.get(name).cloned()) {
                return Ok(t);
            }
        }
        Err(Error::TopicNotFound(name.to_owned()))
    }

    fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>> {
        let t = self.topic_state(topic)?;
        let p = t.partitions.get(partition as usize).cloned().ok_or_else(|| Error::PartitionNotFound {
            topic: topic.to_owned(),
            partition,
            partitions: t.info.partitions,
        })?;
        if self.writer.is_none() {
            refresh(&p)?;
        }
        Ok(p)
    }

    /// Read-only views: pick up topics created or deleted by the writing process.
    fn rescan_topics(&self) -> Result<()> {
        let mut fresh = HashMap::new();
        let known = self.topics.read().map(|t| t.clone()).unwrap_or_default();
        for dir in topic_dirs(&self.root)? {
            let Ok(info) = load::read_meta(&dir) else { continue };
            match known.get(&info.name) {
                Some(t) if t.info == info => {
                    fresh.insert(info.name.clone(), Arc::clone(t));
                }
                _ => match load::load_topic(&dir, Mode::ReadOnly) {
                    Ok((topic, _)) => {
                        fresh.insert(info.name.clone(), Arc::new(topic));
                    }
                    // One topic that cannot be read does not hide the others.
                    Err(e) => tracing::warn!(dir = %dir.display(), "cannot read this topic: {e}"),
                },
            }
        }
        *write_lock(&self.topics) = fresh;
        Ok(())
    }

    async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.sender()?.send(make(tx)).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }
}

/// Takes the log's write lock (`LOCK`, an OS file lock held while the returned file is open);
/// `Error::Locked` when another process holds it.
fn take_lock(root: &Path) -> Result<File> {
    let lock_path = root.join("LOCK");
    let lock =
        File::options().create(true).truncate(false).write(true).open(&lock_path).map_err(Error::io(&lock_path))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(root.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&lock_path)(e)),
    }
}

/// Read-only views: takes in batches the writer has made durable since the last look, and new
/// segments.
fn refresh(p: &Partition) -> Result<()> {
    if p.damage.is_some() {
        return Ok(());
    }
    loop {
        let segments = p.segments();
        let Some(last) = segments.last() else { return Ok(()) };
        let file = last.open()?;
        let len = file.metadata().map_err(Error::io(&last.path))?.len();
        // No further than the writer's durable position.
        let len = match load::read_durable(&p.dir) {
            Some((base, size, _)) if base == last.base => len.min(size),
            Some((base, _, _)) if base < last.base => 0,
            _ => len,
        };
        let size = last.size();
        if len > size {
            let last_indexed = last.index.read().ok().and_then(|i| i.last().map(|e| e.1));
            let found = scan(&file, &last.path, size, len, p.end(), last_indexed)?;
            write_lock(&last.index).extend(found.index);
            last.size.store(found.valid_end, Ordering::Release);
            p.end.send_replace(found.next_offset);
        }
        // A segment named after our end offset means the writer closed the last one: once all of
        // the closed one is taken in, move on to the new one.
        let next = p.end();
        let next_path = p.dir.join(segment_name(next));
        if next > last.base && next_path.is_file() {
            let len_now = file.metadata().map_err(Error::io(&last.path))?.len();
            if len_now > last.size() {
                continue;
            }
            let segment = Arc::new(Segment::new(next, next_path, Vec::new(), 0)?);
            write_lock(&p.segments).push(segment);
            continue;
        }
        return Ok(());
    }
}

#[async_trait]
impl Log for EmbeddedLog {
    fn describe(&self) -> String {
        let mode = if self.writer.is_some() { "" } else { " (read-only)" };
        format!("embedded log at {}{mode}", self.root.display())
    }

    async fn create_topic(&self, name: &str, kind: TopicKind, partitions: u32) -> Result<TopicInfo> {
        self.sender()?;
        match kind {
            TopicKind::Topic => pinpipe_model::names::validate_topic(name)?,
            TopicKind::Stream => pinpipe_model::names::validate_stream(name)?,
        }
        if partitions == 0 || partitions > crate::port::MAX_PARTITIONS {
            return Err(Error::InvalidPartitionCount(partitions));
        }
        if partitions > self.max_partitions {
            return Err(Error::TooManyPartitions { requested: partitions, max: self.max_partitions });
        }
        if self.topics.read().is_ok_and(|t| t.contains_key(name)) {
            return Err(Error::TopicExists(name.to_owned()));
        }
        // The files are made (and synced) here, beside the writer, which then only renames them
        // into place: creating a topic does not hold up appends.
        let info = TopicInfo { name: name.to_owned(), kind, partitions, created_ms: writer::now_ms() };
        static STAGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STAGED.fetch_add(1, Ordering::Relaxed);
        let staged = trash_dir(&self.root).join(format!("create-{name}-{}-{n}", std::process::id()));
        let staging = (staged.clone(), info.clone());
        let built = tokio::task::spawn_blocking(move || load::stage_topic(&staging.0, &staging.1)).await;
        if let Err(e) = built.map_err(|_| Error::Closed).and_then(|r| r) {
            let _ = fs::remove_dir_all(&staged);
            return Err(e);
        }
        self.request(|reply| Command::Create { info, staged, reply }).await
    }

    fn problems(&self) -> Vec<String> {
        self.partition_problems()
    }

    async fn delete_topic(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.request(|reply| Command::Delete { name, reply }).await
    }

    async fn topics(&self) -> Result<Vec<TopicInfo>> {
        if self.writer.is_none() {
            self.rescan_topics()?;
        }
        let mut all: Vec<TopicInfo> =
            self.topics.read().map(|t| t.values().map(|t| t.info.clone()).collect()).unwrap_or_default();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    async fn topic(&self, name: &str) -> Result<TopicInfo> {
        Ok(self.topic_state(name)?.info.clone())
    }

    async fn append_positioned(&self, topic: &str, partition: u32, records: Vec<Record>) -> Result<Vec<Position>> {
        dense::append_positioned(self, topic, partition, records).await
    }

    async fn read_from(&self, topic: &str, partition: u32, cursor: &Cursor, limits: ReadLimits) -> Result<Chunk> {
        dense::read_from(self, topic, partition, cursor, limits).await
    }

    async fn wait_from(&self, topic: &str, partition: u32, cursor: &Cursor, timeout: Duration) -> Result<bool> {
        dense::wait_from(self, topic, partition, cursor, timeout).await
    }

    fn as_offsets(&self) -> Option<&dyn OffsetLog> {
        Some(self)
    }

    fn into_offsets(self: Arc<Self>) -> Option<Arc<dyn OffsetLog>> {
        Some(self)
    }
}

#[async_trait]
impl OffsetLog for EmbeddedLog {
    async fn offsets(&self, name: &str) -> Result<Vec<PartitionOffsets>> {
        let t = self.topic_state(name)?;
        let mut out = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            if self.writer.is_none() {
                refresh(p)?;
            }
            out.push(PartitionOffsets { partition: p.number, start: p.start(), end: p.end() });
        }
        Ok(out)
    }

    async fn append(&self, topic: &str, partition: u32, records: Vec<Record>) -> Result<u64> {
        let topic = topic.to_owned();
        self.request(|reply| Command::Append { topic, partition, records, reply }).await
    }

    async fn read(&self, topic: &str, partition: u32, offset: u64, limits: ReadLimits) -> Result<Vec<StoredRecord>> {
        let p = self.partition(topic, partition)?;
        tokio::task::spawn_blocking(move || p.read(offset, limits)).await.map_err(|_| Error::Closed)?
    }

    async fn wait_for(&self, topic: &str, partition: u32, offset: u64, timeout: Duration) -> Result<bool> {
        let p = self.partition(topic, partition)?;
        if self.writer.is_some() {
            let mut rx = p.end.subscribe();
            drop(p);
            return match tokio::time::timeout(timeout, rx.wait_for(|&end| end > offset)).await {
                Ok(Ok(_)) => Ok(true),
                Ok(Err(_)) => Err(Error::TopicNotFound(topic.to_owned())),
                Err(_) => Ok(false),
            };
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if p.end() > offset {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(READ_ONLY_POLL.min(deadline - tokio::time::Instant::now())).await;
            refresh(&p)?;
        }
    }

    async fn hold(&self, topic: &str, partition: u32, consumer: &str, next: u64) -> Result<()> {
        let p = self.partition(topic, partition)?;
        let dir = p.dir.clone();
        let consumer = consumer.to_owned();
        tokio::task::spawn_blocking(move || load::write_hold(&dir, &consumer, next)).await.map_err(|_| Error::Closed)?
    }

    fn sync_latency(&self) -> Option<pinpipe_model::histogram::Histogram> {
        self.syncs.lock().ok().map(|h| h.clone())
    }

    fn retention_held(&self) -> Vec<(String, u32, u64)> {
        let topics = self.topics.read().map(|t| t.values().cloned().collect::<Vec<_>>()).unwrap_or_default();
        topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.topic.clone(), p.number, p.held.load(Ordering::Relaxed)))
            .filter(|(_, _, held)| *held > 0)
            .collect()
    }
}

impl Drop for EmbeddedLog {
    fn drop(&mut self) {
        // Closing the queue makes the writer commit what it holds and stop; wait for it so that
        // every acknowledged append is on disk before the lock is released.
        self.writer.take();
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests;
