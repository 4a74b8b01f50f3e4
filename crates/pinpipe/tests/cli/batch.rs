//! `pinpipe batch` end to end: emulator → API → log → sink → batch job, checked against answers
//! computed independently in the test from the records in the log; S3 in and out; CLI misuse.

use std::collections::{BTreeMap, BTreeSet};

use pinpipe_log::OffsetLog;
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
    // A batch run against the bucket; its run folder.
    let batch = |run: &str, extra: &[&str]| {
        let mut args =
            vec!["batch", "--store", &raw, "--s3-endpoint", &bucket.endpoint, "--warehouse", &warehouse, "--quiet"];
        args.extend_from_slice(&["--run-id", run]);
        args.extend_from_slice(extra);
        let r = w.run_with(
            &args,
            &[("PINPIPE_WAREHOUSE__S3_ENDPOINT", &bucket.endpoint), ("AWS_EC2_METADATA_DISABLED", "true")],
        );
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        w.path().join(".pinpipe/results").join(run)
    };
    batch("s3", &[]);
    let s = read_json(&w.path().join(".pinpipe/results/s3/summary.json"));
    assert_eq!(s["raw_records"]["pin"], 40);
    assert_eq!(s["objects"]["pin"], 6, "40 records at flush size 7: 6 objects");
    let table = &s["tables"]["pinterest_pin_table"];
    assert_eq!(table["url"], format!("{warehouse}/batch/pinterest_pin_table/"));
    // Created (version 0), then the run's commit (1) with its rows and ingested positions.
    assert_eq!(table["version"], 1);
    // The commit is in the bucket.
    let store = pinpipe_store::StoreConfig {
        url: Some(warehouse.clone()),
        s3_endpoint: Some(bucket.endpoint.clone()),
        s3_region: None,
    }
    .validate(w.path())
    .unwrap()
    .open()
    .unwrap();
    let commit = store.key("batch/pinterest_pin_table/_delta_log/00000000000000000001.json");
    use object_store::ObjectStoreExt;
    let text = store.inner.get(&commit).await.unwrap().bytes().await.unwrap();
    let text = std::str::from_utf8(&text).unwrap();
    assert!(text.contains("\"add\"") && text.contains("pinpipe-batch:pinterest.pin:0"), "{text}");
    // A second run over the same objects finds nothing new and commits nothing.
    batch("s3-again", &[]);
    let s2 = read_json(&w.path().join(".pinpipe/results/s3-again/summary.json"));
    assert_eq!(s2["tables"]["pinterest_pin_table"]["version"], 1);
    assert_eq!(s2["objects"]["pin"], 0);
    assert_eq!(s2["table_rows"], s["table_rows"]);
    assert_eq!((s["answers_from"].as_str(), s2["answers_from"].as_str()), (Some("recomputed"), Some("unchanged")));
    let aggregates = store.key("batch/_pinpipe_aggregates");
    assert!(store.inner.head(&aggregates).await.unwrap().size > 0);

    // More posts: the third run updates the aggregates (reading the older Parquet files from the
    // bucket by ranges), and answers as a rebuild from every object does.
    let server = Server::start(&w, &[]);
    w.ok(&[
        "emulate",
        "--api-url",
        &format!("http://{}", server.addr),
        "--count",
        "30",
        "--batch-size",
        "3",
        "--seed",
        "99",
    ]);
    drop(server);
    w.ok(&["sink", "--once", "--store", &raw, "--s3-endpoint", &bucket.endpoint, "--flush-size", "7"]);
    let third = batch("s3-third", &[]);
    let s3 = read_json(&third.join("summary.json"));
    assert_eq!(s3["answers_from"], "updated", "{s3}");
    assert_eq!(s3["raw_records"]["pin"], 30);
    assert!(s3["clean_rows"]["pin"].as_u64().unwrap() > 0, "{s3}");
    let rebuilt = batch("s3-full", &["--full"]);
    assert_eq!(read_json(&rebuilt.join("summary.json"))["answers_from"], "recomputed");
    for q in ["q1", "q2", "q3", "q3b", "q4", "q5", "q6", "q7", "q8"] {
        let file = format!("{q}.json");
        assert_eq!(read_json(&third.join(&file)), read_json(&rebuilt.join(&file)), "{q}");
    }
    assert_ne!(read_json(&third.join("q2.json")), read_json(&w.path().join(".pinpipe/results/s3/q2.json")));
}

