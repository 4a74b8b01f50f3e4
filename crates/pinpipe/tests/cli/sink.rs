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

/// Posts `records(i)` (the body's records of request `i`) to `url` until `stop`; the task's
/// result is the number of requests acknowledged.
fn keep_posting(
    url: String,
    stop: tokio_util::sync::CancellationToken,
    records: impl Fn(u64) -> Vec<serde_json::Value> + Send + 'static,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let http = HttpClient::default();
        let mut i = 0u64;
        while !stop.is_cancelled() {
            let body = json!({"records": records(i)});
            let r = http
                .send("POST", &url, &[("content-type", "application/vnd.kafka.json.v2+json")], body.to_string())
                .await
                .unwrap();
            assert_eq!(r.status, 200);
            i += 1;
        }
        i
    })
}

/// Runs `pinpipe sink --follow <args>` with `env` `rounds` times, killing it with SIGKILL after
/// `first_ms`, then `step_ms` longer each round.
async fn kill_loop(w: &Workdir, args: &[&str], env: &[(&str, &str)], rounds: u64, first_ms: u64, step_ms: u64) {
    for round in 0..rounds {
        let mut sink = w.cmd(&[&["sink", "--follow"], args].concat());
        sink.envs(env.iter().copied()).stdout(std::process::Stdio::null());
        let mut sink = sink.spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(first_ms + step_ms * round)).await;
        sink.kill().unwrap();
        sink.wait().unwrap();
    }
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
    let producer = keep_posting(url, stop.clone(), |i| (0..3).map(|j| json!({"value": {"i": i, "j": j}})).collect());
    kill_loop(&w, &["--flush-size", "4"], &[], 5, 500, 173).await;
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

