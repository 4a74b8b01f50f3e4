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
    /// More partitions than `log.max_partitions` allows.
    #[error("{requested} partitions requested; at most {max} are allowed per topic or stream (log.max_partitions)")]
    TooManyPartitions {
        /// Requested.
        requested: u32,
        /// The limit.
        max: u32,
    },
    /// The embedded log holds `log.max_topics` topics and streams already.
    #[error("the log holds {max} topics and streams, its limit (log.max_topics); delete one or raise the limit")]
    TooManyTopics {
        /// The limit.
        max: u32,
    },
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
    /// A write or fsync of the partition failed (e.g. the disk is full); nothing of that write
    /// was acknowledged, and the next append tries again.
    #[error(
        "partition {topic}/{partition} could not write to disk: {reason}; nothing was stored (it retries on the next request)"
    )]
    Failed {
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
        /// The I/O error.
        reason: String,
    },
    /// The partition's files are damaged beyond a torn tail; it is not read or written past the
    /// damage until `pinpipe log repair` cuts it.
    #[error(
        "partition {topic}/{partition} is damaged: {} at byte {position} (offset {offset}): {reason}. It is not read \
         or written until the damage is cut: stop the process that writes the log and run `pinpipe log repair \
         {topic} {partition}` (it reports what it cuts)", path.display()
    )]
    Damaged {
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
        /// The damaged file.
        path: PathBuf,
        /// Byte position of the damage in it.
        position: u64,
        /// Offset of the first record that cannot be read.
        offset: u64,
        /// What is wrong.
        reason: String,
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
    /// A configured backend could not be opened ([`crate::open`]); `what` says which and what to do.
    #[error("{what}")]
    Open {
        /// Which backend, and what to do.
        what: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },
}

/// Result alias of the log crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