/// Writes one day of raw objects: `posts` posts, each a random row (with replacement) of a
/// 1,500-row source, spread over two partitions, 150 records per object; `next` holds each
/// (topic, partition)'s next offset across days. Returns the objects written per topic.
fn write_day(objects: &std::path::Path, day: u64, posts: u64, next: &mut BTreeMap<(String, u32), u64>) -> u64 {
    use rand::{RngExt, SeedableRng};
    let g = pinpipe_source::Generator::new(5, 1_500);
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(100 + day);
    let rows: Vec<i64> = (0..posts).map(|_| rng.random_range(0..1_500)).collect();
    let mut written = 0;
    for kind in pinpipe_model::Kind::ALL {
        let topic = format!("pinterest.{kind}");
        for p in 0..2u32 {
            let dir = objects.join(format!("topics/{topic}/partition={p}"));
            std::fs::create_dir_all(&dir).unwrap();
            let mine: Vec<i64> = rows.iter().enumerate().filter(|(i, _)| *i as u32 % 2 == p).map(|(_, r)| *r).collect();
            for chunk in mine.chunks(150) {
                let start = next.entry((topic.clone(), p)).or_insert(0);
                let body: String = chunk.iter().map(|r| format!("{}\n", g.post(*r).json(kind))).collect();
                std::fs::write(dir.join(format!("{topic}+{p}+{:010}.json", *start)), body).unwrap();
                *start += chunk.len() as u64;
                if kind == pinpipe_model::Kind::Pin {
                    written += 1;
                }
            }
        }
    }
    written
}

/// Per table, from its Delta log: the raw objects each commit ingested, as (partition, first
/// start, last start, objects), in commit order.
fn ingested_ranges(table: &std::path::Path) -> Vec<(u64, u64, u64, u64)> {
    let mut commits: Vec<std::path::PathBuf> = std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    commits.sort();
    let mut out = Vec::new();
    for c in commits {
        for line in std::fs::read_to_string(&c).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            if let Some(parts) = v["commitInfo"]["pinpipe"]["partitions"].as_object() {
                for (p, i) in parts {
                    let n = |k: &str| i[k].as_u64().unwrap();
                    out.push((p.parse().unwrap(), n("first_start"), n("last_start"), n("objects")));
                }
            }
        }
    }
    out
}

