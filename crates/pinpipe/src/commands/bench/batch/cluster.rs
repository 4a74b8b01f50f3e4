//! `pinpipe bench batch --cluster`: the same job on the same objects in one process and through
//! a Ballista cluster, alternating, with the answers compared. `--cluster local` starts a
//! scheduler and two executors of this binary on 127.0.0.1 for the benchmark (one slot each on
//! a 2-core machine); `--cluster df://HOST:PORT` uses a running cluster.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{JobRun, median, run_job_with};
use crate::output::line;

/// A cluster started for the benchmark: killed when dropped.
pub struct LocalCluster {
    children: Vec<Child>,
    /// `df://127.0.0.1:PORT`.
    pub url: String,
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalCluster {
    /// Starts a scheduler and `executors` executors in `work`, and waits for the scheduler.
    pub fn start(work: &Path, executors: usize) -> anyhow::Result<LocalCluster> {
        let exe = std::env::current_exe()?;
        let port = free_port()?;
        let bind = format!("127.0.0.1:{port}");
        let spawn = |args: &[String]| Command::new(&exe).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        let mut cluster = LocalCluster { children: Vec::new(), url: format!("df://{bind}") };
        cluster.children.push(spawn(&["cluster".into(), "scheduler".into(), "--bind".into(), bind.clone()])?);
        let started = Instant::now();
        while std::net::TcpStream::connect(&bind).is_err() {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "the scheduler did not start on {bind}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let slots = (cores / executors).max(1);
        for i in 0..executors {
            let dir = work.join(format!("executor-{i}"));
            std::fs::create_dir_all(&dir)?;
            cluster.children.push(spawn(&[
                "cluster".into(),
                "executor".into(),
                "--scheduler".into(),
                bind.clone(),
                "--slots".into(),
                slots.to_string(),
                "--port".into(),
                free_port()?.to_string(),
                "--grpc-port".into(),
                free_port()?.to_string(),
                "--work-dir".into(),
                dir.display().to_string(),
            ])?);
        }
        Ok(cluster)
    }
}

/// Runs the job on `data` in one process and on the cluster at `url` (with `--cluster-questions
/// questions`, if given), `runs` times each, alternating; checks the answers are the same and
/// prints medians and their ratio.
pub fn compare(
    loaded: &crate::config::Loaded,
    data: &Path,
    url: &str,
    questions: Option<&str>,
    runs: u32,
) -> anyhow::Result<()> {
    let mut args = vec!["--cluster", url];
    if let Some(q) = questions {
        args.extend(["--cluster-questions", q]);
    }
    let (mut single, mut cluster) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let s = super::super::Scratch::new(loaded, "batch-single")?;
        let one = run_job_with(data, &s.0, &format!("single-{run}"), &[])?;
        let c = super::super::Scratch::new(loaded, "batch-cluster")?;
        let many = run_job_with(data, &c.0, &format!("cluster-{run}"), &args)?;
        same_answers(&s.0.join(format!("results/single-{run}")), &c.0.join(format!("results/cluster-{run}")))?;
        for k in ["raw_records", "clean_rows", "duplicates_dropped", "dead_letters", "table_rows"] {
            anyhow::ensure!(one.summary[k] == many.summary[k], "{k} differ: {} vs {}", one.summary[k], many.summary[k]);
        }
        line(&format!("  run {run}: one process {}", one.describe()))?;
        line(&format!("         cluster     {}", many.describe()))?;
        single.push(one);
        cluster.push(many);
    }
    let m = |v: &[JobRun], f: &dyn Fn(&JobRun) -> f64| median(v.iter().map(f).collect());
    let (s, c) = (m(&single, &|r| r.wall), m(&cluster, &|r| r.wall));
    let (si, ci) = (m(&single, &|r| r.phase("ingest_s")), m(&cluster, &|r| r.phase("ingest_s")));
    let (sq, cq) = (m(&single, &|r| r.phase("queries_s")), m(&cluster, &|r| r.phase("queries_s")));
    let on = cluster.last().and_then(|r| r.summary["questions_on"].as_str()).unwrap_or("?").to_owned();
    line(&format!(
        "median: one process {s:.2} s (ingest {si:.2} s, queries {sq:.2} s), cluster {c:.2} s (ingest {ci:.2} s, queries {cq:.2} s on {on}): cluster/one process {:.2}x (goal <= 2x); answers identical in every run",
        c / s.max(1e-9)
    ))?;
    Ok(())
}

/// Every answer file of two run folders is the same.
fn same_answers(a: &Path, b: &Path) -> anyhow::Result<()> {
    for q in ["q1", "q2", "q3", "q3b", "q4", "q5", "q6", "q7", "q8"] {
        let read = |d: &Path| std::fs::read_to_string(d.join(format!("{q}.json")));
        anyhow::ensure!(read(a)? == read(b)?, "{q} differs between the run in one process and the cluster's");
    }
    Ok(())
}
