//! Tests of the embedded backend: the shared conformance suite, crash recovery, segments,
//! retention, read-only views and the lock.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::config::LogConfig;
use crate::conformance::{Harness, positioned_suite, suite};

struct Embedded {
    dir: tempfile::TempDir,
    config: LogConfig,
}

impl Embedded {
    fn new(config: LogConfig) -> Self {
        Embedded { dir: tempfile::tempdir().unwrap(), config }
    }
    fn resolved(&self) -> ResolvedLog {
        self.config.validate(self.dir.path()).unwrap()
    }
    fn open_log(&self) -> EmbeddedLog {
        EmbeddedLog::open(&self.resolved()).unwrap()
    }
    fn segment_files(&self, topic: &str, p: u32) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.dir.path().join("log/topics").join(topic).join(p.to_string()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

#[async_trait::async_trait]
impl Harness for Embedded {
    async fn open(&self) -> Arc<dyn OffsetLog> {
        Arc::new(self.open_log())
    }
}

fn value(i: u64) -> Record {
    Record::value(Bytes::from(format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(100))))
}

const ALL: ReadLimits = ReadLimits { max_records: usize::MAX, max_bytes: usize::MAX };

#[tokio::test]
async fn passes_the_conformance_suite() {
    suite(&Embedded::new(LogConfig::default()), "", true).await;
}

#[tokio::test]
async fn passes_the_positioned_conformance_suite() {
    let h = Embedded::new(LogConfig::default());
    let log: Arc<dyn Log> = h.open().await;
    positioned_suite(&log, "cursor", true).await;
}

#[tokio::test]
async fn passes_the_conformance_suite_with_tiny_segments() {
    suite(&Embedded::new(LogConfig { segment_bytes: 4096, ..LogConfig::default() }), "", true).await;
}

#[tokio::test]
async fn a_torn_tail_is_cut_off_and_acknowledged_records_stay() {
    let e = Embedded::new(LogConfig::default());
    {
        let log = e.open_log();
        log.create_topic("t", TopicKind::Topic, 1).await.unwrap();
        for i in 0..10 {
            log.append("t", 0, vec![value(i), value(i + 100)]).await.unwrap();
        }
    }
    let seg = e.dir.path().join("log/topics/t/0").join(segment_name(0));
    let good_len = fs::metadata(&seg).unwrap().len();
    // A batch the writer had only half written when the machine died, then garbage.
    let mut torn = Vec::new();
    super::batch::encode(&mut torn, 20, 0, &[value(999)]);
    torn.truncate(torn.len() / 2);
    fs::OpenOptions::new().append(true).open(&seg).unwrap().write_all(&torn).unwrap();
    let log = e.open_log();
    assert_eq!(fs::metadata(&seg).unwrap().len(), good_len, "torn tail cut off");
    let all = log.read("t", 0, 0, ALL).await.unwrap();
    assert_eq!(all.len(), 20);
    assert_eq!(all.iter().map(|r| r.offset).collect::<Vec<_>>(), (0..20).collect::<Vec<_>>());
    assert_eq!(log.append("t", 0, vec![value(7)]).await.unwrap(), 20);
    drop(log);

    // A zero-filled tail (a file the system extended without data) is a torn tail too.
    fs::OpenOptions::new().append(true).open(&seg).unwrap().write_all(&[0; 64]).unwrap();
    let log = e.open_log();
    assert_eq!(log.offsets("t").await.unwrap()[0].end, 21);
    assert!(log.problems().is_empty());
}

#[tokio::test]
async fn zeros_written_ahead_of_the_data_are_cut_at_close_and_after_a_crash() {
    let e = Embedded::new(LogConfig::default());
    let seg = e.dir.path().join("log/topics/t/0").join(segment_name(0));
    let log = e.open_log();
    log.create_topic("t", TopicKind::Topic, 1).await.unwrap();
    for i in 0..10 {
        log.append("t", 0, vec![value(i), value(i + 100)]).await.unwrap();
    }
    // While the log runs, its active segment holds zeros after the data (fdatasync then writes
    // data, not the file's size); a read-only view reads every record and sees no damage.
    let crash_image = fs::read(&seg).unwrap();
    let view = EmbeddedLog::open_read_only(&e.dir.path().join("log")).unwrap();
    assert_eq!(view.read("t", 0, 0, ALL).await.unwrap().len(), 20);
    assert!(view.problems().is_empty());
    drop(view);
    drop(log);
    // Closed cleanly: the file is its data, nothing after.
    let data_len = fs::metadata(&seg).unwrap().len() as usize;
    assert!(crash_image.len() > data_len, "{} <= {data_len}", crash_image.len());
    assert_eq!(crash_image[..data_len], fs::read(&seg).unwrap()[..]);
    assert!(crash_image[data_len..].iter().all(|b| *b == 0));
    // A crash leaves the zeros: recovery cuts them as a torn tail and loses nothing.
    fs::write(&seg, &crash_image).unwrap();
    let log = e.open_log();
    assert_eq!(fs::metadata(&seg).unwrap().len() as usize, data_len, "recovery cut the zeros");
    let all = log.read("t", 0, 0, ALL).await.unwrap();
    assert_eq!(all.iter().map(|r| r.offset).collect::<Vec<_>>(), (0..20).collect::<Vec<_>>());
    assert_eq!(all[19].value, value(109).value);
    assert!(log.problems().is_empty());
    assert_eq!(log.append("t", 0, vec![value(7)]).await.unwrap(), 20);
}

#[tokio::test]
async fn segments_roll_and_reads_cross_them_from_any_offset() {
    let e = Embedded::new(LogConfig { segment_bytes: 8192, ..LogConfig::default() });
    let log = e.open_log();
    log.create_topic("t", TopicKind::Topic, 1).await.unwrap();
    for i in 0..300 {
        log.append("t", 0, vec![value(i)]).await.unwrap();
    }
    let files = e.segment_files("t", 0);
    let logs = files.iter().filter(|f| f.ends_with(".log")).count();
    let idxs = files.iter().filter(|f| f.ends_with(".idx")).count();
    assert!(logs >= 4, "{files:?}");
    assert_eq!(idxs, logs - 1, "every closed segment has an index: {files:?}");
    for from in [0u64, 1, 57, 58, 150, 299] {
        let got = log.read("t", 0, from, ReadLimits { max_records: 3, max_bytes: usize::MAX }).await.unwrap();
        let want: Vec<u64> = (from..(from + 3).min(300)).collect();
        assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), want, "from {from}");
        assert_eq!(got[0].value, value(from).value);
    }
    drop(log);
    // Reopening uses the indexes and finds the same data.
    let log = e.open_log();
    assert_eq!(log.read("t", 0, 0, ALL).await.unwrap().len(), 300);
    assert_eq!(log.append("t", 0, vec![value(300)]).await.unwrap(), 300);
}