/// Every geo record the producer posted (`ind` values), by reading what the sink wrote with
/// independent tools: gzip JSON objects through `gzip -dc`, Parquet objects through pyarrow (their
/// schema checked), plus the sink's dead letters. Returns (ind values in objects, in dead letters).
fn read_back_with_independent_tools(objects: &std::path::Path) -> (Vec<u64>, Vec<u64>) {
    let script = r#"
import json, os, sys, gzip, subprocess
import pyarrow.parquet as pq
root = sys.argv[1]
inds, dead = [], []
for d, _, files in os.walk(root):
    for f in sorted(files):
        p = os.path.join(d, f)
        if f.endswith('.json.gz'):
            text = subprocess.run(['gzip', '-dc', p], check=True, capture_output=True).stdout.decode()
            inds += [json.loads(l)['ind'] for l in text.splitlines()]
        elif f.endswith('.snappy.parquet'):
            t = pq.read_table(p)
            assert [x.name for x in t.schema] == ['ind', 'timestamp', 'latitude', 'longitude', 'country'], t.schema
            assert str(t.schema.field('ind').type) == 'int64' and str(t.schema.field('latitude').type) == 'double'
            inds += t.column('ind').to_pylist()
        elif f.endswith('.jsonl') and '/dead_letters' in d:
            for l in open(p):
                dead.append(json.loads(json.loads(l)['value'])['ind'])
print(json.dumps([inds, dead]))
"#;
    let out = std::process::Command::new("python3").args(["-c", script]).arg(objects).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_loops_with_time_and_field_partitioners_in_gzip_and_parquet_keep_every_record_once() {
    if std::process::Command::new("python3").args(["-c", "import pyarrow"]).status().map_or(true, |s| !s.success()) {
        assert!(std::env::var_os("TEST_PINPIPE_REQUIRE_SERVERS").is_none(), "pyarrow is required here");
        eprintln!("skipped: python3 with pyarrow is not installed");
        return;
    }
    let configs: [(&str, &[(&str, &str)]); 2] = [
        (
            "time partitioner by the record's timestamp, minute directories, gzip JSON",
            &[
                ("PINPIPE_SINK__PARTITIONER", "time"),
                ("PINPIPE_SINK__PATH_FORMAT", "'dt'=YYYY-MM-dd/'minute'=mm"),
                ("PINPIPE_SINK__PARTITION_DURATION", "1m"),
                ("PINPIPE_SINK__TIMESTAMP_EXTRACTOR", "record_field"),
                ("PINPIPE_SINK__TIMESTAMP_FIELD", "timestamp"),
                ("PINPIPE_SINK__COMPRESSION", "gzip"),
            ],
        ),
        (
            "field partitioner by country, Parquet",
            &[
                ("PINPIPE_SINK__PARTITIONER", "field"),
                ("PINPIPE_SINK__PARTITION_FIELDS", "[country]"),
                ("PINPIPE_SINK__FORMAT", "parquet"),
            ],
        ),
    ];
    for (name, env) in configs {
        let w = Workdir::new();
        let server = Server::start(&w, &[("PINPIPE_LOG__DEFAULT_PARTITIONS", "2")]);
        let url = server.url("/topics/pinterest.geo");
        let stop = tokio_util::sync::CancellationToken::new();
        let producer = keep_posting(url, stop.clone(), |i| {
            let geo = |ind: u64| {
                // Times over ten minutes; every 17th one not a time (a dead letter).
                let ts = if ind % 17 == 16 { "soon".to_owned() } else { format!("2020-08-28T03:{:02}:07", ind % 10) };
                let country = ["Albania", "Chad", "Peru"][(ind % 3) as usize];
                json!({"value": {"ind": ind, "timestamp": ts, "latitude": 1.5, "longitude": 2.5, "country": country}})
            };
            (0..3).map(|j| geo(i * 3 + j)).collect()
        });
        kill_loop(&w, &["--flush-size", "7"], env, 4, 600, 191).await;
        stop.cancel();
        let posted = producer.await.unwrap();
        assert!(posted > 30, "{name}: only {posted} requests");
        let r = w.run_with(&["sink", "--once", "--flush-size", "7"], env);
        assert_eq!(r.code, 0, "{name}: {}{}", r.stdout, r.stderr);
        let (mut stored, mut dead) = read_back_with_independent_tools(&w.path().join(".pinpipe/objects"));
        stored.sort_unstable();
        dead.sort_unstable();
        let expected_dead: Vec<u64> = (0..posted * 3).filter(|i| i % 17 == 16).collect();
        if name.contains("time") {
            // A time that is not one cannot be placed: a dead letter, once.
            assert_eq!(dead, expected_dead, "{name}");
        } else {
            assert!(dead.is_empty(), "{name}: {dead:?}");
        }
        let mut all: Vec<u64> = stored.iter().chain(&dead).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..posted * 3).collect::<Vec<_>>(), "{name}: every record exactly once");
        drop(server);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_run_alone_serves_its_metrics_on_metrics_listen() {
    use std::io::BufRead;
    let w = Workdir::new();
    let server = Server::start(&w, &[]);
    let http = HttpClient::default();
    let body = json!({"records": (0..7).map(|i| json!({"value": {"i": i}})).collect::<Vec<_>>()});
    let r = http
        .send(
            "POST",
            &server.url("/topics/pinterest.pin"),
            &[("content-type", "application/vnd.kafka.json.v2+json")],
            body.to_string(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let mut sink = w
        .cmd(&["sink", "--follow", "--flush-size", "2", "--metrics-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(sink.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the sink exited before naming its metrics URL").unwrap();
        if let Some(url) = line.strip_prefix("metrics: ") {
            break url.trim().to_owned();
        }
    };
    // Seven records at flush size 2: three objects of two, and one record waiting (lag 1).
    let wanted = [
        r#"pinpipe_sink_records_total{topic="pinterest.pin",partition="0"} 6"#,
        r#"pinpipe_sink_objects_total{topic="pinterest.pin",partition="0"} 3"#,
        r#"pinpipe_sink_lag_records{topic="pinterest.pin",partition="0"} 1"#,
        r#"pinpipe_sink_committed_offset{topic="pinterest.pin",partition="0"} 6"#,
        "# EOF",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = http.send("GET", &url, &[], String::new()).await.unwrap();
        assert_eq!(r.status, 200);
        if wanted.iter().all(|w| r.body.lines().any(|l| l == *w)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sink.kill().unwrap();
    sink.wait().unwrap();
    // A port in use: a clear error, exit != 0.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let r = w.run(&["sink", "--once", "--metrics-listen", &addr]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(&format!("cannot listen on {addr} for metrics")), "{}", r.stderr);
    drop(server);
}
