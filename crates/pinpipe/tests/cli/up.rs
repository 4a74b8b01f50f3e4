//! `pinpipe up`, the README's main command: the whole pipeline in one process. With `--once` it
//! prints the eight answers and a summary, and the files it names exist; a second run reuses the
//! source database and the log. Without `--once` it runs until SIGTERM and stops gracefully.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use pinpipe_log::OffsetLog;
use pinpipe_log::embedded::EmbeddedLog;

use crate::harness::Workdir;

/// The value after `label` on the line that starts with it.
fn after<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in\n{out}"))
        .trim()
}

async fn records_per_name(w: &Workdir) -> Vec<(String, u64)> {
    records_in(&EmbeddedLog::open_read_only(&w.path().join(".pinpipe/log")).unwrap()).await
}

/// Records per topic and stream of a log.
async fn records_in(log: &dyn OffsetLog) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for t in log.topics().await.unwrap() {
        let n = log.offsets(&t.name).await.unwrap().iter().map(|o| o.end - o.start).sum();
        out.push((t.name, n));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn up_once_runs_the_whole_pipeline_and_a_second_run_reuses_the_database_and_the_log() {
    let w = Workdir::new();
    let first =
        w.ok(&["up", "--once", "--posts", "40", "--source-rows", "300", "--seed", "3", "--listen", "127.0.0.1:0"]);
    assert!(first.starts_with("source: generated 300 posts into sqlite://.pinpipe/source.db"), "{first}");
    // The eight answers (and 3b), each a titled table.
    for q in ["q1. ", "q2. ", "q3. ", "q3b. ", "q4. ", "q5. ", "q6. ", "q7. ", "q8. "] {
        assert!(first.lines().any(|l| l.starts_with(q)), "no question {q:?} in\n{first}");
    }
    // The files it names exist.
    let results = w.path().join(after(&first, "batch results:"));
    for f in ["q1.json", "q8.json", "summary.json"] {
        assert!(results.join(f).is_file(), "{}", results.join(f).display());
    }
    assert!(w.path().join(after(&first, "report:")).is_file());
    let tables: Vec<PathBuf> = first
        .lines()
        .filter(|l| l.trim_start().starts_with("stream table "))
        .map(|l| PathBuf::from(l.rsplit_once("(file://").unwrap().1.trim_end_matches(')')))
        .collect();
    assert_eq!(tables.len(), 3, "{first}");
    assert!(tables.iter().all(|t| t.join("_delta_log").is_dir()), "{tables:?}");
    // The summary: every record accepted, one object per topic record (flush size 1), nothing left.
    assert!(
        after(&first, "records in:").starts_with("240 accepted by the API (40 posts in both modes), 0 refused"),
        "{first}"
    );
    assert!(after(&first, "objects written:").starts_with("120 under"), "{first}");
    assert!(after(&first, "objects written:").ends_with("(sink lag 0)"), "{first}");
    assert_eq!(first.matches(", lag 0 (").count(), 3, "{first}");
    // What the log holds: 40 records in each topic and each stream.
    let counts = records_per_name(&w).await;
    assert_eq!(counts.len(), 6, "{counts:?}");
    assert!(counts.iter().all(|(_, n)| *n == 40), "{counts:?}");

    let second =
        w.ok(&["up", "--once", "--posts", "10", "--source-rows", "300", "--seed", "4", "--listen", "127.0.0.1:0"]);
    assert!(second.starts_with("source: sqlite://.pinpipe/source.db holds 300 posts (reused)"), "{second}");
    assert!(records_per_name(&w).await.iter().all(|(_, n)| *n == 50));
    assert!(after(&second, "objects written:").starts_with("30 under"), "{second}");
    let batch: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.path().join(after(&second, "batch results:")).join("summary.json")).unwrap(),
    )
    .unwrap();
    // The batch job ingested only the second run's objects, and answered over both runs' rows.
    assert_eq!(batch["raw_records"]["pin"], 10, "{batch}");
    let first_batch: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.path().join(after(&first, "batch results:")).join("summary.json")).unwrap(),
    )
    .unwrap();
    let (before, added) = (&first_batch["table_rows"]["pin"], &batch["clean_rows"]["pin"]);
    assert_eq!(
        batch["table_rows"]["pin"].as_u64(),
        Some(before.as_u64().unwrap() + added.as_u64().unwrap()),
        "{batch}"
    );
}

