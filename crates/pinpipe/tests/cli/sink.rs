//! `pinpipe sink` beside a running server: layout, exactly-once under SIGKILL, and S3.

use std::time::Duration;

use pinpipe_log::embedded::EmbeddedLog;
use pinpipe_log::{Log, OffsetLog};
use pinpipe_sink::layout::audit;
use pinpipe_store::StoreConfig;
use pinpipe_testkit::http::HttpClient;
use serde_json::json;

use crate::harness::{Server, Workdir};

/// Checks every partition of every `pinterest.*` topic: stored exactly once, up to the log's end.
async fn assert_store_is_exact(w: &Workdir, store: &pinpipe_store::Store) -> u64 {
    let log = EmbeddedLog::open_read_only(&w.path().join(".pinpipe/log")).unwrap();
    let mut total = 0;
    for t in log.topics().await.unwrap() {
        if !t.name.starts_with("pinterest.") {
            continue;
        }
        for o in log.offsets(&t.name).await.unwrap() {
            let a = audit(store, &log, &t.name, o.partition).await.unwrap();
            assert!(a.is_exact(), "{}/{}: {a:?}", t.name, o.partition);
            assert_eq!((a.next, a.records), (o.end, o.end), "{}/{}: {a:?}", t.name, o.partition);
            total += a.records;
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread")]
async fn sink_once_writes_the_confluent_layout_from_an_emulated_run() {
    let w = Workdir::new();
    w.ok(&["source", "generate", "--rows", "200"]);
    let server = Server::start(&w, &[]);
    w.ok(&["emulate", "--api-url", &format!("http://{}", server.addr), "--count", "23", "--mode", "both"]);
    let out = w.ok(&["sink", "--once", "--flush-size", "5"]);
    assert!(out.contains("sink: wrote 15 objects (69 records)"), "{out}");
    assert!(out.contains("pinterest.pin/0: next offset 23, log end 23, lag 0"), "{out}");
    let dir = w.path().join(".pinpipe/objects/topics/pinterest.geo/partition=0");
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "pinterest.geo+0+0000000000.json",
            "pinterest.geo+0+0000000005.json",
            "pinterest.geo+0+0000000010.json",
            "pinterest.geo+0+0000000015.json",
            "pinterest.geo+0+0000000020.json"
        ]
    );
    let last = std::fs::read_to_string(dir.join("pinterest.geo+0+0000000020.json")).unwrap();
    assert_eq!(last.lines().count(), 3);
    for l in last.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["timestamp"].as_str().unwrap().contains('T'), "{l}");
    }
    // Streams are not copied by default.
    assert!(!w.path().join(".pinpipe/objects/topics/streaming-pinterest-pin").exists());
    let store = StoreConfig::default().validate(&w.path().join(".pinpipe")).unwrap().open().unwrap();
    assert_eq!(assert_store_is_exact(&w, &store).await, 69);
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_and_restart_under_load_keeps_every_record_exactly_once() {
    let w = Workdir::new();
    let env = [("PINPIPE_LOG__DEFAULT_PARTITIONS", "2")];
    let server = Server::start(&w, &env);
    let url = server.url("/topics/pinterest.pin");
    let stop = tokio_util::sync::CancellationToken::new();
    let producer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let http = HttpClient::default();
            let mut i = 0u64;
            while !stop.is_cancelled() {
                let body = json!({"records": (0..3).map(|j| json!({"value": {"i": i, "j": j}})).collect::<Vec<_>>()});
                let r = http
                    .send("POST", &url, &[("content-type", "application/vnd.kafka.json.v2+json")], body.to_string())
                    .await
                    .unwrap();
                assert_eq!(r.status, 200);
                i += 1;
            }
            i
        })
    };
    for round in 0..5u64 {
        let mut sink =
            w.cmd(&["sink", "--follow", "--flush-size", "4"]).stdout(std::process::Stdio::null()).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(500 + 173 * round)).await;
        sink.kill().unwrap();
        sink.wait().unwrap();
    }
    stop.cancel();
    let posted = producer.await.unwrap();
    assert!(posted > 50, "only {posted} requests");
    w.ok(&["sink", "--once", "--flush-size", "4"]);
    let store = StoreConfig::default().validate(&w.path().join(".pinpipe")).unwrap().open().unwrap();
    assert_eq!(assert_store_is_exact(&w, &store).await, posted * 3);
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn sink_writes_to_s3() {
    let Some(bucket) = pinpipe_testkit::s3::TestBucket::create().await else { return };
    let w = Workdir::new();
    w.ok(&["source", "generate", "--rows", "100"]);
    let server = Server::start(&w, &[]);
    w.ok(&["emulate", "--api-url", &format!("http://{}", server.addr), "--count", "9", "--batch-size", "3"]);
    let url = bucket.url("raw");
    let out = w.ok(&["sink", "--once", "--store", &url, "--s3-endpoint", &bucket.endpoint]);
    assert!(out.contains(&format!("sink: wrote 27 objects (27 records) to {url}")), "{out}");
    let store = StoreConfig { url: Some(url), s3_endpoint: Some(bucket.endpoint.clone()), s3_region: None }
        .validate(w.path())
        .unwrap()
        .open()
        .unwrap();
    assert_eq!(assert_store_is_exact(&w, &store).await, 27);
    drop(server);
}
