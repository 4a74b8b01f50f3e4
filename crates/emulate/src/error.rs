//! The error type of the emulator.

/// Errors of the emulator. A record the API refuses is not an error of the emulator: it is
/// counted and reported in the [`crate::Summary`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP client for the API could not be set up (TLS roots, a bad URL).
    #[error("cannot set up the HTTP client for {url}")]
    Client {
        /// The API URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// Reading the source database failed.
    #[error(transparent)]
    Source(#[from] pinpipe_source::Error),
    /// A worker task failed (panicked).
    #[error("an emulator worker failed: {0}")]
    Task(String),
}

/// Result alias of the emulator.
pub type Result<T, E = Error> = std::result::Result<T, E>;