/// A log of 100 records in segments of 4 KiB, closed; returns the partition directory and its
/// segment bases.
async fn hundred_records(e: &Embedded) -> (std::path::PathBuf, Vec<u64>) {
    {
        let log = e.open_log();
        log.create_topic("t", TopicKind::Topic, 1).await.unwrap();
        for i in 0..100 {
            log.append("t", 0, vec![value(i)]).await.unwrap();
        }
    }
    let dir = e.dir.path().join("log/topics/t/0");
    let bases = super::load::segment_bases(&dir).unwrap();
    assert!(bases.len() >= 4, "{bases:?}");
    (dir, bases)
}

/// Every way a partition's files can be damaged beyond a torn tail: the partition is refused
/// loudly (reads, appends, read-only views, health), never skipped; `repair` cuts exactly the
/// damage, reports the offsets lost, and no offset is ever handed out twice.
/// `EmbeddedLog::repair` once the log's lock is free. Another test of this binary that starts a
/// process (the Kafka tests' broker) holds a copy of every open descriptor, the lock's too, between
/// its fork and its exec: a lock just released can look held for that instant.
fn repair_once_unlocked(dir: &std::path::Path, topic: Option<&str>) -> Vec<super::load::Repaired> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match EmbeddedLog::repair(dir, topic, None) {
            Err(Error::Locked(_)) if std::time::Instant::now() < deadline => std::thread::yield_now(),
            other => return other.unwrap(),
        }
    }
}

