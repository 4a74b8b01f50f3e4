//! `pinpipe stream` end to end: emulator → API → log → streaming job → Delta tables read back
//! by an independent reader (Python `deltalake`), values checked against the cleaning rules
//! applied here to the records in the log; SIGKILL and restart under load; status; misuse.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pinpipe_testkit::http::HttpClient;
use serde_json::{Value, json};

use crate::batch::topic_values;
use crate::harness::{Server, Workdir};

fn table_paths(w: &Workdir, kinds: &[&str]) -> Vec<String> {
    kinds
        .iter()
        .map(|k| w.path().join(format!(".pinpipe/warehouse/stream/pinterest_{k}_table")).display().to_string())
        .collect()
}

fn rows(v: &Value, table: &str) -> Vec<Value> {
    v[table]["rows"].as_array().unwrap().clone()
}

/// The follower-count rule of DESIGN.md, written here independently of the code under test.
fn followers(raw: &str) -> Value {
    if raw == "User Info Error" {
        return Value::Null;
    }
    let (digits, factor) = match raw.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => match raw.strip_suffix('M') {
            Some(d) => (d, 1_000_000),
            None => (raw, 1),
        },
    };
    json!(digits.parse::<i64>().unwrap() * factor)
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_once_after_an_emulated_run_holds_exactly_the_distinct_clean_rows() {
    let w = Workdir::new();
    w.ok(&["source", "generate", "--rows", "120"]);
    let server = Server::start(&w, &[]);
    // 150 random rows out of 120: some posts arrive more than once.
    w.ok(&[
        "emulate",
        "--api-url",
        &format!("http://{}", server.addr),
        "--mode",
        "stream",
        "--count",
        "150",
        "--seed",
        "4",
    ]);
    // One geo record that cannot be typed.
    let bad = json!({"StreamName": "streaming-pinterest-geo", "Data": {"ind": "seven"}, "PartitionKey": "bad"});
    let r = HttpClient::default()
        .send(
            "PUT",
            &server.url("/streams/streaming-pinterest-geo/record"),
            &[("content-type", "application/json")],
            bad.to_string(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);

    let out = w.ok(&["stream", "--once"]);
    assert!(out.contains("streaming-pinterest-geo -> pinterest_geo_table"), "{out}");
    assert!(out.contains("1 dead letters"), "{out}");

    let pins = topic_values(&w, "streaming-pinterest-pin").await;
    let geos = topic_values(&w, "streaming-pinterest-geo").await;
    let users = topic_values(&w, "streaming-pinterest-user").await;
    assert_eq!((pins.len(), geos.len(), users.len()), (150, 151, 150));
    let distinct = |v: &[Value]| v.iter().map(Value::to_string).collect::<BTreeSet<_>>();
    let Some(v) = pinpipe_testkit::delta::read_tables(&table_paths(&w, &["pin", "geo", "user"])) else { return };

    // pin: one row per distinct record, follower counts as the rule says.
    let pin_rows = rows(&v, "pinterest_pin_table");
    assert_eq!(pin_rows.len(), distinct(&pins).len());
    assert!(pin_rows.len() < 150, "the emulator repeated some rows");
    let raw_by_ind: BTreeMap<i64, &Value> = pins.iter().map(|p| (p["index"].as_i64().unwrap(), p)).collect();
    assert_eq!(
        pin_rows.iter().map(|r| r["ind"].as_i64().unwrap()).collect::<Vec<_>>(),
        raw_by_ind.keys().copied().collect::<Vec<_>>()
    );
    for r in &pin_rows {
        let raw = raw_by_ind[&r["ind"].as_i64().unwrap()];
        assert_eq!(r["follower_count"], followers(raw["follower_count"].as_str().unwrap()), "{raw}");
        assert_eq!(r["category"], raw["category"]);
    }
    // geo: the bad record is not a row; coordinates are [latitude, longitude].
    let geo_rows = rows(&v, "pinterest_geo_table");
    assert_eq!(geo_rows.len(), distinct(&geos).len() - 1);
    let geo_by_ind: BTreeMap<i64, &Value> =
        geos.iter().filter(|g| g["ind"].is_i64()).map(|g| (g["ind"].as_i64().unwrap(), g)).collect();
    for r in &geo_rows {
        let raw = geo_by_ind[&r["ind"].as_i64().unwrap()];
        assert_eq!(r["coordinates"], json!([raw["latitude"], raw["longitude"]]));
    }
    // user: user_name is first + " " + last.
    let user_rows = rows(&v, "pinterest_user_table");
    assert_eq!(user_rows.len(), distinct(&users).len());
    let user_by_ind: BTreeMap<i64, &Value> = users.iter().map(|u| (u["ind"].as_i64().unwrap(), u)).collect();
    for r in &user_rows {
        let raw = user_by_ind[&r["ind"].as_i64().unwrap()];
        assert_eq!(
            r["user_name"],
            json!(format!("{} {}", raw["first_name"].as_str().unwrap(), raw["last_name"].as_str().unwrap()))
        );
    }

    // The dead letter, with its origin.
    let dead = std::fs::read_to_string(
        w.path().join(".pinpipe/warehouse/stream/_dead_letters/pinterest_geo_table/0000000000.jsonl"),
    )
    .unwrap();
    let letter: Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(letter["origin"]["stream"], "streaming-pinterest-geo");
    assert_eq!(letter["record"], json!({"ind": "seven"}).to_string());

    // Status: every stream committed to its end.
    let status = w.ok(&["stream", "status", "--json"]);
    let status: Vec<Value> = status.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(status.len(), 3);
    for s in &status {
        assert_eq!((s["lag"].as_u64(), s["last_batch"].as_u64()), (Some(0), Some(0)), "{s}");
    }
    let text = w.ok(&["stream", "status"]);
    assert!(text.contains("streaming-pinterest-user -> pinterest_user_table") && text.contains("lag 0"), "{text}");

    // Nothing new: a second run commits nothing.
    let versions = |v: &Value| ["pin", "geo", "user"].map(|k| v[format!("pinterest_{k}_table")]["version"].clone());
    w.ok(&["stream", "--once"]);
    let again = pinpipe_testkit::delta::read_tables(&table_paths(&w, &["pin", "geo", "user"])).unwrap();
    assert_eq!(versions(&again), versions(&v));
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_and_restart_under_load_with_a_second_job_refused_neither_loses_nor_duplicates_a_row() {
    let w = Workdir::new();
    let server = Server::start(&w, &[("PINPIPE_LOG__DEFAULT_PARTITIONS", "2")]);
    let url = server.url("/streams/streaming-pinterest-user/records");
    let stop = tokio_util::sync::CancellationToken::new();
    let producer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let http = HttpClient::default();
            let mut next = 0i64;
            while !stop.is_cancelled() {
                let records: Vec<Value> = (next..next + 5)
                    .map(|i| {
                        json!({"data": {"ind": i, "first_name": "F", "last_name": format!("L{i}"), "age": 30,
                            "date_joined": "2016-01-01T00:00:00"}, "partition-key": i.to_string()})
                    })
                    .collect();
                let r = http
                    .send("PUT", &url, &[("content-type", "application/json")], json!({"records": records}).to_string())
                    .await
                    .unwrap();
                assert_eq!((r.status, r.json()["FailedRecordCount"].as_u64()), (200, Some(0)));
                next += 5;
            }
            next
        })
    };
    let delta_log = w.path().join(".pinpipe/warehouse/stream/pinterest_user_table/_delta_log");
    let commits = || {
        std::fs::read_dir(&delta_log).map_or(0, |d| {
            d.filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))).count()
        })
    };
    for round in 0..5u64 {
        let mut job = w
            .cmd(&["stream", "--follow", "--trigger-interval", "50ms", "--max-records-per-batch", "40"])
            .env("PINPIPE_STREAM__OPTIMIZE_EVERY", "3")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill it once it has committed, at a different point of its cycle each round.
        let before = commits();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while commits() < before + 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(commits() >= before + 2, "round {round}: the job committed nothing within 60 s");
        // A second job on the same tables, meanwhile, is refused and changes nothing.
        let second = w.run_with(&["stream", "--once"], &[("PINPIPE_STREAM__OPTIMIZE_EVERY", "3")]);
        assert_eq!(second.code, 1, "round {round}: {}", second.stderr);
        assert!(second.stderr.contains("held by pinpipe stream"), "round {round}: {}", second.stderr);
        tokio::time::sleep(Duration::from_millis(17 * round)).await;
        job.kill().unwrap();
        job.wait().unwrap();
    }
    stop.cancel();
    let posted = producer.await.unwrap();
    assert!(posted > 100, "only {posted} records");
    w.ok(&["stream", "--once"]);
    let Some(v) = pinpipe_testkit::delta::read_tables(&table_paths(&w, &["user"])) else { return };
    let inds: Vec<i64> = rows(&v, "pinterest_user_table").iter().map(|r| r["ind"].as_i64().unwrap()).collect();
    assert_eq!(inds, (0..posted).collect::<Vec<_>>(), "every acknowledged record exactly once");
    drop(server);
}

