//! The `[log]` configuration section.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::kafka::{KafkaConfig, ResolvedKafka};
use crate::kinesis::{KinesisConfig, ResolvedKinesis};

/// Where Kafka-style topics live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicsBackend {
    /// In the embedded log.
    #[default]
    Embedded,
    /// On Apache Kafka (or a broker of its protocol), configured by `[log.kafka]`.
    Kafka,
}

/// Where Kinesis-style streams live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamsBackend {
    /// In the embedded log, beside the topics.
    #[default]
    Embedded,
    /// On Amazon Kinesis (or a server of its API), configured by `[log.kinesis]`.
    Kinesis,
    /// On Apache Kafka, configured by `[log.kafka]` (stream names are topic names there).
    Kafka,
}

/// A validated backend choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The embedded log in [`ResolvedLog::dir`].
    Embedded,
    /// Kafka.
    Kafka(ResolvedKafka),
    /// Kinesis (streams only).
    Kinesis(ResolvedKinesis),
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
    /// Most partitions (shards) one topic or stream may have (embedded log).
    pub max_partitions: u32,
    /// Most topics and streams the embedded log holds.
    pub max_topics: u32,
    /// Size at which a partition's active segment file is closed and a new one started.
    pub segment_bytes: u64,
    /// Keep records this many hours (whole closed segments are removed); 0 keeps them forever.
    pub retention_hours: u64,
    /// Keep at most this many bytes per partition (whole closed segments are removed); 0 means
    /// no size limit.
    pub retention_bytes: u64,
    /// Retention never removes records the sink or the streaming job has not consumed yet
    /// (their positions are kept beside each partition); `false` lets it.
    pub retention_respects_consumers: bool,
    /// Where topics live: `embedded` or `kafka` (the classic stack's MSK).
    pub topics: TopicsBackend,
    /// Where streams live: `embedded`, `kinesis` (the classic stack's API Gateway -> Kinesis
    /// path) or `kafka`.
    pub streams: StreamsBackend,
    /// The Kafka connection, used when topics or streams live on Kafka.
    pub kafka: KafkaConfig,
    /// The Kinesis connection, used when `streams = "kinesis"`.
    pub kinesis: KinesisConfig,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            dir: None,
            default_partitions: 1,
            max_partitions: 64,
            max_topics: 1000,
            segment_bytes: 128 << 20,
            retention_hours: 168,
            retention_bytes: 0,
            retention_respects_consumers: true,
            topics: TopicsBackend::Embedded,
            streams: StreamsBackend::Embedded,
            kafka: KafkaConfig::default(),
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
    pub max_partitions: u32,
    /// See [`LogConfig`].
    pub max_topics: u32,
    /// See [`LogConfig`].
    pub segment_bytes: u64,
    /// Retention by age, `None` for none.
    pub retention: Option<std::time::Duration>,
    /// Retention by size, `None` for none.
    pub retention_bytes: Option<u64>,
    /// See [`LogConfig`].
    pub retention_respects_consumers: bool,
    /// Where topics live (never Kinesis).
    pub topics: Backend,
    /// Where streams live.
    pub streams: Backend,
}

impl ResolvedLog {
    /// Whether topics and streams live in the same log.
    pub fn shared(&self) -> bool {
        matches!(
            (&self.topics, &self.streams),
            (Backend::Embedded, Backend::Embedded) | (Backend::Kafka(_), Backend::Kafka(_))
        )
    }
}

impl LogConfig {
    /// Checks the section; returns `(key, message)` for the first bad value.
    pub fn validate(&self, data_dir: &Path) -> Result<ResolvedLog, (&'static str, String)> {
        if self.default_partitions == 0 || self.default_partitions > crate::port::MAX_PARTITIONS {
            return Err(("log.default_partitions", format!("must be between 1 and {}", crate::port::MAX_PARTITIONS)));
        }
        if self.max_partitions == 0 || self.max_partitions > crate::port::MAX_PARTITIONS {
            return Err(("log.max_partitions", format!("must be between 1 and {}", crate::port::MAX_PARTITIONS)));
        }
        if self.default_partitions > self.max_partitions {
            return Err((
                "log.default_partitions",
                format!("must not exceed log.max_partitions ({})", self.max_partitions),
            ));
        }
        if self.max_topics == 0 {
            return Err(("log.max_topics", "must be at least 1".into()));
        }
        if self.segment_bytes < 4096 {
            return Err(("log.segment_bytes", "must be at least 4096".into()));
        }
        let topics = match self.topics {
            TopicsBackend::Embedded => Backend::Embedded,
            TopicsBackend::Kafka => Backend::Kafka(self.kafka.validate()?),
        };
        let streams = match self.streams {
            StreamsBackend::Embedded => Backend::Embedded,
            StreamsBackend::Kinesis => Backend::Kinesis(self.kinesis.validate()?),
            StreamsBackend::Kafka => Backend::Kafka(self.kafka.validate()?),
        };
        Ok(ResolvedLog {
            dir: self.dir.clone().unwrap_or_else(|| data_dir.join("log")),
            default_partitions: self.default_partitions,
            max_partitions: self.max_partitions,
            max_topics: self.max_topics,
            segment_bytes: self.segment_bytes,
            retention: (self.retention_hours > 0).then(|| std::time::Duration::from_secs(self.retention_hours * 3600)),
            retention_bytes: (self.retention_bytes > 0).then_some(self.retention_bytes),
            retention_respects_consumers: self.retention_respects_consumers,
            topics,
            streams,
        })
    }
}