#[tokio::test]
async fn damage_stops_the_partition_until_repaired_and_offsets_are_never_reused() {
    type Damage = fn(&std::path::Path, &[u64]);
    let flip_active: Damage = |dir, bases| {
        let seg = dir.join(segment_name(*bases.last().unwrap()));
        let mut b = fs::read(&seg).unwrap();
        b[30] ^= 0xff;
        fs::write(&seg, b).unwrap();
    };
    let flip_closed: Damage = |dir, bases| {
        let seg = dir.join(segment_name(bases[1]));
        let mut b = fs::read(&seg).unwrap();
        let at = b.len() / 2;
        b[at] ^= 0xff;
        fs::write(&seg, b).unwrap();
    };
    let truncate_closed: Damage = |dir, bases| {
        let seg = dir.join(segment_name(bases[1]));
        let len = fs::metadata(&seg).unwrap().len();
        fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 40).unwrap();
    };
    let delete_middle: Damage = |dir, bases| {
        fs::remove_file(dir.join(segment_name(bases[1]))).unwrap();
        let _ = fs::remove_file(dir.join(super::state::index_name(bases[1])));
    };
    let bad_length: Damage = |dir, bases| {
        let seg = dir.join(segment_name(*bases.last().unwrap()));
        let mut b = fs::read(&seg).unwrap();
        b[..4].copy_from_slice(&7u32.to_le_bytes());
        fs::write(&seg, b).unwrap();
    };
    let garbage_appended: Damage = |dir, bases| {
        let seg = dir.join(segment_name(*bases.last().unwrap()));
        fs::OpenOptions::new().append(true).open(&seg).unwrap().write_all(&[0x55; 64]).unwrap();
    };
    for (name, damage, loses_records) in [
        ("flip in the active segment", flip_active, true),
        ("flip in a closed segment", flip_closed, true),
        ("closed segment truncated", truncate_closed, true),
        ("middle segment deleted", delete_middle, true),
        ("bad length field", bad_length, true),
        ("garbage appended", garbage_appended, false),
    ] {
        let e = Embedded::new(LogConfig { segment_bytes: 4096, ..LogConfig::default() });
        let (dir, bases) = hundred_records(&e).await;
        damage(&dir, &bases);

        let log = e.open_log();
        let err = log.read("t", 0, 0, ALL).await.unwrap_err();
        assert!(matches!(err, Error::Damaged { .. }), "{name}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("pinpipe log repair t 0") && msg.contains(".log at byte"), "{name}: {msg}");
        let err = log.append("t", 0, vec![value(1000)]).await.unwrap_err();
        assert!(matches!(err, Error::Damaged { .. }), "{name}: {err}");
        assert_eq!(log.problems().len(), 1, "{name}");
        let view = EmbeddedLog::open_read_only(&e.dir.path().join("log")).unwrap();
        match view.read("t", 0, 0, ALL).await {
            // Bytes beyond the durable position are not a reader's business.
            Ok(r) if !loses_records => assert_eq!(r.len(), 100, "{name}"),
            other => assert!(matches!(other, Err(Error::Damaged { .. })), "{name}: {other:?}"),
        }
        // Repair needs the writer stopped.
        assert!(matches!(EmbeddedLog::repair(&e.dir.path().join("log"), None, None), Err(Error::Locked(_))), "{name}");
        drop(log);

        let report = repair_once_unlocked(&e.dir.path().join("log"), Some("t"));
        assert_eq!(report.len(), 1, "{name}: {report:?}");
        let (from, to) = report[0].lost;
        assert_eq!(to > from, loses_records, "{name}: {report:?}");
        assert!(to <= 100, "{name}: {report:?}");
        // Nothing left to repair.
        assert!(repair_once_unlocked(&e.dir.path().join("log"), None).is_empty(), "{name}");

        let log = e.open_log();
        assert!(log.problems().is_empty(), "{name}");
        let kept: Vec<u64> = log.read("t", 0, 0, ALL).await.unwrap().iter().map(|r| r.offset).collect();
        let expected: Vec<u64> = (0..100).filter(|o| !(from..to).contains(o)).collect();
        assert_eq!(kept, expected, "{name}: the records outside the cut are all there, in order");
        for r in log.read("t", 0, 0, ALL).await.unwrap() {
            assert_eq!(r.value, value(r.offset).value, "{name}: offset {}", r.offset);
        }
        // Offsets go on after every offset ever handed out.
        assert_eq!(log.append("t", 0, vec![value(100)]).await.unwrap(), 100, "{name}");
        assert_eq!(log.offsets("t").await.unwrap()[0].end, 101, "{name}");
        drop(log);
        // And the repaired partition opens cleanly again.
        let log = e.open_log();
        assert_eq!(log.read("t", 0, 100, ALL).await.unwrap()[0].value, value(100).value, "{name}");
    }
}

