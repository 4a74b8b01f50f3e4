//! `pinpipe bench api`: a `pinpipe serve` child process on a scratch data directory, driven
//! over loopback by the load generator with three scenarios, each run several times:
//!
//! * `GET /healthz` — bare HTTP, the baseline ceiling of this machine and server;
//! * single-record `POST /topics/bench.pin` (one realistic pin per request), durable;
//! * 500-record `POST /topics/bench.pin`, durable.
//!
//! The client and the server share the machine's cores, as they do in every loopback test.
//! When `wrk` is installed, each scenario is driven by wrk too (one thread), the independent
//! generator: the goal's ratio is reported for both. With `--console`, the single-record
//! scenario runs again with a console page polling, and the console's first paint is timed
//! ([`console`]).

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;

use super::console;
use super::loadgen::{self, Scenario};
use super::wrk;
use super::{Scratch, median, pin_values};
use crate::config::Loaded;
use crate::output::{self, line};

const JSON_V2: &str = "application/vnd.kafka.json.v2+json";
const BATCH: usize = 500;

/// The server child; killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(dir: &std::path::Path) -> anyhow::Result<(Server, SocketAddr)> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["--data-dir"])
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting `pinpipe serve`")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let server = Server(child);
    let mut first = String::new();
    std::io::BufReader::new(stdout).read_line(&mut first)?;
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.trim_end_matches('/').parse().ok());
    match addr {
        Some(a) => Ok((server, a)),
        None => bail!("`pinpipe serve` did not report its address (it printed {first:?})"),
    }
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn records_body(values: &[Bytes]) -> Bytes {
    let mut body = String::from("{\"records\":[");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str("{\"value\":");
        body.push_str(std::str::from_utf8(v).unwrap_or("null"));
        body.push('}');
    }
    body.push_str("]}");
    Bytes::from(body)
}

