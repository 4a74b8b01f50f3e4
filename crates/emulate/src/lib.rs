//! The posting emulator: what the classic `user_posting_emulation*.py` scripts did, as a tool.
//! In a loop it picks a random row r of the source database, reads row r of the three tables and
//! sends the pin, geo and user records to an API: to the topics (`POST /topics/<p>.pin`,
//! Confluent REST Proxy v2 JSON), to the streams (`PUT /streams/streaming-<p>-pin/record`), or
//! both. Any compatible API works, pinpipe's own or an AWS API Gateway invoke URL with a stage.
//!
//! * [`config`]: the `[emulate]` section; [`client`]: requests with retries; [`run`]: the loop;
//!   [`error`]: its errors.
//!
//! Post i of a run is row `random(seed, i)`, so a seed fixes the sequence whatever the
//! concurrency. Connection errors, timeouts, 429 and 5xx are retried with backoff; other 4xx are
//! reported with the server's message and not retried.

pub mod client;
pub mod config;
pub mod error;
pub mod run;

pub use config::{EmulateConfig, Mode};
pub use error::{Error, Result};
pub use run::{Emulator, Summary};
