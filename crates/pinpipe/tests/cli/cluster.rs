//! `pinpipe cluster` and `batch --cluster`: a Ballista scheduler and two executors as processes
//! of the binary on 127.0.0.1, reading raw objects from moto's S3; the job through them must
//! answer and fill its tables exactly as the job in one process does.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;
use serde_json::Value;

use crate::harness::{Server, Workdir};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits for `cond`, failing after `secs` with `what`.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A scheduler and executors, each a `pinpipe cluster` process; all killed when dropped.
struct Cluster {
    scheduler: Child,
    executors: Vec<(Child, PathBuf)>,
    url: String,
}

impl Cluster {
    /// A scheduler and `executors` one-slot executors; `s3` the endpoint of the S3 server their
    /// environment names (`AWS_ENDPOINT_URL`), for the tables' files on it.
    fn start(w: &Workdir, executors: usize, executor_timeout: &str, s3: Option<&str>) -> Cluster {
        let bind = format!("127.0.0.1:{}", free_port());
        let env: Vec<(&str, &str)> = s3.map(|e| vec![("AWS_ENDPOINT_URL", e)]).unwrap_or_default();
        let scheduler = w
            .cmd(&["cluster", "scheduler", "--bind", &bind, "--executor-timeout", executor_timeout])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(60, "the scheduler's port", || std::net::TcpStream::connect(&bind).is_ok());
        let mut c = Cluster { scheduler, executors: Vec::new(), url: format!("df://{bind}") };
        for i in 0..executors {
            let dir = w.path().join(format!("executor-{i}"));
            let (port, grpc) = (free_port().to_string(), free_port().to_string());
            let child = w
                .cmd(&["cluster", "executor", "--scheduler", &bind, "--slots", "1", "--port", &port])
                .args(["--grpc-port", &grpc, "--heartbeat", "1s", "--work-dir"])
                .arg(&dir)
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            c.executors.push((child, dir));
        }
        c
    }

