//! The `[sink]` configuration section, named and behaving like the Confluent S3 sink
//! connector's settings: `flush_size` (`flush.size`), `rotate_interval` (`rotate.interval.ms`),
//! `rotate_schedule_interval` (`rotate.schedule.interval.ms`), `partitioner`
//! (`partitioner.class`: default, field, time), `partition_fields` (`partition.field.name`),
//! `path_format`, `partition_duration`, `timestamp_extractor`, `timestamp_field`, `timezone`,
//! `format` (`format.class`: json, parquet) and `compression` (`s3.compression.type` for JSON,
//! `parquet.codec` for Parquet).

use std::time::Duration;

use pinpipe_store::layout::{Format, ParquetCodec};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::partitioner::{PathFormat, Scheme, TimeZone};

/// The `[sink]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// Topics to consume; unset means `^<prefix>\..*` (the three batch topics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topics_regex: Option<String>,
    /// Records per commit (1, as the classic setup used): an object holds at most this many.
    pub flush_size: usize,
    /// Close the objects when a record's time (from `timestamp_extractor`) is this far after the
    /// first record's, or when a record belongs in another directory (one object open at a
    /// time); empty for never. E.g. `"1h"`.
    pub rotate_interval: String,
    /// Close the objects at every multiple of this wall-clock interval (in `timezone`) however
    /// few records they hold, e.g. `"30s"`; empty for never.
    pub rotate_schedule_interval: String,
    /// `default` (`partition=<p>/`), `field` (`<field>=<value>/...`) or `time` (`path_format`).
    pub partitioner: PartitionerKind,
    /// The field partitioner's fields of the record's JSON value, e.g. `["category"]`.
    pub partition_fields: Vec<String>,
    /// The time partitioner's directory format (Joda-Time patterns, literal text in quotes),
    /// e.g. `"'dt'=YYYY-MM-dd/'hour'=HH"`.
    pub path_format: String,
    /// The time partitioner's granularity: a record's time is rounded down to a multiple of it,
    /// e.g. `"1h"`.
    pub partition_duration: String,
    /// Where a record's time comes from: `record` (the log's timestamp), `record_field` (a
    /// field of the value, `timestamp_field`), `wallclock` (the time it is written).
    pub timestamp_extractor: TimestampExtractor,
    /// The field `record_field` reads: an ISO-8601 date-time (`2020-08-28T03:52:47`, zone
    /// optional) or milliseconds since the epoch.
    pub timestamp_field: String,
    /// Time zone of `path_format` and scheduled rotation: `UTC`, an IANA name
    /// (`Europe/Berlin`) or a fixed offset (`+02:00`).
    pub timezone: String,
    /// `json` (one value per line) or `parquet` (the raw schema of each topic's records).
    pub format: FormatKind,
    /// JSON: `none` or `gzip`. Parquet: `snappy` (the default), `gzip`, `zstd` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
}

/// `sink.partitioner`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionerKind {
    /// `partition=<p>/`, the connector's `DefaultPartitioner`.
    #[default]
    Default,
    /// `<field>=<value>/...`, the connector's `FieldPartitioner`.
    Field,
    /// `path_format` of the record's time, the connector's `TimeBasedPartitioner`.
    Time,
}

/// `sink.timestamp_extractor`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampExtractor {
    /// The record's timestamp in the log.
    #[default]
    Record,
    /// A field of the record's value.
    RecordField,
    /// The time the sink handles the record.
    Wallclock,
}

/// `sink.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatKind {
    /// One JSON value per line.
    #[default]
    Json,
    /// Parquet.
    Parquet,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            topics_regex: None,
            flush_size: 1,
            rotate_interval: String::new(),
            rotate_schedule_interval: String::new(),
            partitioner: PartitionerKind::Default,
            partition_fields: Vec::new(),
            path_format: String::new(),
            partition_duration: String::new(),
            timestamp_extractor: TimestampExtractor::Record,
            timestamp_field: String::new(),
            timezone: "UTC".into(),
            format: FormatKind::Json,
            compression: None,
        }
    }
}

