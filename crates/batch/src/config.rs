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
    /// Keep the clean tables as Delta tables under the warehouse (and ingest incrementally);
    /// `false` answers from tables in a temporary directory, rebuilt from all objects each run.
    pub write_tables: bool,
    /// Raw object reads in flight.
    pub read_concurrency: usize,
    /// Memory the job's buffers and queries may use before spilling to `spill_dir`: bytes, or
    /// a size such as `"512MiB"`, `"2GiB"`.
    pub memory_limit: ByteSize,
    /// Directory for spill files; unset means `<data_dir>/spill`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spill_dir: Option<PathBuf>,
    /// A Ballista cluster's scheduler, `df://HOST:PORT`, whose executors read and clean the raw
    /// objects (`pinpipe cluster`); unset means in this process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// With a cluster: where the questions' aggregates are recomputed over whole tables.
    pub cluster_questions: ClusterQuestions,
}

/// Where a run on a cluster recomputes the questions' aggregates over whole tables (a first run,
/// `--full`, many new rows; an update from a run's new rows is always computed by the job).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterQuestions {
    /// On the cluster when the joins of the tables do not fit in the job's memory limit, else in
    /// the job (faster for tables it can hold).
    #[default]
    Auto,
    /// Always on the cluster.
    Always,
    /// Always in the job (joins that do not fit spill to its disk).
    Never,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            output: None,
            write_tables: true,
            read_concurrency: 64,
            memory_limit: ByteSize(DEFAULT_MEMORY_LIMIT),
            spill_dir: None,
            cluster: None,
            cluster_questions: ClusterQuestions::Auto,
        }
    }
}

/// Default `batch.memory_limit`: 1 GiB, which a laptop has to spare.
pub const DEFAULT_MEMORY_LIMIT: u64 = 1 << 30;
/// Smallest accepted `batch.memory_limit`.
pub const MIN_MEMORY_LIMIT: u64 = 16 << 20;

/// A number of bytes, written as an integer or as a size with a unit (`KiB`, `MiB`, `GiB`,
/// `KB`, `MB`, `GB`, `B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"512MiB"`, `"2 GiB"`, `"1000000"`, `"64MB"`.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let n: u64 = digits.parse().map_err(|_| format!("{text:?} is not a size such as 512MiB or 2GiB"))?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" | "k" => 1 << 10,
            "mib" | "m" => 1 << 20,
            "gib" | "g" => 1 << 30,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            other => return Err(format!("unknown unit {other:?} in {text:?}: use B, KiB, MiB or GiB")),
        };
        n.checked_mul(factor).map(ByteSize).ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0;
        if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
            write!(f, "{}GiB", n >> 30)
        } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
            write!(f, "{}MiB", n >> 20)
        } else {
            write!(f, "{n}")
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Text(t) => ByteSize::parse(&t).map_err(serde::de::Error::custom),
        }
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
    /// Memory limit in bytes.
    pub memory_limit: u64,
    /// Spill directory.
    pub spill_dir: PathBuf,
    /// Where a run on a cluster recomputes the questions' aggregates.
    pub cluster_questions: ClusterQuestions,
}

impl BatchConfig {
    /// Checks the section; errors name the key.
    pub fn validate(&self, data_dir: &Path) -> Result<Resolved, (&'static str, String)> {
        if !(1..=4096).contains(&self.read_concurrency) {
            return Err(("batch.read_concurrency", format!("must be 1..=4096, not {}", self.read_concurrency)));
        }
        if self.cluster.is_some() && !self.write_tables {
            return Err((
                "batch.write_tables",
                "must be true with batch.cluster: the executors write the tables into the warehouse".into(),
            ));
        }
        if self.memory_limit.0 < MIN_MEMORY_LIMIT {
            return Err(("batch.memory_limit", format!("must be at least 16MiB, not {}", self.memory_limit)));
        }
        let output = self.output.clone().unwrap_or_else(|| data_dir.join("results"));
        if output.as_os_str().is_empty() {
            return Err(("batch.output", "must not be empty".into()));
        }
        let spill_dir = self.spill_dir.clone().unwrap_or_else(|| data_dir.join("spill"));
        if spill_dir.as_os_str().is_empty() {
            return Err(("batch.spill_dir", "must not be empty".into()));
        }
        Ok(Resolved {
            output,
            write_tables: self.write_tables,
            read_concurrency: self.read_concurrency,
            memory_limit: self.memory_limit.0,
            spill_dir,
            cluster_questions: self.cluster_questions,
        })
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
            return Err(format!("run id {id:?} is not 1-100 characters of A-Z a-z 0-9 . _ - (not starting with .)"));
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
        let bad = BatchConfig { memory_limit: ByteSize(1 << 20), ..Default::default() };
        assert_eq!(bad.validate(dd).unwrap_err().0, "batch.memory_limit");
        assert_eq!(BatchConfig::default().validate(dd).unwrap().spill_dir, PathBuf::from("/d/spill"));
        // Executors write the tables into the warehouse: a cluster without tables is refused.
        let bad = BatchConfig { cluster: Some("df://s:1".into()), write_tables: false, ..Default::default() };
        let (key, message) = bad.validate(dd).unwrap_err();
        assert_eq!(key, "batch.write_tables");
        assert!(message.contains("batch.cluster"), "{message}");
        let c: BatchConfig = serde_json::from_str(r#"{"cluster_questions": "always"}"#).unwrap();
        assert_eq!(c.validate(dd).unwrap().cluster_questions, ClusterQuestions::Always);
        assert_eq!(BatchConfig::default().cluster_questions, ClusterQuestions::Auto);
        assert!(serde_json::from_str::<BatchConfig>(r#"{"cluster_questions": "sometimes"}"#).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("512MiB"), Ok(ByteSize(512 << 20)));
        assert_eq!(ByteSize::parse("2 GiB"), Ok(ByteSize(2 << 30)));
        assert_eq!(ByteSize::parse("64MB"), Ok(ByteSize(64_000_000)));
        assert_eq!(ByteSize::parse("1000"), Ok(ByteSize(1000)));
        for bad in ["", "GiB", "1.5GiB", "12 parsecs", "99999999999999999999"] {
            assert!(ByteSize::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(ByteSize(1 << 30).to_string(), "1GiB");
        assert_eq!(ByteSize(3 << 20).to_string(), "3MiB");
        let c: BatchConfig = serde_json::from_str(r#"{"memory_limit": "256MiB"}"#).unwrap();
        assert_eq!(c.memory_limit, ByteSize(256 << 20));
        let c: BatchConfig = serde_json::from_str(r#"{"memory_limit": 100000000}"#).unwrap();
        assert_eq!(c.memory_limit, ByteSize(100_000_000));
        assert!(serde_json::from_str::<BatchConfig>(r#"{"memory_limit": "lots"}"#).is_err());
    }
}
