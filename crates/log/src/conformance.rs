//! The conformance suite of the log port. Backends with dense offsets ([`OffsetLog`]) run
//! [`suite`], given a way to open their storage again so that it can check what survives a
//! reopen; every backend runs [`positioned_suite`].

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::Error;
use crate::port::{Log, OffsetLog, ReadLimits, Record, TopicKind};
use crate::position::{Cursor, Position};

/// Opens the backend's storage (again).
#[async_trait::async_trait]
pub(crate) trait Harness: Sync {
    async fn open(&self) -> Arc<dyn OffsetLog>;
}

fn rec(key: Option<&str>, value: &str) -> Record {
    Record {
        timestamp_ms: Some(1_600_000_000_000),
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

fn values(records: &[crate::StoredRecord]) -> Vec<String> {
    records.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap()).collect()
}

const ALL: ReadLimits = ReadLimits { max_records: usize::MAX, max_bytes: usize::MAX };

/// The names the dense suite uses, in a namespace of its own so that it can run on a shared
/// broker (`ns` is empty on a log of its own).
struct Names {
    ns: String,
    orders: String,
    stream: String,
    busy: String,
    doomed: String,
    nope: String,
    zero: String,
}

impl Names {
    fn new(ns: &str) -> Self {
        Names {
            ns: ns.to_owned(),
            orders: format!("{ns}orders"),
            stream: format!("streaming-{ns}x-pin"),
            busy: format!("{ns}busy"),
            doomed: format!("{ns}doomed"),
            nope: format!("{ns}nope"),
            zero: format!("{ns}zero"),
        }
    }

    /// The topics of this namespace.
    fn ours(&self, all: Vec<crate::TopicInfo>) -> Vec<crate::TopicInfo> {
        let stream_ns = format!("streaming-{}", self.ns);
        all.into_iter().filter(|t| t.name.starts_with(&self.ns) || t.name.starts_with(&stream_ns)).collect()
    }
}

pub(crate) async fn suite(h: &impl Harness, ns: &str, deletes: bool) {
    let n = Names::new(ns);
    let log = h.open().await;
    topics(&*log, &n).await;
    append_and_read(&*log, &n).await;
    limits(&*log, &n).await;
    errors(&*log, &n).await;
    waiting(&log, &n).await;
    concurrent_appends(&log, &n).await;
    // Everything acknowledged survives a reopen, offsets unchanged.
    let orders = n.orders.as_str();
    let before = n.ours(log.topics().await.unwrap());
    let data = log.read(orders, 0, 0, ALL).await.unwrap();
    drop(log);
    let log = h.open().await;
    assert_eq!(n.ours(log.topics().await.unwrap()), before);
    assert_eq!(log.read(orders, 0, 0, ALL).await.unwrap(), data);
    let next = log.append(orders, 0, vec![rec(None, "after reopen")]).await.unwrap();
    assert_eq!(next, data.len() as u64);
    // Last: some brokers (tansu 0.6) delete every topic when asked to delete one.
    if deletes {
        deletion(&*log, &n).await;
    }
}

async fn topics(log: &dyn OffsetLog, n: &Names) {
    let orders = n.orders.as_str();
    assert!(n.ours(log.topics().await.unwrap()).is_empty());
    let info = log.create_topic(orders, TopicKind::Topic, 3).await.unwrap();
    assert_eq!((info.name.as_str(), info.partitions, info.kind), (orders, 3, TopicKind::Topic));
    log.create_topic(&n.stream, TopicKind::Stream, 1).await.unwrap();
    assert!(matches!(log.create_topic(orders, TopicKind::Topic, 1).await, Err(Error::TopicExists(_))));
    assert!(matches!(log.create_topic("../etc", TopicKind::Topic, 1).await, Err(Error::InvalidName(_))));
    assert!(matches!(log.create_topic("a/b", TopicKind::Stream, 1).await, Err(Error::InvalidName(_))));
    assert!(matches!(log.create_topic(&n.zero, TopicKind::Topic, 0).await, Err(Error::InvalidPartitionCount(0))));
    let names: Vec<String> = n.ours(log.topics().await.unwrap()).into_iter().map(|t| t.name).collect();
    assert_eq!(names, [orders, n.stream.as_str()]);
    assert_eq!(log.topic(&n.stream).await.unwrap().kind, TopicKind::Stream);
    assert!(matches!(log.topic(&n.nope).await, Err(Error::TopicNotFound(_))));
}

async fn append_and_read(log: &dyn OffsetLog, n: &Names) {
    let orders = n.orders.as_str();
    assert_eq!(log.append(orders, 0, vec![rec(Some("k1"), "a"), rec(None, "b"), rec(Some(""), "c")]).await.unwrap(), 0);
    assert_eq!(log.append(orders, 0, vec![rec(None, "d")]).await.unwrap(), 3);
    assert_eq!(log.append(orders, 1, vec![rec(None, "other partition")]).await.unwrap(), 0);
    let all = log.read(orders, 0, 0, ALL).await.unwrap();
    assert_eq!(values(&all), ["a", "b", "c", "d"]);
    assert_eq!(all.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(all[0].key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(all[1].key, None);
    assert_eq!(all[2].key.as_deref(), Some(&b""[..]));
    assert_eq!(all[0].timestamp_ms, 1_600_000_000_000);
    // Reads from any offset, at the end, past the end.
    assert_eq!(values(&log.read(orders, 0, 2, ALL).await.unwrap()), ["c", "d"]);
    assert!(log.read(orders, 0, 4, ALL).await.unwrap().is_empty());
    assert!(matches!(log.read(orders, 0, 5, ALL).await, Err(Error::OffsetOutOfRange { end: 4, .. })));
    let offsets = log.offsets(orders).await.unwrap();
    assert_eq!(
        offsets.iter().map(|o| (o.partition, o.start, o.end)).collect::<Vec<_>>(),
        [(0, 0, 4), (1, 0, 1), (2, 0, 0)]
    );
    // A record without a timestamp gets the append time.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    log.append(orders, 2, vec![Record::value(Bytes::from_static(b"x"))]).await.unwrap();
    let ts = log.read(orders, 2, 0, ALL).await.unwrap()[0].timestamp_ms;
    assert!((ts - now).abs() < 60_000, "timestamp {ts} vs now {now}");
}

async fn limits(log: &dyn OffsetLog, n: &Names) {
    let orders = n.orders.as_str();
    let one = log.read(orders, 0, 0, ReadLimits { max_records: 1, max_bytes: usize::MAX }).await.unwrap();
    assert_eq!(values(&one), ["a"]);
    let two = log.read(orders, 0, 1, ReadLimits { max_records: 2, max_bytes: usize::MAX }).await.unwrap();
    assert_eq!(values(&two), ["b", "c"]);
    // A byte limit still returns at least one record.
    let tiny = log.read(orders, 0, 0, ReadLimits { max_records: 100, max_bytes: 1 }).await.unwrap();
    assert!(!tiny.is_empty() && tiny[0].offset == 0);
}

async fn errors(log: &dyn OffsetLog, n: &Names) {
    let orders = n.orders.as_str();
    assert!(matches!(
        log.append(orders, 3, vec![rec(None, "x")]).await,
        Err(Error::PartitionNotFound { partition: 3, partitions: 3, .. })
    ));
    assert!(matches!(log.append(&n.nope, 0, vec![rec(None, "x")]).await, Err(Error::TopicNotFound(_))));
    assert!(matches!(log.append(orders, 0, vec![]).await, Err(Error::EmptyBatch)));
    assert!(matches!(log.read(&n.nope, 0, 0, ALL).await, Err(Error::TopicNotFound(_))));
    assert!(matches!(log.read(orders, 9, 0, ALL).await, Err(Error::PartitionNotFound { .. })));
    // Nothing of the failed appends was written.
    assert_eq!(log.offsets(orders).await.unwrap()[0].end, 4);
}

async fn waiting(log: &Arc<dyn OffsetLog>, n: &Names) {
    let orders = n.orders.as_str();
    let end = log.offsets(orders).await.unwrap()[1].end;
    assert!(!log.wait_for(orders, 1, end, Duration::from_millis(50)).await.unwrap());
    let writer = Arc::clone(log);
    let topic = orders.to_owned();
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer.append(&topic, 1, vec![rec(None, "late")]).await.unwrap()
    });
    let start = std::time::Instant::now();
    assert!(log.wait_for(orders, 1, end, Duration::from_secs(10)).await.unwrap());
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(task.await.unwrap(), end);
    assert_eq!(values(&log.read(orders, 1, end, ALL).await.unwrap()), ["late"]);
}

async fn concurrent_appends(log: &Arc<dyn OffsetLog>, names: &Names) {
    let busy = names.busy.as_str();
    log.create_topic(busy, TopicKind::Topic, 1).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..40 {
        let log = Arc::clone(log);
        let busy = busy.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut offsets = Vec::new();
            for i in 0..25 {
                let batch = if i % 5 == 0 {
                    vec![rec(None, &format!("{t}:{i}:0")), rec(None, &format!("{t}:{i}:1"))]
                } else {
                    vec![rec(None, &format!("{t}:{i}:0"))]
                };
                let n = batch.len() as u64;
                let base = log.append(&busy, 0, batch).await.unwrap();
                offsets.extend(base..base + n);
            }
            offsets
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let offsets = t.await.unwrap();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "a producer's records out of order");
        all.extend(offsets);
    }
    all.sort_unstable();
    let n = 40 * (25 + 5);
    assert_eq!(all, (0..n as u64).collect::<Vec<_>>(), "offsets dense and unique");
    let stored = log.read(busy, 0, 0, ALL).await.unwrap();
    assert_eq!(stored.len(), n);
    // Each producer's values come back in the order it sent them; a batch stays contiguous.
    for t in 0..40 {
        let mine: Vec<String> = values(&stored).into_iter().filter(|v| v.starts_with(&format!("{t}:"))).collect();
        let want: Vec<String> = (0..25)
            .flat_map(|i| {
                if i % 5 == 0 { vec![format!("{t}:{i}:0"), format!("{t}:{i}:1")] } else { vec![format!("{t}:{i}:0")] }
            })
            .collect();
        assert_eq!(mine, want);
    }
}

