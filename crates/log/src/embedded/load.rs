//! Opening what is on disk: topic metadata, segments, indexes, and crash recovery.
//!
//! Only an incomplete last batch of the last segment is a torn tail (a write the crash cut
//! short, never acknowledged: acknowledged batches were synced): it is cut off on open, as is a
//! zero-filled tail. Anything else — a batch failing its checksum with data after it, a closed
//! segment shorter than its successor's name says, a missing segment between two others — is
//! damage: the partition is opened [`Damage`]d, refusing reads and writes past nothing until
//! [`repair`] cuts the damage, records the offsets it lost as a gap, and makes sure no offset
//! is ever handed out twice.
//!
//! ```text
//! <root>/LOCK                         held by the process that writes
//! <root>/topics/<name>/topic.json     {"name","kind","partitions","created_ms"}
//! <root>/topics/<name>/<p>/<base>.log segments, named by their first offset (20 digits)
//! <root>/topics/<name>/<p>/<base>.idx sparse index of a closed segment
//! <root>/topics/<name>/<p>/durable    the writer's durable position: last segment base, its
//!                                     synced size, the end offset (24 bytes, rewritten after
//!                                     every sync; other processes read no further)
//! <root>/topics/<name>/<p>/gaps.json  offset ranges a repair cut, [[from, to], ...]
//! <root>/trash/                       topics being created or deleted (emptied on open)
//! ```

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::batch::{Stop, highest_offset_after};
use super::state::{Damage, Partition, Scan, Segment, Topic, index_name, scan, segment_name};
use crate::port::TopicInfo;
use crate::{Error, Result};

/// How a partition is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The writing process: recovers (truncates a torn tail) and may create files.
    Recover,
    /// Another process' view: never changes a file.
    ReadOnly,
}

pub(crate) fn topics_dir(root: &Path) -> PathBuf {
    root.join("topics")
}

pub(crate) fn trash_dir(root: &Path) -> PathBuf {
    root.join("trash")
}

/// fsyncs a directory so that entries created or renamed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(Error::io(dir))
}

/// Reads `topic.json`.
pub(crate) fn read_meta(dir: &Path) -> Result<TopicInfo> {
    let path = dir.join("topic.json");
    let text = fs::read(&path).map_err(Error::io(&path))?;
    serde_json::from_slice(&text).map_err(|e| Error::Corrupt { path, reason: e.to_string() })
}

/// Writes `topic.json` durably.
pub(crate) fn write_meta(dir: &Path, info: &TopicInfo) -> Result<()> {
    let path = dir.join("topic.json");
    let json =
        serde_json::to_vec_pretty(info).map_err(|e| Error::Corrupt { path: path.clone(), reason: e.to_string() })?;
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&path)?;
        std::io::Write::write_all(&mut f, &json)?;
        f.sync_all()
    };
    write().map_err(Error::io(&path))
}

/// The writer's durable position of a partition: `(last segment base, its synced size, end
/// offset)`.
pub(crate) type Durable = (u64, u64, u64);

const DURABLE: &str = "durable";
const GAPS: &str = "gaps.json";

/// Writes the durable position (no fsync: it tells other processes how far to read, and the
/// writer rewrites it after recovery).
pub(crate) fn write_durable(file: &File, d: Durable) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 24];
    buf[..8].copy_from_slice(&d.0.to_le_bytes());
    buf[8..16].copy_from_slice(&d.1.to_le_bytes());
    buf[16..].copy_from_slice(&d.2.to_le_bytes());
    file.write_all_at(&buf, 0)
}

/// Opens (creating) a partition's durable-position file for the writer.
pub(crate) fn open_durable(dir: &Path) -> Result<File> {
    let path = dir.join(DURABLE);
    File::options().create(true).truncate(false).write(true).open(&path).map_err(Error::io(&path))
}

