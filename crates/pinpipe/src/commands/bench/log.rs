//! `pinpipe bench log`: durable appends to the embedded log, and to SQLite as the baseline
//! (the measurement behind building the log on a segment format, see docs/log.md).
//!
//! Workloads, each with realistic pin records (~450 bytes of JSON):
//! * batched: one producer appending batches of 500 records, each append durable before the next;
//! * concurrent single records: 64 producers each appending one record at a time.
//!
//! SQLite runs in WAL mode with `synchronous=FULL` (durable commits), one transaction per batch;
//! single records are one transaction each, committed by whichever producer holds the connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pinpipe_log::embedded::EmbeddedLog;
use pinpipe_log::{Log, LogConfig, OffsetLog, Record, TopicKind};

use super::{Scratch, median, pin_values};
use crate::config::Loaded;
use crate::output::{self, line};

const BATCH: usize = 500;
const PRODUCERS: usize = 64;
const SINGLE_FOR: Duration = Duration::from_secs(3);

/// Runs the benchmark.
pub async fn run(loaded: &Loaded, records: usize, runs: u32) -> anyhow::Result<()> {
    let values = Arc::new(pin_values(BATCH * 4));
    let avg = values.iter().map(Bytes::len).sum::<usize>() / values.len();
    line(&format!(
        "bench log: {} records per batched run (batches of {BATCH}, ~{avg} bytes each), {PRODUCERS} single-record producers for {} s, {runs} runs",
        output::int(records as u64),
        SINGLE_FOR.as_secs()
    ))?;
    let mut rows: Vec<[f64; 4]> = Vec::new();
    for run in 1..=runs {
        let scratch = Scratch::new(loaded, "log")?;
        let config = LogConfig::default().validate(&scratch.0).map_err(|(k, m)| anyhow::anyhow!("{k}: {m}"))?;
        let log = Arc::new(EmbeddedLog::open(&config)?);
        log.create_topic("bench", TopicKind::Topic, 1).await?;
        let seg_batched = batched_log(&log, &values, records).await?;
        let seg_single = single_log(&log, &values).await?;
        drop(log);
        let db = scratch.0.join("baseline.db");
        let (sql_batched, sql_single) = {
            let values = Arc::clone(&values);
            tokio::task::spawn_blocking(move || sqlite_baseline(&db, &values, records)).await??
        };
        line(&format!(
            "  run {run}: embedded log {} rec/s batched, {} rec/s single; SQLite {} rec/s batched, {} rec/s single",
            output::int(seg_batched as u64),
            output::int(seg_single as u64),
            output::int(sql_batched as u64),
            output::int(sql_single as u64)
        ))?;
        rows.push([seg_batched, seg_single, sql_batched, sql_single]);
    }
    let m = |i: usize| median(rows.iter().map(|r| r[i]).collect());
    let (sb, ss, qb, qs) = (m(0), m(1), m(2), m(3));
    line(&format!(
        "median: embedded log {} records/s batched ({:.0} MB/s), {} records/s single ({PRODUCERS} producers); \
         SQLite {} batched, {} single; ratio {:.1}x batched, {:.1}x single",
        output::int(sb as u64),
        sb * avg as f64 / 1e6,
        output::int(ss as u64),
        output::int(qb as u64),
        output::int(qs as u64),
        sb / qb.max(1e-9),
        ss / qs.max(1e-9)
    ))
}

async fn batched_log(log: &Arc<EmbeddedLog>, values: &[Bytes], records: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut sent = 0;
    while sent < records {
        let n = BATCH.min(records - sent);
        let batch: Vec<Record> = (0..n).map(|i| Record::value(values[(sent + i) % values.len()].clone())).collect();
        log.append("bench", 0, batch).await?;
        sent += n;
    }
    Ok(records as f64 / start.elapsed().as_secs_f64())
}

async fn single_log(log: &Arc<EmbeddedLog>, values: &Arc<Vec<Bytes>>) -> anyhow::Result<f64> {
    let start = Instant::now();
    let deadline = start + SINGLE_FOR;
    let mut tasks = Vec::new();
    for t in 0..PRODUCERS {
        let (log, values) = (Arc::clone(log), Arc::clone(values));
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                log.append("bench", 0, vec![Record::value(values[(t + n as usize) % values.len()].clone())]).await?;
                n += 1;
            }
            Ok::<_, pinpipe_log::Error>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

fn sqlite_baseline(path: &std::path::Path, values: &[Bytes], records: usize) -> anyhow::Result<(f64, f64)> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE log (partition INTEGER, offset INTEGER, timestamp INTEGER, key BLOB, value BLOB,
                           PRIMARY KEY (partition, offset)) WITHOUT ROWID;",
    )?;
    let mut conn = conn;
    let start = Instant::now();
    let mut offset = 0i64;
    while (offset as usize) < records {
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached("INSERT INTO log VALUES (0, ?1, ?2, NULL, ?3)")?;
            for _ in 0..BATCH.min(records - offset as usize) {
                st.execute(rusqlite::params![offset, 0i64, &values[offset as usize % values.len()][..]])?;
                offset += 1;
            }
        }
        tx.commit()?;
    }
    let batched = records as f64 / start.elapsed().as_secs_f64();

    // Concurrent producers, one durable transaction per record.
    let conn = Arc::new(Mutex::new(conn));
    let next = Arc::new(std::sync::atomic::AtomicI64::new(offset));
    let start = Instant::now();
    let deadline = start + SINGLE_FOR;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (conn, next) = (Arc::clone(&conn), Arc::clone(&next));
            let value = values[t % values.len()].clone();
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let mut n = 0;
                while Instant::now() < deadline {
                    let mut c = conn.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                    let o = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let tx = c.transaction()?;
                    tx.execute("INSERT INTO log VALUES (0, ?1, 0, NULL, ?2)", rusqlite::params![o, &value[..]])?;
                    tx.commit()?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for t in threads {
        total += t.join().map_err(|_| anyhow::anyhow!("a baseline thread panicked"))??;
    }
    Ok((batched, total as f64 / start.elapsed().as_secs_f64()))
}