/// What `pinpipe up` prints until it says it is running.
fn read_until_running(reader: &mut impl BufRead) -> String {
    let mut out = String::new();
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "up exited early:\n{out}");
        out.push_str(&line);
        if line.contains("Ctrl-C to stop") {
            return out;
        }
    }
}

/// A running `pinpipe up --posts <posts> --source-rows 200 --listen 127.0.0.1:0 <extra>`, its
/// stdout, and what it printed until it said it is running.
fn start_up(
    w: &Workdir,
    posts: &str,
    extra: &[&str],
    stderr: Stdio,
) -> (std::process::Child, BufReader<std::process::ChildStdout>, String) {
    let args = [&["up", "--posts", posts, "--source-rows", "200", "--listen", "127.0.0.1:0"], extra].concat();
    let mut child = w.cmd(&args).stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let out = read_until_running(&mut reader);
    (child, reader, out)
}

/// Stops a running `pinpipe up` with SIGTERM; it must exit 0. Returns what it printed then.
fn stop_up(mut child: std::process::Child, mut reader: impl std::io::Read, out: &str) -> String {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "{out}{rest}");
    rest
}

#[test]
fn up_runs_until_sigterm_and_stops_gracefully() {
    let w = Workdir::new();
    let (child, reader, out) = start_up(&w, "15", &[], Stdio::null());
    assert!(out.contains("schedule: the batch job at \"@daily\" UTC"), "{out}");
    let rest = stop_up(child, reader, &out);
    // The followers committed everything before stopping.
    assert!(after(&rest, "records in:").starts_with("90 accepted"), "{rest}");
    assert!(after(&rest, "objects written:").starts_with("45 under"), "{rest}");
    assert!(after(&rest, "objects written:").ends_with("(sink lag 0)"), "{rest}");
    assert_eq!(rest.matches(", lag 0 (").count(), 3, "{rest}");
}

