//! The `[log.kinesis]` configuration section: where the Kinesis backend connects.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[log.kinesis]` section. Credentials never come from here: the AWS default chain
/// (environment, profile, SSO, web identity, instance metadata) provides them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KinesisConfig {
    /// AWS region; unset takes the default chain's (`AWS_REGION`, the profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Endpoint override for a Kinesis-compatible server (e.g. `http://127.0.0.1:4567`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// How often a reader waiting for new records polls a shard, in milliseconds (Kinesis has
    /// no long poll; a shard serves 5 reads per second to all its readers together). Unset: 250.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
}

/// A validated [`KinesisConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKinesis {
    /// See [`KinesisConfig`].
    pub region: Option<String>,
    /// See [`KinesisConfig`].
    pub endpoint: Option<String>,
    /// See [`KinesisConfig`].
    pub poll_interval: Duration,
}

impl KinesisConfig {
    /// Checks the section; returns `(key, message)` for the first bad value.
    pub fn validate(&self) -> Result<ResolvedKinesis, (&'static str, String)> {
        if let Some(region) = &self.region
            && (region.is_empty() || !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(("log.kinesis.region", format!("{region:?} is not a region name (e.g. us-east-1)")));
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(("log.kinesis.endpoint", format!("{endpoint:?} must be an http:// or https:// URL")));
        }
        let poll = self.poll_interval_ms.unwrap_or(250);
        if !(10..=60_000).contains(&poll) {
            return Err(("log.kinesis.poll_interval_ms", "must be between 10 and 60000".into()));
        }
        Ok(ResolvedKinesis {
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            poll_interval: Duration::from_millis(poll),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn validates_region_endpoint_and_poll_interval() {
        let ok = KinesisConfig {
            region: Some("eu-west-1".into()),
            endpoint: Some("http://127.0.0.1:1".into()),
            poll_interval_ms: None,
        };
        assert_eq!(ok.validate().unwrap().poll_interval, Duration::from_millis(250));
        let bad_region = KinesisConfig { region: Some("eu west".into()), ..Default::default() };
        assert_eq!(bad_region.validate().unwrap_err().0, "log.kinesis.region");
        let bad_endpoint = KinesisConfig { endpoint: Some("127.0.0.1:4567".into()), ..Default::default() };
        assert_eq!(bad_endpoint.validate().unwrap_err().0, "log.kinesis.endpoint");
        let bad_poll = KinesisConfig { poll_interval_ms: Some(5), ..Default::default() };
        assert_eq!(bad_poll.validate().unwrap_err().0, "log.kinesis.poll_interval_ms");
    }
}