/// The durable position the writer last wrote, if any.
pub(crate) fn read_durable(dir: &Path) -> Option<Durable> {
    let b = fs::read(dir.join(DURABLE)).ok()?;
    let n = |i: usize| b.get(i..i + 8).and_then(|s| s.try_into().ok()).map(u64::from_le_bytes);
    Some((n(0)?, n(8)?, n(16)?))
}

const HOLDS: &str = "holds";

/// Records that `consumer` will read `dir`'s partition from `next` on (write, rename: a reader
/// sees the old or the new position, never a torn one).
pub(crate) fn write_hold(dir: &Path, consumer: &str, next: u64) -> Result<()> {
    let ok = !consumer.is_empty()
        && consumer.len() <= 64
        && consumer.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(Error::Corrupt { path: dir.to_owned(), reason: format!("invalid consumer name {consumer:?}") });
    }
    let holds = dir.join(HOLDS);
    fs::create_dir_all(&holds).map_err(Error::io(&holds))?;
    let path = holds.join(consumer);
    let tmp = holds.join(format!(".{consumer}.tmp"));
    fs::write(&tmp, next.to_string()).and_then(|()| fs::rename(&tmp, &path)).map_err(Error::io(&path))
}

/// The lowest position any consumer holds in `dir`'s partition, with its consumer.
pub(crate) fn lowest_hold(dir: &Path) -> Option<(u64, String)> {
    let entries = fs::read_dir(dir.join(HOLDS)).ok()?;
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok().filter(|n| !n.starts_with('.'))?;
            let next = fs::read_to_string(e.path()).ok()?.trim().parse::<u64>().ok()?;
            Some((next, name))
        })
        .min()
}

/// The offset ranges repairs cut from a partition.
pub(crate) fn read_gaps(dir: &Path) -> Result<Vec<(u64, u64)>> {
    let path = dir.join(GAPS);
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Corrupt { path, reason: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(&path)(e)),
    }
}

/// Records the offset ranges cut from a partition, durably (write, sync, rename, sync the dir).
fn write_gaps(dir: &Path, gaps: &[(u64, u64)]) -> Result<()> {
    let path = dir.join(GAPS);
    let tmp = dir.join("gaps.json.tmp");
    let json = serde_json::to_vec(gaps).unwrap_or_default();
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &json)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(Error::io(&path))?;
    sync_dir(dir)
}

/// Segment bases in a partition directory, ascending.
pub(crate) fn segment_bases(dir: &Path) -> Result<Vec<u64>> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).map_err(Error::io(dir))? {
        let entry = entry.map_err(Error::io(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".log")
            && stem.len() == 20
            && let Ok(base) = stem.parse::<u64>()
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Loads a closed segment's index from its `.idx` file, if that file is whole and plausible.
fn load_index(dir: &Path, base: u64, size: u64) -> Option<Vec<(u64, u64)>> {
    let bytes = fs::read(dir.join(index_name(base))).ok()?;
    if bytes.is_empty() || bytes.len() % 16 != 0 {
        return None;
    }
    let mut index = Vec::with_capacity(bytes.len() / 16);
    for c in bytes.chunks_exact(16) {
        let mut o = [0u8; 8];
        let mut p = [0u8; 8];
        o.copy_from_slice(&c[..8]);
        p.copy_from_slice(&c[8..]);
        index.push((u64::from_le_bytes(o), u64::from_le_bytes(p)));
    }
    let sorted = index.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
    (sorted && index[0] == (base, 0) && index.last().is_some_and(|l| l.1 < size)).then_some(index)
}

/// Writes a closed segment's index.
pub(crate) fn write_index(dir: &Path, base: u64, index: &[(u64, u64)]) -> Result<()> {
    let path = dir.join(index_name(base));
    let mut bytes = Vec::with_capacity(index.len() * 16);
    for (o, p) in index {
        bytes.extend_from_slice(&o.to_le_bytes());
        bytes.extend_from_slice(&p.to_le_bytes());
    }
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&path)?;
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()
    };
    write().map_err(Error::io(&path))
}

