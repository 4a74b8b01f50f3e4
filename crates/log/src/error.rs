//! The error type of the log crate.

use std::path::PathBuf;

/// Errors of the log port and its backends.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No topic (or stream) of that name.
    #[error("topic {0:?} does not exist")]
    TopicNotFound(String),
    /// A topic (or stream) of that name already exists.
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    /// The topic has no such partition.
    #[error("topic {topic:?} has no partition {partition} (it has {partitions})")]
    PartitionNotFound {
        /// Topic.
        topic: String,
        /// Requested partition.
        partition: u32,
        /// Partitions the topic has.
        partitions: u32,
    },
    /// The name breaks the naming rules.
    #[error(transparent)]
    InvalidName(#[from] pinpipe_model::Error),
    /// A partition count outside 1..=MAX_PARTITIONS.
    #[error("invalid partition count {0}: must be between 1 and {max}", max = crate::port::MAX_PARTITIONS)]
    InvalidPartitionCount(u32),
    /// The offset is outside what the partition holds (older records were removed by retention).
    #[error("offset {offset} of {topic}/{partition} is out of range: the partition holds offsets {start}..{end}")]
    OffsetOutOfRange {
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
        /// Requested offset.
        offset: u64,
        /// First offset held.
        start: u64,
        /// Next offset to be written.
        end: u64,
    },
    /// A batch too large to append as one unit.
    #[error("batch of {bytes} bytes exceeds the maximum of {max} bytes")]
    BatchTooLarge {
        /// Its encoded size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// An append of no records.
    #[error("a batch must hold at least one record")]
    EmptyBatch,
    /// Appending is not possible on this handle (a read-only view of another process' log).
    #[error("the log at {0} is open read-only: another pinpipe process owns it")]
    ReadOnly(PathBuf),
    /// Another process holds the log open for writing.
    #[error("the log at {0} is in use by another pinpipe process (it holds {0}/LOCK)")]
    Locked(PathBuf),
    /// A file operation failed.
    #[error("log I/O error on {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Stored data failed its checksum or structure check where it cannot be a torn write.
    #[error("corrupt log data in {}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The partition stopped accepting writes after an fsync failure.
    #[error("partition {topic}/{partition} stopped accepting writes after an I/O error; restart pinpipe to recover it")]
    Failed {
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
    },
    /// A position or cursor this backend cannot read from (a sequence number given to a dense
    /// log, or text that is not a sequence number).
    #[error("invalid position {0:?}: expected an offset of this log or a Kinesis sequence number (decimal digits)")]
    InvalidPosition(String),
    /// The backend has no such operation (e.g. dense offsets on Kinesis).
    #[error("{backend} does not support {what}")]
    Unsupported {
        /// The backend.
        backend: &'static str,
        /// What was asked.
        what: &'static str,
    },
    /// A remote service (Kinesis, Kafka) failed or refused a request.
    #[error("{service} {operation} failed: {message}")]
    Remote {
        /// The service.
        service: &'static str,
        /// The request.
        operation: &'static str,
        /// What it said.
        message: String,
    },
    /// The log was closed.
    #[error("the log is closed")]
    Closed,
}

/// Result alias of the log crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
