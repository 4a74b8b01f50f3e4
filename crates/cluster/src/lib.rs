//! The batch job on an Apache Ballista cluster: the scheduler and the executor embedded in the
//! pinpipe binary (`pinpipe cluster scheduler`, `pinpipe cluster executor`), and the job's
//! reading and cleaning as a plan the cluster runs (`pinpipe batch --cluster df://HOST:PORT`).
//!
//! * [`plan`]: the raw objects of a topic as a table whose scan reads and cleans one unit of
//!   objects per partition, with the codec that carries it to the scheduler and the executors.
//! * [`wire`]: a cleaned unit as Arrow batches (rows, fingerprints, then what the unit read).
//! * [`client`]: the batch job's `Reader` through a cluster.
//! * [`scheduler`] and [`executor`]: Ballista's processes with pinpipe's codec registered, so
//!   any machine with the binary joins a cluster.
//!
//! What runs where: executors fetch objects from the shared store (S3) and clean them with the
//! shared rules; the job de-duplicates (against the run and the tables' fingerprints), writes
//! the Parquet files and commits them to Delta in one commit with the ingested positions, as in
//! one process. Answers and tables are the same either way.

pub mod client;
pub mod executor;
pub mod plan;
pub mod scheduler;
pub mod stores;
pub mod wire;

use std::fmt;

pub use client::ClusterReader;

/// Errors of the cluster crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scheduler address that cannot be used.
    #[error("invalid cluster address {given:?}: {reason} (use df://HOST:PORT, e.g. df://10.0.0.5:50050)")]
    InvalidAddress {
        /// What was given.
        given: String,
        /// Why it is refused.
        reason: String,
    },
    /// No scheduler answers at the address.
    #[error(
        "no Ballista scheduler answers at {scheduler} ({reason}); start one with `pinpipe cluster scheduler` or fix batch.cluster"
    )]
    Unreachable {
        /// The address.
        scheduler: String,
        /// The connection error.
        reason: String,
    },
    /// Invalid configuration of a scheduler or executor.
    #[error("{0}")]
    Config(String),
    /// Ballista failed.
    #[error("Ballista: {0}")]
    Ballista(String),
    /// A cleaned unit could not be encoded or decoded.
    #[error("cluster data: {0}")]
    Wire(String),
    /// Cleaning machinery failed.
    #[error(transparent)]
    Transform(#[from] pinpipe_transform::Error),
    /// Arrow failed (a bug: schemas are fixed).
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

impl From<ballista_core::error::BallistaError> for Error {
    fn from(e: ballista_core::error::BallistaError) -> Self {
        Error::Ballista(e.to_string())
    }
}

/// Result alias of the cluster crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Default port of a Ballista scheduler.
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// A scheduler's address: `df://HOST:PORT` (or `HOST:PORT`; the port defaults to 50050).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerAddr {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl SchedulerAddr {
    /// Parses `df://HOST[:PORT]` or `HOST[:PORT]`.
    pub fn parse(given: &str) -> Result<SchedulerAddr> {
        let bad = |reason: &str| Error::InvalidAddress { given: given.to_owned(), reason: reason.to_owned() };
        let rest = match given.split_once("://") {
            Some(("df", rest)) => rest,
            Some((scheme, _)) => return Err(bad(&format!("the scheme is {scheme:?}, not df"))),
            None => given,
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') || rest.contains('?') {
            return Err(bad("only a host and a port are allowed"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, _)) if !h.ends_with(']') && h.contains(':') => (rest, None),
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_')) {
            return Err(bad("the host has characters a host name cannot have"));
        }
        let port = match port {
            None => DEFAULT_SCHEDULER_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad("the port must be a number from 1 to 65535")),
                Ok(p) => p,
            },
        };
        Ok(SchedulerAddr { host: host.to_owned(), port })
    }
}

impl fmt::Display for SchedulerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests;
