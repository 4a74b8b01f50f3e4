//! The error type of the batch job. Bad records are not errors (they become dead letters);
//! these stop a run, before its commit, so that it changes nothing: an unreachable store, an
//! unwritable output, a table that is not ours, another run on the same tables, a failed query.

/// Errors of the batch crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listing or reading the raw objects failed.
    #[error("cannot read raw objects from {store}")]
    Read {
        /// Store URL.
        store: String,
        /// Cause.
        #[source]
        source: object_store::Error,
    },
    /// Writing an output file failed.
    #[error("cannot write {path}")]
    Write {
        /// File.
        path: std::path::PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A query failed.
    #[error("question {question}: {source}")]
    Query {
        /// Question id (`q1`, ...).
        question: String,
        /// Cause.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// Reading or writing a Delta table failed.
    #[error("Delta table {table}: {source}")]
    Delta {
        /// Table location.
        table: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The warehouse holds a table there that this job did not write.
    #[error(
        "the table {table} was not written by pinpipe's batch job ({reason}); point --warehouse elsewhere, or \
         rebuild it from the raw objects with --full"
    )]
    NotOurs {
        /// Table location.
        table: String,
        /// What does not match.
        reason: String,
    },
    /// Another run committed the same raw objects first (the lease was bypassed or lost).
    #[error("another batch run committed to {table} first; this run changed nothing ({reason})")]
    Concurrent {
        /// Table location.
        table: String,
        /// Delta's conflict.
        reason: String,
    },
    /// The store or the lease failed.
    #[error(transparent)]
    Store(#[from] pinpipe_store::Error),
    /// A spill or sidecar file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A fingerprint file next to a table could not be read or written.
    #[error("fingerprints of {table}: {source}")]
    Fingerprints {
        /// Table location.
        table: String,
        /// Cause.
        #[source]
        source: object_store::Error,
    },
    /// The configuration is not acceptable.
    #[error("{0}")]
    Config(String),
    /// Cleaning machinery failed.
    #[error(transparent)]
    Transform(#[from] pinpipe_transform::Error),
    /// Arrow failed (a bug: schemas are fixed).
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// The cluster that reads and cleans the objects (`batch.cluster`) failed or is unreachable.
    #[error("the cluster at {scheduler}: {reason}")]
    Cluster {
        /// The scheduler's address.
        scheduler: String,
        /// What went wrong.
        reason: String,
    },
    /// What the job's reader (a cluster) returned does not add up.
    #[error("{reader}: {reason}")]
    Reader {
        /// The reader ([`crate::read::Reader::describe`]).
        reader: String,
        /// What is wrong.
        reason: String,
    },
    /// A worker task panicked or was cancelled.
    #[error("a worker task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A job of the cleaning threads ([`crate::pool`]) panicked or could not be queued.
    #[error("a cleaning thread failed: {0}")]
    Worker(String),
}

impl Error {
    pub(crate) fn write(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Write { path: path.to_owned(), source }
    }

    pub(crate) fn delta(table: &str) -> impl Fn(deltalake::DeltaTableError) -> Error + '_ {
        move |e| Error::Delta { table: table.to_owned(), source: Box::new(e) }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// Result alias of the batch crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
