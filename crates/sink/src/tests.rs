//! Sink tests on the embedded log and a directory store (and S3 when a server is configured).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pinpipe_log::embedded::EmbeddedLog;
use pinpipe_log::{LogConfig, OffsetLog, Record, TopicKind};
use pinpipe_store::{Store, StoreConfig};
use tokio_util::sync::CancellationToken;

use crate::layout::{audit, object_name};
use crate::{Mode, Sink, SinkConfig};

struct Fixture {
    _dir: tempfile::TempDir,
    log: Arc<dyn OffsetLog>,
    store: Store,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn OffsetLog> =
        Arc::new(EmbeddedLog::open(&LogConfig::default().validate(dir.path()).unwrap()).unwrap());
    let store = StoreConfig::default().validate(dir.path()).unwrap().open().unwrap();
    Fixture { _dir: dir, log, store }
}

async fn append(log: &dyn OffsetLog, topic: &str, partition: u32, from: u32, n: u32) {
    let records =
        (from..from + n).map(|i| Record::value(Bytes::from(format!("{{\"topic\":\"{topic}\",\"i\":{i}}}")))).collect();
    log.append(topic, partition, records).await.unwrap();
}

fn sink(f: &Fixture, config: SinkConfig) -> Sink {
    Sink::new(Arc::clone(&f.log), f.store.clone(), config.validate("pinterest").unwrap())
}

async fn object(store: &Store, name: &str) -> Option<String> {
    use object_store::ObjectStoreExt;
    let got = store.inner.get(&store.key(name)).await.ok()?;
    Some(String::from_utf8(got.bytes().await.unwrap().to_vec()).unwrap())
}

async fn assert_exact(f: &Fixture, topic: &str, partition: u32, end: u64) {
    let a = audit(&f.store, &*f.log, topic, partition).await.unwrap();
    assert!(a.is_exact(), "{topic}/{partition}: {a:?}");
    assert_eq!(a.next, end, "{topic}/{partition}: {a:?}");
    assert_eq!(a.records, end, "{topic}/{partition}: {a:?}");
}

#[tokio::test]
async fn writes_one_object_per_record_in_the_confluent_layout() {
    let f = fixture();
    f.log.create_topic("pinterest.pin", TopicKind::Topic, 2).await.unwrap();
    f.log.create_topic("pinterest.geo", TopicKind::Topic, 1).await.unwrap();
    f.log.create_topic("elsewhere", TopicKind::Topic, 1).await.unwrap();
    f.log.create_topic("streaming-pinterest-pin", TopicKind::Stream, 1).await.unwrap();
    append(&*f.log, "pinterest.pin", 0, 0, 3).await;
    append(&*f.log, "pinterest.pin", 1, 10, 2).await;
    append(&*f.log, "pinterest.geo", 0, 0, 1).await;
    append(&*f.log, "elsewhere", 0, 0, 1).await;
    append(&*f.log, "streaming-pinterest-pin", 0, 0, 1).await;
    let s = sink(&f, SinkConfig::default());
    s.run(Mode::Once, CancellationToken::new()).await.unwrap();

    assert_eq!(
        object(&f.store, "topics/pinterest.pin/partition=0/pinterest.pin+0+0000000001.json").await.as_deref(),
        Some("{\"topic\":\"pinterest.pin\",\"i\":1}\n")
    );
    assert_eq!(
        object(&f.store, "topics/pinterest.pin/partition=1/pinterest.pin+1+0000000001.json").await.as_deref(),
        Some("{\"topic\":\"pinterest.pin\",\"i\":11}\n")
    );
    assert!(object(&f.store, "topics/pinterest.geo/partition=0/pinterest.geo+0+0000000000.json").await.is_some());
    assert!(object(&f.store, "topics/elsewhere/partition=0/elsewhere+0+0000000000.json").await.is_none());
    assert!(object(&f.store, &object_name("streaming-pinterest-pin", 0, 0)).await.is_none());
    assert_exact(&f, "pinterest.pin", 0, 3).await;
    assert_exact(&f, "pinterest.pin", 1, 2).await;
    let status = s.snapshot();
    assert_eq!(status[&("pinterest.pin".to_owned(), 0)].objects, 3);
    assert!(status.values().all(|p| p.lag() == 0));
}

