//! The `[api]` configuration section.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[api]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address to listen on (the REST Proxy's port by default).
    pub listen: String,
    /// A path prefix every route is under, like an API Gateway stage (`/prod`); empty for none.
    pub base_path: String,
    /// Accepted `x-api-key` values, comma-separated; empty turns key checks off. Set it through
    /// the environment (`PINPIPE_API__API_KEYS`), not in a file.
    pub api_keys: String,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Most records in one produce request (stream `PutRecords` is also capped at Kinesis' 500).
    pub max_records: usize,
    /// Largest single key + value accepted (Kafka's and Kinesis' default of 1 MiB).
    pub max_record_bytes: usize,
    /// Create unknown topics and streams on first produce.
    pub auto_create_topics: bool,
    /// Serve `GET /metrics` without a key even when keys are set (by default it needs one: it
    /// names every topic).
    pub metrics_public: bool,
    /// Time a client has to send a request's headers; also how long an idle keep-alive
    /// connection is kept (e.g. `10s`).
    pub header_timeout: String,
    /// Time a client has to send a request's whole body (e.g. `30s`).
    pub body_timeout: String,
    /// Most connections open at once; more wait to be accepted. Lowered to half the process'
    /// file-descriptor limit when that is smaller.
    pub max_connections: usize,
    /// On shutdown, time in-flight requests get to finish before their connections are closed.
    pub shutdown_timeout: String,
    /// Most bytes of produce requests in flight at once (received, not yet answered because
    /// the log has not made them durable). Beyond it produces are answered 429 with
    /// `Retry-After` instead of queueing: the memory they hold stays bounded. At least
    /// `max_body_bytes`.
    pub max_inflight_bytes: usize,
    /// A REST Proxy consumer instance not used for this long is deleted (Confluent's
    /// `consumer.instance.timeout.ms`, 5 minutes by default).
    pub consumer_instance_timeout: String,
    /// Most consumer instances at once (over every group).
    pub max_consumer_instances: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8082".into(),
            base_path: String::new(),
            api_keys: String::new(),
            max_body_bytes: 16 << 20,
            max_records: 10_000,
            max_record_bytes: 1 << 20,
            auto_create_topics: true,
            metrics_public: false,
            header_timeout: "10s".into(),
            body_timeout: "30s".into(),
            max_connections: 1024,
            shutdown_timeout: "10s".into(),
            max_inflight_bytes: 256 << 20,
            consumer_instance_timeout: "5m".into(),
            max_consumer_instances: 1000,
        }
    }
}

/// A validated `[api]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Listen address.
    pub listen: SocketAddr,
    /// Normalised base path: empty, or `/stage` without a trailing slash.
    pub base_path: String,
    /// Accepted API keys; empty means no check.
    pub api_keys: Vec<String>,
    /// See [`ApiConfig`].
    pub max_body_bytes: usize,
    /// See [`ApiConfig`].
    pub max_records: usize,
    /// See [`ApiConfig`].
    pub max_record_bytes: usize,
    /// See [`ApiConfig`].
    pub auto_create_topics: bool,
    /// Partitions of automatically created topics and streams.
    pub default_partitions: u32,
    /// See [`ApiConfig`].
    pub metrics_public: bool,
    /// See [`ApiConfig`].
    pub header_timeout: Duration,
    /// See [`ApiConfig`].
    pub body_timeout: Duration,
    /// See [`ApiConfig`].
    pub max_connections: usize,
    /// See [`ApiConfig`].
    pub shutdown_timeout: Duration,
    /// See [`ApiConfig`].
    pub max_inflight_bytes: usize,
    /// See [`ApiConfig`].
    pub consumer_instance_timeout: Duration,
    /// See [`ApiConfig`].
    pub max_consumer_instances: usize,
    /// Where committed consumer-group offsets are kept (`<data_dir>/api/consumers`); `None`
    /// keeps them in memory only (tests). Set by the binary, not configured.
    pub state_dir: Option<std::path::PathBuf>,
}

