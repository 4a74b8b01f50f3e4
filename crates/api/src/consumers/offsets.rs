//! Committed offsets of consumer groups, durable: one file per group,
//! `<state_dir>/consumers/<group>.json`, replaced whole (written beside it, synced, renamed, the
//! directory synced), so a crash leaves the old or the new offsets, never a torn file. Group
//! names are validated like topic names before they become file names.
//!
//! A committed offset is the offset of the next record to read (Kafka's convention).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// A partition of a topic.
pub type TopicPartition = (String, u32);

/// One group's committed offsets.
pub type Committed = BTreeMap<TopicPartition, u64>;

/// The store.
#[derive(Debug)]
pub struct OffsetStore {
    dir: Option<PathBuf>,
    groups: Mutex<HashMap<String, Arc<Committed>>>,
    /// Orders writes of the files.
    writing: tokio::sync::Mutex<()>,
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    offsets: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    topic: String,
    partition: u32,
    offset: u64,
}

/// Why offsets could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("consumer offsets at {}: {reason}", path.display())]
pub struct StoreError {
    path: PathBuf,
    reason: String,
}

impl OffsetStore {
    /// A store under `dir` (`None`: in memory only).
    pub fn new(dir: Option<&Path>) -> Self {
        OffsetStore { dir: dir.map(|d| d.join("consumers")), groups: Mutex::default(), writing: Default::default() }
    }

    fn path(&self, group: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{group}.json")))
    }

    /// The group's committed offsets.
    pub fn committed(&self, group: &str) -> Result<Arc<Committed>, StoreError> {
        if let Some(c) = self.groups.lock().ok().and_then(|g| g.get(group).cloned()) {
            return Ok(c);
        }
        let loaded = Arc::new(match self.path(group) {
            Some(path) => read(&path)?,
            None => Committed::new(),
        });
        if let Ok(mut g) = self.groups.lock() {
            return Ok(Arc::clone(g.entry(group.to_owned()).or_insert(loaded)));
        }
        Ok(loaded)
    }

    /// Commits `offsets` for `group` (other partitions keep theirs); returns once durable.
    pub async fn commit(&self, group: &str, offsets: &[(TopicPartition, u64)]) -> Result<(), StoreError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let _ordered = self.writing.lock().await;
        let mut next = (*self.committed(group)?).clone();
        for (tp, offset) in offsets {
            next.insert(tp.clone(), *offset);
        }
        if let Some(path) = self.path(group) {
            let snapshot = next.clone();
            let target = path.clone();
            tokio::task::spawn_blocking(move || write(&target, &snapshot))
                .await
                .map_err(|e| StoreError { path, reason: e.to_string() })??;
        }
        if let Ok(mut g) = self.groups.lock() {
            g.insert(group.to_owned(), Arc::new(next));
        }
        Ok(())
    }
}

fn read(path: &Path) -> Result<Committed, StoreError> {
    let err = |reason: String| StoreError { path: path.to_owned(), reason };
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Committed::new()),
        Err(e) => return Err(err(e.to_string())),
    };
    let file: File = serde_json::from_slice(&text).map_err(|e| err(format!("not a consumer offsets file: {e}")))?;
    if file.version != 1 {
        return Err(err(format!("version {} is not one this pinpipe reads", file.version)));
    }
    Ok(file.offsets.into_iter().map(|e| ((e.topic, e.partition), e.offset)).collect())
}

fn write(path: &Path, offsets: &Committed) -> Result<(), StoreError> {
    let err = |e: std::io::Error| StoreError { path: path.to_owned(), reason: e.to_string() };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let file = File {
        version: 1,
        offsets: offsets.iter().map(|((t, p), o)| Entry { topic: t.clone(), partition: *p, offset: *o }).collect(),
    };
    let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&serde_json::to_vec(&file).unwrap_or_default()).and_then(|()| f.sync_all()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn commits_survive_a_new_store_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = OffsetStore::new(Some(dir.path()));
        assert!(store.committed("g").unwrap().is_empty());
        store.commit("g", &[(("t".into(), 0), 5), (("t".into(), 1), 7)]).await.unwrap();
        store.commit("g", &[(("t".into(), 0), 6)]).await.unwrap();
        store.commit("other", &[(("u".into(), 0), 1)]).await.unwrap();
        let again = OffsetStore::new(Some(dir.path()));
        let g = again.committed("g").unwrap();
        assert_eq!(g.get(&("t".to_owned(), 0)), Some(&6));
        assert_eq!(g.get(&("t".to_owned(), 1)), Some(&7));
        assert_eq!(again.committed("other").unwrap().len(), 1);
        std::fs::write(dir.path().join("consumers/bad.json"), "{oops").unwrap();
        assert!(again.committed("bad").unwrap_err().to_string().contains("not a consumer offsets file"));
        let names: Vec<_> =
            std::fs::read_dir(dir.path().join("consumers")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 3, "no temporary files left: {names:?}");
    }
}
