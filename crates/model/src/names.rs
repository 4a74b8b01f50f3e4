//! Every name pinpipe derives from the prefix, in one place, and the rules for names that come
//! from outside (request paths, configuration).
//!
//! | kind | topic (Kafka / REST Proxy) | stream (Kinesis) | Delta table | source table |
//! |---|---|---|---|---|
//! | pin | `<p>.pin` | `streaming-<p>-pin` | `<p>_pin_table` | `pinterest_data` |
//! | geo | `<p>.geo` | `streaming-<p>-geo` | `<p>_geo_table` | `geolocation_data` |
//! | user | `<p>.user` | `streaming-<p>-user` | `<p>_user_table` | `user_data` |
//!
//! Every validated name is a single path component: it never contains `/` or `\`, is never `.` or
//! `..`, so a name can be used as a directory name under the data directory without escaping it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The default prefix, as in the classic setup's `pinterest.pin` topics.
pub const DEFAULT_PREFIX: &str = "pinterest";

/// The three kinds of record; each post has one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The pin itself (`pinterest_data`).
    Pin,
    /// Where and when it was posted (`geolocation_data`).
    Geo,
    /// Who posted it (`user_data`).
    User,
}

impl Kind {
    /// All kinds in their canonical order.
    pub const ALL: [Kind; 3] = [Kind::Pin, Kind::Geo, Kind::User];

    /// `pin`, `geo` or `user`: the suffix used in topic, stream and table names.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pin => "pin",
            Kind::Geo => "geo",
            Kind::User => "user",
        }
    }

    /// The source database table holding this kind.
    pub fn source_table(self) -> &'static str {
        match self {
            Kind::Pin => "pinterest_data",
            Kind::Geo => "geolocation_data",
            Kind::User => "user_data",
        }
    }

    /// The key column of the raw record and source table (`index` for pins, `ind` otherwise).
    pub fn key_column(self) -> &'static str {
        match self {
            Kind::Pin => "index",
            Kind::Geo | Kind::User => "ind",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names derived from a validated prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// Validates `prefix` (1–64 characters of `A-Z a-z 0-9 _`) and derives names from it.
    pub fn new(prefix: &str) -> Result<Self> {
        validate_prefix(prefix)?;
        Ok(Names { prefix: prefix.to_owned() })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Kafka topic of a kind: `<p>.pin`.
    pub fn topic(&self, kind: Kind) -> String {
        format!("{}.{}", self.prefix, kind)
    }

    /// Kinesis stream of a kind: `streaming-<p>-pin`.
    pub fn stream(&self, kind: Kind) -> String {
        format!("streaming-{}-{}", self.prefix, kind)
    }

    /// Delta table of a kind: `<p>_pin_table`.
    pub fn table(&self, kind: Kind) -> String {
        format!("{}_{}_table", self.prefix, kind)
    }

    /// The kind whose topic is `topic`, if it is one of this prefix's topics.
    pub fn kind_of_topic(&self, topic: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| self.topic(*k) == topic)
    }

    /// The kind whose stream is `stream`, if it is one of this prefix's streams.
    pub fn kind_of_stream(&self, stream: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| self.stream(*k) == stream)
    }
}

impl Default for Names {
    fn default() -> Self {
        Names { prefix: DEFAULT_PREFIX.to_owned() }
    }
}

fn invalid(what: &'static str, name: &str, reason: impl Into<String>) -> Error {
    Error::InvalidName { what, name: name.chars().take(300).collect(), reason: reason.into() }
}

fn check(
    what: &'static str,
    name: &str,
    max_len: usize,
    allowed: impl Fn(char) -> bool,
    allowed_text: &str,
) -> Result<()> {
    if name.is_empty() {
        return Err(invalid(what, name, "it is empty"));
    }
    if name.len() > max_len {
        return Err(invalid(what, name, format!("it is longer than {max_len} characters")));
    }
    if let Some(c) = name.chars().find(|c| !allowed(*c)) {
        return Err(invalid(what, name, format!("character {c:?} is not allowed (allowed: {allowed_text})")));
    }
    if name == "." || name == ".." {
        return Err(invalid(what, name, "`.` and `..` are reserved"));
    }
    Ok(())
}

