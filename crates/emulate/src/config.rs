//! The `[emulate]` configuration section.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// To the topics (`POST /topics/<p>.pin`): the batch layer.
    Batch,
    /// To the streams (`PUT /streams/streaming-<p>-pin/record`): the speed layer.
    Stream,
    /// To both.
    Both,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "batch" => Ok(Mode::Batch),
            "stream" => Ok(Mode::Stream),
            "both" => Ok(Mode::Both),
            other => Err(format!("unknown mode {other:?}: use batch, stream or both")),
        }
    }
}

/// The `[emulate]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmulateConfig {
    /// The API to post to, with any stage path (`https://abc.execute-api.../prod`).
    pub api_url: String,
    /// `batch`, `stream` or `both`.
    pub mode: Mode,
    /// Posts in flight at once.
    pub concurrency: usize,
    /// Posts per request (several records per request).
    pub batch_size: usize,
    /// Posts per second; 0 for as fast as possible.
    pub rate: f64,
    /// Sleep a random 0–1 s after each post, like the classic script.
    pub think_time: bool,
    /// Timeout of one request (e.g. `"10s"`).
    pub timeout: String,
    /// Retries of a request after a connection error, timeout, 429 or 5xx.
    pub retries: u32,
    /// `x-api-key` to send; set it through the environment (`PINPIPE_EMULATE__API_KEY`).
    pub api_key: String,
}

impl Default for EmulateConfig {
    fn default() -> Self {
        EmulateConfig {
            api_url: "http://127.0.0.1:8082".into(),
            mode: Mode::Batch,
            concurrency: 4,
            batch_size: 1,
            rate: 0.0,
            think_time: false,
            timeout: "10s".into(),
            retries: 5,
            api_key: String::new(),
        }
    }
}

/// A validated `[emulate]` section.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Base URL without a trailing slash.
    pub api_url: String,
    /// See [`EmulateConfig`].
    pub mode: Mode,
    /// See [`EmulateConfig`].
    pub concurrency: usize,
    /// See [`EmulateConfig`].
    pub batch_size: usize,
    /// Posts per second, `None` for unlimited.
    pub rate: Option<f64>,
    /// See [`EmulateConfig`].
    pub think_time: bool,
    /// Request timeout.
    pub timeout: Duration,
    /// See [`EmulateConfig`].
    pub retries: u32,
    /// `x-api-key`, if any.
    pub api_key: Option<String>,
}

impl EmulateConfig {
    /// Checks the section; returns `(key, message)` for the first bad value.
    pub fn validate(&self) -> Result<Resolved, (&'static str, String)> {
        let url = self.api_url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) || reqwest::Url::parse(url).is_err() {
            return Err(("emulate.api_url", format!("{:?} is not an http:// or https:// URL", self.api_url)));
        }
        if self.concurrency == 0 || self.concurrency > 10_000 {
            return Err(("emulate.concurrency", "must be between 1 and 10000".into()));
        }
        if self.batch_size == 0 || self.batch_size > 500 {
            return Err(("emulate.batch_size", "must be between 1 and 500 (Kinesis' PutRecords limit)".into()));
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return Err(("emulate.rate", "must be a number of posts per second, 0 for unlimited".into()));
        }
        let timeout = humantime::parse_duration(&self.timeout)
            .map_err(|e| ("emulate.timeout", format!("{:?} is not a duration like 10s: {e}", self.timeout)))?;
        Ok(Resolved {
            api_url: url.to_owned(),
            mode: self.mode,
            concurrency: self.concurrency,
            batch_size: self.batch_size,
            rate: (self.rate > 0.0).then_some(self.rate),
            think_time: self.think_time,
            timeout,
            retries: self.retries,
            api_key: (!self.api_key.is_empty()).then(|| self.api_key.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        let r = EmulateConfig {
            api_url: "https://x.execute-api.us-east-1.amazonaws.com/prod/".into(),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(r.api_url, "https://x.execute-api.us-east-1.amazonaws.com/prod");
        assert_eq!(r.rate, None);
        for (c, key) in [
            (EmulateConfig { api_url: "ftp://x".into(), ..Default::default() }, "emulate.api_url"),
            (EmulateConfig { concurrency: 0, ..Default::default() }, "emulate.concurrency"),
            (EmulateConfig { batch_size: 501, ..Default::default() }, "emulate.batch_size"),
            (EmulateConfig { rate: -1.0, ..Default::default() }, "emulate.rate"),
            (EmulateConfig { timeout: "soon".into(), ..Default::default() }, "emulate.timeout"),
        ] {
            assert_eq!(c.validate().unwrap_err().0, key);
        }
        assert_eq!("both".parse::<Mode>(), Ok(Mode::Both));
        assert!("all".parse::<Mode>().is_err());
    }
}
