//! The error type of the sink crate.

/// Errors of the sink.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] pinpipe_log::Error),
    /// The object store failed.
    #[error("object store error on {key}")]
    Store {
        /// The key involved.
        key: String,
        /// The cause.
        #[source]
        source: object_store::Error,
    },
    /// The store holds objects beyond what the log has: they belong to another log.
    #[error(
        "the store already holds {topic}/{partition} up to offset {stored} but the log ends at {log_end}: \
         the objects come from another log; point the sink at another store or move them away"
    )]
    AheadOfLog {
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
        /// Next offset after the stored objects.
        stored: u64,
        /// The log's end offset.
        log_end: u64,
    },
    /// An object could not be encoded (a bug) or an existing one decoded (written by something
    /// else).
    #[error("{0}")]
    Encode(String),
    /// A storage contract (commit marker, listing) could not be kept.
    #[error(transparent)]
    Layout(#[from] pinpipe_store::Error),
    /// A background task failed.
    #[error("sink task failed: {0}")]
    Task(String),
}

/// Result alias of the sink crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