#[tokio::test]
async fn flush_size_groups_records_and_restarts_continue_exactly() {
    let f = fixture();
    f.log.create_topic("pinterest.user", TopicKind::Topic, 1).await.unwrap();
    append(&*f.log, "pinterest.user", 0, 0, 10).await;
    let config = SinkConfig { flush_size: 4, ..SinkConfig::default() };
    sink(&f, config.clone()).run(Mode::Once, CancellationToken::new()).await.unwrap();
    // 0..4, 4..8, and the partial 8..10 at the end of --once.
    for (start, lines) in [(0, 4), (4, 4), (8, 2)] {
        let body = object(&f.store, &object_name("pinterest.user", 0, start)).await.unwrap();
        assert_eq!(body.lines().count(), lines, "object at {start}");
    }
    // A second run resumes after what is stored; running again with nothing new writes nothing.
    append(&*f.log, "pinterest.user", 0, 10, 5).await;
    let s = sink(&f, config.clone());
    s.run(Mode::Once, CancellationToken::new()).await.unwrap();
    assert!(object(&f.store, &object_name("pinterest.user", 0, 10)).await.is_some());
    assert_exact(&f, "pinterest.user", 0, 15).await;
    let s = sink(&f, config);
    s.run(Mode::Once, CancellationToken::new()).await.unwrap();
    assert_eq!(s.snapshot()[&("pinterest.user".to_owned(), 0)].objects, 0);
    assert_exact(&f, "pinterest.user", 0, 15).await;
}

