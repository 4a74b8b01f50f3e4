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
async fn following_rotates_partial_objects_on_schedule_and_finds_new_topics() {
    let f = fixture();
    f.log.create_topic("pinterest.pin", TopicKind::Topic, 1).await.unwrap();
    let config = SinkConfig { flush_size: 100, rotate_schedule_interval: "300ms".into(), ..SinkConfig::default() };
    let s = Arc::new(sink(&f, config));
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
    // The scheduled rotation writes the partial object at the next multiple of 300 ms.
    assert_eq!(body.lines().count(), 5);
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

/// Every key under the store's root, sorted.
async fn keys(store: &Store) -> Vec<String> {
    use futures_util::TryStreamExt;
    let mut all: Vec<String> = store.inner.list(None).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
    all.sort();
    all
}

async fn bytes_of(store: &Store, key: &str) -> Bytes {
    use object_store::ObjectStoreExt;
    store.inner.get(&store.key(key)).await.unwrap().bytes().await.unwrap()
}

fn geo(ind: u32, timestamp: &str) -> Record {
    Record::value(Bytes::from(format!(
        r#"{{"ind":{ind},"timestamp":"{timestamp}","latitude":1.5,"longitude":-2.25,"country":"Albania"}}"#
    )))
}

/// Six geo records: two in one hour, one in the next, one late, one with a time that is not one,
/// one on the next day.
async fn six_geos(f: &Fixture) {
    f.log.create_topic("pinterest.geo", TopicKind::Topic, 1).await.unwrap();
    let records = vec![
        geo(1, "2020-08-28T03:52:47"),
        geo(2, "2020-08-28T03:59:00"),
        geo(3, "2020-08-28T04:10:00"),
        geo(4, "2020-08-28T03:30:00"),
        geo(5, "not a time"),
        geo(6, "2020-08-29T00:00:00"),
    ];
    f.log.append("pinterest.geo", 0, records).await.unwrap();
}

fn hourly(rotate_interval: &str) -> SinkConfig {
    SinkConfig {
        flush_size: 3,
        rotate_interval: rotate_interval.into(),
        partitioner: crate::config::PartitionerKind::Time,
        path_format: "'dt'=YYYY-MM-dd/'hour'=HH".into(),
        partition_duration: "1h".into(),
        timestamp_extractor: crate::config::TimestampExtractor::RecordField,
        timestamp_field: "timestamp".into(),
        ..SinkConfig::default()
    }
}

#[tokio::test]
async fn the_time_partitioner_names_objects_as_the_connector_does_and_commits_groups() {
    for rotate in ["", "1h"] {
        let f = fixture();
        six_geos(&f).await;
        sink(&f, hourly(rotate)).run(Mode::Once, CancellationToken::new()).await.unwrap();
        // Golden names, worked out by hand from the connector's rules: by flush size, groups
        // {0,1,2} and {3,4,5}; with a one-hour rotate interval (one directory open at a time)
        // {0,1}, {2}, {3,4}, {5}. Either way the same objects; record 4 is a dead letter.
        let dead = "0000000003";
        assert_eq!(
            keys(&f.store).await,
            [
                "_pinpipe/sink/pinterest.geo/0.json".to_owned(),
                format!("_pinpipe/sink/pinterest.geo/0/dead_letters/{dead}.jsonl"),
                "topics/pinterest.geo/dt=2020-08-28/hour=03/pinterest.geo+0+0000000000.json".into(),
                "topics/pinterest.geo/dt=2020-08-28/hour=03/pinterest.geo+0+0000000003.json".into(),
                "topics/pinterest.geo/dt=2020-08-28/hour=04/pinterest.geo+0+0000000002.json".into(),
                "topics/pinterest.geo/dt=2020-08-29/hour=00/pinterest.geo+0+0000000005.json".into(),
            ],
            "rotate_interval {rotate:?}"
        );
        let first =
            object(&f.store, "topics/pinterest.geo/dt=2020-08-28/hour=03/pinterest.geo+0+0000000000.json").await;
        assert_eq!(first.unwrap().lines().map(|l| l.contains("03:5")).collect::<Vec<_>>(), [true, true]);
        let letters =
            object(&f.store, &format!("_pinpipe/sink/pinterest.geo/0/dead_letters/{dead}.jsonl")).await.unwrap();
        let letter: serde_json::Value = serde_json::from_str(letters.trim()).unwrap();
        assert_eq!((letter["offset"].as_u64(), letter["partition"].as_u64()), (Some(4), Some(0)));
        assert!(letter["reason"].as_str().unwrap().contains("not a date-time"), "{letter}");
        assert!(letter["value"].as_str().unwrap().contains("\"ind\":5"));
        let marker = pinpipe_store::layout::SinkCommit::read(&f.store, "pinterest.geo", 0).await.unwrap().unwrap();
        assert_eq!(marker, pinpipe_store::layout::SinkCommit { next: 6, writing: vec![] });
        // Every record once: the audit of an interleaved layout.
        let a = audit(&f.store, &*f.log, "pinterest.geo", 0).await.unwrap();
        assert!(a.is_exact() && a.records == 5, "{a:?}");
        let s = sink(&f, hourly(rotate));
        s.run(Mode::Once, CancellationToken::new()).await.unwrap();
        assert_eq!(s.snapshot()[&("pinterest.geo".to_owned(), 0)].objects, 0, "a second run has nothing to do");
    }
}

#[tokio::test]
async fn an_unfinished_group_is_removed_and_written_again() {
    let f = fixture();
    six_geos(&f).await;
    sink(&f, hourly("")).run(Mode::Once, CancellationToken::new()).await.unwrap();
    // A crash in the middle of the second group: its marker still says `writing`, one of its
    // objects exists and another is not there; a stray object from a cut that is not redone.
    use object_store::ObjectStoreExt;
    let second = "topics/pinterest.geo/dt=2020-08-28/hour=03/pinterest.geo+0+0000000003.json";
    let stray = "topics/pinterest.geo/dt=2020-08-28/hour=05/pinterest.geo+0+0000000004.json";
    f.store
        .inner
        .delete(&f.store.key("topics/pinterest.geo/dt=2020-08-29/hour=00/pinterest.geo+0+0000000005.json"))
        .await
        .unwrap();
    f.store.inner.put(&f.store.key(stray), Bytes::from_static(b"{}\n").into()).await.unwrap();
    let writing = vec![second.to_owned(), stray.to_owned()];
    pinpipe_store::layout::SinkCommit { next: 3, writing }.write(&f.store, "pinterest.geo", 0).await.unwrap();
    // Readers take only committed groups meanwhile.
    let listed = pinpipe_store::layout::list_topic(&f.store, "pinterest.geo", &Default::default()).await.unwrap();
    assert_eq!(listed.iter().map(|o| o.start).collect::<Vec<_>>(), [0, 2]);
    sink(&f, hourly("")).run(Mode::Once, CancellationToken::new()).await.unwrap();
    let all = keys(&f.store).await;
    assert!(!all.iter().any(|k| k == stray), "{all:?}");
    let a = audit(&f.store, &*f.log, "pinterest.geo", 0).await.unwrap();
    assert!(a.is_exact() && a.records == 5, "{a:?}");
}

#[tokio::test]
async fn gzip_and_parquet_objects_hold_every_record_and_refused_ones_are_dead_letters() {
    use crate::config::FormatKind;
    // Default partitioner, gzip JSON, two records per object: the names the connector gives.
    let f = fixture();
    six_geos(&f).await;
    let gz = SinkConfig { flush_size: 2, compression: Some("gzip".into()), ..SinkConfig::default() };
    sink(&f, gz.clone()).run(Mode::Once, CancellationToken::new()).await.unwrap();
    let names: Vec<String> = keys(&f.store).await;
    assert_eq!(
        names,
        ["0000000000", "0000000002", "0000000004"]
            .map(|s| format!("topics/pinterest.geo/partition=0/pinterest.geo+0+{s}.json.gz"))
    );
    assert_exact(&f, "pinterest.geo", 0, 6).await;
    // Appended records continue after the newest gzip object (its lines counted).
    f.log.append("pinterest.geo", 0, vec![geo(7, "2020-08-29T01:00:00")]).await.unwrap();
    sink(&f, gz).run(Mode::Once, CancellationToken::new()).await.unwrap();
    assert_exact(&f, "pinterest.geo", 0, 7).await;

    // Parquet: a user record whose age is text does not fit the raw schema.
    let f = fixture();
    f.log.create_topic("pinterest.user", TopicKind::Topic, 1).await.unwrap();
    let users = [
        r#"{"ind":1,"first_name":"A","last_name":"B","age":20,"date_joined":"2015-10-24T11:23:51"}"#,
        r#"{"ind":2,"age":"old"}"#,
        r#"{"ind":3,"first_name":"C"}"#,
    ];
    f.log.append("pinterest.user", 0, users.iter().map(|u| Record::value(Bytes::from(*u))).collect()).await.unwrap();
    let pq = SinkConfig { flush_size: 10, format: FormatKind::Parquet, ..SinkConfig::default() };
    let s = sink(&f, pq.clone());
    s.run(Mode::Once, CancellationToken::new()).await.unwrap();
    let status = &s.snapshot()[&("pinterest.user".to_owned(), 0)];
    assert_eq!((status.objects, status.records, status.dead_letters, status.written), (1, 2, 1, 3));
    let key = "topics/pinterest.user/partition=0/pinterest.user+0+0000000000.snappy.parquet";
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes_of(&f.store, key).await)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(batches[0].schema(), pinpipe_model::schema::raw(pinpipe_model::Kind::User));
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    let letters = object(&f.store, "_pinpipe/sink/pinterest.user/0/dead_letters/0000000000.jsonl").await.unwrap();
    assert!(letters.contains("\"offset\":1") && letters.contains("age"), "{letters}");
    // The object covers offsets 0..3 (its metadata): a restart resumes at 3, not at its 2 rows.
    f.log.append("pinterest.user", 0, vec![Record::value(Bytes::from(users[0]))]).await.unwrap();
    sink(&f, pq).run(Mode::Once, CancellationToken::new()).await.unwrap();
    assert!(
        keys(&f.store)
            .await
            .contains(&"topics/pinterest.user/partition=0/pinterest.user+0+0000000003.snappy.parquet".to_owned())
    );
}

