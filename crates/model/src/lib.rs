//! The data contract every pinpipe stage agrees on.
//!
//! * [`raw`]: the three raw records exactly as the emulator posts them (DESIGN.md "Raw records").
//! * [`schema`]: Arrow schemas of the raw records and of the cleaned tables.
//! * [`names`]: every topic, stream and table name derived from the prefix in one place, and the
//!   validation rules for names that arrive in requests.
//! * [`time`]: the timestamp text format shared by source, emulator and cleaning.
//! * [`histogram`]: latency counts a stage keeps in its status for the metrics.

pub mod error;
pub mod histogram;
pub mod names;
pub mod raw;
pub mod schema;
pub mod time;

pub use error::{Error, Result, error_chain};
pub use names::{Kind, Names};
pub use raw::{Post, RawGeo, RawPin, RawUser};
