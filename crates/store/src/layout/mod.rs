//! The raw object layout, written by the sink and read by the batch job, as the Confluent S3 sink
//! connector names its objects:
//!
//! ```text
//! topics/<topic>/<path>/<topic>+<kafka partition>+<start offset, 10 digits><extension>
//! ```
//!
//! `<path>` is the encoded partition: `partition=<p>` with the connector's default partitioner,
//! `<field>=<value>/...` with its field partitioner, and a formatted time (`dt=2026-11-29/hour=13`)
//! with its time-based one. The extension names the [`Format`]: `.json`, `.json.gz`,
//! `.snappy.parquet` (`.gz.parquet`, `.zstd.parquet`, `.parquet` for the other codecs).
//!
//! This module is the one place that knows the names: building them, parsing them, listing a
//! topic's objects from given offsets on ([`listing`]; with the default partitioner through the
//! store's "start after" listing, so a reader that has ingested most of a partition does not list
//! all of it again), the sink's commit marker for the partitioners whose objects interleave
//! ([`listing::SinkCommit`]); and how a record becomes exactly one line of a JSON object
//! ([`frame`]), whatever its bytes.

pub mod listing;

pub use listing::{Layout, RawObject, SinkCommit, list_objects, list_partitions, list_topic, partitions};

use std::borrow::Cow;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The field of the one-line object that carries a record whose bytes are neither one line nor
/// JSON: `{"pinpipe_raw_base64":"<the bytes, base64>"}`.
pub const RAW_FIELD: &str = "pinpipe_raw_base64";

/// A record's value as exactly one line of a JSON-lines object (without the line feed), so that
/// an object holds one line per record and a reader (or the sink resuming) counts records by
/// counting lines:
///
/// * a value without line breaks is written as it is (the usual case: compact JSON);
/// * a JSON value with line breaks (pretty-printed) has them replaced by spaces: in JSON they
///   can only be whitespace between tokens, so the value is the same;
/// * anything else with line breaks (binary data, broken JSON) is written as
///   `{"pinpipe_raw_base64":"..."}` holding its exact bytes.
///
/// (Checking JSON skips values without building them, so it has no nesting limit.)
pub fn frame(value: &[u8]) -> Cow<'_, [u8]> {
    let breaks = |b: &u8| *b == b'\n' || *b == b'\r';
    if !value.iter().any(breaks) {
        return Cow::Borrowed(value);
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(value).is_ok() {
        return Cow::Owned(value.iter().map(|b| if breaks(b) { b' ' } else { *b }).collect());
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(value);
    Cow::Owned(format!("{{\"{RAW_FIELD}\":\"{encoded}\"}}").into_bytes())
}

/// How an object's records are encoded: the connector's `format.class` with its compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON value per line (`.json`).
    Json,
    /// The same, gzip-compressed (`.json.gz`).
    JsonGzip,
    /// Parquet with the raw schema of the topic's records.
    Parquet(ParquetCodec),
}

/// The compression of a Parquet object's pages (the connector's `parquet.codec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParquetCodec {
    /// Snappy (`.snappy.parquet`), the connector's default.
    Snappy,
    /// Gzip (`.gz.parquet`).
    Gzip,
    /// Zstandard (`.zstd.parquet`).
    Zstd,
    /// None (`.parquet`).
    Uncompressed,
}

impl Format {
    /// Every format, longest extension first (so that parsing finds the most specific one).
    pub const ALL: [Format; 6] = [
        Format::Parquet(ParquetCodec::Snappy),
        Format::Parquet(ParquetCodec::Zstd),
        Format::Parquet(ParquetCodec::Gzip),
        Format::Parquet(ParquetCodec::Uncompressed),
        Format::JsonGzip,
        Format::Json,
    ];

    /// The file name extension, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => ".json",
            Format::JsonGzip => ".json.gz",
            Format::Parquet(ParquetCodec::Snappy) => ".snappy.parquet",
            Format::Parquet(ParquetCodec::Gzip) => ".gz.parquet",
            Format::Parquet(ParquetCodec::Zstd) => ".zstd.parquet",
            Format::Parquet(ParquetCodec::Uncompressed) => ".parquet",
        }
    }

    /// Whether objects of this format hold one line per record (the JSON formats).
    pub fn is_lines(self) -> bool {
        matches!(self, Format::Json | Format::JsonGzip)
    }
}

/// Key-value metadata of the sink's Parquet objects: the offset of the object's first record.
pub const PARQUET_FIRST_OFFSET: &str = "pinpipe.first_offset";
/// Key-value metadata of the sink's Parquet objects: the offset after the last record the object
/// covers (records the sink refused included), so that readers and a resuming sink know where it
/// ends.
pub const PARQUET_NEXT_OFFSET: &str = "pinpipe.next_offset";

/// What an object's file name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectFile {
    /// The log partition its records come from.
    pub partition: u32,
    /// Offset of its first record.
    pub start: u64,
    /// How it is encoded.
    pub format: Format,
}

