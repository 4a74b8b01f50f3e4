//! Where a record's object goes: the connector's partitioners. A record's directory below
//! `topics/<topic>/` is `partition=<p>` (default), `<field>=<value>/...` (field: values of the
//! record's JSON, with characters that could name another directory replaced by `_`, so that no
//! value can escape its directory), or its time rounded down to `partition_duration` and
//! formatted with `path_format` (time).
//!
//! A record's time comes from the timestamp extractor: the log's timestamp (`record`), a field
//! of the value (`record_field`: an ISO-8601 date-time, read as UTC without a zone, or
//! milliseconds since the epoch), or the clock (`wallclock`). A record that has no value for
//! the field partitioner's fields or the extractor's field cannot be placed: it becomes one of
//! the sink's dead letters.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Offset, TimeZone as _, Timelike, Utc};
use serde_json::Value;

use crate::config::TimestampExtractor;

/// How records are placed in directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `partition=<p>`.
    Default,
    /// `<field>=<value>/...` for these fields.
    Field(Vec<String>),
    /// The record's time, rounded down to `duration_ms` in the time zone, formatted.
    Time {
        /// The directory format.
        format: PathFormat,
        /// The granularity.
        duration_ms: i64,
    },
}

/// A time zone of paths and scheduled rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeZone {
    /// A fixed offset (UTC is `+00:00`).
    Fixed(FixedOffset),
    /// An IANA zone.
    Named(chrono_tz::Tz),
}

impl TimeZone {
    /// `UTC`, an IANA name (`Europe/Berlin`) or an offset (`+02:00`, `-0530`).
    pub fn parse(text: &str) -> Result<TimeZone, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("UTC") || text == "Z" || text.is_empty() {
            return Ok(TimeZone::Fixed(Utc.fix()));
        }
        if let Ok(offset) = text.parse::<FixedOffset>() {
            return Ok(TimeZone::Fixed(offset));
        }
        text.parse::<chrono_tz::Tz>()
            .map(TimeZone::Named)
            .map_err(|_| format!("{text:?} is not a time zone: use UTC, an IANA name such as Europe/Berlin, or +02:00"))
    }

    /// The offset from UTC at `utc_ms`, in milliseconds.
    pub fn offset_ms(self, utc_ms: i64) -> i64 {
        let Some(at) = DateTime::<Utc>::from_timestamp_millis(utc_ms) else { return 0 };
        let seconds = match self {
            TimeZone::Fixed(o) => o.local_minus_utc(),
            TimeZone::Named(tz) => tz.offset_from_utc_datetime(&at.naive_utc()).fix().local_minus_utc(),
        };
        i64::from(seconds) * 1000
    }
}

/// A Joda-Time style directory format: `YYYY`/`yyyy`, `YY`, `MM`, `M`, `dd`, `d`, `HH`, `H`,
/// `mm`, `ss`, and literal text in single quotes (`''` is a quote); `/`, `=`, `-`, `_`, `.` and
/// digits stand for themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathFormat(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Year(usize),
    Month(usize),
    Day(usize),
    Hour(usize),
    Minute(usize),
    Second(usize),
}

