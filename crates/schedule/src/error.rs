//! The error type of the scheduler.

use std::path::PathBuf;

/// Errors of the schedule crate. A failing batch run is not one of them: it is an outcome,
/// recorded in the history.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another run holds the run lock (in this or another process).
    #[error("a batch run is already in progress (it holds {}); runs never overlap", .0.display())]
    Busy(PathBuf),
    /// The history or lock file could not be read or written.
    #[error("scheduler I/O error on {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The cron expression has no next occurrence (e.g. February 30th).
    #[error("the schedule {0:?} has no next run time")]
    NoNextRun(String),
}

/// Result alias of the schedule crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