/// Builds a new topic's directory (metadata, one empty segment per partition, all synced) at
/// `staging`, for the writer to move into place with one rename.
pub(crate) fn stage_topic(staging: &Path, info: &TopicInfo) -> Result<()> {
    fs::create_dir_all(staging).map_err(Error::io(staging))?;
    write_meta(staging, info)?;
    for p in 0..info.partitions {
        let dir = staging.join(p.to_string());
        fs::create_dir(&dir).map_err(Error::io(&dir))?;
        create_segment_file(&dir, 0)?;
    }
    sync_dir(staging)
}

/// Creates an empty segment file durably.
pub(crate) fn create_segment_file(dir: &Path, base: u64) -> Result<PathBuf> {
    let path = dir.join(segment_name(base));
    File::options().create_new(true).write(true).open(&path).and_then(|f| f.sync_all()).map_err(Error::io(&path))?;
    sync_dir(dir)?;
    Ok(path)
}

/// A loaded partition and, for the writer, the position and next offset of its last segment.
#[derive(Clone)]
pub(crate) struct Loaded {
    pub partition: Arc<Partition>,
    /// Bytes of valid data in the last segment.
    pub last_size: u64,
    /// Offset the next record gets.
    pub next_offset: u64,
}

/// Whether `bytes` from `from` on hold nothing: a tail the file system extended without data.
fn zero_tail(file: &File, from: u64, len: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 64 << 10];
    let mut at = from;
    while at < len {
        let n = ((len - at) as usize).min(buf.len());
        if file.read_exact_at(&mut buf[..n], at).is_err() || buf[..n].iter().any(|b| *b != 0) {
            return false;
        }
        at += n as u64;
    }
    true
}

/// Cuts the torn tail of the last segment at `path` (bytes `valid_end..len`) when recovering;
/// other modes change nothing on disk.
fn cut_torn_tail(mode: Mode, path: &Path, valid_end: u64, len: u64, stop: &Stop) -> Result<()> {
    if mode != Mode::Recover {
        return Ok(());
    }
    tracing::warn!(
        path = %path.display(),
        discarded_bytes = len - valid_end,
        "recovering the log: cutting off a torn tail ({stop:?})"
    );
    let f = File::options().write(true).open(path).map_err(Error::io(path))?;
    f.set_len(valid_end).and_then(|()| f.sync_all()).map_err(Error::io(path))
}

/// What checking one segment found.
struct Checked {
    /// Its sparse index.
    index: Vec<(u64, u64)>,
    /// Bytes of it that hold whole, valid batches.
    size: u64,
    /// The offset after its last valid record.
    next_offset: u64,
    /// Damage beyond a torn tail, if any.
    damage: Option<Damage>,
}

/// Checks the segment at `path` (first offset `base`, `len` bytes to consider): every batch
/// from its index's last entry (a closed segment) or its start. The end of the `last` segment
/// may be torn (an incomplete batch, or zeros): that tail is cut off when recovering. Anything
/// else that fails the check is damage.
fn check_segment(dir: &Path, base: u64, file: &File, path: &Path, len: u64, last: bool, mode: Mode) -> Result<Checked> {
    // A closed segment's index lets the check start at its last entry.
    let index = if last { None } else { load_index(dir, base, len) };
    let (mut index, from, from_offset) = match index {
        Some(index) => {
            let (o, p) = index.last().copied().unwrap_or((base, 0));
            (index, p, o)
        }
        None => (Vec::new(), 0, base),
    };
    let last_indexed = index.last().map(|e| e.1);
    let Scan { valid_end, next_offset, index: found, stop } = scan(file, path, from, len, from_offset, last_indexed)?;
    index.extend(found);
    let mut damage = None;
    match stop {
        None => {}
        // Only the end of the last segment can be torn: an incomplete batch, or zeros.
        Some(stop) if last && (stop == Stop::Incomplete || zero_tail(file, valid_end, len)) => {
            cut_torn_tail(mode, path, valid_end, len, &stop)?;
        }
        Some(stop) => {
            let reason = match stop {
                Stop::Invalid(r) => r,
                Stop::Incomplete => "the segment ends inside a batch".into(),
            };
            damage = Some(Damage { path: path.to_owned(), position: valid_end, offset: next_offset, reason });
        }
    }
    Ok(Checked { index, size: valid_end, next_offset, damage })
}

