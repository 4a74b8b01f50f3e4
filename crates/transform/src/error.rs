//! The error type of the transform crate. Bad records are not errors (they become dead
//! letters); these are failures of the machinery itself.

/// Errors of the transform crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building or filtering an Arrow batch failed (a bug: the schema is fixed).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A batch of raw records lacks a raw field (an object written by something else).
    #[error("{0}")]
    Schema(String),
}

/// Result alias of the transform crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
