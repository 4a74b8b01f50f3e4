//! The `[sink]` configuration section.

use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// The `[sink]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// Topics to consume; unset means `^<prefix>\..*` (the three batch topics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topics_regex: Option<String>,
    /// Records per object (1, as the classic setup used).
    pub flush_size: usize,
    /// Write a partial object after this long without new data (e.g. `"30s"`); empty for never.
    pub rotate_interval: String,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig { topics_regex: None, flush_size: 1, rotate_interval: String::new() }
    }
}

/// A validated `[sink]` section.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Topics to consume (matched against the whole name).
    pub topics: Regex,
    /// Records per object.
    pub flush_size: usize,
    /// Idle time after which a partial object is written.
    pub rotate_interval: Option<Duration>,
}

impl SinkConfig {
    /// Checks the section; returns `(key, message)` for the first bad value.
    pub fn validate(&self, prefix: &str) -> Result<Resolved, (&'static str, String)> {
        let pattern = self.topics_regex.clone().unwrap_or_else(|| format!("{}\\..*", regex::escape(prefix)));
        let topics = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| ("sink.topics_regex", e.to_string()))?;
        if self.flush_size == 0 {
            return Err(("sink.flush_size", "must be at least 1".into()));
        }
        let rotate_interval = match self.rotate_interval.trim() {
            "" | "0" => None,
            text => Some(
                humantime::parse_duration(text)
                    .map_err(|e| ("sink.rotate_interval", format!("{text:?} is not a duration like 30s or 5m: {e}")))?,
            ),
        };
        Ok(Resolved { topics, flush_size: self.flush_size, rotate_interval })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_prefix_topics() {
        let r = SinkConfig::default().validate("pinterest").unwrap();
        assert!(r.topics.is_match("pinterest.pin"));
        assert!(!r.topics.is_match("pinterestXpin"));
        assert!(!r.topics.is_match("other.pinterest.pin"));
        assert!(!r.topics.is_match("streaming-pinterest-pin"));
        assert_eq!((r.flush_size, r.rotate_interval), (1, None));
        let r = SinkConfig { rotate_interval: "1m 30s".into(), ..Default::default() }.validate("p").unwrap();
        assert_eq!(r.rotate_interval, Some(Duration::from_secs(90)));
    }

    #[test]
    fn bad_values_name_their_key() {
        let c = SinkConfig { topics_regex: Some("(".into()), ..Default::default() };
        assert_eq!(c.validate("p").unwrap_err().0, "sink.topics_regex");
        let c = SinkConfig { flush_size: 0, ..Default::default() };
        assert_eq!(c.validate("p").unwrap_err().0, "sink.flush_size");
        let c = SinkConfig { rotate_interval: "soon".into(), ..Default::default() };
        assert_eq!(c.validate("p").unwrap_err().0, "sink.rotate_interval");
    }
}
