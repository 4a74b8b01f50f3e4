//! `pinpipe serve` over a real socket, crash recovery under load, graceful shutdown, and the
//! `pinpipe log` inspection commands beside a running server.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pinpipe_log::embedded::EmbeddedLog;
use pinpipe_log::{LogConfig, OffsetLog, ReadLimits};
use pinpipe_testkit::http::HttpClient;
use serde_json::{Value, json};

use crate::harness::{Server, Workdir};

const JSON_V2: &str = "application/vnd.kafka.json.v2+json";

/// Every record of every partition of `topic`, read by opening the log after the server is gone.
async fn stored(w: &Workdir, topic: &str) -> HashMap<(u32, u64), String> {
    let log = EmbeddedLog::open(&LogConfig::default().validate(&w.path().join(".pinpipe")).unwrap()).unwrap();
    let mut out = HashMap::new();
    for o in log.offsets(topic).await.unwrap() {
        let all = log
            .read(topic, o.partition, o.start, ReadLimits { max_records: usize::MAX, max_bytes: usize::MAX })
            .await
            .unwrap();
        assert_eq!(all.len() as u64, o.end - o.start, "dense offsets in partition {}", o.partition);
        for r in all {
            out.insert((o.partition, r.offset), String::from_utf8(r.value.to_vec()).unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_speaks_the_contract_over_a_socket_and_log_commands_read_it() {
    let w = Workdir::new();
    let server = Server::start(&w, &[("PINPIPE_API__MAX_BODY_BYTES", "4096")]);
    let http = HttpClient::default();
    let pin = r#"{"index":7528,"title":"café ✨"}"#;
    let r = http
        .send(
            "POST",
            &server.url("/topics/pinterest.pin"),
            &[("content-type", JSON_V2)],
            format!(r#"{{"records":[{{"value":{pin}}}]}}"#),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type.as_deref(), Some("application/vnd.kafka.v2+json"));
    assert_eq!(
        r.json(),
        json!({"offsets":[{"partition":0,"offset":0,"error_code":null,"error":null}],"key_schema_id":null,"value_schema_id":null})
    );
    let r = http
        .send(
            "PUT",
            &server.url("/streams/streaming-pinterest-pin/record"),
            &[("content-type", "application/json")],
            r#"{"StreamName":"streaming-pinterest-pin","Data":{"index":1},"PartitionKey":"pk"}"#,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ShardId"], "shardId-000000000000");
    // Errors through the socket.
    let r =
        http.send("POST", &server.url("/topics/pinterest.pin"), &[("content-type", "text/plain")], "x").await.unwrap();
    assert_eq!((r.status, r.json()["error_code"].clone()), (415, json!(415)));
    let r =
        http.send("POST", &server.url("/topics/pinterest.pin"), &[("content-type", JSON_V2)], "{oops").await.unwrap();
    assert_eq!((r.status, r.json()["error_code"].clone()), (400, json!(400)));
    let big = format!(r#"{{"records":[{{"value":"{}"}}]}}"#, "x".repeat(10_000));
    let r = http.send("POST", &server.url("/topics/pinterest.pin"), &[("content-type", JSON_V2)], big).await.unwrap();
    assert_eq!((r.status, r.json()["error_code"].clone()), (413, json!(413)));
    let r = http.send("GET", &server.url("/healthz"), &[], "").await.unwrap();
    assert_eq!((r.status, r.json()), (200, json!({"status":"ok"})));
    let r = http.send("GET", &server.url("/metrics"), &[], "").await.unwrap();
    assert!(r.body.contains(r#"pinpipe_log_appended_records_total{topic="pinterest.pin"} 1"#), "{}", r.body);

    // The log commands read beside the running server (read-only).
    let topics = w.ok(&["log", "topics", "--json"]);
    let names: Vec<String> = topics
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["pinterest.pin", "streaming-pinterest-pin"]);
    let read = w.ok(&["log", "read", "pinterest.pin"]);
    let rec: Value = serde_json::from_str(read.trim()).unwrap();
    assert_eq!(
        (rec["topic"].as_str(), rec["partition"].as_u64(), rec["offset"].as_u64()),
        (Some("pinterest.pin"), Some(0), Some(0))
    );
    assert_eq!(rec["value"], serde_json::from_str::<Value>(pin).unwrap());
    let read = w.ok(&["log", "read", "streaming-pinterest-pin", "--from", "0", "--partition", "0"]);
    assert!(read.contains(r#""key":"pk""#), "{read}");
    let e = w.fails(&["log", "read", "nope"], &[]);
    assert!(e.contains("topic \"nope\" does not exist"), "{e}");

    // A second server on the same data directory is refused.
    let r = w.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("in use by another pinpipe process"), "{}", r.stderr);
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn log_read_follow_prints_records_as_they_arrive() {
    let w = Workdir::new();
    let server = Server::start(&w, &[]);
    let http = HttpClient::default();
    let post = |v: i32| {
        let (http, url) = (http.clone(), server.url("/topics/t"));
        async move {
            http.send("POST", &url, &[("content-type", JSON_V2)], format!(r#"{{"records":[{{"value":{v}}}]}}"#))
                .await
                .unwrap()
        }
    };
    assert_eq!(post(1).await.status, 200);
    let mut follower = w.cmd(&["log", "read", "t", "--follow"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = || serde_json::from_str::<Value>(&rx.recv_timeout(Duration::from_secs(20)).unwrap()).unwrap();
    assert_eq!(next()["value"], 1);
    assert_eq!(post(2).await.status, 200);
    assert_eq!(next()["value"], 2);
    assert_eq!(post(3).await.status, 200);
    let third = next();
    assert_eq!((third["value"].as_i64(), third["offset"].as_u64()), (Some(3), Some(2)));
    follower.kill().unwrap();
    follower.wait().unwrap();
}

/// Producers posting unique records until the server goes away; returns what was acknowledged.
async fn produce_until_gone(server_url: String, producers: usize, round: usize) -> Vec<((u32, u64), String)> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for t in 0..producers {
        let (url, acked) = (server_url.clone(), Arc::clone(&acked));
        tasks.push(tokio::spawn(async move {
            let http = HttpClient::default();
            for i in 0.. {
                let n = 1 + (i + t) % 4;
                let values: Vec<String> = (0..n).map(|j| json!({"r": round, "t": t, "i": i, "j": j}).to_string()).collect();
                let body = json!({"records": values.iter().map(|v| json!({"value": serde_json::from_str::<Value>(v).unwrap()})).collect::<Vec<_>>()});
                match http.send("POST", &url, &[("content-type", JSON_V2)], body.to_string()).await {
                    Ok(r) if r.status == 200 => {
                        let offsets = r.json()["offsets"].as_array().unwrap().clone();
                        let mut a = acked.lock().unwrap();
                        for (o, v) in offsets.iter().zip(values) {
                            a.push(((o["partition"].as_u64().unwrap() as u32, o["offset"].as_u64().unwrap()), v));
                        }
                    }
                    Ok(r) => panic!("unexpected {} {}", r.status, r.body),
                    Err(_) => return,
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_under_load_never_loses_or_moves_an_acknowledged_record() {
    let w = Workdir::new();
    let env = [("PINPIPE_LOG__DEFAULT_PARTITIONS", "3"), ("PINPIPE_LOG__SEGMENT_BYTES", "65536")];
    let mut acked: Vec<((u32, u64), String)> = Vec::new();
    for round in 0..5 {
        let server = Server::start(&w, &env);
        let load = tokio::spawn(produce_until_gone(server.url("/topics/crash"), 12, round));
        tokio::time::sleep(Duration::from_millis(400 + 150 * round as u64)).await;
        server.kill();
        let got = load.await.unwrap();
        assert!(!got.is_empty(), "round {round} acknowledged nothing");
        acked.extend(got);
    }
    let log = stored(&w, "crash").await;
    // Every acknowledged record is there, byte-identical, at the offset it was given.
    for (at, value) in &acked {
        assert_eq!(log.get(at), Some(value), "acknowledged record at {at:?} lost or changed");
    }
    // Exactly once: no value is stored twice.
    let distinct: HashSet<&String> = log.values().collect();
    assert_eq!(distinct.len(), log.len(), "a record is stored twice");
    assert!(acked.len() > 100, "only {} records acknowledged", acked.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_requests_and_keeps_every_acknowledged_record() {
    let w = Workdir::new();
    let server = Server::start(&w, &[]);
    let load = tokio::spawn(produce_until_gone(server.url("/topics/calm"), 8, 0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, out) = tokio::task::spawn_blocking(move || server.terminate()).await.unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pinpipe api stopped"), "{out}");
    let acked = load.await.unwrap();
    assert!(!acked.is_empty());
    let log = stored(&w, "calm").await;
    for (at, value) in &acked {
        assert_eq!(log.get(at), Some(value));
    }
}

/// Regression: 1,100 idle sockets under `ulimit -n 1024` made `/healthz` time out, and a
/// stalled upload kept the process alive after SIGTERM.
#[test]
fn idle_sockets_beyond_the_descriptor_limit_and_a_stalled_upload_do_not_disable_the_server() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let w = Workdir::new();
    let env = [("PINPIPE_API__HEADER_TIMEOUT", "1s"), ("PINPIPE_API__SHUTDOWN_TIMEOUT", "1s")];
    let server = Server::start_under(&w, &env, &["prlimit", "--nofile=256:256"]);
    // More idle sockets than the process has descriptors.
    let idle: Vec<std::net::TcpStream> = (0..400)
        .filter_map(|_| std::net::TcpStream::connect_timeout(&server.addr, Duration::from_secs(2)).ok())
        .collect();
    assert!(idle.len() > 256, "only {} sockets connected", idle.len());
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect_timeout(&server.addr, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200") && out.ends_with(r#"{"status":"ok"}"#), "{out}");
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    drop(idle);

    // A stalled upload, then SIGTERM: the process exits within the shutdown deadline.
    let mut upload = std::net::TcpStream::connect(server.addr).unwrap();
    upload
        .write_all(
            b"POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        )
        .unwrap();
    let t = Instant::now();
    let (code, _) = server.terminate();
    assert_eq!(code, 0);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// Regression: unauthenticated CreateStream with 1024 shards, nine times, left 18,446 open files
/// and a server that could not start again under `ulimit -n 1024`.
#[tokio::test(flavor = "multi_thread")]
async fn shard_limits_hold_and_the_server_restarts_under_a_descriptor_limit() {
    let w = Workdir::new();
    let limit = ["prlimit", "--nofile=1024:1024"];
    let server = Server::start_under(&w, &[], &limit);
    let http = HttpClient::default();
    let create = |name: String, shards: u32| {
        let (http, url) = (&http, server.url(&format!("/streams/{name}")));
        async move { http.send("POST", &url, &[], json!({ "ShardCount": shards }).to_string()).await.unwrap() }
    };
    let r = create("too-big".into(), 1024).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["__type"], "LimitExceededException");
    for i in 0..9 {
        let r = create(format!("s{i}"), 64).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let put = json!({"StreamName": "s3", "Data": {"a": 1}, "PartitionKey": "k"}).to_string();
    let r = http.send("PUT", &server.url("/streams/s3/record"), &[], put.clone()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let (code, _) = server.terminate();
    assert_eq!(code, 0);

    // 576 shards on disk; the server starts again under the same limit and serves them.
    let server = Server::start_under(&w, &[], &limit);
    let r = http.send("GET", &server.url("/streams/s8"), &[], "").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = http.send("GET", &server.url("/healthz"), &[], "").await.unwrap();
    assert_eq!(r.json(), json!({"status": "ok"}));
    let r = http.send("PUT", &server.url("/streams/s3/record"), &[], put.clone()).await.unwrap();
    assert_eq!(r.json()["ShardId"].as_str().map(str::len), Some(20), "{}", r.body);
}

/// Regression: one flipped byte in the middle of the active segment made the next start discard
/// every record after it with only a warning, and reuse their offsets.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_segment_is_refused_by_readers_until_repaired_and_offsets_are_not_reused() {
    let w = Workdir::new();
    let server = Server::start(&w, &[]);
    let http = HttpClient::default();
    for i in 0..50 {
        let body = json!({"records": [{"value": {"i": i, "pad": "x".repeat(50)}}]}).to_string();
        let r = http
            .send(
                "POST",
                &server.url("/topics/pinterest.pin"),
                &[("content-type", "application/vnd.kafka.json.v2+json")],
                body,
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(server.terminate().0, 0);
    let seg = w.path().join(".pinpipe/log/topics/pinterest.pin/0/00000000000000000000.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();

    // Every reader refuses, naming the damage and the way out.
    let e = w.fails(&["log", "read", "pinterest.pin"], &[]);
    assert!(e.contains("is damaged") && e.contains("pinpipe log repair pinterest.pin 0"), "{e}");
    let e = w.fails(&["sink", "--once"], &[]);
    assert!(e.contains("is damaged"), "{e}");
    // The server starts, says so on /healthz, and refuses appends to that partition only.
    let server = Server::start(&w, &[]);
    let health = http.send("GET", &server.url("/healthz"), &[], "").await.unwrap().json();
    assert_eq!(health["status"], "degraded", "{health}");
    let body = json!({"records": [{"value": {"i": 99}}]}).to_string();
    let ct = [("content-type", "application/vnd.kafka.json.v2+json")];
    let r = http.send("POST", &server.url("/topics/pinterest.pin"), &ct, body.clone()).await.unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
    let r = http.send("POST", &server.url("/topics/other"), &ct, body.clone()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // Repair needs the server stopped.
    let e = w.fails(&["log", "repair"], &[]);
    assert!(e.contains("stop it"), "{e}");
    assert_eq!(server.terminate().0, 0);

    let out = w.ok(&["log", "repair"]);
    let cut: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!((cut["topic"].as_str(), cut["partition"].as_u64()), (Some("pinterest.pin"), Some(0)), "{out}");
    let (from, to) = (cut["lost"][0].as_u64().unwrap(), cut["lost"][1].as_u64().unwrap());
    assert!(from < to && to == 50, "{out}");
    assert!(out.contains("records lost (offsets never reused)"), "{out}");
    let read = w.ok(&["log", "read", "pinterest.pin"]);
    let offsets: Vec<u64> =
        read.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, (0..from).collect::<Vec<_>>());
    // The next record gets offset 50: no offset is handed out twice.
    let server = Server::start(&w, &[]);
    let r = http.send("POST", &server.url("/topics/pinterest.pin"), &ct, body).await.unwrap();
    assert_eq!(r.json()["offsets"][0]["offset"], 50, "{}", r.body);
}

/// A client that writes its whole body before reading (Python's urllib) gets the 413 and its
/// error body, not a broken pipe: with `Content-Length` and chunked, on both route families.
#[tokio::test(flavor = "multi_thread")]
async fn a_20_mb_body_from_python_urllib_gets_the_413_response() {
    let w = Workdir::new();
    let server = Server::start(&w, &[]);
    let script = r#"
import sys, urllib.request, urllib.error
url, how = sys.argv[1], sys.argv[2]
payload = b'{"records":[{"value":"' + b'x' * 20_000_000 + b'"}]}'
headers = {"Content-Type": "application/vnd.kafka.json.v2+json"}
data = payload if how == "length" else iter([payload[i:i + 65536] for i in range(0, len(payload), 65536)])
req = urllib.request.Request(url, data=data, method="POST" if "/topics/" in url else "PUT", headers=headers)
try:
    urllib.request.urlopen(req, timeout=120)
    print("no error")
except urllib.error.HTTPError as e:
    print(e.code, e.headers.get("Connection"), e.read().decode())
"#;
    for (path, how) in [("/topics/big", "length"), ("/topics/big", "chunked"), ("/streams/big-stream/record", "length")]
    {
        let out = std::process::Command::new("python3").args(["-c", script, &server.url(path), how]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{path} {how}: {stdout} {}", String::from_utf8_lossy(&out.stderr));
        let (status, rest) = stdout.trim().split_once(' ').unwrap();
        assert_eq!(status, "413", "{path} {how}: {stdout}");
        let (connection, body) = rest.split_once(' ').unwrap();
        assert_eq!(connection, "close");
        let body: Value = serde_json::from_str(body).unwrap();
        if path.starts_with("/topics/") {
            assert_eq!(body["error_code"], 413, "{body}");
        } else {
            assert_eq!(body["__type"], "ValidationException", "{body}");
        }
    }
    // The server is unharmed and stored nothing.
    let http = HttpClient::default();
    let r = http.send("GET", &server.url("/topics"), &[], "").await.unwrap();
    assert_eq!((r.status, r.json()), (200, json!([])));
    let r = http.send("GET", &server.url("/healthz"), &[], "").await.unwrap();
    assert_eq!(r.status, 200);
}

/// A REST Proxy consumer over a socket: create, subscribe, read, commit, restart the server,
/// resume from the committed offset in `<data_dir>/api/consumers`, delete.
#[tokio::test(flavor = "multi_thread")]
async fn a_rest_proxy_consumer_resumes_from_its_committed_offset_after_a_server_restart() {
    const V2: &str = "application/vnd.kafka.v2+json";
    let w = Workdir::new();
    let http = HttpClient::default();
    let server = Server::start(&w, &[]);
    let records: Vec<Value> = (0..4).map(|i| json!({"value": {"n": i}})).collect();
    let r = http
        .send(
            "POST",
            &server.url("/topics/events"),
            &[("content-type", JSON_V2)],
            json!({ "records": records }).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let post = |url: String, body: Value| {
        let http = &http;
        async move { http.send("POST", &url, &[("content-type", V2)], body.to_string()).await.unwrap() }
    };
    let base = "/consumers/readers/instances/one";
    let r = post(
        server.url("/consumers/readers"),
        json!({"name":"one","format":"json","auto.offset.reset":"earliest","auto.commit.enable":"false"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["base_uri"], server.url(base));
    assert_eq!(post(server.url(&format!("{base}/subscription")), json!({"topics":["events"]})).await.status, 204);
    let accept = [("accept", "application/vnd.kafka.json.v2+json")];
    let r = http.send("GET", &server.url(&format!("{base}/records?timeout=2000")), &accept, "").await.unwrap();
    let got: Vec<Value> = r.json().as_array().unwrap().iter().map(|r| r["value"].clone()).collect();
    assert_eq!(got, (0..4).map(|i| json!({"n": i})).collect::<Vec<_>>());
    let commit = json!({"offsets":[{"topic":"events","partition":0,"offset":1}]});
    assert_eq!(post(server.url(&format!("{base}/offsets")), commit).await.status, 200);
    let (code, _) = server.terminate();
    assert_eq!(code, 0);
    assert!(w.path().join(".pinpipe/api/consumers/readers.json").is_file());

    let server = Server::start(&w, &[]);
    let r = http.send("GET", &server.url(&format!("{base}/records")), &accept, "").await.unwrap();
    assert_eq!((r.status, r.json()["error_code"].clone()), (404, json!(40403)), "instances do not survive a restart");
    let r = post(server.url("/consumers/readers"), json!({"name":"two","format":"json"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let two = "/consumers/readers/instances/two";
    post(server.url(&format!("{two}/subscription")), json!({"topics":["events"]})).await;
    let r = http.send("GET", &server.url(&format!("{two}/records?timeout=2000")), &accept, "").await.unwrap();
    let offsets: Vec<u64> = r.json().as_array().unwrap().iter().map(|r| r["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, [2, 3], "resumed after the committed record");
    let r = http.send("DELETE", &server.url(two), &[], "").await.unwrap();
    assert_eq!(r.status, 204);
}
