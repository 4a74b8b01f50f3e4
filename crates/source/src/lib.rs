//! The source database: pinpipe's stand-in for the classic RDS instance holding
//! `pinterest_data`, `geolocation_data` and `user_data` (DESIGN.md "Source tables").
//!
//! * [`store`]: the port, one trait [`SourceStore`] with three backends: an embedded SQLite file
//!   ([`sqlite`], the default), PostgreSQL ([`postgres`]) and MySQL/MariaDB ([`mysql`]).
//! * [`config`]: the `[source]` configuration section; its URL selects the backend.
//! * [`generate`]: deterministic, realistic rows for all three tables.
//! * [`csv_load`]: the classic `db_data/` CSV files.
//! * [`ops`]: the operations the CLI and emulator run on top of any backend (bulk generate, load,
//!   random row).

pub mod config;
pub mod csv_load;
pub mod error;
pub mod generate;
pub mod mysql;
pub mod ops;
pub mod postgres;
mod server;
mod sql;
pub mod sqlite;
pub mod store;

#[cfg(test)]
mod conformance;

pub use config::{SourceConfig, SourceUrl};
pub use error::{Error, Result};
pub use generate::Generator;
pub use store::{Counts, Rows, SourceStore};
