//! The error type of the batch job. Bad records are not errors (they become dead letters);
//! these stop a run: an unreachable store, an unwritable output, a failed query.

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
    /// Writing a Delta table failed.
    #[error("cannot write the Delta table {table}")]
    Delta {
        /// Table location.
        table: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
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
    /// A worker task panicked or was cancelled.
    #[error("a worker task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    pub(crate) fn write(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Write { path: path.to_owned(), source }
    }
}

/// Result alias of the batch crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
