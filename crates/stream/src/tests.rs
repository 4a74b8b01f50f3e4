//! Streaming job tests on a real embedded log and real Delta tables: exactly the distinct clean
//! rows, offsets committed with the rows and resumed from, dead letters with their origin,
//! crashes at arbitrary points, a second job refused while the first runs, compaction and
//! checkpoints; and
//! the same job on Kinesis (moto), where positions are sequence numbers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use datafusion::arrow::array::{Array, Int64Array};
use datafusion::prelude::SessionContext;
use futures_util::StreamExt;
use pinpipe_log::embedded::EmbeddedLog;
use pinpipe_log::{Log, LogConfig, Record, TopicKind};
use pinpipe_model::{Kind, Names};
use pinpipe_store::StoreConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::commit::{self, COMMIT_INFO_KEY};
use crate::config::Resolved;
use crate::{Mode, StreamConfig, StreamJob, status};
use pinpipe_store::warehouse::{stream_dead_letters as dead_letter_key, stream_table as table_dir};

struct Fixture {
    dir: tempfile::TempDir,
    log: Arc<dyn Log>,
    warehouse: pinpipe_store::Resolved,
    names: Names,
}

const SHARDS: u32 = 2;

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&LogConfig::default().validate(dir.path()).unwrap()).unwrap();
    let names = Names::new("t").unwrap();
    for kind in Kind::ALL {
        log.create_topic(&names.stream(kind), TopicKind::Stream, SHARDS).await.unwrap();
    }
    let warehouse = StoreConfig::default().validate_or(dir.path().join("warehouse")).unwrap();
    Fixture { dir, log: Arc::new(log), warehouse, names }
}

fn config(f: impl FnOnce(&mut StreamConfig)) -> Resolved {
    let mut c = StreamConfig { trigger_interval: "20ms".into(), ..Default::default() };
    f(&mut c);
    c.validate().unwrap()
}

fn pin(ind: i64, followers: &str) -> Value {
    json!({"index": ind, "unique_id": format!("u-{ind}"), "title": "T", "description": "D",
        "poster_name": "P", "follower_count": followers, "tag_list": "a,b", "is_image_or_video": "image",
        "image_src": "https://i.example/x.jpg", "downloaded": 1,
        "save_location": "Local save in /data/art", "category": "art"})
}

fn geo(ind: i64) -> Value {
    json!({"ind": ind, "timestamp": "2020-08-28T03:52:47", "latitude": -89.9787, "longitude": -173.293, "country": "Albania"})
}

fn user(ind: i64) -> Value {
    json!({"ind": ind, "first_name": "Abigail", "last_name": "Ali", "age": 20, "date_joined": "2015-10-24T11:23:51"})
}

impl Fixture {
    /// Appends `value` to the shard `ind % SHARDS` of `kind`'s stream.
    async fn put(&self, kind: Kind, ind: i64, value: &[u8]) {
        let record = Record {
            timestamp_ms: None,
            key: Some(Bytes::from(ind.to_string())),
            value: Bytes::copy_from_slice(value),
        };
        self.log.append_positioned(&self.names.stream(kind), (ind as u32) % SHARDS, vec![record]).await.unwrap();
    }

    async fn post(&self, ind: i64, followers: &str) {
        self.put(Kind::Pin, ind, pin(ind, followers).to_string().as_bytes()).await;
        self.put(Kind::Geo, ind, geo(ind).to_string().as_bytes()).await;
        self.put(Kind::User, ind, user(ind).to_string().as_bytes()).await;
    }

    fn job(&self, config: Resolved) -> StreamJob {
        StreamJob::new(Arc::clone(&self.log), self.warehouse.clone(), self.names.clone(), config)
    }

    async fn once(&self, config: Resolved) -> Vec<crate::TableStatus> {
        let job = self.job(config);
        job.run(Mode::Once, CancellationToken::new()).await.unwrap();
        job.snapshot()
    }

    async fn table(&self, kind: Kind) -> deltalake::DeltaTable {
        let loc = self.warehouse.table_location(&table_dir(&self.names.table(kind))).unwrap();
        pinpipe_store::delta::open(&loc).await.unwrap()
    }