impl ApiConfig {
    /// Checks the section; returns `(key, message)` for the first bad value.
    pub fn validate(&self, default_partitions: u32) -> Result<Resolved, (&'static str, String)> {
        let listen = self
            .listen
            .parse()
            .map_err(|_| ("api.listen", format!("{:?} is not an address like 127.0.0.1:8082", self.listen)))?;
        let base = self.base_path()?;
        self.check_limits()?;
        let duration = |key: &'static str, text: &str| {
            humantime::parse_duration(text.trim())
                .ok()
                .filter(|d| (Duration::from_millis(10)..=Duration::from_secs(3600)).contains(d))
                .ok_or_else(|| (key, format!("{text:?} is not a duration between 10ms and 1h, such as 10s")))
        };
        let header_timeout = duration("api.header_timeout", &self.header_timeout)?;
        let body_timeout = duration("api.body_timeout", &self.body_timeout)?;
        let shutdown_timeout = duration("api.shutdown_timeout", &self.shutdown_timeout)?;
        let consumer_instance_timeout = humantime::parse_duration(self.consumer_instance_timeout.trim())
            .ok()
            .filter(|d| (Duration::from_secs(1)..=Duration::from_secs(7 * 86_400)).contains(d))
            .ok_or_else(|| {
                (
                    "api.consumer_instance_timeout",
                    format!("{:?} is not a duration between 1s and 7 days, such as 5m", self.consumer_instance_timeout),
                )
            })?;
        let api_keys = self.api_keys.split(',').map(str::trim).filter(|k| !k.is_empty()).map(String::from).collect();
        Ok(Resolved {
            listen,
            base_path: base.to_owned(),
            api_keys,
            max_body_bytes: self.max_body_bytes,
            max_records: self.max_records,
            max_record_bytes: self.max_record_bytes,
            auto_create_topics: self.auto_create_topics,
            default_partitions,
            metrics_public: self.metrics_public,
            header_timeout,
            body_timeout,
            max_connections: self.max_connections,
            shutdown_timeout,
            max_inflight_bytes: self.max_inflight_bytes,
            consumer_instance_timeout,
            max_consumer_instances: self.max_consumer_instances,
            state_dir: None,
        })
    }

    /// `base_path` without its trailing `/`: empty, or `/`-separated segments of letters,
    /// digits, `-`, `_` and `.` (no `.` or `..` segment).
    fn base_path(&self) -> Result<&str, (&'static str, String)> {
        let base = self.base_path.trim_end_matches('/');
        let ok = base.is_empty()
            || base.starts_with('/')
                && base[1..].split('/').all(|seg| {
                    !seg.is_empty()
                        && seg != "."
                        && seg != ".."
                        && seg.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                });
        if ok { Ok(base) } else { Err(("api.base_path", format!("{:?} is not a path like /prod", self.base_path))) }
    }

    /// The size and count limits.
    fn check_limits(&self) -> Result<(), (&'static str, String)> {
        let at_least_one = [
            ("api.max_records", self.max_records),
            ("api.max_record_bytes", self.max_record_bytes),
            ("api.max_connections", self.max_connections),
            ("api.max_consumer_instances", self.max_consumer_instances),
        ];
        if self.max_body_bytes < 1024 {
            return Err(("api.max_body_bytes", "must be at least 1024".into()));
        }
        if let Some((key, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err((key, "must be at least 1".into()));
        }
        if self.max_inflight_bytes < self.max_body_bytes {
            return Err((
                "api.max_inflight_bytes",
                format!(
                    "must be at least api.max_body_bytes ({}), or no body of that size could be taken",
                    self.max_body_bytes
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_and_normalises() {
        let r = ApiConfig { base_path: "/prod/".into(), api_keys: "a, b,,".into(), ..ApiConfig::default() }
            .validate(1)
            .unwrap();
        assert_eq!(r.base_path, "/prod");
        assert_eq!(r.api_keys, ["a", "b"]);
        for (c, key) in [
            (ApiConfig { listen: "nowhere".into(), ..ApiConfig::default() }, "api.listen"),
            (ApiConfig { base_path: "prod".into(), ..ApiConfig::default() }, "api.base_path"),
            (ApiConfig { base_path: "/a/../b".into(), ..ApiConfig::default() }, "api.base_path"),
            (ApiConfig { max_records: 0, ..ApiConfig::default() }, "api.max_records"),
            (ApiConfig { max_inflight_bytes: 1 << 20, ..ApiConfig::default() }, "api.max_inflight_bytes"),
            (
                ApiConfig { consumer_instance_timeout: "0s".into(), ..ApiConfig::default() },
                "api.consumer_instance_timeout",
            ),
        ] {
            assert_eq!(c.validate(1).unwrap_err().0, key);
        }
    }
}