/// The three scenarios: name, records per request, request.
fn scenarios(seconds: u64, concurrency: usize, values: &[Bytes]) -> [(&'static str, u64, Scenario); 3] {
    let duration = Duration::from_secs(seconds.max(1));
    let post = |body: Bytes, concurrency| Scenario {
        method: hyper::Method::POST,
        path: "/topics/bench.pin".into(),
        content_type: Some(JSON_V2),
        body,
        concurrency,
        duration,
    };
    let health = Scenario {
        method: hyper::Method::GET,
        path: "/healthz".into(),
        content_type: None,
        body: Bytes::new(),
        concurrency,
        duration,
    };
    [
        ("GET /healthz", 1, health),
        ("single-record POST", 1, post(records_body(&values[..1]), concurrency)),
        ("500-record POST", BATCH as u64, post(records_body(values), 8)),
    ]
}

/// Per scenario and run: (req/s, p50 ms, p99 ms) from our generator, req/s from wrk.
type Results = Vec<(Vec<(f64, f64, f64)>, Vec<f64>)>;

/// Runs the benchmark: every run starts a fresh server and drives each scenario with our load
/// generator, then (when installed) with wrk.
pub async fn run(
    loaded: &Loaded,
    seconds: u64,
    runs: u32,
    concurrency: usize,
    with_console: bool,
) -> anyhow::Result<()> {
    let values = pin_values(BATCH);
    let scenarios = scenarios(seconds, concurrency, &values);
    let use_wrk = wrk::available();
    line(&format!(
        "bench api: {} s per scenario, {runs} runs, {concurrency} connections (8 for 500-record requests), pin records of ~{} bytes; load: ours{}",
        seconds.max(1),
        values[0].len(),
        if use_wrk { " and wrk -t1" } else { " (wrk not installed: apt install wrk adds the independent one)" }
    ))?;
    let mut results: Results = vec![(Vec::new(), Vec::new()); scenarios.len()];
    let mut with_page = Console::default();
    for run in 1..=runs {
        let scratch = Scratch::new(loaded, "api")?;
        let (server, addr) = start_server(&scratch.0)?;
        for (i, (name, per_request, s)) in scenarios.iter().enumerate() {
            results[i].0.push(ours(run, name, *per_request, s, addr, server.0.id()).await?);
            if use_wrk {
                let rate = theirs(run, name, s, addr, &scratch.0)?;
                results[i].1.push(rate);
            }
        }
        if with_console {
            with_page.measure(run, &scenarios[1], addr, server.0.id()).await?;
        }
        drop(server);
    }
    report(&scenarios, &results, use_wrk)?;
    if with_console {
        with_page.report()?;
    }
    Ok(())
}

/// The console's figures over the runs.
#[derive(Default)]
struct Console {
    /// Single-record req/s with a console page polling.
    rates: Vec<f64>,
    /// The same scenario without it, back to back with the former (order alternating by run).
    baseline: Vec<f64>,
    /// First paint (page + first overview), milliseconds.
    paints: Vec<f64>,
    /// Records in the log when the first paint was measured.
    records: u64,
}

impl Console {
    async fn measure(
        &mut self,
        run: u32,
        single: &(&'static str, u64, Scenario),
        addr: SocketAddr,
        pid: u32,
    ) -> anyhow::Result<()> {
        let (name, per_request, s) = single;
        for with_page in if run % 2 == 1 { [false, true] } else { [true, false] } {
            if with_page {
                let poller = console::poll(addr);
                self.rates.push(ours(run, &format!("{name} + /ui"), *per_request, s, addr, pid).await?.0);
                drop(poller);
            } else {
                self.baseline.push(ours(run, &format!("{name} (again)"), *per_request, s, addr, pid).await?.0);
            }
        }
        let mut paints = Vec::new();
        for _ in 0..10 {
            let (t, records) = console::first_paint(addr).await?;
            paints.push(t.as_secs_f64() * 1e3);
            self.records = records;
        }
        let paint = median(paints);
        line(&format!(
            "  run {run}: console first paint (page + overview) {paint:.1} ms with {} records in the log",
            output::int(self.records)
        ))?;
        self.paints.push(paint);
        Ok(())
    }

    fn report(&self) -> anyhow::Result<()> {
        let (with, without) = (median(self.rates.clone()), median(self.baseline.clone()));
        // Each run's pair ran back to back: their ratio is the least noisy figure.
        let ratios: Vec<f64> = self.rates.iter().zip(&self.baseline).map(|(w, b)| w / b.max(1e-9) * 100.0).collect();
        let (lo, hi) = ratios.iter().fold((f64::MAX, 0.0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        line(&format!(
            "console: single-record POSTs {} req/s with a /ui page polling vs {} without; per run, back to back: median {:.0}% (runs {lo:.0}%..{hi:.0}%); first paint {:.1} ms with {} records (goal < 1 s)",
            output::int(with as u64),
            output::int(without as u64),
            median(ratios.clone()),
            median(self.paints.clone()),
            output::int(self.records)
        ))
    }
}

/// One scenario with our load generator; prints the run's line.
async fn ours(
    run: u32,
    name: &str,
    per_request: u64,
    s: &Scenario,
    addr: SocketAddr,
    pid: u32,
) -> anyhow::Result<(f64, f64, f64)> {
    let cpu_before = cpu_seconds(pid);
    let o = loadgen::run(addr, s).await?;
    let server_cpu = cpu_seconds(pid) - cpu_before;
    if o.failed > 0 {
        line(&format!("  warning: {} failed requests in {name}", o.failed))?;
    }
    let (p50, p99) = (o.quantile(0.5).as_secs_f64() * 1e3, o.quantile(0.99).as_secs_f64() * 1e3);
    // Server CPU per request over the whole scenario (warm-up included in both).
    let cpu_us = server_cpu * 1e6 / (o.ok as f64 * 1.1).max(1.0);
    line(&format!(
        "  run {run}: {name:<20} {:>9} req/s {:>10} records/s  p50 {p50:.2} ms  p99 {p99:.2} ms  server CPU ~{cpu_us:.0} us/req",
        output::int(o.rate() as u64),
        output::int((o.rate() * per_request as f64) as u64)
    ))?;
    Ok((o.rate(), p50, p99))
}

/// One scenario with wrk; prints the run's line.
fn theirs(run: u32, name: &str, s: &Scenario, addr: SocketAddr, scratch: &std::path::Path) -> anyhow::Result<f64> {
    let method = if s.method == hyper::Method::GET { "GET" } else { "POST" };
    let body = s.content_type.map(|ct| (ct, &s.body[..]));
    let scenario =
        wrk::Scenario { method, path: &s.path, body, connections: s.concurrency, threads: 1, duration: s.duration };
    let m = wrk::run(addr, &scenario, scratch)?;
    if m.errors > 0 {
        line(&format!("  warning: wrk saw {} errors in {name}", m.errors))?;
    }
    line(&format!("  run {run}: {name:<20} {:>9} req/s (wrk)", output::int(m.rate as u64)))?;
    Ok(m.rate)
}

/// Medians, and the goals' ratios, for each load generator.
fn report(scenarios: &[(&'static str, u64, Scenario); 3], results: &Results, use_wrk: bool) -> anyhow::Result<()> {
    line("median:")?;
    let med = |i: usize, f: fn(&(f64, f64, f64)) -> f64| median(results[i].0.iter().map(f).collect());
    for (i, (name, per_request, _)) in scenarios.iter().enumerate() {
        let wrk = if use_wrk {
            format!("  (wrk: {} req/s)", output::int(median(results[i].1.clone()) as u64))
        } else {
            String::new()
        };
        line(&format!(
            "  {name:<20} {:>9} req/s {:>10} records/s  p50 {:.2} ms  p99 {:.2} ms{wrk}",
            output::int(med(i, |r| r.0) as u64),
            output::int((med(i, |r| r.0) * *per_request as f64) as u64),
            med(i, |r| r.1),
            med(i, |r| r.2)
        ))?;
    }
    let (health, single, batched) = (med(0, |r| r.0), med(1, |r| r.0), med(2, |r| r.0) * BATCH as f64);
    line(&format!(
        "single-record durable POSTs at {:.0}% of /healthz req/s (goal >= 50%); batched ingestion {} records/s durable (goal >= 300,000)",
        single / health.max(1e-9) * 100.0,
        output::int(batched as u64)
    ))?;
    if use_wrk {
        let (health, single) = (median(results[0].1.clone()), median(results[1].1.clone()));
        line(&format!(
            "with wrk: single-record durable POSTs at {:.0}% of /healthz req/s; batched {} records/s",
            single / health.max(1e-9) * 100.0,
            output::int((median(results[2].1.clone()) * BATCH as f64) as u64)
        ))?;
    }
    Ok(())
}
