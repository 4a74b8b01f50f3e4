//! `pinpipe emulate` against a real `pinpipe serve`.

use std::collections::HashMap;

use pinpipe_log::embedded::EmbeddedLog;
use pinpipe_log::{OffsetLog, ReadLimits};
use pinpipe_model::{Kind, Names, Post};
use pinpipe_source::SourceStore;

use crate::harness::{Server, Workdir};

/// Every record of `topic` (all partitions) as (key, value text), read beside the server.
async fn records(w: &Workdir, topic: &str) -> Vec<(Option<String>, String)> {
    let log = EmbeddedLog::open_read_only(&w.path().join(".pinpipe/log")).unwrap();
    let mut out = Vec::new();
    for o in log.offsets(topic).await.unwrap() {
        for r in log
            .read(topic, o.partition, o.start, ReadLimits { max_records: usize::MAX, max_bytes: usize::MAX })
            .await
            .unwrap()
        {
            let key = r.key.map(|k| String::from_utf8(k.to_vec()).unwrap());
            out.push((key, String::from_utf8(r.value.to_vec()).unwrap()));
        }
    }
    out
}

async fn source(w: &Workdir) -> Box<dyn SourceStore> {
    pinpipe_source::SourceUrl::Sqlite(w.path().join(".pinpipe/source.db")).open().await.unwrap()
}

/// Checks that every value is exactly the raw record of its source row; returns the row keys.
async fn assert_values_are_source_rows(
    src: &dyn SourceStore,
    kind: Kind,
    values: &[(Option<String>, String)],
) -> Vec<i64> {
    let mut rows: HashMap<i64, Post> = HashMap::new();
    let mut keys = Vec::new();
    for (_, v) in values {
        let parsed: serde_json::Value = serde_json::from_str(v).unwrap();
        let key = parsed[kind.key_column()].as_i64().unwrap();
        if let std::collections::hash_map::Entry::Vacant(e) = rows.entry(key) {
            e.insert(src.post(key).await.unwrap().unwrap());
        }
        assert_eq!(v, &rows[&key].json(kind).to_string(), "{kind} record of row {key}");
        keys.push(key);
    }
    keys
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_mode_posts_exactly_n_source_rows_to_each_topic_reproducibly() {
    let w = Workdir::new();
    w.ok(&["source", "generate", "--rows", "500", "--seed", "5"]);
    let server = Server::start(&w, &[]);
    let url = format!("http://{}", server.addr);
    let out = w.ok(&["emulate", "--api-url", &url, "--count", "60", "--seed", "3", "--concurrency", "4"]);
    assert!(out.starts_with("emulate: 60 posts (180 records)"), "{out}");
    assert!(out.contains("accepted: 180 records") && out.contains("failed:   0 records"), "{out}");
    let src = source(&w).await;
    let names = Names::default();
    let mut first_keys = Vec::new();
    for kind in Kind::ALL {
        let got = records(&w, &names.topic(kind)).await;
        assert_eq!(got.len(), 60, "{kind}");
        let mut keys = assert_values_are_source_rows(&*src, kind, &got).await;
        keys.sort_unstable();
        first_keys.push(keys);
    }
    assert_eq!(first_keys[0], first_keys[1], "pin and geo of the same rows");
    assert_eq!(first_keys[0], first_keys[2], "pin and user of the same rows");
    // The same seed posts the same rows again, whatever the concurrency.
    w.ok(&["emulate", "--api-url", &url, "--count", "60", "--seed", "3", "--concurrency", "9", "--batch-size", "4"]);
    let again = records(&w, "pinterest.pin").await;
    assert_eq!(again.len(), 120);
    let mut second: Vec<i64> = again[60..]
        .iter()
        .map(|(_, v)| serde_json::from_str::<serde_json::Value>(v).unwrap()["index"].as_i64().unwrap())
        .collect();
    second.sort_unstable();
    assert_eq!(second, first_keys[0]);
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_and_both_modes_put_records_on_the_streams() {
    let w = Workdir::new();
    w.ok(&["source", "generate", "--rows", "300"]);
    let server = Server::start(&w, &[("PINPIPE_LOG__DEFAULT_PARTITIONS", "2")]);
    let url = format!("http://{}", server.addr);
    w.ok(&["emulate", "--api-url", &url, "--mode", "stream", "--count", "30", "--batch-size", "7"]);
    w.ok(&["emulate", "--api-url", &url, "--mode", "stream", "--count", "5", "--batch-size", "1"]);
    let src = source(&w).await;
    let names = Names::default();
    for kind in Kind::ALL {
        let got = records(&w, &names.stream(kind)).await;
        assert_eq!(got.len(), 35, "{kind}");
        let keys = assert_values_are_source_rows(&*src, kind, &got).await;
        // The partition key is the row key.
        for ((key, _), row) in got.iter().zip(keys) {
            assert_eq!(key.as_deref(), Some(row.to_string().as_str()));
        }
    }
    assert!(w.ok(&["log", "topics"]).lines().all(|l| !l.starts_with("pinterest.pin")), "stream mode wrote no topic");
    w.ok(&["emulate", "--api-url", &url, "--mode", "both", "--count", "10"]);
    for kind in Kind::ALL {
        assert_eq!(records(&w, &names.topic(kind)).await.len(), 10);
        assert_eq!(records(&w, &names.stream(kind)).await.len(), 45);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_and_unreachable_apis_are_reported_with_a_failing_exit_code() {
    let w = Workdir::new();
    w.ok(&["source", "generate", "--rows", "50"]);
    let server = Server::start(&w, &[("PINPIPE_API__API_KEYS", "letmein")]);
    let url = format!("http://{}", server.addr);
    // 403: counted with the server's message, not retried (it finishes at once).
    let start = std::time::Instant::now();
    let r = w.run(&["emulate", "--api-url", &url, "--count", "4"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("failed:   12 records"), "{}", r.stdout);
    assert!(r.stdout.contains("HTTP 403: 12 records (Forbidden: missing x-api-key header)"), "{}", r.stdout);
    assert!(r.stderr.starts_with("error: 12 of 12 records were not accepted"), "{}", r.stderr);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    // With the key (from the environment) everything is accepted.
    let r = w.run_with(&["emulate", "--api-url", &url, "--count", "4"], &[("PINPIPE_EMULATE__API_KEY", "letmein")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("accepted: 12 records"));
    drop(server);
    // Nothing listening: retried, then reported.
    let r = w.run_with(
        &["emulate", "--api-url", &url, "--count", "2", "--concurrency", "2"],
        &[("PINPIPE_EMULATE__RETRIES", "1")],
    );
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("connection error: 6 records"), "{}", r.stdout);
    // Misuse is a clear error.
    let e = w.fails(&["emulate", "--mode", "sideways", "--count", "1"], &[]);
    assert!(e.contains("emulate.mode") || e.contains("sideways"), "{e}");
}
