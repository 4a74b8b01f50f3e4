//! The run history: one JSON line per attempt (and per skipped tick) in
//! `<data_dir>/schedule/runs.jsonl`, appended and synced before the scheduler goes on. A torn
//! last line (a crash while appending) is ignored when reading.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// A tick of the schedule.
    Scheduled,
    /// `pinpipe schedule --trigger-now`.
    Manual,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The batch job succeeded.
    Success,
    /// It failed; another attempt follows if retries are left.
    Failed,
    /// The tick was not run (the scheduler was not running, or a run was in progress).
    Skipped,
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run (`scheduled__<tick>` or `manual__<time>`, as Airflow names them).
    pub run_id: String,
    /// Scheduled or manual.
    pub trigger: Trigger,
    /// The logical date the batch job was given (`YYYY-MM-DD`).
    pub logical_date: String,
    /// Attempt number, from 1 (0 for a skipped tick).
    pub attempt: u32,
    /// Start, RFC 3339 UTC.
    pub start: String,
    /// End, RFC 3339 UTC.
    pub end: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The error of a failed attempt, or why a tick was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The run folder of a successful attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The history file.
#[derive(Debug, Clone)]
pub struct History {
    path: PathBuf,
}

impl History {
    /// The history of the scheduler whose state lives in `dir`.
    pub fn new(dir: &Path) -> Self {
        History { path: dir.join("runs.jsonl") }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record and syncs it.
    pub fn append(&self, record: &RunRecord) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(Error::io(dir))?;
        }
        let mut line = serde_json::to_vec(record).map_err(|e| Error::io(&self.path)(e.into()))?;
        line.push(b'\n');
        let mut f = OpenOptions::new().create(true).append(true).open(&self.path).map_err(Error::io(&self.path))?;
        f.write_all(&line).map_err(Error::io(&self.path))?;
        f.sync_data().map_err(Error::io(&self.path))
    }

    /// Every record, oldest first (none when the file does not exist).
    pub fn list(&self) -> Result<Vec<RunRecord>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.path)(e)),
        };
        // A line that does not parse can only be a torn append at the end.
        Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
    }
}

/// Opens (creating) a file to lock.
pub(crate) fn lock_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
    }
    OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(Error::io(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(attempt: u32, outcome: Outcome) -> RunRecord {
        RunRecord {
            run_id: "manual__2026-11-24T12:00:00Z".into(),
            trigger: Trigger::Manual,
            logical_date: "2026-11-24".into(),
            attempt,
            start: "2026-11-24T12:00:00Z".into(),
            end: "2026-11-24T12:00:01Z".into(),
            outcome,
            error: (outcome == Outcome::Failed).then(|| "boom".into()),
            output: None,
        }
    }

    #[test]
    fn appends_and_lists_and_ignores_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(&dir.path().join("schedule"));
        assert!(h.list().unwrap().is_empty());
        h.append(&record(1, Outcome::Failed)).unwrap();
        h.append(&record(2, Outcome::Success)).unwrap();
        let mut f = OpenOptions::new().append(true).open(h.path()).unwrap();
        f.write_all(br#"{"run_id":"torn"#).unwrap();
        let all = h.list().unwrap();
        assert_eq!(all, [record(1, Outcome::Failed), record(2, Outcome::Success)]);
        let line = fs::read_to_string(h.path()).unwrap();
        assert!(line.starts_with(r#"{"run_id":"manual__2026-11-24T12:00:00Z","trigger":"manual","#), "{line}");
    }
}
