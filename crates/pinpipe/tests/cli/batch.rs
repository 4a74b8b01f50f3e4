//! `pinpipe batch` end to end: emulator → API → log → sink → batch job, checked against answers
//! computed independently in the test from the records in the log; S3 in and out; CLI misuse.

use std::collections::{BTreeMap, BTreeSet};

use pinpipe_log::Log;
use pinpipe_log::ReadLimits;
use pinpipe_log::embedded::EmbeddedLog;
use serde_json::Value;

use crate::harness::{Server, Workdir};

/// Every record of `topic` (all partitions) as JSON.
pub async fn topic_values(w: &Workdir, topic: &str) -> Vec<Value> {
    let log = EmbeddedLog::open_read_only(&w.path().join(".pinpipe/log")).unwrap();
    let mut out = Vec::new();
    for o in log.offsets(topic).await.unwrap() {
        let mut at = o.start;
        while at < o.end {
            let recs = log
                .read(topic, o.partition, at, ReadLimits { max_records: 10_000, max_bytes: 64 << 20 })
                .await
                .unwrap();
            for r in &recs {
                out.push(serde_json::from_slice(&r.value).unwrap());
                at = r.offset + 1;
            }
        }
    }
    out
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_over_an_emulated_run_matches_answers_computed_from_the_log() {
    let w = Workdir::new();
    w.ok(&["source", "generate", "--rows", "150"]);
    let server = Server::start(&w, &[]);
    // 200 random rows out of 150: some posts are delivered more than once.
    w.ok(&["emulate", "--api-url", &format!("http://{}", server.addr), "--count", "200", "--seed", "3"]);
    drop(server);
    w.ok(&["sink", "--once"]);
    let out = w.ok(&["batch", "--date", "2026-11-24"]);
    let run_dir = w.path().join(".pinpipe/results/2026-11-24");
    assert!(
        out.contains(&format!(
            "report:  {}",
            std::path::Path::new(".pinpipe/results/2026-11-24/report.html").display()
        )),
        "{out}"
    );
    assert!(out.contains("q2. Posts per category per year, 2018–2022"), "{out}");

    // Independent expectations from the records in the log.
    let pins = topic_values(&w, "pinterest.pin").await;
    let geos = topic_values(&w, "pinterest.geo").await;
    let users = topic_values(&w, "pinterest.user").await;
    assert_eq!(pins.len(), 200);
    let distinct = |v: &[Value]| v.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>().len() as u64;
    let s = read_json(&run_dir.join("summary.json"));
    assert_eq!(s["raw_records"]["pin"], 200);
    assert_eq!(s["clean_rows"]["pin"].as_u64().unwrap(), distinct(&pins));
    assert_eq!(s["clean_rows"]["geo"].as_u64().unwrap(), distinct(&geos));
    assert_eq!(s["clean_rows"]["user"].as_u64().unwrap(), distinct(&users));
    assert!(s["duplicates_dropped"]["pin"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["dead_letters"]["pin"], 0);

    // q2: posts per (year, category), 2018-2022, over distinct posts.
    let category: BTreeMap<i64, String> =
        pins.iter().map(|p| (p["index"].as_i64().unwrap(), p["category"].as_str().unwrap().to_owned())).collect();
    let year: BTreeMap<i64, i64> = geos
        .iter()
        .map(|g| (g["ind"].as_i64().unwrap(), g["timestamp"].as_str().unwrap()[..4].parse().unwrap()))
        .collect();
    let mut expected: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for (ind, cat) in &category {
        let y = year[ind];
        if (2018..=2022).contains(&y) {
            *expected.entry((y, cat.clone())).or_default() += 1;
        }
    }
    let q2 = read_json(&run_dir.join("q2.json"));
    let got: BTreeMap<(i64, String), i64> = q2
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (r["post_year"].as_i64().unwrap(), r["category"].as_str().unwrap().to_owned()),
                r["category_count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);

    // Every output of the run folder is there.
    for f in ["q1", "q2", "q3", "q3b", "q4", "q5", "q6", "q7", "q8"] {
        assert!(run_dir.join(format!("{f}.json")).is_file() && run_dir.join(format!("{f}.csv")).is_file(), "{f}");
    }
    assert!(run_dir.join("report.html").is_file() && run_dir.join("dead_letters.jsonl").is_file());
    assert!(w.path().join(".pinpipe/warehouse/batch/pinterest_pin_table/_delta_log").is_dir());

    // A second run on another date keeps the first run's folder.
    w.ok(&["batch", "--date", "2026-11-25", "--quiet", "--no-tables"]);
    assert!(run_dir.join("summary.json").is_file());
    let s2 = read_json(&w.path().join(".pinpipe/results/2026-11-25/summary.json"));
    assert_eq!(s2["clean_rows"], s["clean_rows"]);
    assert_eq!(s2["tables"], serde_json::json!({}));
}

#[test]
fn misuse_gets_a_message_and_a_failing_exit_code() {
    let w = Workdir::new();
    let e = w.fails(&["batch", "--date", "24/11/2026"], &[]);
    assert!(e.contains("--date must be a date as YYYY-MM-DD"), "{e}");
    let e = w.fails(&["batch", "--run-id", "../escape"], &[]);
    assert!(e.contains("--run-id") && e.contains("not 1-100 characters"), "{e}");
    let e = w.fails(&["batch", "--warehouse", "gs://nope/x"], &[]);
    assert!(e.contains("warehouse.url") && e.contains("--warehouse"), "{e}");
    let e = w.fails(&["batch"], &[("PINPIPE_BATCH__READ_CONCURRENCY", "0")]);
    assert!(e.contains("batch.read_concurrency") && e.contains("PINPIPE_BATCH__READ_CONCURRENCY"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_reads_raw_objects_from_s3_and_writes_delta_tables_to_s3() {
    let Some(bucket) = pinpipe_testkit::s3::TestBucket::create().await else { return };
    let w = Workdir::new();
    w.ok(&["source", "generate", "--rows", "60"]);
    let server = Server::start(&w, &[]);
    w.ok(&["emulate", "--api-url", &format!("http://{}", server.addr), "--count", "40", "--batch-size", "4"]);
    drop(server);
    let raw = bucket.url("raw");
    w.ok(&["sink", "--once", "--store", &raw, "--s3-endpoint", &bucket.endpoint, "--flush-size", "7"]);
    let warehouse = bucket.url("warehouse");
    let r = w.run_with(
        &[
            "batch",
            "--store",
            &raw,
            "--s3-endpoint",
            &bucket.endpoint,
            "--warehouse",
            &warehouse,
            "--run-id",
            "s3",
            "--quiet",
        ],
        &[("PINPIPE_WAREHOUSE__S3_ENDPOINT", &bucket.endpoint), ("AWS_EC2_METADATA_DISABLED", "true")],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let s = read_json(&w.path().join(".pinpipe/results/s3/summary.json"));
    assert_eq!(s["raw_records"]["pin"], 40);
    assert_eq!(s["objects"]["pin"], 6, "40 records at flush size 7: 6 objects");
    let table = &s["tables"]["pinterest_pin_table"];
    assert_eq!(table["url"], format!("{warehouse}/batch/pinterest_pin_table/"));
    assert_eq!(table["version"], 0);
    // The commit is in the bucket.
    let store = pinpipe_store::StoreConfig {
        url: Some(warehouse),
        s3_endpoint: Some(bucket.endpoint.clone()),
        s3_region: None,
    }
    .validate(w.path())
    .unwrap()
    .open()
    .unwrap();
    let commit = store.key("batch/pinterest_pin_table/_delta_log/00000000000000000000.json");
    use object_store::ObjectStoreExt;
    let text = store.inner.get(&commit).await.unwrap().bytes().await.unwrap();
    assert!(std::str::from_utf8(&text).unwrap().contains("\"add\""));
}
