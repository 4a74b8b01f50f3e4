//! Timestamps of the contract: ISO-8601 without zone (`2020-08-28T03:52:47`), a space accepted in
//! place of the `T`, optional fractional seconds. Used by the source, the emulator and cleaning.

use chrono::NaiveDateTime;

use crate::{Error, Result};

/// Format used when writing timestamps in JSON (the raw-record shape).
pub const ISO_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";
/// Format used when writing timestamps to SQL databases and CSV (`2020-08-28 03:52:47`).
pub const SQL_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Parses `YYYY-MM-DD[T ]HH:MM:SS[.f]`.
pub fn parse(text: &str) -> Result<NaiveDateTime> {
    let t = text.trim();
    if let Some(v) = parse_plain(t.as_bytes()) {
        return Ok(v);
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(v) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(v);
        }
    }
    Err(Error::InvalidTimestamp(text.chars().take(100).collect()))
}

/// The common shape `YYYY-MM-DD[T ]HH:MM:SS` without chrono's format interpreter (the cleaning
/// of every geo and user record parses one; this is about 20x faster). `None` for anything else,
/// which then goes through chrono, so both paths accept and refuse exactly the same texts.
fn parse_plain(b: &[u8]) -> Option<NaiveDateTime> {
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') || b[13] != b':' || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
    Some(NaiveDateTime::new(date, time))
}

/// Formats as the raw-record JSON shape (`2020-08-28T03:52:47`, fraction only when non-zero).
pub fn to_iso(t: &NaiveDateTime) -> String {
    format_with(t, 'T')
}

/// Formats for SQL/CSV (`2020-08-28 03:52:47`, fraction only when non-zero).
pub fn to_sql(t: &NaiveDateTime) -> String {
    format_with(t, ' ')
}

/// Formats without chrono's format-string interpreter (hot in bulk loads and the emulator).
fn format_with(t: &NaiveDateTime, sep: char) -> String {
    use std::fmt::Write;

    use chrono::{Datelike, Timelike};
    let mut s = String::with_capacity(26);
    let _ = write!(
        s,
        "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        // Like chrono's `%.f`: 3, 6 or 9 digits, whichever is exact.
        let _ = if nanos.is_multiple_of(1_000_000) {
            write!(s, ".{:03}", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            write!(s, ".{:06}", nanos / 1_000)
        } else {
            write!(s, ".{nanos:09}")
        };
    }
    s
}

/// Serde adapter for a `NaiveDateTime` in the contract's text form.
pub mod serde_iso {
    use chrono::NaiveDateTime;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Writes `2020-08-28T03:52:47`.
    pub fn serialize<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_iso(t))
    }

    /// Reads `2020-08-28T03:52:47` or `2020-08-28 03:52:47`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_t_space_and_fraction() {
        let a = parse("2020-08-28T03:52:47").unwrap();
        assert_eq!(parse("2020-08-28 03:52:47").unwrap(), a);
        assert_eq!(to_iso(&a), "2020-08-28T03:52:47");
        assert_eq!(to_sql(&a), "2020-08-28 03:52:47");
        let f = parse("2020-08-28 03:52:47.250").unwrap();
        assert_eq!(to_iso(&f), "2020-08-28T03:52:47.250");
    }

    #[test]
    fn formatting_matches_chrono() {
        for text in [
            "2020-08-28 03:52:47",
            "0999-01-02 00:00:00.5",
            "2020-02-29 23:59:59.123456",
            "2021-01-01 00:00:00.000000001",
        ] {
            let t = parse(text).unwrap();
            assert_eq!(to_sql(&t), t.format("%Y-%m-%d %H:%M:%S%.f").to_string());
            assert_eq!(to_iso(&t), t.format("%Y-%m-%dT%H:%M:%S%.f").to_string());
        }
    }

    #[test]
    fn rejects_zone_and_garbage() {
        assert!(parse("2020-08-28T03:52:47Z").is_err());
        assert!(parse("28/08/2020").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn the_fast_path_agrees_with_chrono() {
        let chrono_parse = |t: &str| {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
        };
        for text in [
            "2020-08-28T03:52:47",
            "2020-08-28 03:52:47",
            "2024-02-29T23:59:59",
            "2023-02-29T00:00:00",
            "2020-13-01T00:00:00",
            "2020-00-10T00:00:00",
            "2020-01-32T00:00:00",
            "2020-01-01T24:00:00",
            "2020-01-01T00:60:00",
            "2020-01-01T00:00:60",
            "0001-01-01T00:00:00",
            "9999-12-31T23:59:59",
            "2020-1-01T00:00:000",
            "2020-01-01X00:00:00",
            "2020-01-01T00:00:0a",
            "+020-01-01T00:00:00",
        ] {
            // The fast path either agrees or leaves the text to chrono (e.g. a leap second).
            if let Some(v) = parse_plain(text.as_bytes()) {
                assert_eq!(Some(v), chrono_parse(text), "{text}");
            }
            assert_eq!(parse(text).ok(), chrono_parse(text), "{text}");
        }
    }
}
