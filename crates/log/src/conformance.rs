//! The conformance suite of the log port. Every backend runs [`suite`]; a backend provides a
//! way to open its storage again so that the suite can check what survives a reopen.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::Error;
use crate::port::{Log, ReadLimits, Record, TopicKind};

/// Opens the backend's storage (again).
#[async_trait::async_trait]
pub(crate) trait Harness: Sync {
    async fn open(&self) -> Arc<dyn Log>;
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

pub(crate) async fn suite(h: &impl Harness) {
    let log = h.open().await;
    topics(&*log).await;
    append_and_read(&*log).await;
    limits(&*log).await;
    errors(&*log).await;
    waiting(&log).await;
    concurrent_appends(&log).await;
    deletion(&*log).await;
    // Everything acknowledged survives a reopen, offsets unchanged.
    let before: Vec<_> = log.topics().await.unwrap();
    let data = log.read("orders", 0, 0, ALL).await.unwrap();
    drop(log);
    let log = h.open().await;
    assert_eq!(log.topics().await.unwrap(), before);
    assert_eq!(log.read("orders", 0, 0, ALL).await.unwrap(), data);
    let next = log.append("orders", 0, vec![rec(None, "after reopen")]).await.unwrap();
    assert_eq!(next, data.len() as u64);
}

async fn topics(log: &dyn Log) {
    assert!(log.topics().await.unwrap().is_empty());
    let info = log.create_topic("orders", TopicKind::Topic, 3).await.unwrap();
    assert_eq!((info.name.as_str(), info.partitions, info.kind), ("orders", 3, TopicKind::Topic));
    log.create_topic("streaming-x-pin", TopicKind::Stream, 1).await.unwrap();
    assert!(matches!(log.create_topic("orders", TopicKind::Topic, 1).await, Err(Error::TopicExists(_))));
    assert!(matches!(log.create_topic("../etc", TopicKind::Topic, 1).await, Err(Error::InvalidName(_))));
    assert!(matches!(log.create_topic("a/b", TopicKind::Stream, 1).await, Err(Error::InvalidName(_))));
    assert!(matches!(log.create_topic("zero", TopicKind::Topic, 0).await, Err(Error::InvalidPartitionCount(0))));
    let names: Vec<String> = log.topics().await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["orders", "streaming-x-pin"]);
    assert_eq!(log.topic("streaming-x-pin").await.unwrap().kind, TopicKind::Stream);
    assert!(matches!(log.topic("nope").await, Err(Error::TopicNotFound(_))));
}