/// `<topic>+<partition>+<start, 10 digits><extension>`.
pub fn object_file(topic: &str, partition: u32, start: u64, format: Format) -> String {
    format!("{topic}+{partition}+{start:010}{}", format.extension())
}

/// `topics/<topic>/<dir>/<file>`: an object's key below the store's root, `dir` being its
/// encoded partition (`partition=<p>`, `category=art`, `dt=2026-11-29/hour=13`, ...).
pub fn object_key(topic: &str, dir: &str, partition: u32, start: u64, format: Format) -> String {
    format!("{}/{dir}/{}", topic_dir(topic), object_file(topic, partition, start, format))
}

/// What `file_name` says, if it is an object of `topic` (any partition, any format).
pub fn parse_object_file(topic: &str, file_name: &str) -> Option<ObjectFile> {
    let rest = file_name.strip_prefix(topic)?.strip_prefix('+')?;
    let (partition, rest) = rest.split_once('+')?;
    if partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let format = Format::ALL.into_iter().find(|f| rest.ends_with(f.extension()))?;
    let digits = rest.strip_suffix(format.extension())?;
    if digits.len() < 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(ObjectFile { partition: partition.parse().ok()?, start: digits.parse().ok()?, format })
}

/// `topics/<topic>`.
pub fn topic_dir(topic: &str) -> String {
    format!("topics/{topic}")
}

/// `topics/<topic>/partition=<p>`.
pub fn partition_dir(topic: &str, partition: u32) -> String {
    format!("{}/partition={partition}", topic_dir(topic))
}

/// `topics/<topic>/partition=<p>/<topic>+<p>+<start, 10 digits>.json`.
pub fn object_name(topic: &str, partition: u32, start: u64) -> String {
    format!("{}/{topic}+{partition}+{start:010}.json", partition_dir(topic, partition))
}

/// The start offset in an object's file name, if it is one of this partition's objects (in
/// any format).
pub fn parse_start(topic: &str, partition: u32, file_name: &str) -> Option<u64> {
    parse_object_file(topic, file_name).filter(|o| o.partition == partition).map(|o| o.start)
}

/// The partition number of a directory name `partition=<p>`.
pub fn parse_partition(dir_name: &str) -> Option<u32> {
    let digits = dir_name.strip_prefix("partition=")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_confluent_scheme() {
        assert_eq!(
            object_name("pinterest.pin", 0, 7),
            "topics/pinterest.pin/partition=0/pinterest.pin+0+0000000007.json"
        );
        assert_eq!(object_name("t", 3, 12_345_678_901), "topics/t/partition=3/t+3+12345678901.json");
        assert_eq!(parse_start("pinterest.pin", 0, "pinterest.pin+0+0000000007.json"), Some(7));
        assert_eq!(parse_start("t", 3, "t+3+12345678901.json"), Some(12_345_678_901));
        assert_eq!(parse_start("t", 1, "t+1+0000000007.json"), Some(7));
        for other in [
            "t+13+0000000007.json",
            "t+3+7.json",
            "u+3+0000000007.json",
            "tt+3+0000000007.json",
            "t+3+0000000007.json.tmp",
            "t+3+000000000x.json",
        ] {
            assert_eq!(parse_start("t", 3, other), None, "{other}");
        }
        assert_eq!(parse_partition("partition=12"), Some(12));
        for other in ["partition=", "partition=x", "part=1", "partition=-1"] {
            assert_eq!(parse_partition(other), None, "{other}");
        }
    }

    #[test]
    fn every_value_is_one_line() {
        assert_eq!(frame(br#"{"a":1}"#).as_ref(), br#"{"a":1}"#);
        assert!(matches!(frame(b"not json, one line"), Cow::Borrowed(_)));
        // Pretty JSON: the same value on one line.
        let pretty = b"{\n  \"a\": [1,\r\n 2],\n  \"s\": \"x\\ny\"\n}";
        let framed = frame(pretty);
        assert!(!framed.contains(&b'\n') && !framed.contains(&b'\r'));
        let a: serde_json::Value = serde_json::from_slice(pretty).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&framed).unwrap();
        assert_eq!(a, b);
        // JSON nested deeper than a parser builds values for is still JSON: one line.
        let deep = format!("{}\n{}", "[".repeat(300), "]".repeat(300));
        assert_eq!(frame(deep.as_bytes()).as_ref(), deep.replace('\n', " ").as_bytes());
        // Anything else with line feeds: its exact bytes, base64, in a one-line object.
        for raw in [b"a\nb\nc".to_vec(), vec![0xff, b'\n', 0x00, b'\r'], b"{\"a\":\n".to_vec()] {
            let framed = frame(&raw);
            assert!(!framed.contains(&b'\n'), "{framed:?}");
            let v: serde_json::Value = serde_json::from_slice(&framed).unwrap();
            let back = base64::engine::general_purpose::STANDARD.decode(v[RAW_FIELD].as_str().unwrap()).unwrap();
            assert_eq!(back, raw);
        }
    }
}