#[test]
fn misuse_gets_a_message_and_a_failing_exit_code() {
    let w = Workdir::new();
    let e = w.fails(&["stream", "--once"], &[]);
    assert!(e.contains("no embedded log") && e.contains("pinpipe serve"), "{e}");
    let e = w.fails(&["stream", "--trigger-interval", "soon"], &[]);
    assert!(e.contains("--trigger-interval") && e.contains("1s or 500ms"), "{e}");
    let r = w.run(&["stream", "--once", "--follow"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// The classic API Gateway -> Kinesis path: `pinpipe serve` fronts Kinesis for the streams
/// (topics stay in the embedded log), the emulator posts to it, and `pinpipe stream` reads from
/// Kinesis into Delta tables, read back by Python `deltalake`. Runs on the Kinesis API server
/// `.ci/run` starts (moto).
#[tokio::test(flavor = "multi_thread")]
async fn serve_fronts_kinesis_and_the_stream_job_reads_from_it() {
    use pinpipe_log::kinesis::{KinesisConfig, KinesisLog};
    use pinpipe_log::{Cursor, Log, ReadLimits};
    let Some(endpoint) = pinpipe_testkit::service_url("TEST_PINPIPE_KINESIS_ENDPOINT") else { return };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let prefix = format!("kcli{}_{nanos}", std::process::id());
    let env = [
        ("PINPIPE_PREFIX", prefix.as_str()),
        ("PINPIPE_LOG__STREAMS", "kinesis"),
        ("PINPIPE_LOG__KINESIS__ENDPOINT", endpoint.as_str()),
        ("PINPIPE_LOG__KINESIS__REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let w = Workdir::new();
    w.ok(&["source", "generate", "--rows", "50"]);
    let server = Server::start(&w, &env);
    assert!(server.stdout.lock().unwrap().contains("streams: Kinesis at"), "{}", server.stdout.lock().unwrap());
    let api = format!("http://{}", server.addr);
    let run = w.run_with(&["emulate", "--api-url", &api, "--mode", "stream", "--count", "40", "--seed", "9"], &env);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    let kinesis = KinesisLog::connect(
        &KinesisConfig { region: Some("us-east-1".into()), endpoint: Some(endpoint.clone()), poll_interval_ms: None }
            .validate()
            .unwrap(),
    )
    .await
    .unwrap();
    let stream = |k: &str| format!("streaming-{prefix}-{k}");
    // PutRecord answers with Kinesis' own sequence number.
    let put = json!({"StreamName": stream("geo"), "Data": {"ind": "seven"}, "PartitionKey": "bad"});
    let r = HttpClient::default()
        .send(
            "PUT",
            &server.url(&format!("/streams/{}/record", stream("geo"))),
            &[("content-type", "application/json")],
            put.to_string(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let answer: Value = serde_json::from_str(&r.body).unwrap();
    let mut records: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut sequence_numbers = Vec::new();
    for k in ["pin", "geo", "user"] {
        let info = kinesis.topic(&stream(k)).await.unwrap();
        for p in 0..info.partitions {
            let got = kinesis.read_from(&stream(k), p, &Cursor::Start, ReadLimits::default()).await.unwrap();
            for e in got.records {
                sequence_numbers.push(e.position.to_string());
                records.entry(k.to_owned()).or_default().push(serde_json::from_slice(&e.value).unwrap());
            }
        }
    }
    assert!(sequence_numbers.contains(&answer["SequenceNumber"].as_str().unwrap().to_owned()), "{answer}");
    assert_eq!(records["pin"].len(), 40);
    assert_eq!(records["geo"].len(), 41);
    // The streams are not in the embedded log.
    let embedded = pinpipe_log::embedded::EmbeddedLog::open_read_only(&w.path().join(".pinpipe/log")).unwrap();
    assert!(embedded.topics().await.unwrap().iter().all(|t| !t.name.starts_with("streaming-")));

    let run = w.run_with(&["stream", "--once"], &env);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("1 dead letters"), "{}", run.stdout);
    let status = w.run_with(&["stream", "status", "--json"], &env);
    for line in status.stdout.lines() {
        let s: Value = serde_json::from_str(line).unwrap();
        assert_eq!((s["lag"].clone(), s["last_batch"].as_u64()), (Value::Null, Some(0)), "{s}");
    }
    let distinct = |v: &[Value]| v.iter().map(Value::to_string).collect::<BTreeSet<_>>().len();
    let paths: Vec<String> = ["pin", "geo", "user"]
        .iter()
        .map(|k| w.path().join(format!(".pinpipe/warehouse/stream/{prefix}_{k}_table")).display().to_string())
        .collect();
    if let Some(v) = pinpipe_testkit::delta::read_tables(&paths) {
        assert_eq!(rows(&v, &format!("{prefix}_pin_table")).len(), distinct(&records["pin"]));
        assert_eq!(rows(&v, &format!("{prefix}_geo_table")).len(), distinct(&records["geo"]) - 1);
        assert_eq!(rows(&v, &format!("{prefix}_user_table")).len(), distinct(&records["user"]));
    }
    drop(server);
    for k in ["pin", "geo", "user"] {
        kinesis.delete_topic(&stream(k)).await.unwrap();
    }
}
