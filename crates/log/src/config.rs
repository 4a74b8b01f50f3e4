//! The `[log]` configuration section.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::kinesis::{KinesisConfig, ResolvedKinesis};

/// Where Kinesis-style streams live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamsBackend {
    /// In the embedded log, beside the topics.
    #[default]
    Embedded,
    /// On Amazon Kinesis (or a server of its API), configured by `[log.kinesis]`.
    Kinesis,
}

/// The `[log]` section: where topics and streams live and how long records are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Directory of the embedded log; unset means `<data_dir>/log`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Partitions (shards) of topics created automatically or without a count.
    pub default_partitions: u32,
    /// Size at which a partition's active segment file is closed and a new one started.
    pub segment_bytes: u64,
    /// Keep records this many hours (whole closed segments are removed); 0 keeps them forever.
    pub retention_hours: u64,
    /// Keep at most this many bytes per partition (whole closed segments are removed); 0 means
    /// no size limit.
    pub retention_bytes: u64,
    /// Where streams live: `embedded` (with the topics) or `kinesis` (the classic stack's
    /// API Gateway -> Kinesis path; topics stay in the embedded log).
    pub streams: StreamsBackend,
    /// The Kinesis connection, used when `streams = "kinesis"`.
    pub kinesis: KinesisConfig,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            dir: None,
            default_partitions: 1,
            segment_bytes: 128 << 20,
            retention_hours: 168,
            retention_bytes: 0,
            streams: StreamsBackend::Embedded,
            kinesis: KinesisConfig::default(),
        }
    }
}

/// What a validated `[log]` section resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedLog {
    /// Directory of the embedded log.
    pub dir: PathBuf,
    /// See [`LogConfig`].
    pub default_partitions: u32,
    /// See [`LogConfig`].
    pub segment_bytes: u64,
    /// Retention by age, `None` for none.
    pub retention: Option<std::time::Duration>,
    /// Retention by size, `None` for none.
    pub retention_bytes: Option<u64>,
    /// The Kinesis connection when streams live on Kinesis; `None`: in the embedded log.
    pub kinesis: Option<ResolvedKinesis>,
}

impl LogConfig {
    /// Checks the section; returns `(key, message)` for the first bad value.
    pub fn validate(&self, data_dir: &Path) -> Result<ResolvedLog, (&'static str, String)> {
        if self.default_partitions == 0 || self.default_partitions > crate::port::MAX_PARTITIONS {
            return Err(("log.default_partitions", format!("must be between 1 and {}", crate::port::MAX_PARTITIONS)));
        }
        if self.segment_bytes < 4096 {
            return Err(("log.segment_bytes", "must be at least 4096".into()));
        }
        let kinesis = match self.streams {
            StreamsBackend::Embedded => None,
            StreamsBackend::Kinesis => Some(self.kinesis.validate()?),
        };
        Ok(ResolvedLog {
            dir: self.dir.clone().unwrap_or_else(|| data_dir.join("log")),
            default_partitions: self.default_partitions,
            segment_bytes: self.segment_bytes,
            retention: (self.retention_hours > 0).then(|| std::time::Duration::from_secs(self.retention_hours * 3600)),
            retention_bytes: (self.retention_bytes > 0).then_some(self.retention_bytes),
            kinesis,
        })
    }
}