/// The deletion checks of [`suite`] alone, in namespace `ns`, on a log nothing else has used.
pub(crate) async fn deletion_suite(log: &dyn OffsetLog, ns: &str) {
    deletion(log, &Names::new(ns)).await;
}

async fn deletion(log: &dyn OffsetLog, n: &Names) {
    log.create_topic(&n.doomed, TopicKind::Topic, 2).await.unwrap();
    log.append(&n.doomed, 1, vec![rec(None, "x")]).await.unwrap();
    log.delete_topic(&n.doomed).await.unwrap();
    assert!(matches!(log.topic(&n.doomed).await, Err(Error::TopicNotFound(_))));
    assert!(matches!(log.read(&n.doomed, 1, 0, ALL).await, Err(Error::TopicNotFound(_))));
    assert!(matches!(log.delete_topic(&n.doomed).await, Err(Error::TopicNotFound(_))));
    log.create_topic(&n.doomed, TopicKind::Topic, 1).await.unwrap();
    assert_eq!(log.offsets(&n.doomed).await.unwrap()[0].end, 0);
    log.delete_topic(&n.doomed).await.unwrap();
}

/// The positioned part of the port, which every backend provides (Kinesis included): streams
/// named `<prefix>-...` (so that runs on a shared server do not collide), positions, cursors,
/// limits, waiting, errors, deletion. Keys are always given (Kinesis needs them); timestamps
/// and empty keys are checked where the backend stores them.
pub(crate) async fn positioned_suite(log: &Arc<dyn Log>, prefix: &str, deletes: bool) {
    let caps = log.capabilities();
    let s = format!("{prefix}-s");
    let info = log.create_topic(&s, TopicKind::Stream, 2).await.unwrap();
    assert_eq!((info.name.as_str(), info.partitions, info.kind), (s.as_str(), 2, TopicKind::Stream));
    assert!(matches!(log.create_topic(&s, TopicKind::Stream, 1).await, Err(Error::TopicExists(_))));
    assert!(matches!(log.create_topic("../x", TopicKind::Stream, 1).await, Err(Error::InvalidName(_))));
    assert!(matches!(
        log.create_topic(&format!("{prefix}-zero"), TopicKind::Stream, 0).await,
        Err(Error::InvalidPartitionCount(0))
    ));
    assert_eq!(log.topic(&s).await.unwrap().partitions, 2);
    assert!(log.topics().await.unwrap().iter().any(|t| t.name == s && t.partitions == 2));
    assert!(matches!(log.topic(&format!("{prefix}-nope")).await, Err(Error::TopicNotFound(_))));

    // Appends return increasing positions, in order, per partition.
    let first = log.append_positioned(&s, 0, vec![rec(Some("k1"), "a"), rec(Some("k2"), "b")]).await.unwrap();
    let second = log.append_positioned(&s, 0, vec![rec(Some("k3"), "c")]).await.unwrap();
    let other = log.append_positioned(&s, 1, vec![rec(Some("k9"), "other")]).await.unwrap();
    let p: Vec<Position> = first.into_iter().chain(second).collect();
    assert_eq!(p.len(), 3);
    assert!(p[0] < p[1] && p[1] < p[2], "positions increase: {p:?}");
    assert_eq!(other.len(), 1);

    // Reading from the start returns everything with those positions, and where to continue.
    let all = log.read_from(&s, 0, &Cursor::Start, ALL).await.unwrap();
    assert_eq!(entry_values(&all.records), ["a", "b", "c"]);
    assert_eq!(all.records.iter().map(|r| r.position.clone()).collect::<Vec<_>>(), p);
    assert_eq!(all.records[0].key.as_deref(), Some(&b"k1"[..]));
    assert!(all.at_end);
    assert_eq!(all.next, Cursor::After(p[2].clone()));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    for r in &all.records {
        if caps.record_timestamps {
            assert_eq!(r.timestamp_ms, 1_600_000_000_000);
        } else {
            assert!((r.timestamp_ms - now).abs() < 600_000, "arrival time {} vs now {now}", r.timestamp_ms);
        }
    }
    assert_eq!(entry_values(&log.read_from(&s, 1, &Cursor::Start, ALL).await.unwrap().records), ["other"]);
    // At and after a position; at the end nothing, and the cursor stays.
    assert_eq!(entry_values(&log.read_from(&s, 0, &Cursor::At(p[1].clone()), ALL).await.unwrap().records), ["b", "c"]);
    assert_eq!(entry_values(&log.read_from(&s, 0, &Cursor::After(p[1].clone()), ALL).await.unwrap().records), ["c"]);
    let end = log.read_from(&s, 0, &all.next, ALL).await.unwrap();
    assert!(end.records.is_empty() && end.at_end);
    assert_eq!(end.next, all.next);

    // Limits: one record at a time walks the partition in order.
    let mut cursor = Cursor::Start;
    let mut walked = Vec::new();
    for _ in 0..10 {
        let one = log.read_from(&s, 0, &cursor, ReadLimits { max_records: 1, max_bytes: usize::MAX }).await.unwrap();
        assert!(one.records.len() <= 1);
        walked.extend(entry_values(&one.records));
        cursor = one.next;
        if one.records.is_empty() {
            break;
        }
    }
    assert_eq!(walked, ["a", "b", "c"]);
    let tiny = log.read_from(&s, 0, &Cursor::Start, ReadLimits { max_records: 100, max_bytes: 1 }).await.unwrap();
    // A byte limit still returns at least one record (the embedded log: the whole batch that
    // crosses it), and the cursor continues after the last one returned.
    let tiny_values = entry_values(&tiny.records);
    assert!(!tiny_values.is_empty() && tiny_values.len() < 3 && tiny_values[0] == "a", "{tiny_values:?}");
    assert_eq!(tiny.next, Cursor::After(p[tiny_values.len() - 1].clone()));
    assert!(!tiny.at_end);

    // Errors.
    assert!(matches!(
        log.append_positioned(&s, 5, vec![rec(Some("k"), "x")]).await,
        Err(Error::PartitionNotFound { .. })
    ));
    let nope = format!("{prefix}-nope");
    assert!(matches!(log.append_positioned(&nope, 0, vec![rec(Some("k"), "x")]).await, Err(Error::TopicNotFound(_))));
    assert!(matches!(log.append_positioned(&s, 0, vec![]).await, Err(Error::EmptyBatch)));
    assert!(matches!(log.read_from(&nope, 0, &Cursor::Start, ALL).await, Err(Error::TopicNotFound(_))));
    assert!(matches!(log.read_from(&s, 7, &Cursor::Start, ALL).await, Err(Error::PartitionNotFound { .. })));
    if log.as_offsets().is_some() {
        let seq = Cursor::After(Position::Sequence("49590338271490256608559692538361571095921575989136588898".into()));
        assert!(matches!(log.read_from(&s, 0, &seq, ALL).await, Err(Error::InvalidPosition(_))));
    } else {
        assert!(matches!(
            log.read_from(&s, 0, &Cursor::After(Position::Offset(1)), ALL).await,
            Err(Error::InvalidPosition(_))
        ));
    }
    assert_eq!(
        entry_values(&log.read_from(&s, 0, &Cursor::Start, ALL).await.unwrap().records).len(),
        3,
        "failed appends wrote nothing"
    );

    // Waiting: nothing after the end, then a late record wakes the waiter.
    assert!(!log.wait_from(&s, 0, &all.next, Duration::from_millis(300)).await.unwrap());
    let writer = Arc::clone(log);
    let name = s.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer.append_positioned(&name, 0, vec![rec(Some("k4"), "late")]).await.unwrap()
    });
    let start = std::time::Instant::now();
    assert!(log.wait_from(&s, 0, &all.next, Duration::from_secs(10)).await.unwrap());
    assert!(start.elapsed() < Duration::from_secs(5));
    let late = task.await.unwrap();
    let got = log.read_from(&s, 0, &all.next, ALL).await.unwrap();
    assert_eq!(entry_values(&got.records), ["late"]);
    assert_eq!(got.records[0].position, late[0]);
    assert!(late[0] > p[2]);

    // Many records in one append keep their order.
    let many: Vec<Record> = (0..700).map(|i| rec(Some(&format!("k{i}")), &format!("m{i}"))).collect();
    let positions = log.append_positioned(&s, 1, many).await.unwrap();
    assert_eq!(positions.len(), 700);
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    let mut cursor = Cursor::Start;
    let mut read = Vec::new();
    loop {
        let c = log.read_from(&s, 1, &cursor, ReadLimits { max_records: 300, max_bytes: usize::MAX }).await.unwrap();
        if c.records.is_empty() {
            break;
        }
        read.extend(entry_values(&c.records));
        cursor = c.next;
    }
    let want: Vec<String> = std::iter::once("other".to_owned()).chain((0..700).map(|i| format!("m{i}"))).collect();
    assert_eq!(read, want);

    // Deletion.
    if !deletes {
        return;
    }
    log.delete_topic(&s).await.unwrap();
    assert!(matches!(log.topic(&s).await, Err(Error::TopicNotFound(_))));
    assert!(matches!(log.read_from(&s, 0, &Cursor::Start, ALL).await, Err(Error::TopicNotFound(_))));
    assert!(matches!(log.delete_topic(&s).await, Err(Error::TopicNotFound(_))));
}

fn entry_values(records: &[crate::Entry]) -> Vec<String> {
    records.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap()).collect()
}