/// Opens one partition directory.
pub(crate) fn load_partition(topic: &str, number: u32, dir: PathBuf, mode: Mode) -> Result<Loaded> {
    let mut bases = segment_bases(&dir)?;
    if bases.is_empty() {
        if mode == Mode::Recover {
            create_segment_file(&dir, 0)?;
        }
        bases.push(0);
    }
    let gaps = read_gaps(&dir)?;
    // Other processes read no further than the writer's synced size.
    let durable = if mode == Mode::ReadOnly { read_durable(&dir) } else { None };
    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len());
    let mut next_offset = bases[0];
    let mut last_size = 0;
    let mut damage: Option<Damage> = None;
    for (i, &base) in bases.iter().enumerate() {
        let path = dir.join(segment_name(base));
        let last = i + 1 == bases.len();
        let file = match File::open(&path) {
            Ok(f) => f,
            // A read-only view of a partition whose first segment the writer has not created yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && mode == Mode::ReadOnly => break,
            Err(e) => return Err(Error::io(&path)(e)),
        };
        if i > 0 && base != next_offset && !gaps.contains(&(next_offset, base)) {
            let previous = dir.join(segment_name(bases[i - 1]));
            let position = segments.last().map_or(0, |s| s.size());
            let reason = format!("records {next_offset}..{base} are missing (no segment holds them)");
            damage = Some(Damage { path: previous, position, offset: next_offset, reason });
            break;
        }
        let len = file.metadata().map_err(Error::io(&path))?.len();
        let len = match durable {
            Some((b, size, _)) if b == base => len.min(size),
            Some((b, _, _)) if b < base => 0,
            _ => len,
        };
        let checked = check_segment(&dir, base, &file, &path, len, last, mode)?;
        let (index, size) = (checked.index, checked.size);
        next_offset = checked.next_offset;
        damage = checked.damage;
        // A closed segment must end where its successor begins (or at a recorded gap).
        if damage.is_none() && !last {
            let successor = bases[i + 1];
            if next_offset != successor && !gaps.contains(&(next_offset, successor)) {
                let reason = format!("the segment ends at offset {next_offset}, its successor starts at {successor}");
                damage = Some(Damage { path: path.clone(), position: size, offset: next_offset, reason });
            }
        }
        if last {
            last_size = size;
        }
        segments.push(Arc::new(Segment::new(base, path, index, size)?));
        if damage.is_some() {
            break;
        }
    }
    // The writer says so once, loudly; readers get the error when they read.
    if let Some(d) = damage.as_ref().filter(|_| mode == Mode::Recover) {
        tracing::error!(
            topic, partition = number, path = %d.path.display(), position = d.position, offset = d.offset,
            "the partition is damaged ({}); run `pinpipe log repair {topic} {number}`", d.reason
        );
    }
    let start = segments.first().map_or(bases[0], |s| s.base);
    let (end, _) = watch::channel(next_offset);
    let partition = Partition {
        topic: topic.to_owned(),
        number,
        dir,
        start: AtomicU64::new(start),
        segments: RwLock::new(segments),
        end,
        damage,
        degraded: RwLock::new(None),
        held: AtomicU64::new(0),
    };
    Ok(Loaded { partition: Arc::new(partition), last_size, next_offset })
}