#[tokio::test]
async fn the_field_partitioner_places_records_by_their_values() {
    let f = fixture();
    f.log.create_topic("pinterest.pin", TopicKind::Topic, 1).await.unwrap();
    let pins = [
        r#"{"index":1,"category":"art"}"#,
        r#"{"index":2,"category":"diy and crafts"}"#,
        r#"{"index":3,"category":"art"}"#,
        r#"{"index":4}"#,
        r#"{"index":5,"category":"../../etc"}"#,
    ];
    f.log.append("pinterest.pin", 0, pins.iter().map(|p| Record::value(Bytes::from(*p))).collect()).await.unwrap();
    let c = SinkConfig {
        flush_size: 100,
        partitioner: crate::config::PartitionerKind::Field,
        partition_fields: vec!["category".into()],
        ..SinkConfig::default()
    };
    sink(&f, c).run(Mode::Once, CancellationToken::new()).await.unwrap();
    let objects: Vec<String> = keys(&f.store).await.into_iter().filter(|k| k.starts_with("topics/")).collect();
    assert_eq!(
        objects,
        [
            "topics/pinterest.pin/category=.._.._etc/pinterest.pin+0+0000000004.json",
            "topics/pinterest.pin/category=art/pinterest.pin+0+0000000000.json",
            "topics/pinterest.pin/category=diy and crafts/pinterest.pin+0+0000000001.json",
        ]
    );
    assert_eq!(object(&f.store, &objects[1]).await.unwrap().lines().count(), 2);
    let a = audit(&f.store, &*f.log, "pinterest.pin", 0).await.unwrap();
    assert!(a.is_exact() && a.records == 4, "{a:?}");
}