/// A reader in another process reads only what the writer made durable.
#[tokio::test]
async fn read_only_views_stop_at_the_durable_position() {
    let e = Embedded::new(LogConfig::default());
    let log = e.open_log();
    log.create_topic("t", TopicKind::Topic, 1).await.unwrap();
    for i in 0..5 {
        log.append("t", 0, vec![value(i)]).await.unwrap();
    }
    // Bytes in the file beyond the synced size (a write in progress, not yet acknowledged).
    let seg = e.dir.path().join("log/topics/t/0").join(segment_name(0));
    let mut extra = Vec::new();
    super::batch::encode(&mut extra, 5, 0, &[value(5)]);
    fs::OpenOptions::new().append(true).open(&seg).unwrap().write_all(&extra).unwrap();
    let view = EmbeddedLog::open_read_only(&e.dir.path().join("log")).unwrap();
    assert_eq!(view.offsets("t").await.unwrap()[0].end, 5);
    assert_eq!(view.read("t", 0, 0, ALL).await.unwrap().len(), 5);
}

#[tokio::test]
async fn retention_removes_old_segments_and_moves_the_start() {
    let e = Embedded::new(LogConfig { segment_bytes: 4096, retention_bytes: 10_000, ..LogConfig::default() });
    let log = e.open_log();
    log.create_topic("t", TopicKind::Topic, 1).await.unwrap();
    for i in 0..200 {
        log.append("t", 0, vec![value(i)]).await.unwrap();
    }
    log.enforce_retention().await.unwrap();
    let o = log.offsets("t").await.unwrap()[0];
    assert!(o.start > 0, "start moved: {o:?}");
    assert_eq!(o.end, 200);
    assert!(matches!(log.read("t", 0, 0, ALL).await, Err(Error::OffsetOutOfRange { .. })));
    let rest = log.read("t", 0, o.start, ALL).await.unwrap();
    assert_eq!(rest.len() as u64, 200 - o.start);
    let bytes: u64 = e
        .segment_files("t", 0)
        .iter()
        .filter(|f| f.ends_with(".log"))
        .map(|f| fs::metadata(e.dir.path().join("log/topics/t/0").join(f)).unwrap().len())
        .sum();
    assert!(bytes <= 10_000 + 4096, "{bytes} bytes kept");
}