/// Records per topic on a Kafka cluster.
async fn records_on_kafka(bootstrap: &str) -> Vec<(String, u64)> {
    use pinpipe_log::kafka::{KafkaConfig, KafkaLog};
    let config = KafkaConfig { bootstrap_servers: Some(bootstrap.to_owned()), ..Default::default() };
    records_in(&KafkaLog::connect(&config.validate().unwrap()).await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn up_once_runs_the_whole_pipeline_on_kafka() {
    let Some(broker) = pinpipe_testkit::kafka::Broker::start() else { return };
    let w = Workdir::new();
    let log = format!("kafka://{}", broker.bootstrap);
    let args = ["up", "--once", "--source-rows", "300", "--listen", "127.0.0.1:0", "--log", log.as_str()];
    let first = w.ok(&[&args[..], &["--posts", "40", "--seed", "3"]].concat());
    assert!(after(&first, "api: listening on").ends_with(&format!("(Kafka at {})", broker.bootstrap)), "{first}");
    for q in ["q1. ", "q2. ", "q3. ", "q3b. ", "q4. ", "q5. ", "q6. ", "q7. ", "q8. "] {
        assert!(first.lines().any(|l| l.starts_with(q)), "no question {q:?} in\n{first}");
    }
    assert!(
        after(&first, "records in:").starts_with("240 accepted by the API (40 posts in both modes), 0 refused"),
        "{first}"
    );
    assert!(after(&first, "objects written:").starts_with("120 under"), "{first}");
    assert!(after(&first, "objects written:").ends_with("(sink lag 0)"), "{first}");
    assert_eq!(first.matches(", lag 0 (").count(), 3, "{first}");
    // Topics and streams are on the broker, 40 records each; nothing went to an embedded log.
    let mut counts = records_on_kafka(&broker.bootstrap).await;
    counts.sort();
    let names: Vec<&str> = counts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "pinterest.geo",
            "pinterest.pin",
            "pinterest.user",
            "streaming-pinterest-geo",
            "streaming-pinterest-pin",
            "streaming-pinterest-user"
        ]
    );
    assert!(counts.iter().all(|(_, n)| *n == 40), "{counts:?}");
    assert!(!w.path().join(".pinpipe/log").exists());
    // The batch job read what the sink copied from Kafka: every pin once.
    let results = w.path().join(after(&first, "batch results:"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["raw_records"]["pin"], 40, "{summary}");

    // A second run continues on the same topics: the sink and the streaming job resume.
    let second = w.ok(&[&args[..], &["--posts", "10", "--seed", "4"]].concat());
    assert!(after(&second, "objects written:").starts_with("30 under"), "{second}");
    assert_eq!(second.matches(", lag 0 (").count(), 3, "{second}");
    assert!(records_on_kafka(&broker.bootstrap).await.iter().all(|(_, n)| *n == 50));
}

/// One sample: name, labels, value.
type Sample = (String, serde_json::Map<String, serde_json::Value>, f64);

/// Samples of an OpenMetrics text, parsed by the Prometheus project's own parser
/// (`prometheus_client` from PyPI): `(name, labels, value)`. `None` when it is not installed.
fn parse_openmetrics(text: &str) -> Option<Vec<Sample>> {
    let script = "import sys, json\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n\
        out = [[s.name, s.labels, s.value] for f in parse(sys.stdin.read()) for s in f.samples]\n\
        print(json.dumps(out))";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'prometheus_client'") {
        return None;
    }
    assert!(out.status.success(), "the OpenMetrics parser refused the text: {stderr}\n{text}");
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The sum of the samples named `name` whose label `label` starts with `prefix`.
fn sum(
    samples: &[(String, serde_json::Map<String, serde_json::Value>, f64)],
    name: &str,
    label: &str,
    prefix: &str,
) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| n == name && l.get(label).and_then(|v| v.as_str()).is_some_and(|v| v.starts_with(prefix)))
        .map(|(_, _, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_stage_of_up_has_metrics_that_a_prometheus_parser_reads_and_that_match_the_run() {
    let w = Workdir::new();
    let (mut child, reader, out) = start_up(&w, "30", &["--log-format", "json", "-v"], Stdio::piped());
    let stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let metrics_url = after(&out, "api: listening on").split_whitespace().next().unwrap().to_owned() + "/metrics";
    let http = pinpipe_testkit::http::HttpClient::default();
    // Wait until the sink and the streaming job have taken everything (lag 0 everywhere).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let samples = loop {
        let r = http.send("GET", &metrics_url, &[], String::new()).await.unwrap();
        assert_eq!(r.status, 200);
        let Some(samples) = parse_openmetrics(&r.body) else {
            assert!(std::env::var_os("TEST_PINPIPE_REQUIRE_SERVERS").is_none(), "prometheus_client is required here");
            eprintln!("skipped: python3 with prometheus_client is not installed");
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            child.wait().unwrap();
            return;
        };
        let drained = sum(&samples, "pinpipe_sink_records_total", "topic", "pinterest.") == 90.0
            && sum(&samples, "pinpipe_stream_records_total", "stream", "streaming-") == 90.0
            && sum(&samples, "pinpipe_sink_lag_records", "topic", "") == 0.0
            && sum(&samples, "pinpipe_stream_lag_records", "stream", "") == 0.0;
        if drained {
            break samples;
        }
        assert!(std::time::Instant::now() < deadline, "not drained in 60 s:\n{}", r.body);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let names: std::collections::BTreeSet<&str> = samples.iter().map(|(n, _, _)| n.as_str()).collect();
    for family in [
        "pinpipe_api_requests_total",
        "pinpipe_log_appended_records_total",
        "pinpipe_log_end_offset",
        "pinpipe_log_fsync_duration_seconds_bucket",
        "pinpipe_sink_objects_total",
        "pinpipe_sink_written_bytes_total",
        "pinpipe_sink_flush_duration_seconds_bucket",
        "pinpipe_stream_visible_latency_seconds_count",
        "pinpipe_sink_committed_offset",
        "pinpipe_stream_rows_total",
        "pinpipe_stream_micro_batches_total",
        "pinpipe_stream_table_version",
        "pinpipe_stream_last_commit_timestamp_seconds",
        "pinpipe_emulate_records_accepted_total",
        "pinpipe_emulate_request_duration_seconds_bucket",
        "pinpipe_schedule_attempts_total",
        "pinpipe_schedule_next_run_timestamp_seconds",
    ] {
        assert!(names.contains(family), "no {family} in {names:?}");
    }
    // The stages agree with each other and with the run: 30 posts, each 3 records to the topics
    // and 3 to the streams.
    let total = |name: &str| samples.iter().filter(|(n, _, _)| n == name).map(|(_, _, v)| v).sum::<f64>();
    assert_eq!(total("pinpipe_emulate_records_accepted_total"), 180.0);
    assert_eq!(total("pinpipe_emulate_records_refused_total"), 0.0);
    // One request per post and kind in each mode: 30 posts x 3 kinds x 2 modes.
    assert_eq!(total("pinpipe_emulate_request_duration_seconds_count"), 180.0);
    assert_eq!(sum(&samples, "pinpipe_log_appended_records_total", "topic", "pinterest."), 90.0);
    assert_eq!(sum(&samples, "pinpipe_log_appended_records_total", "topic", "streaming-"), 90.0);
    assert_eq!(sum(&samples, "pinpipe_log_end_offset", "topic", "pinterest."), 90.0);
    // The classic setting: one object per record.
    assert_eq!(sum(&samples, "pinpipe_sink_objects_total", "topic", "pinterest."), 90.0);
    let stream = |name: &str| sum(&samples, name, "stream", "streaming-");
    assert_eq!(
        stream("pinpipe_stream_rows_total")
            + stream("pinpipe_stream_duplicates_dropped_total")
            + stream("pinpipe_stream_dead_letters_total"),
        90.0
    );
    assert!(total("pinpipe_sink_written_bytes_total") > 90.0 * 50.0);
    // Every record committed by the streaming job has its ack-to-visible latency; every group of
    // the sink (one per record at flush size 1) its flush time.
    assert_eq!(stream("pinpipe_stream_visible_latency_seconds_count"), 90.0);
    assert_eq!(sum(&samples, "pinpipe_sink_flush_duration_seconds_count", "topic", "pinterest."), 90.0);
    let inf = samples
        .iter()
        .filter(|(n, l, _)| n == "pinpipe_stream_visible_latency_seconds_bucket" && l["le"] == "+Inf")
        .map(|(_, _, v)| v)
        .sum::<f64>();
    assert_eq!(inf, 90.0);
    // The embedded log synced at least once and at most once per request (appends share fsyncs).
    let syncs = total("pinpipe_log_fsync_duration_seconds_count");
    assert!((1.0..=180.0).contains(&syncs), "{syncs} fsyncs");
    let next_run = total("pinpipe_schedule_next_run_timestamp_seconds");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(next_run > now && next_run <= now + 86_400.0, "next run {next_run}, now {now}");
    stop_up(child, reader, &out);
    // --log-format json -v: every log line is a JSON object, and info lines are there.
    let logs = stderr.join().unwrap();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["level"] == "INFO"), "{logs}");
    assert!(lines.iter().all(|l| l["timestamp"].is_string() && l["level"].is_string()), "{logs}");
}

