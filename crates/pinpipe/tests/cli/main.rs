//! Integration tests of the `pinpipe` binary: one test binary, a small harness in [`harness`],
//! one module per subcommand.

#![allow(clippy::unwrap_used, missing_docs)]

mod harness;

mod batch;
mod cluster;
mod config;
mod emulate;
mod schedule;
mod serve;
mod sink;
mod source;
mod stream;
mod up;
