//! The error type of the model crate.

/// Errors raised by the data contract: invalid names and unparsable values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A topic, stream, table or prefix name breaks the naming rules.
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        /// What kind of name it was (`topic`, `stream`, `table`, `prefix`).
        what: &'static str,
        /// The offending name (truncated to 300 characters for display).
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A timestamp that is not `YYYY-MM-DDTHH:MM:SS[.fff]` (or with a space instead of `T`).
    #[error("invalid timestamp {0:?}: expected ISO-8601 without zone, e.g. 2020-08-28T03:52:47")]
    InvalidTimestamp(String),
}

/// An error and its sources on one line, `outer: inner: innermost` (the AWS SDK's and hyper's
/// top-level messages say little without their sources).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Result alias of the model crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