impl PathFormat {
    /// Parses a format; `Err` says what is wrong.
    pub fn parse(format: &str) -> Result<PathFormat, String> {
        if format.trim().is_empty() {
            return Err("the time partitioner needs a path format, e.g. \"'dt'=YYYY-MM-dd/'hour'=HH\"".into());
        }
        let chars: Vec<char> = format.chars().collect();
        let mut parts = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                let mut text = String::new();
                i += 1;
                loop {
                    match (chars.get(i), chars.get(i + 1)) {
                        (Some('\''), Some('\'')) => {
                            text.push('\'');
                            i += 2;
                        }
                        (Some('\''), _) => {
                            i += 1;
                            break;
                        }
                        (Some(c), _) => {
                            text.push(*c);
                            i += 1;
                        }
                        (None, _) => return Err(format!("{format:?}: a quote is not closed")),
                    }
                }
                parts.push(Part::Text(text));
                continue;
            }
            let run = chars[i..].iter().take_while(|x| **x == c).count();
            let part = match c {
                'Y' | 'y' => Part::Year(if run == 2 { 2 } else { 4 }),
                'M' => Part::Month(run.min(2)),
                'd' => Part::Day(run.min(2)),
                'H' => Part::Hour(run.min(2)),
                'm' => Part::Minute(run.min(2)),
                's' => Part::Second(run.min(2)),
                c if c.is_ascii_alphabetic() => {
                    return Err(format!(
                        "{format:?}: {c:?} is not a field this format knows (YYYY MM dd HH mm ss); put literal text in quotes"
                    ));
                }
                c if c.is_ascii_alphanumeric() || "/=-_.".contains(c) => Part::Text(c.to_string().repeat(run)),
                c => return Err(format!("{format:?}: {c:?} cannot be part of a directory name")),
            };
            parts.push(part);
            i += run;
        }
        let parsed = PathFormat(parts);
        let probe = parsed.format(NaiveDateTime::default());
        if probe.starts_with('/')
            || probe.ends_with('/')
            || probe.split('/').any(|s| s.is_empty() || s == "." || s == ".." || s.contains('\\'))
        {
            return Err(format!(
                "{format:?} makes directories such as {probe:?}: empty, . and .. parts are not allowed"
            ));
        }
        Ok(parsed)
    }

    fn format(&self, t: NaiveDateTime) -> String {
        let mut out = String::new();
        for p in &self.0 {
            let _ = match p {
                Part::Text(s) => write!(out, "{s}"),
                Part::Year(2) => write!(out, "{:02}", t.year().rem_euclid(100)),
                Part::Year(_) => write!(out, "{:04}", t.year()),
                Part::Month(w) => write!(out, "{:0w$}", t.month()),
                Part::Day(w) => write!(out, "{:0w$}", t.day()),
                Part::Hour(w) => write!(out, "{:0w$}", t.hour()),
                Part::Minute(w) => write!(out, "{:0w$}", t.minute()),
                Part::Second(w) => write!(out, "{:0w$}", t.second()),
            };
        }
        out
    }

    /// The directory of a record whose time is `utc_ms`, rounded down to `duration_ms` in `tz`.
    pub fn directory(&self, utc_ms: i64, duration_ms: i64, tz: TimeZone) -> String {
        let local = utc_ms + tz.offset_ms(utc_ms);
        let floored = local - local.rem_euclid(duration_ms.max(1));
        let at = DateTime::<Utc>::from_timestamp_millis(floored).map(|d| d.naive_utc()).unwrap_or_default();
        self.format(at)
    }
}

/// A value as one directory name, as the connector writes it (the value's text) but safe: a
/// character that would name another directory (`/`, `\`), that object stores encode (`%`, `#`,
/// `?`, `*`, quotes, brackets, ...), a control or a non-ASCII character becomes `_`, and an empty,
/// `.` or `..` value is `_`. (Distinct values may share a directory; a value can never escape it.)
pub fn encode_value(value: &str) -> String {
    if value.is_empty() || value == "." || value == ".." {
        return "_".into();
    }
    value
        .chars()
        .map(|c| match c {
            ' ' | '!' | '$' | '&' | '\'' | '(' | ')' | '+' | ',' | '-' | '.' | ':' | ';' | '=' | '@' | '_' => c,
            c if c.is_ascii_alphanumeric() => c,
            _ => '_',
        })
        .collect()
}

/// The value at `path` (dots separate nested fields) of a JSON object.
fn field<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, name| v.get(name)).filter(|v| !v.is_null())
}

/// A record's time from the field `path` of its value: an ISO-8601 date-time (UTC without a
/// zone) or milliseconds since the epoch.
pub fn field_time(value: &Value, path: &str) -> Result<i64, String> {
    match field(value, path) {
        None => Err(format!("the record has no {path:?} for its time")),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| format!("{path} {n} is not milliseconds since the epoch")),
        Some(Value::String(s)) => {
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Ok(t.timestamp_millis());
            }
            pinpipe_model::time::parse(s)
                .map(|t| t.and_utc().timestamp_millis())
                .map_err(|_| format!("{path} {s:?} is not a date-time"))
        }
        Some(other) => Err(format!("{path} {other} is not a date-time")),
    }
}