/// A prefix: 1–64 characters of `A-Z a-z 0-9 _`, so that every derived name is valid everywhere
/// (Kafka, Kinesis, Delta/Spark table names).
pub fn validate_prefix(prefix: &str) -> Result<()> {
    check("prefix", prefix, 64, |c| c.is_ascii_alphanumeric() || c == '_', "A-Z a-z 0-9 _")
}

/// A topic name, by Kafka's rules: 1–249 characters of `A-Z a-z 0-9 . _ -`, not `.` or `..`.
pub fn validate_topic(name: &str) -> Result<()> {
    check("topic", name, 249, |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'), "A-Z a-z 0-9 . _ -")
}

/// A stream name, by Kinesis' rules: 1–128 characters of `A-Z a-z 0-9 . _ -`, not `.` or `..`.
pub fn validate_stream(name: &str) -> Result<()> {
    check("stream", name, 128, |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'), "A-Z a-z 0-9 . _ -")
}

/// A table name: 1–128 characters of `A-Z a-z 0-9 _`, not starting with a digit (a plain SQL
/// identifier in Spark, DuckDB and DataFusion).
pub fn validate_table(name: &str) -> Result<()> {
    check("table", name, 128, |c| c.is_ascii_alphanumeric() || c == '_', "A-Z a-z 0-9 _")?;
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(invalid("table", name, "it starts with a digit"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_classic_names() {
        let n = Names::default();
        assert_eq!(n.topic(Kind::Pin), "pinterest.pin");
        assert_eq!(n.topic(Kind::User), "pinterest.user");
        assert_eq!(n.stream(Kind::Geo), "streaming-pinterest-geo");
        assert_eq!(n.table(Kind::User), "pinterest_user_table");
        let n = Names::new("0a1b2c3d4e5f").unwrap();
        assert_eq!(n.topic(Kind::Geo), "0a1b2c3d4e5f.geo");
        assert_eq!(n.kind_of_topic("0a1b2c3d4e5f.geo"), Some(Kind::Geo));
        assert_eq!(n.kind_of_topic("pinterest.geo"), None);
        assert_eq!(n.kind_of_stream("streaming-0a1b2c3d4e5f-user"), Some(Kind::User));
    }

    #[test]
    fn every_derived_name_passes_its_own_rule() {
        for p in ["p", "pinterest", "A_b_9", &"x".repeat(64)] {
            let n = Names::new(p).unwrap();
            for k in Kind::ALL {
                validate_topic(&n.topic(k)).unwrap();
                validate_stream(&n.stream(k)).unwrap();
                validate_table(&n.table(k)).unwrap();
            }
        }
    }

    #[test]
    fn rejects_names_that_could_escape_a_directory() {
        for bad in ["", ".", "..", "../etc", "a/b", "a\\b", "a b", "é", "a\0b", "%2e%2e"] {
            assert!(validate_topic(bad).is_err(), "topic {bad:?}");
            assert!(validate_stream(bad).is_err(), "stream {bad:?}");
            assert!(validate_table(bad).is_err(), "table {bad:?}");
        }
        assert!(validate_topic(&"a".repeat(249)).is_ok());
        assert!(validate_topic(&"a".repeat(250)).is_err());
        assert!(validate_stream(&"a".repeat(129)).is_err());
        assert!(validate_table("1abc").is_err());
        assert!(validate_table("with.dot").is_err());
        assert!(Names::new("has-dash").is_err());
        assert!(Names::new(&"x".repeat(65)).is_err());
    }

    #[test]
    fn error_names_the_rule() {
        let e = validate_topic("a/b").unwrap_err().to_string();
        assert_eq!(e, r#"invalid topic name "a/b": character '/' is not allowed (allowed: A-Z a-z 0-9 . _ -)"#);
    }
}