#[test]
fn sigkill_at_random_points_of_incremental_runs_neither_loses_nor_repeats_an_object() {
    use rand::{RngExt, SeedableRng};
    const DAYS: u64 = 4;
    let w = Workdir::new();
    let reference = Workdir::new();
    let objects = w.path().join(".pinpipe/objects");
    let (mut next, mut next_ref) = (BTreeMap::new(), BTreeMap::new());
    // The reference: every day's objects, one run never interrupted.
    let mut objects_per_day = Vec::new();
    for day in 0..DAYS {
        objects_per_day.push(write_day(&reference.path().join(".pinpipe/objects"), day, 800, &mut next_ref));
    }
    let t = std::time::Instant::now();
    reference.ok(&["batch", "--run-id", "reference", "--quiet"]);
    let clean_run = t.elapsed();

    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(42);
    let mut kills = 0;
    for day in 0..DAYS {
        write_day(&objects, day, 800, &mut next);
        // Kill runs at random moments of their work (start-up, listing, cleaning, writing,
        // committing), several times a day, then let one finish.
        for attempt in 0..6 {
            if kills >= 3 * (day + 1) {
                break;
            }
            let mut child = w
                .cmd(&["batch", "--run-id", &format!("d{day}-k{attempt}"), "--quiet"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(clean_run.mul_f64(rng.random_range(0.05..0.95)));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                kills += 1;
            }
            child.wait().unwrap();
        }
        w.ok(&["batch", "--run-id", &format!("day{day}"), "--quiet"]);
    }
    assert!(kills >= 10, "only {kills} runs were killed mid-way");

    let dir = |w: &Workdir, run: &str| w.path().join(".pinpipe/results").join(run);
    for q in ["q1", "q2", "q3", "q3b", "q4", "q5", "q6", "q7", "q8"] {
        let got = read_json(&dir(&w, &format!("day{}", DAYS - 1)).join(format!("{q}.json")));
        assert_eq!(got, read_json(&dir(&reference, "reference").join(format!("{q}.json"))), "{q}");
    }
    let s = read_json(&dir(&w, &format!("day{}", DAYS - 1)).join("summary.json"));
    let r = read_json(&dir(&reference, "reference").join("summary.json"));
    assert_eq!(s["table_rows"], r["table_rows"]);

    // Every object was ingested by exactly one commit: per partition, the commits' ranges follow
    // each other without overlap or gap and add up to every object written.
    let total: u64 = objects_per_day.iter().sum();
    for table in ["pinterest_pin_table", "pinterest_geo_table", "pinterest_user_table"] {
        let ranges = ingested_ranges(&w.path().join(".pinpipe/warehouse/batch").join(table));
        let mut per_partition: BTreeMap<u64, Vec<(u64, u64, u64)>> = BTreeMap::new();
        for (p, first, last, n) in ranges {
            per_partition.entry(p).or_default().push((first, last, n));
        }
        let mut objects_seen = 0;
        for (p, rs) in &per_partition {
            for pair in rs.windows(2) {
                assert!(pair[1].0 > pair[0].1, "{table} partition {p}: overlapping commits {rs:?}");
            }
            objects_seen += rs.iter().map(|r| r.2).sum::<u64>();
        }
        assert_eq!(objects_seen, total, "{table}: {per_partition:?}");
    }

    // The rows themselves, read by an independent Delta reader.
    let paths = |w: &Workdir| -> Vec<String> {
        ["pinterest_pin_table", "pinterest_geo_table", "pinterest_user_table"]
            .iter()
            .map(|t| w.path().join(".pinpipe/warehouse/batch").join(t).display().to_string())
            .collect()
    };
    if let (Some(mine), Some(theirs)) =
        (pinpipe_testkit::delta::read_tables(&paths(&w)), pinpipe_testkit::delta::read_tables(&paths(&reference)))
    {
        for t in ["pinterest_pin_table", "pinterest_geo_table", "pinterest_user_table"] {
            let rows = |v: &Value| {
                let mut r: Vec<String> = v[t]["rows"].as_array().unwrap().iter().map(|x| x.to_string()).collect();
                r.sort();
                r
            };
            assert_eq!(rows(&mine), rows(&theirs), "{t}");
        }
    }
}

#[test]
fn two_batch_runs_at_once_one_commits_and_the_other_changes_nothing() {
    let w = Workdir::new();
    let mut next = BTreeMap::new();
    write_day(&w.path().join(".pinpipe/objects"), 0, 3_000, &mut next);
    let spawn = |id: &str| {
        w.cmd(&["batch", "--run-id", id, "--quiet"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("a"), spawn("b"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let ok: Vec<bool> = [&a, &b].iter().map(|o| o.status.success()).collect();
    let refused = if ok == [true, false] { &b } else { &a };
    if ok == [true, true] {
        // The first finished before the second started: the second found nothing new.
        let s = read_json(&w.path().join(".pinpipe/results/b/summary.json"));
        let sa = read_json(&w.path().join(".pinpipe/results/a/summary.json"));
        assert!(s["objects"]["pin"] == 0 || sa["objects"]["pin"] == 0, "{s}\n{sa}");
    } else {
        assert!(ok.contains(&true), "{}\n{}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
        let e = String::from_utf8_lossy(&refused.stderr);
        assert!(e.contains("is held by pinpipe batch") && e.contains("another job"), "{e}");
    }
    // Either way the tables hold each row once: a third run finds nothing to add.
    w.ok(&["batch", "--run-id", "c", "--quiet"]);
    let c = read_json(&w.path().join(".pinpipe/results/c/summary.json"));
    assert_eq!(c["clean_rows"], serde_json::json!({"pin": 0, "geo": 0, "user": 0}));
    let log = w.path().join(".pinpipe/warehouse/batch/pinterest_pin_table/_delta_log");
    assert_eq!(
        std::fs::read_dir(log)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
            .count(),
        2
    );
}