/// Chromium's view of `url` after its scripts ran: the DOM, and what it logged on stderr.
fn chromium_dom(chromium: &std::path::Path, profile: &std::path::Path, url: &str) -> (String, String) {
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .args(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=4000", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Polls `GET url` (JSON) until `want` holds (at most a minute); returns the value.
async fn poll_json(url: &str, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let http = pinpipe_testkit::http::HttpClient::default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = http.send("GET", url, &[], String::new()).await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        if want(&v) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "never reached: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_the_running_pipeline_in_headless_chromium() {
    let chromium = std::path::PathBuf::from("/usr/bin/chromium");
    if !chromium.exists() {
        assert!(std::env::var_os("TEST_PINPIPE_REQUIRE_SERVERS").is_none(), "chromium is required here");
        return;
    }
    let w = Workdir::new();
    let (child, reader, out) = start_up(&w, "30", &[], Stdio::null());
    let base = after(&out, "api: listening on").split_whitespace().next().unwrap().to_owned();
    assert!(out.contains(&format!("console: {base}/ui")), "{out}");
    let overview = format!("{base}/api/v1/overview");
    // Drained: the sink and the streaming job are at the log's end.
    let v = poll_json(&overview, |v| {
        let records: u64 = v["stream"].as_array().map_or(0, |t| t.iter().map(|t| t["records"].as_u64().unwrap()).sum());
        records == 90
            && v["sink"].as_array().is_some_and(|s| s.len() == 3 && s.iter().all(|p| p["lag"] == 0))
            && v["stream"].as_array().is_some_and(|t| t.len() == 3 && t.iter().all(|t| t["lag"] == 0))
    })
    .await;
    assert_eq!(v["emulator"]["accepted"], 180, "{v}");
    assert!(v["schedule"]["next_run_ms"].as_i64().unwrap() > v["time_ms"].as_i64().unwrap(), "{v}");
    let profile = w.path().join("chromium-profile");
    let (dom, log) = chromium_dom(&chromium, &profile, &format!("{base}/ui"));
    // The script ran (it counts its polls on the body) without an error (it notes them there).
    assert!(dom.contains(r#"data-polls=""#) && !dom.contains(r#"data-errors=""#), "{dom}\n{log}");
    // The diagram's numbers are the run's: 90 records in the topics and in the streams, lag 0.
    for (id, text) in [("v-topics", "90 records"), ("v-streams", "90 records"), ("v-sink", "lag 0"), ("v-job", "lag 0")]
    {
        let at = dom.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("no {id}:\n{dom}"));
        let shown = &dom[at..][dom[at..].find('>').unwrap() + 1..];
        assert!(shown.starts_with(&format!("{text}</text>")), "{id}: {}", &shown[..40.min(shown.len())]);
    }
    assert!(dom.contains("pinterest_geo_table") && dom.contains("live · "), "{dom}");
    // While one page stays open (a long virtual-time budget: it polls for many seconds of real
    // time), records flow: a record the streaming job cannot clean, and five for a topic. The
    // page's numbers move and the dead letter appears on it.
    let http = pinpipe_testkit::http::HttpClient::default();
    let overview_requests = || {
        let (http, url) = (http.clone(), format!("{base}/metrics"));
        async move {
            let text = http.send("GET", &url, &[], String::new()).await.unwrap().body;
            text.lines()
                .filter(|l| l.starts_with(r#"pinpipe_api_requests_total{route="/api/v1/overview""#))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum::<u64>()
        }
    };
    let before = overview_requests().await;
    let page = {
        let (chromium, profile, url) = (chromium.clone(), profile.clone(), format!("{base}/ui"));
        std::thread::spawn(move || {
            let out = Command::new(chromium)
                .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--dump-dom"])
                .args(["--disable-background-networking", "--virtual-time-budget=3000000"])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg(url)
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while overview_requests().await < before + 3 {
        assert!(std::time::Instant::now() < deadline && !page.is_finished(), "the page does not poll");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let bad = r#"{"StreamName":"streaming-pinterest-geo","Data":{"ind":"not a number"},"PartitionKey":"k"}"#;
    let stream_url = format!("{base}/streams/streaming-pinterest-geo/record");
    let r = http.send("PUT", &stream_url, &[("content-type", "application/json")], bad.to_owned()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let five =
        serde_json::json!({"records": (0..5).map(|i| serde_json::json!({"value": {"i": i}})).collect::<Vec<_>>()});
    let ct = [("content-type", "application/vnd.kafka.json.v2+json")];
    let r = http.send("POST", &format!("{base}/topics/pinterest.pin"), &ct, five.to_string()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let v = poll_json(&overview, |v| v["dead_letters_total"] == 1).await;
    assert_eq!(v["dead_letters"][0]["origin"]["stream"], "streaming-pinterest-geo", "{v}");
    let dom = page.join().unwrap();
    let body = &dom[dom.find("<body").unwrap()..];
    let body = &body[..body.find('>').unwrap()];
    // (If the page had stopped polling before the records arrived, its budget is too short here.)
    assert!(body.contains(r#"data-first-appended="180""#) && body.contains(r#"data-appended="186""#), "{body}");
    assert!(!body.contains("data-errors"), "{body}");
    assert!(
        dom.contains("not a valid geo record") && dom.contains(">1 newest; 1 since this process started<"),
        "{dom}"
    );
    // The screenshot: the diagram is drawn (its boxes and arrows in the accent colour).
    let shot = w.path().join("console.png");
    let status = Command::new(&chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"])
        .args(["--window-size=1200,900", "--virtual-time-budget=4000"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("{base}/ui"))
        .output()
        .unwrap();
    assert!(status.status.success() && shot.is_file());
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut png = decoder.read_info().unwrap();
    let mut buf = vec![0; png.output_buffer_size().unwrap()];
    let info = png.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let accent = buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| p[0].abs_diff(0x4e) < 10 && p[1].abs_diff(0x79) < 10 && p[2].abs_diff(0xa7) < 10)
        .count();
    assert!(accent > 3_000, "accent-coloured pixels: {accent}");
    stop_up(child, reader, &out);
}

/// The classic stack's MSK cluster was reached with TLS and a login: the whole pipeline runs
/// through TLS with SCRAM (the password only in the environment, never printed); a client that
/// does not trust the broker's CA stops at once with the reason, exit 1, nothing written.
#[tokio::test(flavor = "multi_thread")]
async fn up_once_runs_through_tls_and_scram_and_a_wrong_ca_stops_it_with_the_reason() {
    use pinpipe_log::kafka::{KafkaConfig, KafkaLog};
    use pinpipe_testkit::kafka::{Broker, Options, User};
    let users = vec![User { name: "pinpipe", password: "s3cret-Pa55", mechanism: "SCRAM-SHA-512" }];
    let Some(broker) = Broker::start_with(Options { tls: true, users: Some(users), ..Default::default() }) else {
        return;
    };
    let tls = broker.tls.as_ref().unwrap();
    let w = Workdir::new();
    let settings = |ca: &std::path::Path| {
        format!(
            "[log.kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\
             \"sasl.username\" = \"pinpipe\"\n\"sasl.password\" = \"${{env:KAFKA_TEST_PASSWORD}}\"\n\
             \"ssl.ca.location\" = \"{}\"\n",
            ca.display()
        )
    };
    let secret = [("KAFKA_TEST_PASSWORD", "s3cret-Pa55")];
    let log = format!("kafka://{}", broker.bootstrap);
    let args = ["up", "--once", "--source-rows", "300", "--listen", "127.0.0.1:0", "--log", log.as_str()];
    let args = [&args[..], &["--posts", "20", "--seed", "5"]].concat();

    // A CA that did not sign the broker's certificate: one clear error, nothing written.
    std::fs::write(w.path().join("pinpipe.toml"), settings(&tls.other_ca)).unwrap();
    let e = w.fails(&args, &secret);
    assert!(e.contains("not signed by a trusted CA") && e.contains(&broker.bootstrap), "{e}");
    // The right CA but no password in the environment: the variable is named.
    std::fs::write(w.path().join("pinpipe.toml"), settings(&tls.ca)).unwrap();
    let e = w.fails(&args, &[]);
    assert!(e.contains("KAFKA_TEST_PASSWORD"), "{e}");

    // `pinpipe config` shows where the password comes from, never the password.
    let shown = w.run_with(&["config"], &secret);
    assert!(
        shown.stdout.contains("${env:KAFKA_TEST_PASSWORD}") && !shown.stdout.contains("s3cret"),
        "{}",
        shown.stdout
    );

    let run = w.run_with(&args, &secret);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let out = run.stdout;
    assert!(!out.contains("s3cret") && !run.stderr.contains("s3cret"));
    assert!(
        after(&out, "records in:").starts_with("120 accepted by the API (20 posts in both modes), 0 refused"),
        "{out}"
    );
    assert!(after(&out, "objects written:").ends_with("(sink lag 0)"), "{out}");
    assert_eq!(out.matches(", lag 0 (").count(), 3, "{out}");
    // What is on the broker, read by a client of our own through the same TLS and login.
    let mut c = KafkaConfig { bootstrap_servers: Some(broker.bootstrap.clone()), ..Default::default() };
    for (k, v) in [
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", "pinpipe"),
        ("sasl.password", "${env:KAFKA_TEST_PASSWORD}"),
        ("ssl.ca.location", &tls.ca.display().to_string()),
    ] {
        c.properties.insert(k.into(), v.into());
    }
    let mut resolved = c.validate().unwrap();
    resolved.properties.insert("sasl.password".into(), "s3cret-Pa55".into());
    let counts = records_in(&KafkaLog::connect(&resolved).await.unwrap()).await;
    assert_eq!(counts.len(), 6, "{counts:?}");
    assert!(counts.iter().all(|(_, n)| *n == 20), "{counts:?}");
}
