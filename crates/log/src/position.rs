//! Positions in a partition that every backend can express: dense offsets (the embedded log,
//! Kafka) and Kinesis sequence numbers (decimals of up to 128 digits, increasing within a shard
//! but not dense), and the cursors readers keep between reads.
//!
//! Every backend speaks these ([`crate::Log::append_positioned`], [`crate::Log::read_from`],
//! [`crate::Log::wait_from`]); consumers that need dense offsets (the sink: its object names are
//! offsets) take a [`crate::OffsetLog`], which only dense backends implement.

use std::cmp::Ordering;
use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Where a record is in its partition. Ordered by numeric value, so a sequence number and an
/// offset compare as the numbers they are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Position {
    /// A dense offset: the next record is at `offset + 1`.
    Offset(u64),
    /// A Kinesis sequence number (decimal digits, no leading zeros).
    Sequence(String),
}

/// Most digits of a sequence number (Kinesis documents `0|([1-9]\d{0,128})`).
const MAX_SEQUENCE_DIGITS: usize = 129;

impl Position {
    /// A sequence number from its decimal text; `Error::InvalidPosition` unless it is 1–129
    /// decimal digits without leading zeros (or `0`).
    pub fn sequence(text: &str) -> Result<Self> {
        let digits = !text.is_empty() && text.len() <= MAX_SEQUENCE_DIGITS && text.bytes().all(|b| b.is_ascii_digit());
        if !digits || (text.len() > 1 && text.starts_with('0')) {
            return Err(Error::InvalidPosition(text.chars().take(140).collect()));
        }
        Ok(Position::Sequence(text.to_owned()))
    }

    /// The offset, for a dense position.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Position::Offset(o) => Some(*o),
            Position::Sequence(_) => None,
        }
    }

    fn digits(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Position::Offset(o) => o.to_string().into(),
            Position::Sequence(s) => s.as_str().into(),
        }
    }
}

impl Ord for Position {
    fn cmp(&self, other: &Self) -> Ordering {
        if let (Position::Offset(a), Position::Offset(b)) = (self, other) {
            return a.cmp(b);
        }
        // Both are decimals without leading zeros: longer is larger, then digit by digit.
        let (a, b) = (self.digits(), other.digits());
        a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits())
    }
}

/// Where a reader continues in a partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cursor {
    /// The oldest record the partition still holds (Kinesis `TRIM_HORIZON`).
    Start,
    /// The record at this position (Kinesis `AT_SEQUENCE_NUMBER`).
    At(Position),
    /// The record after this position (Kinesis `AFTER_SEQUENCE_NUMBER`).
    After(Position),
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cursor::Start => f.write_str("start"),
            Cursor::At(p) => write!(f, "at {p}"),
            Cursor::After(p) => write!(f, "after {p}"),
        }
    }
}

/// A record read back with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its position in the partition.
    pub position: Position,
    /// Milliseconds since the epoch (Kinesis: the approximate arrival time).
    pub timestamp_ms: i64,
    /// Key (Kinesis: the partition key), if any.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Bytes,
}

/// What one [`crate::Log::read_from`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Records, in partition order.
    pub records: Vec<Entry>,
    /// Where the next read continues (after the last record, or where this one started).
    pub next: Cursor,
    /// Whether the read reached the partition's end as it was at the time of the read.
    pub at_end: bool,
}

impl Chunk {
    /// What a read on a dense log returned: `records` read from offset `at` (where `cursor`
    /// pointed) of a partition whose end is `end`.
    pub fn dense(records: Vec<crate::StoredRecord>, cursor: &Cursor, at: u64, end: u64) -> Chunk {
        let next = records.last().map_or_else(|| cursor.clone(), |r| Cursor::After(Position::Offset(r.offset)));
        let at_end = records.last().map_or(at, |r| r.offset + 1) >= end;
        let records = records
            .into_iter()
            .map(|r| Entry {
                position: Position::Offset(r.offset),
                timestamp_ms: r.timestamp_ms,
                key: r.key,
                value: r.value,
            })
            .collect();
        Chunk { records, next, at_end }
    }
}

/// What a backend stores of a record, for the consumers that depend on it. (Whether positions
/// are dense offsets is a type: [`crate::OffsetLog`], reached through [`crate::Log::as_offsets`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// A record's key is stored as given, including no key and the empty key. Kinesis: every
    /// record has a partition key of 1–256 characters.
    pub optional_keys: bool,
    /// A record's own timestamp is stored. Kinesis: the arrival time is.
    pub record_timestamps: bool,
}

impl Capabilities {
    /// What the embedded log and Kafka provide: everything.
    pub const FULL: Capabilities = Capabilities { optional_keys: true, record_timestamps: true };
}

impl Cursor {
    /// The offset this cursor points at on a log with dense offsets whose partition starts at
    /// `start`; `Error::InvalidPosition` for a sequence number.
    pub fn dense_offset(&self, start: u64) -> Result<u64> {
        match self {
            Cursor::Start => Ok(start),
            Cursor::At(Position::Offset(o)) => Ok(*o),
            Cursor::After(Position::Offset(o)) => Ok(o.saturating_add(1)),
            Cursor::At(p @ Position::Sequence(_)) | Cursor::After(p @ Position::Sequence(_)) => {
                Err(Error::InvalidPosition(p.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn positions_order_by_numeric_value() {
        let seq = |s: &str| Position::sequence(s).unwrap();
        assert!(seq("9") < seq("10"));
        assert!(seq("49590338271490256608559692538361571095921575989136588898") > seq("9".repeat(55).as_str()));
        assert!(Position::Offset(u64::MAX) < seq("18446744073709551616"));
        assert!(Position::Offset(10) > seq("9"));
        assert_eq!(Position::Offset(7).cmp(&seq("7")), Ordering::Equal);
        let mut v = [seq("100"), Position::Offset(2), seq("11")];
        v.sort();
        assert_eq!(v.iter().map(ToString::to_string).collect::<Vec<_>>(), ["2", "11", "100"]);
    }

    #[test]
    fn bad_sequence_numbers_are_refused() {
        for bad in ["", "01", "1a", "-1", " 1", &"1".repeat(130)] {
            assert!(matches!(Position::sequence(bad), Err(Error::InvalidPosition(_))), "{bad:?}");
        }
        assert!(Position::sequence("0").is_ok());
        assert!(Position::sequence(&"1".repeat(129)).is_ok());
    }

    #[test]
    fn positions_and_cursors_serialise_plainly() {
        assert_eq!(serde_json::to_string(&Position::Offset(5)).unwrap(), "5");
        assert_eq!(serde_json::to_string(&Position::Sequence("42".into())).unwrap(), "\"42\"");
        assert_eq!(serde_json::from_str::<Position>("5").unwrap(), Position::Offset(5));
        let c = Cursor::After(Position::Sequence("42".into()));
        assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"after":"42"}"#);
        assert_eq!(serde_json::from_str::<Cursor>(r#"{"after":"42"}"#).unwrap(), c);
        assert_eq!(serde_json::to_string(&Cursor::Start).unwrap(), r#""start""#);
    }

    #[test]
    fn dense_cursors_resolve_to_offsets() {
        assert_eq!(Cursor::Start.dense_offset(3).unwrap(), 3);
        assert_eq!(Cursor::At(Position::Offset(5)).dense_offset(3).unwrap(), 5);
        assert_eq!(Cursor::After(Position::Offset(5)).dense_offset(3).unwrap(), 6);
        assert!(Cursor::After(Position::Sequence("5".into())).dense_offset(0).is_err());
    }
}