    /// `SELECT <key>, <col> FROM table ORDER BY 1, 2` through DataFusion.
    async fn pairs(&self, kind: Kind, key: &str, col: &str) -> Vec<(i64, Option<i64>)> {
        let table = self.table(kind).await;
        let ctx = SessionContext::new();
        table.update_datafusion_session(&ctx.state()).unwrap();
        ctx.register_table("t", table.table_provider().await.unwrap()).unwrap();
        let sql = format!("SELECT {key} AS k, CAST({col} AS BIGINT) AS v FROM t ORDER BY 1, 2");
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let mut out = Vec::new();
        for b in batches {
            let k = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let v = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            out.extend((0..b.num_rows()).map(|i| (k.value(i), (!v.is_null(i)).then(|| v.value(i)))));
        }
        out
    }

    /// Deletes the streams (on a shared Kinesis server).
    async fn drop_streams(&self) {
        for kind in Kind::ALL {
            self.log.delete_topic(&self.names.stream(kind)).await.unwrap();
        }
    }

    async fn inds(&self, kind: Kind) -> Vec<i64> {
        self.pairs(kind, "ind", "ind").await.into_iter().map(|(k, _)| k).collect()
    }
}

#[tokio::test]
async fn once_appends_the_distinct_clean_rows_and_commits_offsets_with_them() {
    let f = fixture().await;
    for ind in 1..=6 {
        f.post(ind, ["10", "5k", "User Info Error", "1M", "7", "300"][ind as usize - 1]).await;
    }
    // Post 1's pin delivered twice (same shard, same micro-batch), and one pin that is not JSON.
    f.put(Kind::Pin, 1, pin(1, "10").to_string().as_bytes()).await;
    f.put(Kind::Pin, 3, b"{\"index\": 3, \"unique_id\": ").await;

    let run = f.once(config(|_| {})).await;
    let pin_status = run.iter().find(|s| s.stream == "streaming-t-pin").unwrap();
    assert_eq!((pin_status.records, pin_status.rows, pin_status.duplicates, pin_status.dead_letters), (8, 6, 1, 1));
    assert_eq!(pin_status.lag(), Some(0));

    assert_eq!(
        f.pairs(Kind::Pin, "ind", "follower_count").await,
        [(1, Some(10)), (2, Some(5000)), (3, None), (4, Some(1_000_000)), (5, Some(7)), (6, Some(300))]
    );
    assert_eq!(f.inds(Kind::Geo).await, [1, 2, 3, 4, 5, 6]);
    assert_eq!(f.inds(Kind::User).await, [1, 2, 3, 4, 5, 6]);

    // The dead letter: reason, and origin down to the sequence number.
    let dead = std::fs::read_to_string(f.dir.path().join("warehouse").join(dead_letter_key("t_pin_table", 0))).unwrap();
    let letter: Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
    assert_eq!(letter["kind"], "pin");
    assert_eq!(letter["origin"]["stream"], "streaming-t-pin");
    assert_eq!(letter["origin"]["shard"], "shardId-000000000001");
    assert_eq!(letter["origin"]["sequence_number"], pinpipe_log::partitioner::sequence_number(1, 4));
    assert!(!letter["reason"].as_str().unwrap().is_empty());
    assert_eq!(dead.lines().count(), 1);

    // The offsets are in the table's own commit: txn versions and commitInfo.
    let table = f.table(Kind::Pin).await;
    let c = commit::committed(&table, "streaming-t-pin", SHARDS, commit::Tracking::Offsets).await.unwrap();
    let ends: Vec<u64> =
        f.log.as_offsets().unwrap().offsets("streaming-t-pin").await.unwrap().iter().map(|o| o.end).collect();
    assert_eq!(c.batch, Some(0));
    assert_eq!(c.offsets.values().copied().collect::<Vec<_>>(), ends);
    let info = table.history(Some(1)).next().await.unwrap().unwrap();
    let meta = &info.info[COMMIT_INFO_KEY];
    assert_eq!(meta["batch"], 0);
    assert_eq!(meta["records"], 8);
    assert_eq!(meta["offsets"].as_array().unwrap().len(), 2);

    // A second run resumes after the committed offsets: only the new posts are appended.
    for ind in 7..=8 {
        f.post(ind, "1k").await;
    }
    let run = f.once(config(|_| {})).await;
    assert!(run.iter().all(|s| s.records == 2 && s.batches == 1 && s.last_batch == Some(1)), "{run:?}");
    assert_eq!(f.inds(Kind::Pin).await, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(f.inds(Kind::User).await, [1, 2, 3, 4, 5, 6, 7, 8]);

    // Nothing new: no commit at all.
    let before = f.table(Kind::Geo).await.version();
    let run = f.once(config(|_| {})).await;
    assert!(run.iter().all(|s| s.batches == 0));
    assert_eq!(f.table(Kind::Geo).await.version(), before);

    // Status from the outside (what `pinpipe stream status` prints).
    let st = status(f.log.as_ref(), &f.warehouse, &f.names).await.unwrap();
    assert_eq!(st.len(), 3);
    for s in &st {
        assert_eq!(s.lag(), Some(0), "{s:?}");
        assert_eq!(s.last_batch, Some(1));
        assert!(s.last_commit_ms.is_some());
        assert_eq!(s.partitions.len(), SHARDS as usize);
    }
}

#[tokio::test]
async fn all_dead_letters_still_advance_the_offsets() {
    let f = fixture().await;
    f.put(Kind::Geo, 0, b"not json").await;
    f.put(Kind::Geo, 1, b"{\"ind\": 1, \"timestamp\": \"yesterday\"}").await;
    let run = f.once(config(|_| {})).await;
    let g = run.iter().find(|s| s.stream == "streaming-t-geo").unwrap();
    assert_eq!((g.records, g.rows, g.dead_letters, g.lag()), (2, 0, 2, Some(0)));
    assert!(f.inds(Kind::Geo).await.is_empty());
    let run = f.once(config(|_| {})).await;
    assert!(run.iter().all(|s| s.batches == 0), "offsets were committed, nothing is redone");
}

#[tokio::test]
async fn crashes_at_arbitrary_points_neither_lose_nor_duplicate() {
    crashes(Arc::new(fixture().await), 600).await;
}

#[tokio::test]
async fn on_kinesis_crashes_at_arbitrary_points_neither_lose_nor_duplicate() {
    let Some(f) = kinesis_fixture().await else { return };
    let f = Arc::new(f);
    crashes(Arc::clone(&f), 150).await;
    f.drop_streams().await;
}

/// Kills the job at arbitrary points eight times while `posts` posts are produced; then every
/// post is in every table exactly once.
async fn crashes(f: Arc<Fixture>, posts: i64) {
    let producer = {
        let f = Arc::clone(&f);
        tokio::spawn(async move {
            for ind in 0..posts {
                f.post(ind, "1k").await;
                if ind % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    // Small micro-batches, frequent compaction and checkpoints: many commit points to die at.
    let cfg = config(|c| {
        c.max_records_per_batch = 40;
        c.optimize_every = 3;
        c.checkpoint_every = 2;
        c.trigger_interval = "10ms".into();
    });
    for round in 0..8u64 {
        let job = f.job(cfg.clone());
        let task = tokio::spawn(async move { job.run(Mode::Follow, CancellationToken::new()).await });
        // Let it run for a while, then kill it wherever it is (a dropped future is a crash:
        // nothing after the await point runs).
        tokio::time::sleep(Duration::from_millis(60 + 37 * round)).await;
        task.abort();
        let _ = task.await;
    }
    producer.await.unwrap();
    f.once(cfg).await;
    let want: Vec<i64> = (0..posts).collect();
    for kind in Kind::ALL {
        assert_eq!(f.inds(kind).await, want, "{kind:?}");
    }
}

#[tokio::test]
async fn a_second_job_is_refused_while_the_first_runs_and_rows_stay_exact() {
    racing_jobs(&fixture().await).await;
}

#[tokio::test]
async fn on_kinesis_a_second_job_is_refused_while_the_first_runs_and_rows_stay_exact() {
    let Some(f) = kinesis_fixture().await else { return };
    racing_jobs(&f).await;
    f.drop_streams().await;
}

async fn racing_jobs(f: &Fixture) {
    for ind in 0..200 {
        f.post(ind, "3").await;
    }
    let cfg = config(|c| {
        c.max_records_per_batch = 30;
        c.optimize_every = 2;
    });
    let (a, b) = (f.job(cfg.clone()), f.job(cfg.clone()));
    let (ra, rb) =
        tokio::join!(a.run(Mode::Once, CancellationToken::new()), b.run(Mode::Once, CancellationToken::new()));
    // The second job to start finds the tables leased and stops before reading anything.
    assert!(ra.is_ok() || rb.is_ok(), "{ra:?} {rb:?}");
    for r in [&ra, &rb] {
        if let Err(e) = r {
            assert!(matches!(e, crate::Error::Store(pinpipe_store::Error::LeaseHeld { .. })), "{e}");
            assert!(e.to_string().contains("held by pinpipe stream"), "{e}");
        }
    }
    // Once the first is done, another job may run: it finds nothing left.
    let again = f.once(cfg).await;
    assert!(again.iter().all(|s| s.rows == 0), "{again:?}");
    let want: Vec<i64> = (0..200).collect();
    for kind in Kind::ALL {
        assert_eq!(f.inds(kind).await, want, "{kind:?}");
    }
}

#[tokio::test]
async fn compaction_and_checkpoints_keep_the_rows_and_the_position() {
    compaction_and_checkpoints(&fixture().await).await;
}

#[tokio::test]
async fn on_kinesis_compaction_and_checkpoints_keep_the_rows_and_the_position() {
    let Some(f) = kinesis_fixture().await else { return };
    compaction_and_checkpoints(&f).await;
    f.drop_streams().await;
}

/// Compaction and checkpoint commits come after micro-batch commits: the position is still
/// found (on Kinesis: in the last micro-batch's commitInfo, behind the compaction's commit).
async fn compaction_and_checkpoints(f: &Fixture) {
    for ind in 0..100 {
        f.post(ind, "2").await;
    }
    let cfg = config(|c| {
        c.max_records_per_batch = 10;
        c.optimize_every = 4;
        c.checkpoint_every = 5;
    });
    let run = f.once(cfg.clone()).await;
    assert!(run.iter().all(|s| s.batches == 10 && s.compactions == 2), "{run:?}");
    let log_dir = f.dir.path().join(format!("warehouse/stream/{}/_delta_log", f.names.table(Kind::User)));
    let checkpoints: Vec<_> = std::fs::read_dir(&log_dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".checkpoint.parquet"))
        .collect();
    assert_eq!(checkpoints.len(), 2, "{checkpoints:?}");
    let table = f.table(Kind::User).await;
    let ops: Vec<String> = table.history(None).filter_map(|c| async move { c.ok()?.operation }).collect().await;
    assert_eq!(ops.iter().filter(|o| o.as_str() == "OPTIMIZE").count(), 2, "{ops:?}");
    assert_eq!(f.inds(Kind::User).await, (0..100).collect::<Vec<_>>());
    // The position survives compaction and checkpoints: nothing is redone.
    let again = f.once(cfg).await;
    assert!(again.iter().all(|s| s.batches == 0), "{again:?}");
}

#[tokio::test]
async fn a_table_ahead_of_the_log_is_refused() {
    let f = fixture().await;
    f.post(1, "1").await;
    f.post(2, "1").await;
    f.once(config(|_| {})).await;
    // A fresh log (same names, fewer records) and the old warehouse.
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&LogConfig::default().validate(dir.path()).unwrap()).unwrap();
    for kind in Kind::ALL {
        log.create_topic(&f.names.stream(kind), TopicKind::Stream, SHARDS).await.unwrap();
    }
    let job = StreamJob::new(Arc::new(log), f.warehouse.clone(), f.names.clone(), config(|_| {}));
    let err = job.run(Mode::Once, CancellationToken::new()).await.unwrap_err();
    assert!(matches!(err, crate::Error::AheadOfLog { committed: 1, log_end: 0, .. }), "{err}");
    assert!(err.to_string().contains("another warehouse"), "{err}");
}

#[tokio::test]
async fn tables_and_dead_letters_on_s3() {
    let Some(bucket) = pinpipe_testkit::s3::TestBucket::create().await else { return };
    let mut f = fixture().await;
    f.warehouse =
        StoreConfig { url: Some(bucket.url("wh")), s3_endpoint: Some(bucket.endpoint.clone()), s3_region: None }
            .validate(f.dir.path())
            .unwrap();
    for ind in 0..20 {
        f.post(ind, "9").await;
    }
    f.put(Kind::User, 1, b"[]").await;
    let run = f.once(config(|c| c.max_records_per_batch = 8)).await;
    assert!(run.iter().all(|s| s.lag() == Some(0) && s.batches >= 3), "{run:?}");
    assert_eq!(f.inds(Kind::Pin).await, (0..20).collect::<Vec<_>>());
    // Resuming from the offsets committed in the bucket: nothing is redone.
    f.post(20, "9").await;
    let again = f.once(config(|_| {})).await;
    assert!(again.iter().all(|s| s.records == 1), "{again:?}");
    assert_eq!(f.inds(Kind::User).await, (0..21).collect::<Vec<_>>());
    // The dead letter is an object in the bucket.
    let store = f.warehouse.open().unwrap();
    let mut keys: Vec<String> = store
        .inner
        .list(Some(&store.key("stream/_dead_letters/t_user_table")))
        .map(|m| m.unwrap().location.to_string())
        .collect()
        .await;
    keys.sort();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("wh/stream/_dead_letters/t_user_table/"), "{keys:?}");
}

#[tokio::test]
async fn a_row_delivered_again_in_a_later_batch_is_dropped_even_after_a_restart() {
    let f = fixture().await;
    for ind in 1..=4 {
        f.post(ind, "5k").await;
    }
    f.once(config(|_| {})).await;
    // Post 2 again (every record identical) and a new post 5; a new job restores what the
    // table holds before its first batch.
    f.post(2, "5k").await;
    f.post(5, "5k").await;
    let run = f.once(config(|_| {})).await;
    assert!(run.iter().all(|s| (s.records, s.rows, s.duplicates) == (2, 1, 1)), "{run:?}");
    for kind in Kind::ALL {
        assert_eq!(f.inds(kind).await, [1, 2, 3, 4, 5], "{kind:?}");
    }
    // Post 2 once more, but with a different follower count: not a duplicate, a new row.
    f.put(Kind::Pin, 2, pin(2, "6k").to_string().as_bytes()).await;
    f.once(config(|_| {})).await;
    assert_eq!(f.pairs(Kind::Pin, "ind", "follower_count").await[1..3], [(2, Some(5000)), (2, Some(6000))]);
    // With `dedup = "batch"`, only duplicates within a micro-batch are dropped.
    f.post(3, "5k").await;
    f.once(config(|c| c.dedup = "batch".into())).await;
    assert_eq!(f.inds(Kind::User).await, [1, 2, 3, 3, 4, 5]);
}

/// The fixture on the Kinesis API server `.ci/run` starts (moto), with names no other test run
/// uses; `None` (skipped) when none is configured.
async fn kinesis_fixture() -> Option<Fixture> {
    let endpoint = pinpipe_testkit::service_url("TEST_PINPIPE_KINESIS_ENDPOINT")?;
    let config = pinpipe_log::kinesis::KinesisConfig {
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint),
        poll_interval_ms: Some(50),
    };
    let log = pinpipe_log::kinesis::KinesisLog::connect(&config.validate().unwrap()).await.unwrap();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let names = Names::new(&format!("k{}_{nanos}", std::process::id())).unwrap();
    for kind in Kind::ALL {
        log.create_topic(&names.stream(kind), TopicKind::Stream, SHARDS).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let warehouse = StoreConfig::default().validate_or(dir.path().join("warehouse")).unwrap();
    Some(Fixture { dir, log: Arc::new(log), warehouse, names })
}

#[tokio::test]
async fn on_kinesis_sequence_numbers_are_committed_with_the_rows_and_resumed_from() {
    let Some(f) = kinesis_fixture().await else { return };
    for ind in 1..=6 {
        f.post(ind, "2k").await;
    }
    f.post(3, "2k").await;
    f.put(Kind::Geo, 1, b"[]").await;
    let run = f.once(config(|c| c.max_records_per_batch = 4)).await;
    let pins = run.iter().find(|s| s.stream == f.names.stream(Kind::Pin)).unwrap();
    assert_eq!((pins.records, pins.rows, pins.duplicates), (7, 6, 1), "{pins:?}");
    assert!(pins.batches >= 2, "{pins:?}");
    assert_eq!(pins.lag(), None, "Kinesis cannot count the lag");
    for kind in Kind::ALL {
        assert_eq!(f.inds(kind).await, [1, 2, 3, 4, 5, 6], "{kind:?}");
    }
    assert_eq!(f.pairs(Kind::Pin, "ind", "follower_count").await[0], (1, Some(2000)));

    // The dead letter's origin is Kinesis' own sequence number.
    let geo_stream = f.names.stream(Kind::Geo);
    let shard1 =
        f.log.read_from(&geo_stream, 1, &pinpipe_log::Cursor::Start, pinpipe_log::ReadLimits::default()).await.unwrap();
    let bad = shard1.records.iter().find(|r| r.value.as_ref() == b"[]").unwrap();
    let store = f.warehouse.open().unwrap();
    let mut letters = Vec::new();
    let prefix = store.key(&format!("stream/_dead_letters/{}", f.names.table(Kind::Geo)));
    let mut listing = store.inner.list(Some(&prefix));
    while let Some(m) = listing.next().await {
        let body =
            object_store::ObjectStoreExt::get(&store.inner, &m.unwrap().location).await.unwrap().bytes().await.unwrap();
        letters.extend(
            String::from_utf8(body.to_vec()).unwrap().lines().map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["origin"]["stream"], geo_stream.as_str());
    assert_eq!(letters[0]["origin"]["shard"], "shardId-000000000001");
    assert_eq!(letters[0]["origin"]["sequence_number"], bad.position.to_string());

    // The positions are in the last micro-batch's commit: where each shard continues.
    let pin_stream = f.names.stream(Kind::Pin);
    let table = f.table(Kind::Pin).await;
    let c = commit::committed(&table, &pin_stream, SHARDS, commit::Tracking::Cursors).await.unwrap();
    assert_eq!(c.batch, Some(pins.batches - 1));
    assert!(c.offsets.is_empty());
    for p in 0..SHARDS {
        let all = f
            .log
            .read_from(&pin_stream, p, &pinpipe_log::Cursor::Start, pinpipe_log::ReadLimits::default())
            .await
            .unwrap();
        let last = all.records.last().unwrap().position.clone();
        assert_eq!(c.cursors[&p], pinpipe_log::Cursor::After(last), "shard {p}");
    }
    let info = table.history(Some(1)).next().await.unwrap().unwrap();
    assert_eq!(info.info[COMMIT_INFO_KEY]["cursors"].as_object().unwrap().len(), SHARDS as usize);

    // A new job resumes after them: only the new posts are read.
    f.post(7, "2k").await;
    f.post(8, "2k").await;
    let again = f.once(config(|_| {})).await;
    assert!(again.iter().all(|s| s.records == 2), "{again:?}");
    for kind in Kind::ALL {
        assert_eq!(f.inds(kind).await, [1, 2, 3, 4, 5, 6, 7, 8], "{kind:?}");
    }
    // Status reads the position back from the table.
    let st = status(f.log.as_ref(), &f.warehouse, &f.names).await.unwrap();
    let p = st.iter().find(|s| s.stream == pin_stream).unwrap();
    assert!(
        p.partitions.iter().all(|s| matches!(s.cursor, pinpipe_log::Cursor::After(_)) && s.committed.is_none()),
        "{p:?}"
    );
    f.drop_streams().await;
}