#[tokio::test]
async fn time_and_field_partitioners_with_gzip_and_parquet_work_on_s3() {
    let Some(bucket) = pinpipe_testkit::s3::TestBucket::create().await else { return };
    for (prefix, config) in [
        ("hourly-gzip", SinkConfig { compression: Some("gzip".into()), ..hourly("") }),
        (
            "field-parquet",
            SinkConfig {
                flush_size: 2,
                partitioner: crate::config::PartitionerKind::Field,
                partition_fields: vec!["country".into()],
                format: crate::config::FormatKind::Parquet,
                ..SinkConfig::default()
            },
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn OffsetLog> =
            Arc::new(EmbeddedLog::open(&LogConfig::default().validate(dir.path()).unwrap()).unwrap());
        let url = bucket.url(prefix);
        let store = StoreConfig { url: Some(url), s3_endpoint: Some(bucket.endpoint.clone()), s3_region: None }
            .validate(dir.path())
            .unwrap()
            .open()
            .unwrap();
        let f = Fixture { _dir: dir, log, store };
        six_geos(&f).await;
        sink(&f, config.clone()).run(Mode::Once, CancellationToken::new()).await.unwrap();
        f.log.append("pinterest.geo", 0, vec![geo(7, "2020-08-29T00:30:00")]).await.unwrap();
        sink(&f, config).run(Mode::Once, CancellationToken::new()).await.unwrap();
        let listed = pinpipe_store::layout::list_topic(&f.store, "pinterest.geo", &Default::default()).await.unwrap();
        let marker = pinpipe_store::layout::SinkCommit::read(&f.store, "pinterest.geo", 0).await.unwrap().unwrap();
        assert_eq!(marker.next, 7, "{prefix}");
        if prefix == "hourly-gzip" {
            let a = audit(&f.store, &*f.log, "pinterest.geo", 0).await.unwrap();
            assert!(a.is_exact() && a.records == 6 && a.dead_letters == 1, "{prefix}: {a:?}");
        } else {
            // Rows of every Parquet object: 7 records, all of one schema, each once.
            let mut rows = 0;
            for o in &listed {
                let bytes = {
                    use object_store::ObjectStoreExt;
                    f.store.inner.get(&o.meta.location).await.unwrap().bytes().await.unwrap()
                };
                let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .unwrap()
                    .build()
                    .unwrap();
                rows += reader.map(|b| b.unwrap().num_rows()).sum::<usize>();
            }
            assert_eq!(rows, 7, "{prefix}");
            assert!(listed.iter().all(|o| o.meta.location.as_ref().contains("/country=Albania/")), "{listed:?}");
        }
    }
}