#[tokio::test]
async fn a_second_writer_is_refused_and_read_only_views_follow_the_writer() {
    let e = Embedded::new(LogConfig { segment_bytes: 4096, ..LogConfig::default() });
    let log = Arc::new(e.open_log());
    assert!(matches!(EmbeddedLog::open(&e.resolved()), Err(Error::Locked(_))));
    log.create_topic("t", TopicKind::Topic, 1).await.unwrap();
    log.append("t", 0, vec![value(0)]).await.unwrap();

    let ro = EmbeddedLog::open_read_only(&e.dir.path().join("log")).unwrap();
    assert!(ro.describe().contains("read-only"));
    assert_eq!(ro.read("t", 0, 0, ALL).await.unwrap().len(), 1);
    assert!(matches!(ro.append("t", 0, vec![value(1)]).await, Err(Error::ReadOnly(_))));
    assert!(matches!(ro.create_topic("u", TopicKind::Topic, 1).await, Err(Error::ReadOnly(_))));

    // New records (across several new segments) and new topics become visible.
    let writer = Arc::clone(&log);
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for i in 1..120 {
            writer.append("t", 0, vec![value(i)]).await.unwrap();
        }
        writer.create_topic("later", TopicKind::Stream, 2).await.unwrap();
    });
    assert!(ro.wait_for("t", 0, 1, Duration::from_secs(10)).await.unwrap());
    task.await.unwrap();
    let all = ro.read("t", 0, 0, ALL).await.unwrap();
    assert_eq!(all.len(), 120);
    assert_eq!(all.last().unwrap().value, value(119).value);
    assert_eq!(ro.topic("later").await.unwrap().partitions, 2);
    assert!(!ro.wait_for("t", 0, 120, Duration::from_millis(100)).await.unwrap());
}

/// Descriptors this process holds on files under `dir` (other tests run in parallel in
/// the same process, so a process-wide count would be theirs too).
fn open_fds(dir: &std::path::Path) -> usize {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    fs::read_dir("/proc/self/fd")
        .map_or(0, |d| d.filter_map(|f| fs::read_link(f.ok()?.path()).ok()).filter(|t| t.starts_with(&dir)).count())
}

/// Regression: 9 streams of 1024 shards opened 18,446 files, and the server then could not
/// start; one unreadable topic kept the whole log from opening.
#[tokio::test]
async fn limits_hold_descriptors_are_opened_lazily_and_a_bad_topic_does_not_brick_the_start() {
    let e = Embedded::new(LogConfig { max_partitions: 64, max_topics: 12, ..LogConfig::default() });
    {
        let log = e.open_log();
        let err = log.create_topic("big", TopicKind::Stream, 1024).await.unwrap_err();
        assert!(matches!(err, Error::TooManyPartitions { requested: 1024, max: 64 }), "{err}");
        for i in 0..10 {
            log.create_topic(&format!("s{i}"), TopicKind::Stream, 64).await.unwrap();
        }
        log.create_topic("t10", TopicKind::Topic, 1).await.unwrap();
        log.create_topic("t11", TopicKind::Topic, 1).await.unwrap();
        let err = log.create_topic("t12", TopicKind::Topic, 1).await.unwrap_err();
        assert!(matches!(err, Error::TooManyTopics { max: 12 }), "{err}");
        log.append("s0", 5, vec![value(1)]).await.unwrap();
    }
    // Nothing of the refused creations is left behind.
    let names: Vec<String> = fs::read_dir(e.dir.path().join("log/topics"))
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 12, "{names:?}");
    assert_eq!(fs::read_dir(e.dir.path().join("log/trash")).unwrap().count(), 0);

    // 641 partitions: opening the log holds (almost) no descriptor for them.
    let before = open_fds(e.dir.path());
    let log = e.open_log();
    let opened = open_fds(e.dir.path()).saturating_sub(before);
    assert!(opened < 16, "{opened} descriptors opened for 641 partitions");
    assert_eq!(log.read("s0", 5, 0, ALL).await.unwrap().len(), 1);
    // Writing one partition opens its files (segment and durable position), no more.
    log.append("s3", 7, vec![value(2)]).await.unwrap();
    let now = open_fds(e.dir.path()).saturating_sub(before);
    assert!(now > opened && now <= opened + 2, "{now} descriptors after one append, {opened} after opening");
    drop(log);

    // A topic whose metadata is unreadable: the others still open and work.
    fs::write(e.dir.path().join("log/topics/s9/topic.json"), b"{ not json").unwrap();
    let log = e.open_log();
    assert_eq!(log.read("s3", 7, 0, ALL).await.unwrap().len(), 1);
    assert!(matches!(log.topic("s9").await, Err(Error::TopicNotFound(_))));
    let problems = log.problems();
    assert!(problems.len() == 1 && problems[0].contains("s9"), "{problems:?}");
}

