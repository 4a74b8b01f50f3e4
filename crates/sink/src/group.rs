//! The records of one commit of a partition: the connector's file rotation.
//!
//! A group takes a partition's records in offset order. Each record goes to the object of its
//! directory (one object per directory in the group; with the default partitioner there is one
//! directory); a record that cannot be placed or encoded goes to the group's dead letters. The
//! group is closed (its objects written, then committed) when it holds `flush_size` records,
//! when `rotate_interval` says so (a record's time at least that far after the group's first,
//! or a record for another directory than the previous one: one object open at a time), at a
//! scheduled rotation, at a gap in the log, and when the sink stops.

use std::collections::BTreeMap;
use std::sync::Arc;

use pinpipe_model::Kind;
use pinpipe_store::layout::Format;
use serde::Serialize;

use crate::encode::Encoder;
use crate::partitioner::Placed;

/// A record the sink could not store in an object, with why and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkDeadLetter {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// Why it is here.
    pub reason: String,
    /// Its value, as text when it is UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Its value in base64 when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
}

/// One object of the group.
pub(crate) struct Object {
    /// Offset of its first record: its name.
    pub start: u64,
    /// Offset after its last record.
    pub next: u64,
    /// Its records.
    pub encoder: Encoder,
}

/// A commit being built.
pub(crate) struct Group {
    /// Offset of the group's first record.
    pub start: u64,
    /// Offset after the last record taken.
    pub next: u64,
    /// Records taken (stored or dead letters).
    pub records: usize,
    /// The time of the group's first record (for `rotate_interval`).
    base_time: Option<i64>,
    /// The directory of the last record stored.
    current_dir: Option<Arc<str>>,
    /// Objects by directory.
    pub objects: BTreeMap<Arc<str>, Object>,
    /// Records that went to the dead letters.
    pub dead: Vec<SinkDeadLetter>,
    format: Format,
    kind: Option<Kind>,
}

impl Group {
    /// An empty group starting at `start`.
    pub(crate) fn at(start: u64, format: Format, kind: Option<Kind>) -> Group {
        Group {
            start,
            next: start,
            records: 0,
            base_time: None,
            current_dir: None,
            objects: BTreeMap::new(),
            dead: Vec::new(),
            format,
            kind,
        }
    }

    /// Whether the group holds no record.
    pub(crate) fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Whether the group must be closed before a record placed at `placed` joins it
    /// (`rotate_interval` in milliseconds: record time, and one open directory at a time).
    pub(crate) fn rotates_before(&self, placed: &Placed, rotate_interval_ms: Option<i64>) -> bool {
        let Some(interval) = rotate_interval_ms else { return false };
        if self.is_empty() {
            return false;
        }
        let late = self.base_time.is_some_and(|base| placed.time_ms - base >= interval);
        let elsewhere = self.current_dir.as_deref().is_some_and(|d| *d != *placed.dir);
        late || elsewhere
    }

    /// Adds the record at `offset` to the object of its directory; a record the format refuses
    /// goes to the dead letters with `reason`.
    pub(crate) fn add(&mut self, topic: &str, partition: u32, offset: u64, value: &[u8], placed: Placed) {
        if self.base_time.is_none() {
            self.base_time = Some(placed.time_ms);
        }
        let (format, kind) = (self.format, self.kind);
        let object = self.objects.entry(Arc::clone(&placed.dir)).or_insert_with(|| Object {
            start: offset,
            next: offset,
            encoder: Encoder::new(format, kind),
        });
        match object.encoder.push(value) {
            Ok(()) => {
                object.next = offset + 1;
                self.current_dir = Some(placed.dir);
            }
            Err(reason) => {
                if object.encoder.records() == 0 {
                    self.objects.remove(&placed.dir);
                }
                self.dead.push(dead_letter(topic, partition, offset, value, reason));
            }
        }
        self.taken(offset);
    }

    /// Records that the record at `offset` could not be placed (`reason`).
    pub(crate) fn refuse(&mut self, topic: &str, partition: u32, offset: u64, value: &[u8], reason: String) {
        self.dead.push(dead_letter(topic, partition, offset, value, reason));
        self.taken(offset);
    }

    fn taken(&mut self, offset: u64) {
        self.records += 1;
        self.next = offset + 1;
    }
}

fn dead_letter(topic: &str, partition: u32, offset: u64, value: &[u8], reason: String) -> SinkDeadLetter {
    use base64::Engine as _;
    let (text, b64) = match std::str::from_utf8(value) {
        Ok(t) => (Some(t.to_owned()), None),
        Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(value))),
    };
    SinkDeadLetter { topic: topic.to_owned(), partition, offset, reason, value: text, value_base64: b64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(dir: &str, time_ms: i64) -> Placed {
        Placed { dir: Arc::from(dir), time_ms }
    }

    #[test]
    fn records_go_to_their_directory_and_rotation_follows_time_and_directory() {
        let mut g = Group::at(10, Format::Json, None);
        assert!(!g.rotates_before(&placed("a", 0), Some(1000)));
        g.add("t", 0, 10, b"1", placed("a", 0));
        g.add("t", 0, 11, b"2", placed("b", 10));
        g.add("t", 0, 12, b"3", placed("a", 20));
        g.refuse("t", 0, 13, &[0xff], "no field".into());
        assert_eq!((g.start, g.next, g.records), (10, 14, 4));
        let starts: Vec<(&str, u64, u64)> = g.objects.iter().map(|(d, o)| (d.as_ref(), o.start, o.next)).collect();
        assert_eq!(starts, [("a", 10, 13), ("b", 11, 12)]);
        assert_eq!(g.dead[0].offset, 13);
        assert!(g.dead[0].value.is_none() && g.dead[0].value_base64.is_some());
        // Without rotate_interval: never before a record. With it: another directory, or late.
        assert!(!g.rotates_before(&placed("b", 5000), None));
        assert!(g.rotates_before(&placed("b", 25), Some(1000)));
        assert!(!g.rotates_before(&placed("a", 999), Some(1000)));
        assert!(g.rotates_before(&placed("a", 1000), Some(1000)));
    }

    #[test]
    fn a_record_the_format_refuses_is_a_dead_letter() {
        let mut g = Group::at(0, Format::Parquet(pinpipe_store::layout::ParquetCodec::Snappy), Some(Kind::User));
        g.add("t", 0, 0, br#"{"ind":1}"#, placed("d", 0));
        g.add("t", 0, 1, br#"{"age":3}"#, placed("e", 0));
        assert_eq!(g.objects.len(), 1, "no object for a directory whose only record was refused");
        assert_eq!(g.dead.len(), 1);
        assert!(g.dead[0].reason.contains("ind"), "{}", g.dead[0].reason);
        assert_eq!(g.records, 2);
    }
}
