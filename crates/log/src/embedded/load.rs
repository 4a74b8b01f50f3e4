//! Opening what is on disk: topic metadata, segments, indexes, and crash recovery (a torn tail
//! of the last segment is cut off; anything else that fails its checks is an error).
//!
//! ```text
//! <root>/LOCK                         held by the process that writes
//! <root>/topics/<name>/topic.json     {"name","kind","partitions","created_ms"}
//! <root>/topics/<name>/<p>/<base>.log segments, named by their first offset (20 digits)
//! <root>/topics/<name>/<p>/<base>.idx sparse index of a closed segment
//! <root>/trash/                       topics being created or deleted (emptied on open)
//! ```

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::state::{Partition, Scan, Segment, Topic, index_name, scan, segment_name};
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

/// Creates an empty segment file durably.
pub(crate) fn create_segment_file(dir: &Path, base: u64) -> Result<PathBuf> {
    let path = dir.join(segment_name(base));
    File::options().create_new(true).write(true).open(&path).and_then(|f| f.sync_all()).map_err(Error::io(&path))?;
    sync_dir(dir)?;
    Ok(path)
}

/// A loaded partition and, for the writer, the position and next offset of its last segment.
pub(crate) struct Loaded {
    pub partition: Arc<Partition>,
    /// Bytes of valid data in the last segment.
    pub last_size: u64,
    /// Offset the next record gets.
    pub next_offset: u64,
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
    let mut segments = Vec::with_capacity(bases.len());
    let mut next_offset = bases[0];
    let mut last_size = 0;
    for (i, &base) in bases.iter().enumerate() {
        let path = dir.join(segment_name(base));
        let last = i + 1 == bases.len();
        let file = match File::open(&path) {
            Ok(f) => f,
            // A read-only view of a partition whose first segment the writer has not created yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && mode == Mode::ReadOnly => {
                let (end, _) = watch::channel(0);
                let partition = Partition {
                    topic: topic.to_owned(),
                    number,
                    dir,
                    segments: RwLock::new(Vec::new()),
                    start: AtomicU64::new(0),
                    end,
                };
                return Ok(Loaded { partition: Arc::new(partition), last_size: 0, next_offset: 0 });
            }
            Err(e) => return Err(Error::io(&path)(e)),
        };
        let len = file.metadata().map_err(Error::io(&path))?.len();
        if base != next_offset && i > 0 {
            return Err(Error::Corrupt {
                path,
                reason: format!("segment starts at offset {base} but the previous one ends at {next_offset}"),
            });
        }
        let (index, size) = match (last, load_index(&dir, base, len)) {
            (false, Some(index)) => {
                // Closed segment with an index: its end offset comes from the next file's name.
                next_offset = bases[i + 1];
                (index, len)
            }
            _ => {
                let Scan { valid_end, next_offset: next, index, stop } = scan(&file, &path, 0, len, base, None)?;
                if let Some(stop) = stop {
                    match (last, mode) {
                        (true, Mode::Recover) => {
                            tracing::warn!(
                                path = %path.display(),
                                discarded_bytes = len - valid_end,
                                "recovering the log: cutting off an incomplete or invalid tail ({stop:?})"
                            );
                            let f = File::options().write(true).open(&path).map_err(Error::io(&path))?;
                            f.set_len(valid_end).and_then(|()| f.sync_all()).map_err(Error::io(&path))?;
                        }
                        (true, Mode::ReadOnly) => {}
                        (false, _) => {
                            return Err(Error::Corrupt {
                                path,
                                reason: format!("closed segment is damaged: {stop:?}"),
                            });
                        }
                    }
                }
                next_offset = next;
                (index, valid_end)
            }
        };
        if last {
            last_size = size;
        }
        segments.push(Arc::new(Segment::new(base, path, index, size)?));
    }
    let (end, _) = watch::channel(next_offset);
    let partition = Partition {
        topic: topic.to_owned(),
        number,
        dir,
        start: AtomicU64::new(bases[0]),
        segments: RwLock::new(segments),
        end,
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
