//! The error type of the streaming job. Bad records are not errors (they become dead letters);
//! these stop a table's worker: an unreachable log or warehouse, a failed Delta commit, a table
//! whose committed offsets the log does not have.

/// Errors of the stream crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] pinpipe_log::Error),
    /// The warehouse could not be opened.
    #[error(transparent)]
    Store(#[from] pinpipe_store::Error),
    /// Writing a dead-letter object failed.
    #[error("cannot write dead letters to {key}")]
    DeadLetters {
        /// Object key.
        key: String,
        /// Cause.
        #[source]
        source: object_store::Error,
    },
    /// Reading or committing the Delta table failed.
    #[error("Delta table {table}: {source}")]
    Delta {
        /// Table location.
        table: String,
        /// Cause.
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// Reading the table's rows back (to restore the de-duplication state) failed.
    #[error("cannot read the rows of the Delta table {table}")]
    Scan {
        /// Table location.
        table: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The table has committed offsets beyond what the log holds: it belongs to another log.
    #[error(
        "the table {table} has consumed {stream}/{partition} up to offset {committed} but the log ends at \
         {log_end}: the table was filled from another log; point the job at another warehouse or move the table away"
    )]
    AheadOfLog {
        /// Table location.
        table: String,
        /// Stream.
        stream: String,
        /// Partition.
        partition: u32,
        /// Next offset the table's commits say to read.
        committed: u64,
        /// The log's end offset.
        log_end: u64,
    },
    /// Cleaning machinery failed (a bug: schemas are fixed).
    #[error(transparent)]
    Transform(#[from] pinpipe_transform::Error),
    /// A worker task panicked or was cancelled.
    #[error("stream task failed: {0}")]
    Task(String),
}

impl Error {
    pub(crate) fn delta(table: &impl ToString) -> impl FnOnce(deltalake::DeltaTableError) -> Error + '_ {
        move |e| Error::Delta { table: table.to_string(), source: Box::new(e) }
    }
}

/// Result alias of the stream crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