async fn append_and_read(log: &dyn Log) {
    assert_eq!(
        log.append("orders", 0, vec![rec(Some("k1"), "a"), rec(None, "b"), rec(Some(""), "c")]).await.unwrap(),
        0
    );
    assert_eq!(log.append("orders", 0, vec![rec(None, "d")]).await.unwrap(), 3);
    assert_eq!(log.append("orders", 1, vec![rec(None, "other partition")]).await.unwrap(), 0);
    let all = log.read("orders", 0, 0, ALL).await.unwrap();
    assert_eq!(values(&all), ["a", "b", "c", "d"]);
    assert_eq!(all.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(all[0].key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(all[1].key, None);
    assert_eq!(all[2].key.as_deref(), Some(&b""[..]));
    assert_eq!(all[0].timestamp_ms, 1_600_000_000_000);
    // Reads from any offset, at the end, past the end.
    assert_eq!(values(&log.read("orders", 0, 2, ALL).await.unwrap()), ["c", "d"]);
    assert!(log.read("orders", 0, 4, ALL).await.unwrap().is_empty());
    assert!(matches!(log.read("orders", 0, 5, ALL).await, Err(Error::OffsetOutOfRange { end: 4, .. })));
    let offsets = log.offsets("orders").await.unwrap();
    assert_eq!(
        offsets.iter().map(|o| (o.partition, o.start, o.end)).collect::<Vec<_>>(),
        [(0, 0, 4), (1, 0, 1), (2, 0, 0)]
    );
    // A record without a timestamp gets the append time.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    log.append("orders", 2, vec![Record::value(Bytes::from_static(b"x"))]).await.unwrap();
    let ts = log.read("orders", 2, 0, ALL).await.unwrap()[0].timestamp_ms;
    assert!((ts - now).abs() < 60_000, "timestamp {ts} vs now {now}");
}

async fn limits(log: &dyn Log) {
    let one = log.read("orders", 0, 0, ReadLimits { max_records: 1, max_bytes: usize::MAX }).await.unwrap();
    assert_eq!(values(&one), ["a"]);
    let two = log.read("orders", 0, 1, ReadLimits { max_records: 2, max_bytes: usize::MAX }).await.unwrap();
    assert_eq!(values(&two), ["b", "c"]);
    // A byte limit still returns at least one record.
    let tiny = log.read("orders", 0, 0, ReadLimits { max_records: 100, max_bytes: 1 }).await.unwrap();
    assert!(!tiny.is_empty() && tiny[0].offset == 0);
}

async fn errors(log: &dyn Log) {
    assert!(matches!(
        log.append("orders", 3, vec![rec(None, "x")]).await,
        Err(Error::PartitionNotFound { partition: 3, partitions: 3, .. })
    ));
    assert!(matches!(log.append("nope", 0, vec![rec(None, "x")]).await, Err(Error::TopicNotFound(_))));
    assert!(matches!(log.append("orders", 0, vec![]).await, Err(Error::EmptyBatch)));
    assert!(matches!(log.read("nope", 0, 0, ALL).await, Err(Error::TopicNotFound(_))));
    assert!(matches!(log.read("orders", 9, 0, ALL).await, Err(Error::PartitionNotFound { .. })));
    // Nothing of the failed appends was written.
    assert_eq!(log.offsets("orders").await.unwrap()[0].end, 4);
}

async fn waiting(log: &Arc<dyn Log>) {
    let end = log.offsets("orders").await.unwrap()[1].end;
    assert!(!log.wait_for("orders", 1, end, Duration::from_millis(50)).await.unwrap());
    let writer = Arc::clone(log);
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer.append("orders", 1, vec![rec(None, "late")]).await.unwrap()
    });
    let start = std::time::Instant::now();
    assert!(log.wait_for("orders", 1, end, Duration::from_secs(10)).await.unwrap());
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(task.await.unwrap(), end);
    assert_eq!(values(&log.read("orders", 1, end, ALL).await.unwrap()), ["late"]);
}

async fn concurrent_appends(log: &Arc<dyn Log>) {
    log.create_topic("busy", TopicKind::Topic, 1).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..40 {
        let log = Arc::clone(log);
        tasks.push(tokio::spawn(async move {
            let mut offsets = Vec::new();
            for i in 0..25 {
                let batch = if i % 5 == 0 {
                    vec![rec(None, &format!("{t}:{i}:0")), rec(None, &format!("{t}:{i}:1"))]
                } else {
                    vec![rec(None, &format!("{t}:{i}:0"))]
                };
                let n = batch.len() as u64;
                let base = log.append("busy", 0, batch).await.unwrap();
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
    let stored = log.read("busy", 0, 0, ALL).await.unwrap();
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

async fn deletion(log: &dyn Log) {
    log.create_topic("doomed", TopicKind::Topic, 2).await.unwrap();
    log.append("doomed", 1, vec![rec(None, "x")]).await.unwrap();
    log.delete_topic("doomed").await.unwrap();
    assert!(matches!(log.topic("doomed").await, Err(Error::TopicNotFound(_))));
    assert!(matches!(log.read("doomed", 1, 0, ALL).await, Err(Error::TopicNotFound(_))));
    assert!(matches!(log.delete_topic("doomed").await, Err(Error::TopicNotFound(_))));
    log.create_topic("doomed", TopicKind::Topic, 1).await.unwrap();
    assert_eq!(log.offsets("doomed").await.unwrap()[0].end, 0);
    log.delete_topic("doomed").await.unwrap();
}