    /// Files each executor wrote into its work directory (task output).
    fn task_files(&self) -> Vec<usize> {
        self.executors.iter().map(|(_, dir)| count_files(dir)).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (c, _) in &mut self.executors {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.scheduler.kill();
        let _ = self.scheduler.wait();
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs `pinpipe batch` on the raw objects at `raw` (on `endpoint`) into the local warehouse
/// `warehouse`; returns the run folder and the process's output.
fn batch(w: &Workdir, raw: &str, endpoint: &str, warehouse: &str, run: &str, extra: &[&str]) -> (PathBuf, String) {
    let wh = w.path().join(warehouse);
    let wh = format!("file://{}", wh.display());
    let mut args = vec!["batch", "--store", raw, "--s3-endpoint", endpoint, "--warehouse", &wh, "--quiet"];
    args.extend_from_slice(&["--run-id", run]);
    args.extend_from_slice(extra);
    let r = w.run_with(&args, &[("AWS_EC2_METADATA_DISABLED", "true")]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    (w.path().join(".pinpipe/results").join(run), r.stdout)
}

const ANSWERS: [&str; 9] = ["q1", "q2", "q3", "q3b", "q4", "q5", "q6", "q7", "q8"];
const COUNTS: [&str; 6] = ["objects", "raw_records", "clean_rows", "duplicates_dropped", "dead_letters", "table_rows"];

/// The two runs answered alike, counted alike, refused the same records, and their tables (read
/// by Python's `deltalake`) hold the same rows.
fn assert_same_runs(w: &Workdir, one: &Path, many: &Path, warehouses: [&str; 2]) {
    let (s1, s2) = (read_json(&one.join("summary.json")), read_json(&many.join("summary.json")));
    for k in COUNTS {
        assert_eq!(s1[k], s2[k], "{k}: {s1} vs {s2}");
    }
    let letters = |d: &Path| {
        let mut l: Vec<String> =
            std::fs::read_to_string(d.join("dead_letters.jsonl")).unwrap().lines().map(String::from).collect();
        l.sort();
        l
    };
    assert_eq!(letters(one), letters(many));
    assert_same_tables(w, one, many, warehouses);
}

/// The two runs answered alike and left tables with the same rows (however many runs it took to
/// fill them).
fn assert_same_tables(w: &Workdir, one: &Path, many: &Path, warehouses: [&str; 2]) {
    for q in ANSWERS {
        let file = format!("{q}.json");
        assert_eq!(read_json(&one.join(&file)), read_json(&many.join(&file)), "{q}");
    }
    let (s1, s2) = (read_json(&one.join("summary.json")), read_json(&many.join("summary.json")));
    assert_eq!(s1["table_rows"], s2["table_rows"], "{s1} vs {s2}");
    assert!(s1["clean_rows"]["pin"].as_u64().unwrap() > 0);
    assert_same_rows(w, &s1, warehouses);
}

/// The tables of the two warehouses (read by Python's `deltalake`) hold the same rows, as many as
/// `summary` says.
fn assert_same_rows(w: &Workdir, summary: &Value, warehouses: [&str; 2]) {
    let tables = |wh: &str| {
        ["pin", "geo", "user"]
            .map(|k| w.path().join(wh).join(format!("batch/pinterest_{k}_table")).display().to_string())
            .to_vec()
    };
    let (Some(t1), Some(t2)) = (
        pinpipe_testkit::delta::read_tables(&tables(warehouses[0])),
        pinpipe_testkit::delta::read_tables(&tables(warehouses[1])),
    ) else {
        return;
    };
    for k in ["pin", "geo", "user"] {
        let name = format!("pinterest_{k}_table");
        let rows = |t: &Value| {
            let mut r: Vec<String> = t[&name]["rows"].as_array().unwrap().iter().map(|r| r.to_string()).collect();
            r.sort();
            r
        };
        assert_eq!(rows(&t1), rows(&t2), "{name}");
        assert_eq!(rows(&t1).len() as u64, summary["table_rows"][k].as_u64().unwrap(), "{name}");
    }
}

/// Uploads every file under `dir` to the bucket under `prefix`.
async fn upload(bucket: &pinpipe_testkit::s3::TestBucket, dir: &Path, prefix: &str) {
    let store = pinpipe_store::StoreConfig {
        url: Some(bucket.url(prefix)),
        s3_endpoint: Some(bucket.endpoint.clone()),
        s3_region: None,
    }
    .validate(dir)
    .unwrap()
    .open()
    .unwrap();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if !rel.starts_with('.') {
                let data = std::fs::read(&p).unwrap();
                store.inner.put(&store.key(&rel), data.into()).await.unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduler_and_two_executors_answer_and_fill_the_tables_as_one_process_does() {
    let Some(bucket) = pinpipe_testkit::s3::TestBucket::create().await else { return };
    let w = Workdir::new();
    let cluster = Cluster::start(&w, 2, "30s", Some(&bucket.endpoint));

    // The golden fixture on S3: the answers worked out by hand, in one process and on the cluster.
    let fixture = w.path().join("golden");
    pinpipe_testkit::golden::write_fixture(&fixture, "pinterest");
    upload(&bucket, &fixture, "golden").await;
    let raw = bucket.url("golden");
    let (one, _) = batch(&w, &raw, &bucket.endpoint, "wh-golden-one", "golden-one", &[]);
    let (many, _) = batch(&w, &raw, &bucket.endpoint, "wh-golden", "golden", &["--cluster", &cluster.url]);
    let all = ["--cluster", cluster.url.as_str(), "--cluster-questions", "always"];
    let (all_on, _) = batch(&w, &raw, &bucket.endpoint, "wh-golden-all", "golden-all", &all);
    assert_eq!(read_json(&all_on.join("summary.json"))["questions_on"], format!("cluster {}", cluster.url));
    assert_eq!(read_json(&many.join("summary.json"))["questions_on"], "this process");
    for (q, expected) in pinpipe_testkit::golden::golden() {
        assert_eq!(read_json(&many.join(format!("{q}.json"))), expected, "{q} on the cluster");
        assert_eq!(read_json(&all_on.join(format!("{q}.json"))), expected, "{q}, its aggregates on the cluster");
        assert_eq!(read_json(&one.join(format!("{q}.json"))), expected, "{q} in one process");
    }
    let s = read_json(&many.join("summary.json"));
    assert_eq!(s["clean_rows"], serde_json::json!({"pin": 10, "geo": 10, "user": 10}), "{s}");
    assert_eq!(s["dead_letters"], serde_json::json!({"pin": 1, "geo": 0, "user": 0}), "{s}");
    assert_same_runs(&w, &one, &many, ["wh-golden-one", "wh-golden"]);

    // Posts through the API and the sink (repeats and all), on S3 in the classic small objects.
    w.ok(&["source", "generate", "--rows", "120"]);
    let server = Server::start(&w, &[]);
    w.ok(&["emulate", "--api-url", &format!("http://{}", server.addr), "--count", "300", "--seed", "11"]);
    drop(server);
    let raw = bucket.url("raw");
    w.ok(&["sink", "--once", "--store", &raw, "--s3-endpoint", &bucket.endpoint, "--flush-size", "3"]);
    let (one, _) = batch(&w, &raw, &bucket.endpoint, "wh-one", "one", &[]);
    let (many, out) = batch(&w, &raw, &bucket.endpoint, "wh-cluster", "cluster", &["--cluster", &cluster.url]);
    assert!(out.contains(&format!("read, cleaned and written on cluster {}", cluster.url)), "{out}");
    assert_eq!(read_json(&many.join("summary.json"))["read_on"], format!("cluster {}", cluster.url));
    assert_eq!(read_json(&one.join("summary.json"))["read_on"], "this process");
    assert_same_runs(&w, &one, &many, ["wh-one", "wh-cluster"]);
    assert_eq!(read_json(&many.join("summary.json"))["raw_records"]["pin"], 300);

    // More posts of the same 120 rows: an incremental run drops what repeats the tables' rows
    // (their fingerprint files) on the cluster as in one process.
    let server = Server::start(&w, &[]);
    w.ok(&["emulate", "--api-url", &format!("http://{}", server.addr), "--count", "200", "--seed", "12"]);
    drop(server);
    w.ok(&["sink", "--once", "--store", &raw, "--s3-endpoint", &bucket.endpoint, "--flush-size", "3"]);
    let (one, _) = batch(&w, &raw, &bucket.endpoint, "wh-one", "one-more", &[]);
    let (many, _) = batch(&w, &raw, &bucket.endpoint, "wh-cluster", "cluster-more", &["--cluster", &cluster.url]);
    assert_same_runs(&w, &one, &many, ["wh-one", "wh-cluster"]);
    let s = read_json(&many.join("summary.json"));
    assert_eq!(s["raw_records"]["pin"], 200, "{s}");
    let (added, repeats) = (s["clean_rows"]["pin"].as_u64().unwrap(), s["duplicates_dropped"]["pin"].as_u64().unwrap());
    assert!(repeats > 100 && added > 0, "200 posts of 120 rows, most in the table already: {s}");

    // 100,000 generated posts (a third of the records exact repeats), NDJSON objects.
    let data = w.path().join("generated");
    w.ok(&["bench", "batch-data", data.to_str().unwrap(), "--posts", "100000"]);
    upload(&bucket, &data, "generated").await;
    let raw = bucket.url("generated");
    let before = cluster.task_files();
    let (one, _) = batch(&w, &raw, &bucket.endpoint, "wh-gen-one", "gen-one", &[]);
    let (many, _) = batch(&w, &raw, &bucket.endpoint, "wh-gen-cluster", "gen-cluster", &["--cluster", &cluster.url]);
    assert_same_runs(&w, &one, &many, ["wh-gen-one", "wh-gen-cluster"]);
    let s = read_json(&many.join("summary.json"));
    assert!(s["duplicates_dropped"]["pin"].as_u64().unwrap() > 20_000, "{s}");
    // Both executors ran tasks of it.
    let after = cluster.task_files();
    assert!(after.iter().zip(&before).all(|(a, b)| a > b), "task output per executor: {before:?} → {after:?}");
    // The executors wrote the tables' files, one per unit of objects (5 to 16 units here: at
    // least 1 MiB of records each), where the job in one process writes one per table at this
    // size; nothing is left in the staging area.
    for k in ["pin", "geo", "user"] {
        let parquet = |wh: &str| {
            let dir = w.path().join(wh).join(format!("batch/pinterest_{k}_table"));
            std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
                .count()
        };
        assert_eq!(parquet("wh-gen-one"), 1, "{k}");
        assert!(parquet("wh-gen-cluster") >= 5, "{k}: {} files", parquet("wh-gen-cluster"));
    }
    assert_eq!(count_files(&w.path().join("wh-gen-cluster/batch/_pinpipe_staging")), 0);

    assert_eq!(s["questions_on"], "this process", "joins this size fit in the job's memory: {s}");
    // With a job too small to hold the joins of the whole tables, the questions' aggregates are
    // computed on the cluster (its executors read the tables' files): the same answers.
    let small = ["--cluster", cluster.url.as_str(), "--memory-limit", "16MiB"];
    let (tight, out) = batch(&w, &raw, &bucket.endpoint, "wh-gen-small", "gen-small", &small);
    let s3 = read_json(&tight.join("summary.json"));
    assert_eq!(s3["questions_on"], format!("cluster {}", cluster.url), "{s3}");
    assert!(out.contains(&format!("questions' aggregates computed on cluster {}", cluster.url)), "{out}");
    assert_eq!(s3["joins_on_disk"], false);
    assert_same_runs(&w, &one, &tight, ["wh-gen-one", "wh-gen-small"]);
    // The same with the tables on S3: the scheduler and the executors open the bucket themselves.
    let wh = bucket.url("wh-gen-s3");
    let args = ["batch", "--store", &raw, "--s3-endpoint", &bucket.endpoint, "--warehouse", &wh, "--quiet"];
    let env = [("AWS_EC2_METADATA_DISABLED", "true"), ("PINPIPE_WAREHOUSE__S3_ENDPOINT", bucket.endpoint.as_str())];
    let r = w.run_with(&[&args[..], &["--run-id", "gen-s3"], &small[..]].concat(), &env);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let on_s3 = w.path().join(".pinpipe/results/gen-s3");
    assert_eq!(read_json(&on_s3.join("summary.json"))["questions_on"], format!("cluster {}", cluster.url));
    for q in ANSWERS {
        let file = format!("{q}.json");
        assert_eq!(read_json(&on_s3.join(&file)), read_json(&one.join(&file)), "{q} with the tables on S3");
    }

    // An incremental run on the cluster with nothing new commits nothing and answers the same.
    let (again, _) = batch(&w, &raw, &bucket.endpoint, "wh-gen-cluster", "gen-again", &["--cluster", &cluster.url]);
    let s2 = read_json(&again.join("summary.json"));
    assert_eq!(s2["objects"]["pin"], 0);
    assert_eq!(s2["table_rows"], s["table_rows"]);
    for q in ANSWERS {
        let file = format!("{q}.json");
        assert_eq!(read_json(&again.join(&file)), read_json(&many.join(&file)), "{q}");
    }
    // `--full` on the cluster rebuilds the same tables from every object.
    let full = ["--cluster", cluster.url.as_str(), "--full"];
    let (rebuilt, _) = batch(&w, &raw, &bucket.endpoint, "wh-gen-cluster", "gen-full", &full);
    let s4 = read_json(&rebuilt.join("summary.json"));
    assert_eq!(s4["mode"], "full", "{s4}");
    assert_eq!(s4["objects"], s["objects"], "{s4}");
    assert_same_tables(&w, &one, &rebuilt, ["wh-gen-one", "wh-gen-cluster"]);
}

/// 100,000 generated posts uploaded to the bucket as NDJSON objects, and the job run on them in
/// one process (warehouse `wh-one`): their URL and that run's folder.
async fn generated_on_s3(w: &Workdir, bucket: &pinpipe_testkit::s3::TestBucket) -> (String, PathBuf) {
    let data = w.path().join("generated");
    w.ok(&["bench", "batch-data", data.to_str().unwrap(), "--posts", "100000"]);
    upload(bucket, &data, "generated").await;
    let raw = bucket.url("generated");
    let (one, _) = batch(w, &raw, &bucket.endpoint, "wh-one", "one", &[]);
    (raw, one)
}

/// Starts the job on the cluster at `cluster` (warehouse `wh-cluster`), its output piped.
fn spawn_batch(w: &Workdir, raw: &str, endpoint: &str, run: &str, cluster: &str) -> Child {
    let wh = format!("file://{}", w.path().join("wh-cluster").display());
    let args = ["batch", "--store", raw, "--s3-endpoint", endpoint, "--warehouse", &wh, "--quiet"];
    w.cmd(&args)
        .args(["--run-id", run, "--cluster", cluster])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_executor_killed_mid_job_still_leaves_exact_tables() {
    // As soon as the first executor has written task output (cleaning the first topic's units).
    executor_killed_when(|_, victim| count_files(victim) > 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_executor_killed_while_writing_still_leaves_exact_tables() {
    // As soon as the first data file of the pin table is written (the executors' write job).
    executor_killed_when(|w, _| {
        let table = w.path().join("wh-cluster/batch/pinterest_pin_table");
        std::fs::read_dir(table)
            .map(|d| d.flatten().any(|e| e.path().extension().is_some_and(|x| x == "parquet")))
            .unwrap_or(false)
    })
    .await;
}

/// Runs the job on 100,000 posts on a cluster and SIGKILLs its first executor (whose work
/// directory is the second argument) once `now` says so. The run either completes (Ballista ran
/// the lost tasks again elsewhere) with the tables and counts of a run in one process, or fails
/// naming the cluster, and a run after it leaves the same tables and answers.
async fn executor_killed_when(now: impl Fn(&Workdir, &Path) -> bool) {
    let Some(bucket) = pinpipe_testkit::s3::TestBucket::create().await else { return };
    let w = Workdir::new();
    let (raw, one) = generated_on_s3(&w, &bucket).await;
    let mut cluster = Cluster::start(&w, 2, "3s", None);
    let job = spawn_batch(&w, &raw, &bucket.endpoint, "killed", &cluster.url);
    let victim_dir = cluster.executors[0].1.clone();
    wait_for(300, "the moment to kill an executor", || now(&w, &victim_dir));
    let (mut victim, _) = cluster.executors.remove(0);
    victim.kill().unwrap();
    victim.wait().unwrap();
    let out = job.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        eprintln!("the job completed after the executor was killed");
        assert_same_runs(&w, &one, &w.path().join(".pinpipe/results/killed"), ["wh-one", "wh-cluster"]);
        return;
    }
    assert!(stderr.contains("the cluster at"), "{stderr}");
    eprintln!("the job failed cleanly after the executor was killed: {stderr}");
    let (rerun, _) = batch(&w, &raw, &bucket.endpoint, "wh-cluster", "rerun", &["--cluster", &cluster.url]);
    // The tables it committed before failing are not read again: compare tables and answers.
    assert_same_tables(&w, &one, &rerun, ["wh-one", "wh-cluster"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduler_killed_mid_job_fails_the_run_and_a_rerun_is_exact() {
    let Some(bucket) = pinpipe_testkit::s3::TestBucket::create().await else { return };
    let w = Workdir::new();
    let (raw, one) = generated_on_s3(&w, &bucket).await;
    let mut cluster = Cluster::start(&w, 2, "30s", None);
    let mut job = spawn_batch(&w, &raw, &bucket.endpoint, "orphaned", &cluster.url);
    // SIGKILL the scheduler once an executor has run a task of the job.
    let dirs: Vec<PathBuf> = cluster.executors.iter().map(|(_, d)| d.clone()).collect();
    wait_for(300, "an executor's task output", || dirs.iter().any(|d| count_files(d) > 0));
    cluster.scheduler.kill().unwrap();
    cluster.scheduler.wait().unwrap();
    // The job notices: it fails (within two minutes, not hanging on the lost scheduler).
    let started = Instant::now();
    while job.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = job.kill();
            panic!("the job still runs two minutes after its scheduler was killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = job.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the job cannot finish without its scheduler");
    assert!(stderr.contains("the cluster at") || stderr.contains("no Ballista scheduler answers"), "{stderr}");
    // The orphaned executors may still finish the task they were running and stage its unit:
    // stop them (as a machine's restart would), so that what they left is there for the next run.
    drop(cluster);
    // Nothing of it is left half-done: a run on a new cluster ingests the rest exactly once (what a
    // table committed before the scheduler died is not read again) and removes what the interrupted
    // run staged.
    let cluster = Cluster::start(&w, 2, "30s", None);
    let (rerun, _) = batch(&w, &raw, &bucket.endpoint, "wh-cluster", "rerun", &["--cluster", &cluster.url]);
    assert_same_tables(&w, &one, &rerun, ["wh-one", "wh-cluster"]);
    assert_eq!(count_files(&w.path().join("wh-cluster/batch/_pinpipe_staging")), 0, "staged units left");
}

#[test]
fn a_scheduler_that_is_not_there_is_named_in_one_line() {
    let w = Workdir::new();
    let port = free_port();
    let e = w.fails(&["batch", "--cluster", &format!("df://127.0.0.1:{port}")], &[]);
    assert!(e.contains(&format!("no Ballista scheduler answers at 127.0.0.1:{port}")), "{e}");
    assert!(e.contains("pinpipe cluster scheduler"), "{e}");
    let e = w.fails(&["batch", "--cluster", "http://x:1"], &[]);
    assert!(e.contains("batch.cluster") && e.contains("df://HOST:PORT"), "{e}");
    let e = w.fails(&["batch", "--cluster", &format!("df://127.0.0.1:{port}"), "--no-tables"], &[]);
    assert!(e.contains("batch.write_tables") && e.contains("executors write the tables"), "{e}");
    let r = w.run(&["batch", "--cluster-questions", "sometimes"]);
    assert_eq!(r.code, 2, "a usage error");
    assert!(r.stderr.contains("auto") && r.stderr.contains("always") && r.stderr.contains("never"), "{}", r.stderr);
    let e = w.fails(&["cluster", "executor", "--scheduler", "127.0.0.1:1", "--slots", "0"], &[]);
    assert!(e.contains("--slots must be at least 1"), "{e}");
    let e = w.fails(&["cluster", "scheduler", "--executor-timeout", "soon"], &[]);
    assert!(e.contains("--executor-timeout must be a duration"), "{e}");
}
