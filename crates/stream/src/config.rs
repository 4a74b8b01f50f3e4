//! The `[stream]` configuration section.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[stream]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// Time between the starts of two micro-batches (`"1s"`, `"500ms"`); a batch that takes
    /// longer is followed at once.
    pub trigger_interval: String,
    /// Most records one micro-batch takes from one stream (the rest waits for the next).
    pub max_records_per_batch: usize,
    /// Compact the table's small files (`OPTIMIZE`) after this many micro-batch commits; 0 never.
    pub optimize_every: u64,
    /// Write a Delta checkpoint after this many micro-batch commits; 0 never.
    pub checkpoint_every: u64,
    /// Drop exact duplicates across the whole table (`"table"`: a row already in the table is
    /// not appended again; the job keeps a fingerprint per row, restored from the table on
    /// start) or only within each micro-batch (`"batch"`).
    pub dedup: String,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            trigger_interval: "1s".into(),
            max_records_per_batch: 200_000,
            optimize_every: 100,
            checkpoint_every: 10,
            dedup: "table".into(),
        }
    }
}

/// A validated `[stream]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Time between micro-batch starts.
    pub trigger_interval: Duration,
    /// Records per stream per micro-batch.
    pub max_records_per_batch: usize,
    /// Commits between compactions (0: never).
    pub optimize_every: u64,
    /// Commits between checkpoints (0: never).
    pub checkpoint_every: u64,
    /// De-duplicate across the whole table (not only within a micro-batch).
    pub dedup_table: bool,
}

impl StreamConfig {
    /// Checks the section; returns `(key, message)` for the first bad value.
    pub fn validate(&self) -> Result<Resolved, (&'static str, String)> {
        let text = self.trigger_interval.trim();
        let trigger_interval = humantime::parse_duration(text)
            .map_err(|e| ("stream.trigger_interval", format!("{text:?} is not a duration like 1s or 500ms: {e}")))?;
        if trigger_interval < Duration::from_millis(10) || trigger_interval > Duration::from_secs(3600) {
            return Err(("stream.trigger_interval", format!("must be between 10ms and 1h, not {text}")));
        }
        if !(1..=10_000_000).contains(&self.max_records_per_batch) {
            return Err((
                "stream.max_records_per_batch",
                format!("must be 1..=10000000, not {}", self.max_records_per_batch),
            ));
        }
        let dedup_table = match self.dedup.as_str() {
            "table" => true,
            "batch" => false,
            other => return Err(("stream.dedup", format!("must be \"table\" or \"batch\", not {other:?}"))),
        };
        Ok(Resolved {
            dedup_table,
            trigger_interval,
            max_records_per_batch: self.max_records_per_batch,
            optimize_every: self.optimize_every,
            checkpoint_every: self.checkpoint_every,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let r = StreamConfig::default().validate().unwrap();
        assert_eq!(r.trigger_interval, Duration::from_secs(1));
        assert_eq!((r.optimize_every, r.checkpoint_every), (100, 10));
        let c = StreamConfig { trigger_interval: "250ms".into(), ..Default::default() };
        assert_eq!(c.validate().unwrap().trigger_interval, Duration::from_millis(250));
        for bad in ["soon", "0s", "2h"] {
            let c = StreamConfig { trigger_interval: bad.into(), ..Default::default() };
            assert_eq!(c.validate().unwrap_err().0, "stream.trigger_interval", "{bad}");
        }
        let c = StreamConfig { max_records_per_batch: 0, ..Default::default() };
        assert_eq!(c.validate().unwrap_err().0, "stream.max_records_per_batch");
        assert!(r.dedup_table);
        let c = StreamConfig { dedup: "batch".into(), ..Default::default() };
        assert!(!c.validate().unwrap().dedup_table);
        let c = StreamConfig { dedup: "global".into(), ..Default::default() };
        assert_eq!(c.validate().unwrap_err().0, "stream.dedup");
    }
}