/// A validated `[sink]` section.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Topics to consume (matched against the whole name).
    pub topics: Regex,
    /// The prefix of the topic names (a topic `<prefix>.pin` holds pin records, ...).
    pub prefix: String,
    /// Records per commit.
    pub flush_size: usize,
    /// Record-time rotation.
    pub rotate_interval: Option<Duration>,
    /// Wall-clock rotation.
    pub rotate_schedule_interval: Option<Duration>,
    /// How records are placed in directories.
    pub scheme: Scheme,
    /// Where a record's time comes from.
    pub extractor: TimestampExtractor,
    /// The field `record_field` reads.
    pub timestamp_field: String,
    /// Time zone of paths and scheduled rotation.
    pub timezone: TimeZone,
    /// How objects are encoded.
    pub format: Format,
}

type Invalid = (&'static str, String);

fn duration(key: &'static str, text: &str) -> Result<Option<Duration>, Invalid> {
    match text.trim() {
        "" | "0" => Ok(None),
        text => humantime::parse_duration(text)
            .map(Some)
            .map_err(|e| (key, format!("{text:?} is not a duration like 30s or 5m: {e}"))),
    }
}

impl SinkConfig {
    /// Checks the section; returns `(key, message)` for the first bad value.
    pub fn validate(&self, prefix: &str) -> Result<Resolved, Invalid> {
        let pattern = self.topics_regex.clone().unwrap_or_else(|| format!("{}\\..*", regex::escape(prefix)));
        let topics = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| ("sink.topics_regex", e.to_string()))?;
        if self.flush_size == 0 {
            return Err(("sink.flush_size", "must be at least 1".into()));
        }
        let timezone = TimeZone::parse(&self.timezone).map_err(|e| ("sink.timezone", e))?;
        Ok(Resolved {
            topics,
            prefix: prefix.to_owned(),
            flush_size: self.flush_size,
            rotate_interval: duration("sink.rotate_interval", &self.rotate_interval)?,
            rotate_schedule_interval: duration("sink.rotate_schedule_interval", &self.rotate_schedule_interval)?,
            scheme: self.scheme()?,
            extractor: self.timestamp_extractor,
            timestamp_field: self.extractor_field()?,
            timezone,
            format: self.format()?,
        })
    }

    fn scheme(&self) -> Result<Scheme, Invalid> {
        match self.partitioner {
            PartitionerKind::Default => Ok(Scheme::Default),
            PartitionerKind::Field => {
                if self.partition_fields.is_empty() || self.partition_fields.iter().any(|f| f.trim().is_empty()) {
                    return Err((
                        "sink.partition_fields",
                        "the field partitioner needs field names, e.g. [\"category\"]".into(),
                    ));
                }
                Ok(Scheme::Field(self.partition_fields.clone()))
            }
            PartitionerKind::Time => {
                let format = PathFormat::parse(&self.path_format).map_err(|e| ("sink.path_format", e))?;
                let granularity = duration("sink.partition_duration", &self.partition_duration)?
                    .ok_or(("sink.partition_duration", "the time partitioner needs a duration, e.g. \"1h\"".into()))?;
                let ms = i64::try_from(granularity.as_millis()).unwrap_or(i64::MAX);
                if ms < 1000 {
                    return Err(("sink.partition_duration", "must be at least 1s".into()));
                }
                Ok(Scheme::Time { format, duration_ms: ms })
            }
        }
    }

    fn extractor_field(&self) -> Result<String, Invalid> {
        let field = self.timestamp_field.trim();
        if self.timestamp_extractor == TimestampExtractor::RecordField && field.is_empty() {
            return Err((
                "sink.timestamp_field",
                "timestamp_extractor = \"record_field\" needs the field, e.g. \"timestamp\"".into(),
            ));
        }
        Ok(field.to_owned())
    }

    fn format(&self) -> Result<Format, Invalid> {
        let compression = self.compression.as_deref().map(str::trim);
        let bad = |allowed: &str| {
            let given = compression.unwrap_or_default();
            ("sink.compression", format!("{given:?} is not a compression of format {:?}: use {allowed}", self.format))
        };
        match (self.format, compression) {
            (FormatKind::Json, None | Some("none" | "")) => Ok(Format::Json),
            (FormatKind::Json, Some("gzip")) => Ok(Format::JsonGzip),
            (FormatKind::Json, Some(_)) => Err(bad("none or gzip")),
            (FormatKind::Parquet, None | Some("snappy" | "")) => Ok(Format::Parquet(ParquetCodec::Snappy)),
            (FormatKind::Parquet, Some("gzip")) => Ok(Format::Parquet(ParquetCodec::Gzip)),
            (FormatKind::Parquet, Some("zstd")) => Ok(Format::Parquet(ParquetCodec::Zstd)),
            (FormatKind::Parquet, Some("none")) => Ok(Format::Parquet(ParquetCodec::Uncompressed)),
            (FormatKind::Parquet, Some(_)) => Err(bad("snappy, gzip, zstd or none")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn defaults_match_the_prefix_topics() {
        let r = SinkConfig::default().validate("pinterest").unwrap();
        assert!(r.topics.is_match("pinterest.pin"));
        assert!(!r.topics.is_match("pinterestXpin"));
        assert!(!r.topics.is_match("other.pinterest.pin"));
        assert!(!r.topics.is_match("streaming-pinterest-pin"));
        assert_eq!((r.flush_size, r.rotate_interval, r.rotate_schedule_interval), (1, None, None));
        assert_eq!((r.scheme.clone(), r.format), (Scheme::Default, Format::Json));
        let r = SinkConfig { rotate_schedule_interval: "1m 30s".into(), ..Default::default() }.validate("p").unwrap();
        assert_eq!(r.rotate_schedule_interval, Some(Duration::from_secs(90)));
    }

    #[test]
    fn partitioners_and_formats_resolve() {
        let c = SinkConfig {
            partitioner: PartitionerKind::Time,
            path_format: "'dt'=YYYY-MM-dd/'hour'=HH".into(),
            partition_duration: "1h".into(),
            timestamp_extractor: TimestampExtractor::RecordField,
            timestamp_field: "timestamp".into(),
            timezone: "Europe/Berlin".into(),
            format: FormatKind::Parquet,
            ..Default::default()
        };
        let r = c.validate("p").unwrap();
        assert!(matches!(r.scheme, Scheme::Time { duration_ms: 3_600_000, .. }));
        assert_eq!(r.format, Format::Parquet(ParquetCodec::Snappy));
        assert_eq!(r.timestamp_field, "timestamp");
        let gz = SinkConfig { compression: Some("gzip".into()), ..Default::default() }.validate("p").unwrap();
        assert_eq!(gz.format, Format::JsonGzip);
        let field = SinkConfig {
            partitioner: PartitionerKind::Field,
            partition_fields: vec!["category".into()],
            ..Default::default()
        };
        assert_eq!(field.validate("p").unwrap().scheme, Scheme::Field(vec!["category".into()]));
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: Vec<(SinkConfig, &str)> = vec![
            (SinkConfig { topics_regex: Some("(".into()), ..Default::default() }, "sink.topics_regex"),
            (SinkConfig { flush_size: 0, ..Default::default() }, "sink.flush_size"),
            (SinkConfig { rotate_interval: "soon".into(), ..Default::default() }, "sink.rotate_interval"),
            (
                SinkConfig { rotate_schedule_interval: "later".into(), ..Default::default() },
                "sink.rotate_schedule_interval",
            ),
            (SinkConfig { partitioner: PartitionerKind::Field, ..Default::default() }, "sink.partition_fields"),
            (
                SinkConfig {
                    partitioner: PartitionerKind::Time,
                    path_format: "YYYY-qq".into(),
                    partition_duration: "1h".into(),
                    ..Default::default()
                },
                "sink.path_format",
            ),
            (
                SinkConfig { partitioner: PartitionerKind::Time, path_format: "YYYY".into(), ..Default::default() },
                "sink.partition_duration",
            ),
            (
                SinkConfig { timestamp_extractor: TimestampExtractor::RecordField, ..Default::default() },
                "sink.timestamp_field",
            ),
            (SinkConfig { timezone: "Mars/Olympus".into(), ..Default::default() }, "sink.timezone"),
            (SinkConfig { compression: Some("snappy".into()), ..Default::default() }, "sink.compression"),
            (
                SinkConfig { format: FormatKind::Parquet, compression: Some("gz".into()), ..Default::default() },
                "sink.compression",
            ),
        ];
        for (c, key) in cases {
            assert_eq!(c.validate("p").unwrap_err().0, key, "{c:?}");
        }
    }
}