#[tokio::test]
async fn following_rotates_partial_objects_after_the_interval_and_finds_new_topics() {
    let f = fixture();
    f.log.create_topic("pinterest.pin", TopicKind::Topic, 1).await.unwrap();
    let s =
        Arc::new(sink(&f, SinkConfig { flush_size: 100, rotate_interval: "300ms".into(), ..SinkConfig::default() }));
    let stop = CancellationToken::new();
    let run = {
        let (s, stop) = (Arc::clone(&s), stop.clone());
        tokio::spawn(async move { s.run(Mode::Follow, stop).await })
    };
    append(&*f.log, "pinterest.pin", 0, 0, 5).await;
    let name = object_name("pinterest.pin", 0, 0);
    let start = std::time::Instant::now();
    let body = loop {
        if let Some(b) = object(&f.store, &name).await {
            break b;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no rotation");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(body.lines().count(), 5);
    assert!(start.elapsed() >= Duration::from_millis(250), "rotated before the interval");
    // A topic created while following is picked up.
    f.log.create_topic("pinterest.geo", TopicKind::Topic, 1).await.unwrap();
    append(&*f.log, "pinterest.geo", 0, 0, 1).await;
    let geo = object_name("pinterest.geo", 0, 0);
    while object(&f.store, &geo).await.is_none() {
        assert!(start.elapsed() < Duration::from_secs(20), "new topic not consumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Stopping writes what is held.
    append(&*f.log, "pinterest.pin", 0, 5, 2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.cancel();
    run.await.unwrap().unwrap();
    assert_exact(&f, "pinterest.pin", 0, 7).await;
}

#[tokio::test]
async fn a_store_ahead_of_the_log_is_refused() {
    let f = fixture();
    f.log.create_topic("pinterest.pin", TopicKind::Topic, 1).await.unwrap();
    append(&*f.log, "pinterest.pin", 0, 0, 1).await;
    use object_store::ObjectStoreExt;
    f.store.inner.put(&f.store.key(&object_name("pinterest.pin", 0, 5)), Bytes::from("x\n").into()).await.unwrap();
    let e = sink(&f, SinkConfig::default()).run(Mode::Once, CancellationToken::new()).await.unwrap_err();
    assert!(matches!(e, crate::Error::AheadOfLog { stored: 6, log_end: 1, .. }), "{e}");
}

#[tokio::test]
async fn writes_the_same_layout_to_s3_exactly_once() {
    let Some(bucket) = pinpipe_testkit::s3::TestBucket::create().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn OffsetLog> =
        Arc::new(EmbeddedLog::open(&LogConfig::default().validate(dir.path()).unwrap()).unwrap());
    let store =
        StoreConfig { url: Some(bucket.url("raw/v1")), s3_endpoint: Some(bucket.endpoint.clone()), s3_region: None }
            .validate(dir.path())
            .unwrap()
            .open()
            .unwrap();
    let f = Fixture { _dir: dir, log, store };
    f.log.create_topic("pinterest.pin", TopicKind::Topic, 2).await.unwrap();
    append(&*f.log, "pinterest.pin", 0, 0, 7).await;
    append(&*f.log, "pinterest.pin", 1, 0, 2).await;
    let config = SinkConfig { flush_size: 3, ..SinkConfig::default() };
    sink(&f, config.clone()).run(Mode::Once, CancellationToken::new()).await.unwrap();
    assert_eq!(
        object(&f.store, "topics/pinterest.pin/partition=0/pinterest.pin+0+0000000003.json").await.as_deref(),
        Some(
            "{\"topic\":\"pinterest.pin\",\"i\":3}\n{\"topic\":\"pinterest.pin\",\"i\":4}\n{\"topic\":\"pinterest.pin\",\"i\":5}\n"
        )
    );
    // Keys carry the prefix in the bucket.
    assert_eq!(f.store.key("topics/x").as_ref(), "raw/v1/topics/x");
    append(&*f.log, "pinterest.pin", 0, 7, 4).await;
    sink(&f, config).run(Mode::Once, CancellationToken::new()).await.unwrap();
    assert_exact(&f, "pinterest.pin", 0, 11).await;
    assert_exact(&f, "pinterest.pin", 1, 2).await;
}

/// Regression: a value with line feeds (binary, pretty or deeply nested JSON) was written as
/// several lines, and the sink, resuming at "object start + lines", skipped acknowledged records.
#[tokio::test]
async fn values_with_line_feeds_are_one_line_each_and_resuming_skips_nothing() {
    let f = fixture();
    f.log.create_topic("pinterest.pin", TopicKind::Topic, 1).await.unwrap();
    let deep = format!("{}\n{}", "[".repeat(300), "]".repeat(300));
    let values: Vec<Vec<u8>> = vec![
        br#"{"i":0}"#.to_vec(),
        br#"{"i":1}"#.to_vec(),
        b"a\nb\nc".to_vec(),
        b"{\n  \"i\": 3\n}".to_vec(),
        deep.into_bytes(),
    ];
    let records = values.iter().map(|v| Record::value(Bytes::from(v.clone()))).collect();
    f.log.append("pinterest.pin", 0, records).await.unwrap();
    let config = || SinkConfig { flush_size: 100, ..Default::default() };
    sink(&f, config()).run(Mode::Once, CancellationToken::new()).await.unwrap();
    append(&*f.log, "pinterest.pin", 0, 5, 3).await;
    sink(&f, config()).run(Mode::Once, CancellationToken::new()).await.unwrap();

    // Two objects: the first five records, then the three that came after.
    let first = object(&f.store, &object_name("pinterest.pin", 0, 0)).await.unwrap();
    assert_eq!(first.lines().count(), 5, "{first}");
    let second = object(&f.store, &object_name("pinterest.pin", 0, 5)).await.unwrap();
    assert_eq!(second.lines().count(), 3, "{second}");
    assert!(second.starts_with("{\"topic\":\"pinterest.pin\",\"i\":5}\n"), "{second}");
    // JSON stays the same JSON on one line; the binary record carries its exact bytes.
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(serde_json::from_str::<serde_json::Value>(lines[3]).unwrap(), serde_json::json!({"i": 3}));
    assert_eq!(lines[4], String::from_utf8(values[4].clone()).unwrap().replace('\n', " "));
    use base64::Engine as _;
    let binary: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
    let b64 = binary[pinpipe_store::layout::RAW_FIELD].as_str().unwrap();
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(b64).unwrap(), values[2]);
    assert_exact(&f, "pinterest.pin", 0, 8).await;
}