/// Places records.
#[derive(Debug, Clone)]
pub struct Placer {
    /// The scheme.
    pub scheme: Scheme,
    /// Where a record's time comes from.
    pub extractor: TimestampExtractor,
    /// The field of `record_field`.
    pub timestamp_field: String,
    /// The time zone of paths.
    pub timezone: TimeZone,
    /// The directory of the last record placed (reused when the next one goes there too).
    pub last_dir: Option<Arc<str>>,
}

/// Where a record goes, and its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Its directory below `topics/<topic>/` (shared: most records go where the last one went).
    pub dir: Arc<str>,
    /// Its time (milliseconds since the epoch) by the extractor.
    pub time_ms: i64,
}

impl Placer {
    /// Whether placing needs the record's value parsed.
    fn needs_value(&self) -> bool {
        matches!(self.scheme, Scheme::Field(_)) || self.extractor == TimestampExtractor::RecordField
    }

    /// The directory and time of the record at `partition` with log timestamp `log_ms` and
    /// `value`; `Err` (a dead letter's reason) when the record cannot be placed.
    pub fn place(&mut self, partition: u32, log_ms: i64, now_ms: i64, value: &[u8]) -> Result<Placed, String> {
        let parsed = if self.needs_value() {
            Some(serde_json::from_slice::<Value>(value).map_err(|e| format!("the value is not JSON: {e}"))?)
        } else {
            None
        };
        let time_ms = match self.extractor {
            TimestampExtractor::Record => log_ms,
            TimestampExtractor::Wallclock => now_ms,
            TimestampExtractor::RecordField => {
                field_time(parsed.as_ref().unwrap_or(&Value::Null), &self.timestamp_field)?
            }
        };
        if let (Scheme::Default, Some(dir)) = (&self.scheme, &self.last_dir) {
            return Ok(Placed { dir: Arc::clone(dir), time_ms });
        }
        let dir = match &self.scheme {
            Scheme::Default => format!("partition={partition}"),
            Scheme::Time { format, duration_ms } => format.directory(time_ms, *duration_ms, self.timezone),
            Scheme::Field(fields) => {
                let value = parsed.as_ref().unwrap_or(&Value::Null);
                let mut parts = Vec::with_capacity(fields.len());
                for f in fields {
                    let v = match field(value, f) {
                        None => return Err(format!("the record has no {f:?} to place it by")),
                        Some(Value::String(s)) => encode_value(s),
                        Some(other) => encode_value(&other.to_string()),
                    };
                    parts.push(format!("{}={v}", encode_value(f)));
                }
                parts.join("/")
            }
        };
        let dir: Arc<str> = match &self.last_dir {
            Some(last) if **last == *dir => Arc::clone(last),
            _ => Arc::from(dir),
        };
        self.last_dir = Some(Arc::clone(&dir));
        Ok(Placed { dir, time_ms })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const AUG_28_03_52_47: i64 = 1_598_586_767_000;

    #[test]
    fn time_formats_follow_joda_patterns() {
        let f = PathFormat::parse("'dt'=YYYY-MM-dd/'hour'=HH").unwrap();
        let utc = TimeZone::parse("UTC").unwrap();
        assert_eq!(f.directory(AUG_28_03_52_47, 3_600_000, utc), "dt=2020-08-28/hour=03");
        assert_eq!(f.directory(AUG_28_03_52_47, 86_400_000, utc), "dt=2020-08-28/hour=00");
        let berlin = TimeZone::parse("Europe/Berlin").unwrap();
        assert_eq!(f.directory(AUG_28_03_52_47, 3_600_000, berlin), "dt=2020-08-28/hour=05");
        let minus = TimeZone::parse("-05:30").unwrap();
        assert_eq!(f.directory(AUG_28_03_52_47, 3_600_000, minus), "dt=2020-08-27/hour=22");
        let g = PathFormat::parse("'year'=YYYY/'month'=M/'it''s'=d/mm.ss").unwrap();
        assert_eq!(g.directory(AUG_28_03_52_47, 1000, utc), "year=2020/month=8/it's=28/52.47");
        for bad in ["", "YYYY/qq", "'open", "/YYYY", "YYYY/", "YYYY//MM", "'..'/YYYY", "YYYY MM"] {
            assert!(PathFormat::parse(bad).is_err(), "{bad:?}");
        }
        assert!(TimeZone::parse("Mars/Olympus").is_err());
    }

    #[test]
    fn records_are_placed_by_field_time_or_partition() {
        let utc = TimeZone::parse("UTC").unwrap();
        let mut default = Placer {
            scheme: Scheme::Default,
            extractor: TimestampExtractor::Record,
            timestamp_field: String::new(),
            timezone: utc,
            last_dir: None,
        };
        assert_eq!(default.place(3, 5, 9, b"not json").unwrap(), Placed { dir: Arc::from("partition=3"), time_ms: 5 });

        let mut field = Placer { scheme: Scheme::Field(vec!["category".into(), "a.b".into()]), ..default.clone() };
        let placed = field.place(0, 0, 0, br#"{"category":"diy and/crafts","a":{"b":7}}"#).unwrap();
        assert_eq!(&*placed.dir, "category=diy and_crafts/a.b=7");
        assert!(field.place(0, 0, 0, br#"{"category":".."}"#).unwrap_err().contains("a.b"));
        assert_eq!(
            field.place(0, 0, 0, br#"{"category":"..","a":{"b":"x"}}"#).unwrap().dir.as_ref(),
            "category=_/a.b=x"
        );
        assert!(field.place(0, 0, 0, b"[1").unwrap_err().contains("not JSON"));

        let mut time = Placer {
            last_dir: None,
            scheme: Scheme::Time {
                format: PathFormat::parse("'dt'=YYYY-MM-dd/'hour'=HH").unwrap(),
                duration_ms: 3_600_000,
            },
            extractor: TimestampExtractor::RecordField,
            timestamp_field: "timestamp".into(),
            timezone: utc,
        };
        let geo = br#"{"ind":1,"timestamp":"2020-08-28T03:52:47","country":"Albania"}"#;
        assert_eq!(
            time.place(0, 0, 0, geo).unwrap(),
            Placed { dir: Arc::from("dt=2020-08-28/hour=03"), time_ms: AUG_28_03_52_47 }
        );
        assert_eq!(time.place(0, 0, 0, br#"{"timestamp":1598586767000}"#).unwrap().time_ms, AUG_28_03_52_47);
        assert_eq!(
            time.place(0, 0, 0, br#"{"timestamp":"2020-08-28T05:52:47+02:00"}"#).unwrap().time_ms,
            AUG_28_03_52_47
        );
        assert!(time.place(0, 0, 0, br#"{"timestamp":"yesterday"}"#).is_err());
        assert!(time.place(0, 0, 0, br#"{"ind":1}"#).unwrap_err().contains("timestamp"));
        let mut wall = Placer { extractor: TimestampExtractor::Wallclock, ..time };
        assert_eq!(wall.place(0, 0, AUG_28_03_52_47, b"x").unwrap().dir.as_ref(), "dt=2020-08-28/hour=03");
    }

    #[test]
    fn encoded_values_stay_one_directory() {
        for v in ["a/b", "..", ".", "", "x\\y", "%", "é", "a#b?c*", "\n"] {
            let e = encode_value(v);
            assert!(!e.contains('/') && !e.contains('\\') && e != "." && e != ".." && !e.is_empty(), "{v:?} -> {e:?}");
            // Nothing an object store would encode again.
            let path = object_store::path::Path::from(format!("d/k={e}"));
            assert_eq!(path.as_ref(), format!("d/k={e}"), "{v:?}");
        }
        assert_eq!(encode_value("art"), "art");
        assert_eq!(encode_value("home-decor_2.x"), "home-decor_2.x");
        assert_eq!(encode_value("diy and crafts"), "diy and crafts");
    }
}