/// A small tmpfs mounted for one test (skipped where mounting is not allowed).
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(bytes: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("note: cannot mount a tmpfs here; skipping the disk-full test");
            return None;
        }
        Some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.0.path()).status();
    }
}

/// A full disk refuses writes (nothing acknowledged is lost, nothing half-written stays); once
/// space returns the partition takes writes again without a restart.
#[tokio::test]
async fn a_full_disk_refuses_writes_and_they_resume_when_space_returns() {
    let Some(disk) = SmallDisk::mount(512 << 10) else { return };
    let config = LogConfig { dir: Some(disk.0.path().join("log")), ..LogConfig::default() };
    let log = EmbeddedLog::open(&config.validate(disk.0.path()).unwrap()).unwrap();
    log.create_topic("t", TopicKind::Topic, 1).await.unwrap();
    // Something to delete later, to make room.
    let filler = disk.0.path().join("filler");
    fs::write(&filler, vec![7u8; 128 << 10]).unwrap();
    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 0..10_000u64 {
        match log.append("t", 0, vec![value(i)]).await {
            Ok(offset) => acked.push((offset, i)),
            Err(e) => {
                assert!(matches!(e, Error::Failed { .. }), "{e}");
                assert!(e.to_string().contains("could not write to disk"), "{e}");
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused, 3, "the disk never filled");
    let problems = log.problems();
    assert!(problems.len() == 1 && problems[0].contains("writes fail"), "{problems:?}");
    fs::remove_file(&filler).unwrap();
    let i = acked.len() as u64;
    let offset = log.append("t", 0, vec![value(100_000 + i)]).await.unwrap();
    assert!(log.problems().is_empty());
    // Every acknowledged record is there once, in order, and the offsets are dense.
    let all = log.read("t", 0, 0, ALL).await.unwrap();
    assert_eq!(all.len(), acked.len() + 1);
    for ((o, v), r) in acked.iter().zip(&all) {
        assert_eq!((r.offset, &r.value), (*o, &value(*v).value));
    }
    assert_eq!(offset, acked.len() as u64);
    drop(log);
    let log = EmbeddedLog::open(&config.validate(disk.0.path()).unwrap()).unwrap();
    assert_eq!(log.offsets("t").await.unwrap()[0].end, acked.len() as u64 + 1);
}

/// Regression: retention (168 h by default) removed segments the sink had not copied yet.
#[tokio::test]
async fn retention_keeps_what_a_consumer_has_not_read_unless_told_otherwise() {
    for respect in [true, false] {
        let e = Embedded::new(LogConfig {
            segment_bytes: 4096,
            retention_bytes: 8_000,
            retention_respects_consumers: respect,
            ..LogConfig::default()
        });
        let log = e.open_log();
        log.create_topic("t", TopicKind::Topic, 1).await.unwrap();
        for i in 0..100 {
            log.append("t", 0, vec![value(i)]).await.unwrap();
        }
        // The sink has copied the first 10 records, the streaming job everything.
        log.hold("t", 0, "sink", 10).await.unwrap();
        log.hold("t", 0, "stream", 100).await.unwrap();
        log.enforce_retention().await.unwrap();
        let start = log.offsets("t").await.unwrap()[0].start;
        if respect {
            assert!(start <= 10, "retention removed records the sink had not read (start {start})");
            let held = log.retention_held();
            assert!(held.len() == 1 && held[0].2 > 4_000, "{held:?}");
            // Once the sink has read on, retention catches up.
            log.hold("t", 0, "sink", 100).await.unwrap();
            log.enforce_retention().await.unwrap();
            assert!(log.offsets("t").await.unwrap()[0].start > 50);
            assert!(log.retention_held().is_empty());
        } else {
            assert!(start > 50, "retention did not run (start {start})");
        }
        assert!(matches!(log.hold("t", 0, "../x", 1).await, Err(Error::Corrupt { .. })));
    }
}
