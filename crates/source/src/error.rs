//! The error type of the source crate.

use std::path::PathBuf;

/// Errors of the source database, its generator and loader.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL does not name a supported backend.
    #[error("invalid source URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL with any password removed.
        url: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The database could not be opened or reached.
    #[error("cannot connect to source database {target}")]
    Connect {
        /// The URL with any password removed.
        target: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A statement failed.
    #[error("source database error while {doing}")]
    Database {
        /// What pinpipe was doing.
        doing: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The tables do not exist yet.
    #[error("the source tables do not exist in {target}: run `pinpipe source generate` or `pinpipe source load` first")]
    NoTables {
        /// The URL with any password removed.
        target: String,
    },
    /// The tables already hold rows and the caller did not ask to replace them.
    #[error("the source tables in {target} already hold {rows} rows: pass --replace to drop and rebuild them")]
    NotEmpty {
        /// The URL with any password removed.
        target: String,
        /// Rows in `pinterest_data`.
        rows: u64,
    },
    /// Row r exists in one table but not in another.
    #[error("the source tables disagree: row {key} exists in pinterest_data but not in {missing_in}")]
    Inconsistent {
        /// The row key.
        key: i64,
        /// The table that lacks it.
        missing_in: &'static str,
    },
    /// A stored value is not of the contract's type.
    #[error("row {key} of {table}: column {column} holds an invalid value: {reason}")]
    BadValue {
        /// Table name.
        table: &'static str,
        /// Row key.
        key: i64,
        /// Column name.
        column: &'static str,
        /// Why.
        reason: String,
    },
    /// A CSV file is malformed.
    #[error("{}: line {line}: {reason}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line (the header is line 1).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The CSV directory lacks the needed files.
    #[error("{}: {reason}", dir.display())]
    CsvDir {
        /// The directory.
        dir: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A background task failed.
    #[error("internal task failed: {0}")]
    Task(String),
}

/// Result alias of the source crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn db(doing: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Database { doing: doing.into(), source: Box::new(source) }
    }
}