/// Opens one topic directory.
pub(crate) fn load_topic(dir: &Path, mode: Mode) -> Result<(Topic, Vec<Loaded>)> {
    let info = read_meta(dir)?;
    let mut loaded = Vec::with_capacity(info.partitions as usize);
    for p in 0..info.partitions {
        loaded.push(load_partition(&info.name, p, dir.join(p.to_string()), mode)?);
    }
    let partitions = loaded.iter().map(|l| Arc::clone(&l.partition)).collect();
    Ok((Topic { info, dir: dir.to_owned(), partitions }, loaded))
}

/// Names of the topic directories under the root.
pub(crate) fn topic_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = topics_dir(root);
    let mut out = Vec::new();
    match fs::read_dir(&dir) {
        Ok(entries) => {
            for e in entries {
                let e = e.map_err(Error::io(&dir))?;
                if e.path().join("topic.json").is_file() {
                    out.push(e.path());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&dir)(e)),
    }
    out.sort();
    Ok(out)
}

/// What a repair cut from a partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Repaired {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: u32,
    /// The damaged file.
    pub path: PathBuf,
    /// Bytes cut from it.
    pub bytes_cut: u64,
    /// Offsets lost, `[from, to)`: never handed out again.
    pub lost: (u64, u64),
    /// What was wrong.
    pub reason: String,
}

/// Cuts every damage of one partition (the writer's lock must be held): truncates the damaged
/// file at the damage, records the offsets lost as a gap, and, when the damage was in the last
/// segment, starts a new segment after every offset that may have been handed out (the highest
/// of the damaged bytes' intact batches and the writer's last durable end), so that no offset is
/// ever handed out twice.
pub(crate) fn repair_partition(topic: &str, number: u32, dir: &Path) -> Result<Vec<Repaired>> {
    let mut done = Vec::new();
    for _ in 0..1000 {
        let loaded = load_partition(topic, number, dir.to_owned(), Mode::Recover)?;
        let Some(d) = loaded.partition.damage.clone() else { return Ok(done) };
        drop(loaded);
        let bases = segment_bases(dir)?;
        let base_of = |p: &Path| bases.iter().copied().find(|b| dir.join(segment_name(*b)) == p);
        let base =
            base_of(&d.path).ok_or_else(|| Error::Corrupt { path: d.path.clone(), reason: "not a segment".into() })?;
        let successor = bases.iter().copied().find(|b| *b > base);
        let len = fs::metadata(&d.path).map_err(Error::io(&d.path))?.len();
        let (bytes_cut, lost_to) = match successor {
            // A closed segment: its successor's name says where the lost offsets end.
            Some(next) => (len - d.position, next),
            None => {
                let file = File::open(&d.path).map_err(Error::io(&d.path))?;
                let beyond = highest_offset_after(&file, &d.path, d.position, len)?;
                let durable = read_durable(dir).map(|(_, _, end)| end);
                (len - d.position, [Some(d.offset), beyond, durable].into_iter().flatten().max().unwrap_or(d.offset))
            }
        };
        if d.position < len {
            let f = File::options().write(true).open(&d.path).map_err(Error::io(&d.path))?;
            f.set_len(d.position).and_then(|()| f.sync_all()).map_err(Error::io(&d.path))?;
            let _ = fs::remove_file(dir.join(index_name(base)));
        }
        if lost_to > d.offset {
            let mut gaps = read_gaps(dir)?;
            gaps.push((d.offset, lost_to));
            write_gaps(dir, &gaps)?;
            if successor.is_none() {
                create_segment_file(dir, lost_to)?;
            }
        }
        tracing::warn!(topic, partition = number, path = %d.path.display(), bytes_cut, from = d.offset, to = lost_to, "repaired: cut the damage");
        done.push(Repaired {
            topic: topic.to_owned(),
            partition: number,
            path: d.path,
            bytes_cut,
            lost: (d.offset, lost_to),
            reason: d.reason,
        });
    }
    Err(Error::Corrupt { path: dir.to_owned(), reason: "the partition still has damage after 1000 repairs".into() })
}
