//! Opens the backends the `[log]` section names: where topics live (always a log with dense
//! offsets: the embedded log or Kafka) and where streams live (those, or Kinesis), sharing one
//! instance when both live in the same place.

use std::sync::Arc;

use crate::config::{Backend, ResolvedLog};
use crate::embedded::EmbeddedLog;
use crate::kafka::{KafkaLog, ResolvedKafka};
use crate::kinesis::KinesisLog;
use crate::{Error, Log, OffsetLog, Result};

/// Whether this process writes the embedded log (`serve`, `up`) or only reads it beside the
/// process that does (`sink`, `stream`, `log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Opens the embedded log for writing (takes its lock).
    Owner,
    /// Opens a read-only view of another process' embedded log.
    Reader,
}

/// The logs topics and streams live in.
#[derive(Clone)]
pub struct Logs {
    /// Where topics live.
    pub topics: Arc<dyn OffsetLog>,
    /// Where streams live: the same instance as `topics` when both live in one place.
    pub streams: Arc<dyn Log>,
    shared: bool,
}

impl Logs {
    /// Where everything lives, for messages.
    pub fn describe(&self) -> String {
        if self.shared {
            self.topics.describe()
        } else {
            format!("topics: {}; streams: {}", self.topics.describe(), self.streams.describe())
        }
    }
}

/// Opens where topics and streams live.
pub async fn logs(config: &ResolvedLog, access: Access) -> Result<Logs> {
    let topics = topics(config, access).await?;
    if config.shared() {
        let streams: Arc<dyn Log> = topics.clone();
        return Ok(Logs { topics, streams, shared: true });
    }
    let streams = streams(config, access).await?;
    Ok(Logs { topics, streams, shared: false })
}

/// Opens where topics live (only that).
pub async fn topics(config: &ResolvedLog, access: Access) -> Result<Arc<dyn OffsetLog>> {
    match &config.topics {
        Backend::Embedded => embedded(config, access),
        Backend::Kafka(k) => kafka(k).await,
        // Validation routes topics only to the embedded log or Kafka.
        Backend::Kinesis(_) => Err(Error::Unsupported {
            backend: "Kinesis",
            what: "Kafka-style topics (route topics to the embedded log or Kafka)",
        }),
    }
}

/// Opens where streams live (only that).
pub async fn streams(config: &ResolvedLog, access: Access) -> Result<Arc<dyn Log>> {
    match &config.streams {
        Backend::Embedded => Ok(embedded(config, access)?),
        Backend::Kafka(k) => Ok(kafka(k).await?),
        Backend::Kinesis(k) => {
            let log = KinesisLog::connect(k).await.map_err(|e| Error::Open {
                what: "cannot set up the Kinesis client (log.streams = \"kinesis\")".into(),
                source: Box::new(e),
            })?;
            Ok(Arc::new(log))
        }
    }
}

fn embedded(config: &ResolvedLog, access: Access) -> Result<Arc<dyn OffsetLog>> {
    match access {
        Access::Owner => Ok(Arc::new(EmbeddedLog::open(config)?)),
        Access::Reader => {
            let log = EmbeddedLog::open_read_only(&config.dir).map_err(|e| Error::Open {
                what: format!(
                    "no embedded log at {}: run `pinpipe serve` (or `pinpipe up`) first",
                    config.dir.display()
                ),
                source: Box::new(e),
            })?;
            Ok(Arc::new(log))
        }
    }
}

async fn kafka(k: &ResolvedKafka) -> Result<Arc<dyn OffsetLog>> {
    let log = KafkaLog::connect(k).await.map_err(|e| Error::Open {
        what: format!("cannot connect to Kafka at {} (log.kafka.bootstrap_servers)", k.bootstrap_servers),
        source: Box::new(e),
    })?;
    Ok(Arc::new(log))
}
