//! The `[batch]` configuration section and the naming of run folders.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The `[batch]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Directory holding one folder per run; unset means `<data_dir>/results`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
    /// Write the clean tables as Delta tables under the warehouse.
    pub write_tables: bool,
    /// Raw object reads in flight.
    pub read_concurrency: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { output: None, write_tables: true, read_concurrency: 64 }
    }
}

/// A validated `[batch]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Directory of run folders.
    pub output: PathBuf,
    /// Write Delta tables.
    pub write_tables: bool,
    /// Reads in flight.
    pub read_concurrency: usize,
}

impl BatchConfig {
    /// Checks the section; errors name the key.
    pub fn validate(&self, data_dir: &Path) -> Result<Resolved, (&'static str, String)> {
        if !(1..=4096).contains(&self.read_concurrency) {
            return Err(("batch.read_concurrency", format!("must be 1..=4096, not {}", self.read_concurrency)));
        }
        let output = self.output.clone().unwrap_or_else(|| data_dir.join("results"));
        if output.as_os_str().is_empty() {
            return Err(("batch.output", "must not be empty".into()));
        }
        Ok(Resolved { output, write_tables: self.write_tables, read_concurrency: self.read_concurrency })
    }
}

/// The name of a run folder: `<date>` for a scheduled daily run, `<run_id>` for a named run,
/// `<date>_<run_id>` with both, else `run-<UTC time>`. A run id is 1–100 of
/// `A-Z a-z 0-9 . _ -`, not starting with `.`, so it can never leave the output directory.
pub fn run_folder(
    date: Option<chrono::NaiveDate>,
    run_id: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, String> {
    if let Some(id) = run_id {
        let ok = (1..=100).contains(&id.len())
            && !id.starts_with('.')
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(format!(
                "run id {id:?} is not 1-100 characters of A-Z a-z 0-9 . _ - (not starting with .)"
            ));
        }
    }
    Ok(match (date, run_id) {
        (Some(d), Some(id)) => format!("{d}_{id}"),
        (Some(d), None) => d.to_string(),
        (None, Some(id)) => id.to_owned(),
        (None, None) => format!("run-{}", now.format("%Y%m%dT%H%M%SZ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_folders() {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 24);
        assert_eq!(run_folder(d, None, now).unwrap(), "2026-11-24");
        assert_eq!(run_folder(d, Some("retry-2"), now).unwrap(), "2026-11-24_retry-2");
        assert_eq!(run_folder(None, Some("adhoc"), now).unwrap(), "adhoc");
        assert_eq!(run_folder(None, None, now).unwrap(), "run-20231114T221320Z");
        for bad in ["..", "../x", "a/b", "", ".hidden", "a b"] {
            assert!(run_folder(None, Some(bad), now).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validation() {
        let dd = Path::new("/d");
        assert_eq!(BatchConfig::default().validate(dd).unwrap().output, PathBuf::from("/d/results"));
        let bad = BatchConfig { read_concurrency: 0, ..Default::default() };
        assert_eq!(bad.validate(dd).unwrap_err().0, "batch.read_concurrency");
    }
}
