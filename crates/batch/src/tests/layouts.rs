//! The batch job reads whatever layout and format the sink wrote: the fixture posted to a log,
//! copied by the sink with a different partitioner and format per topic, answers exactly as the
//! hand-worked golden answers say; so do Parquet objects rewritten as another writer (pyarrow)
//! would write them, with other Arrow types for the same values.

use std::sync::Arc;

use bytes::Bytes;
use pinpipe_log::embedded::EmbeddedLog;
use pinpipe_log::{LogConfig, OffsetLog, Record, TopicKind};
use pinpipe_sink::config::{FormatKind, PartitionerKind, TimestampExtractor};
use pinpipe_sink::{Mode, Sink, SinkConfig};
use tokio_util::sync::CancellationToken;

use super::{file_json, golden, job, posts, records};

/// The fixture in a log: posts 1-5 in partition 0, the rest, post 1 again and (for pins) a
/// malformed record in partition 1, as `write_objects` lays them out.
async fn fixture_log(dir: &std::path::Path) -> Arc<dyn OffsetLog> {
    let log: Arc<dyn OffsetLog> = Arc::new(EmbeddedLog::open(&LogConfig::default().validate(dir).unwrap()).unwrap());
    let posts = posts();
    for (k, kind) in ["pin", "geo", "user"].iter().enumerate() {
        let topic = format!("pinterest.{kind}");
        log.create_topic(&topic, TopicKind::Topic, 2).await.unwrap();
        let value = |v: &serde_json::Value| Record::value(Bytes::from(v.to_string()));
        let first: Vec<Record> = posts[..5].iter().map(|p| value(&records(p)[k])).collect();
        log.append(&topic, 0, first).await.unwrap();
        let mut rest: Vec<Record> = posts[5..].iter().map(|p| value(&records(p)[k])).collect();
        rest.push(value(&records(&posts[0])[k]));
        if *kind == "pin" {
            rest.push(Record::value(Bytes::from_static(br#"{"index": 12, "title": "cut off"#)));
        }
        log.append(&topic, 1, rest).await.unwrap();
    }
    log
}

fn config(topic: &str, partitioner: PartitionerKind, format: FormatKind, compression: Option<&str>) -> SinkConfig {
    SinkConfig {
        topics_regex: Some(regex_escape(topic)),
        flush_size: 3,
        partitioner,
        format,
        compression: compression.map(str::to_owned),
        ..SinkConfig::default()
    }
}

/// The run's answers are the golden ones.
fn assert_golden(run_dir: &std::path::Path, name: &str) {
    for (id, expected) in golden() {
        assert_eq!(file_json(run_dir, &format!("{id}.json")), expected, "{name}: {id}");
    }
}

fn regex_escape(s: &str) -> String {
    s.replace('.', "\\.")
}

async fn sink(log: &Arc<dyn OffsetLog>, store: &pinpipe_store::Store, config: SinkConfig) {
    let sink = Sink::new(Arc::clone(log), store.clone(), config.validate("pinterest").unwrap());
    sink.run(Mode::Once, CancellationToken::new()).await.unwrap();
}

#[tokio::test]
async fn the_answers_are_the_same_whatever_partitioner_and_format_the_sink_used() {
    let hourly = |c: SinkConfig, extractor, field: &str| SinkConfig {
        partitioner: PartitionerKind::Time,
        path_format: "'dt'=YYYY-MM-dd/'hour'=HH".into(),
        partition_duration: "1h".into(),
        timestamp_extractor: extractor,
        timestamp_field: field.into(),
        ..c
    };
    let by = |c: SinkConfig, field: &str| SinkConfig { partition_fields: vec![field.into()], ..c };
    let stores: Vec<(&str, Vec<SinkConfig>)> = vec![
        (
            "field+parquet pins, hourly gzip geos by their timestamp, default parquet users",
            vec![
                by(config("pinterest.pin", PartitionerKind::Field, FormatKind::Parquet, None), "category"),
                hourly(
                    config("pinterest.geo", PartitionerKind::Time, FormatKind::Json, Some("gzip")),
                    TimestampExtractor::RecordField,
                    "timestamp",
                ),
                config("pinterest.user", PartitionerKind::Default, FormatKind::Parquet, Some("zstd")),
            ],
        ),
        (
            "hourly gzip pins by the log's time, field+parquet geos, field users",
            vec![
                hourly(
                    config("pinterest.pin", PartitionerKind::Time, FormatKind::Json, Some("gzip")),
                    TimestampExtractor::Record,
                    "",
                ),
                by(config("pinterest.geo", PartitionerKind::Field, FormatKind::Parquet, None), "country"),
                by(config("pinterest.user", PartitionerKind::Field, FormatKind::Json, None), "age"),
            ],
        ),
    ];
    for (name, configs) in stores {
        let dir = tempfile::tempdir().unwrap();
        let log = fixture_log(&dir.path().join("log")).await;
        let j = job(dir.path(), "2026-11-24", false);
        for c in configs {
            sink(&log, &j.input, c).await;
        }
        let out = crate::run(&j).await.unwrap();
        assert_golden(&j.run_dir, name);
        assert_eq!(out.summary.table_rows.total(), 30, "{name}");
        // A second run finds nothing new in any layout.
        let again = crate::run(&job(dir.path(), "2026-11-25", false)).await.unwrap();
        assert_eq!(again.summary.objects.total(), 0, "{name}");
        assert_eq!(again.summary.table_rows.total(), 30, "{name}");
    }
}

/// Every file under `dir` whose name ends with `ext`, sorted.
fn files_ending(dir: &std::path::Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_ending(&path, ext));
        } else if path.to_string_lossy().ends_with(ext) {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_corrupt_gzip_or_parquet_object_is_one_dead_letter_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = fixture_log(&dir.path().join("log")).await;
    let j = job(dir.path(), "2026-11-24", false);
    sink(&log, &j.input, config("pinterest.pin", PartitionerKind::Default, FormatKind::Parquet, None)).await;
    sink(&log, &j.input, config("pinterest.geo", PartitionerKind::Default, FormatKind::Json, Some("gzip"))).await;
    sink(&log, &j.input, config("pinterest.user", PartitionerKind::Default, FormatKind::Json, None)).await;
    // Cut the first Parquet and the first gzip object in half: what a torn upload leaves.
    let objects = dir.path().join("objects");
    let (mut cut, mut whole) = (Vec::new(), Vec::new());
    for ext in [".snappy.parquet", ".json.gz"] {
        let path = files_ending(&objects, ext).into_iter().next().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        cut.push(path.strip_prefix(&objects).unwrap().display().to_string());
        whole.push((path, bytes));
    }
    let out = crate::run(&j).await.unwrap();
    let letters = std::fs::read_to_string(j.run_dir.join("dead_letters.jsonl")).unwrap();
    for object in &cut {
        let letter = letters
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["origin"]["path"].as_str().is_some_and(|p| p.ends_with(object.as_str())))
            .unwrap_or_else(|| panic!("no dead letter for {object} in\n{letters}"));
        assert!(letter["reason"].as_str().unwrap().contains("cannot be read"), "{letter}");
    }
    // The two cut objects (the malformed pin did not fit Parquet: it is one of the sink's dead
    // letters, not the batch job's); the other objects' rows are all there.
    assert_eq!(out.summary.dead_letters.total(), 2, "{letters}");
    assert!(out.summary.table_rows.total() > 0 && out.summary.table_rows.total() < 30);
    assert_eq!(out.summary.table_rows.user, 10);
    // The objects uploaded again whole: the next run reads them, and the answers are complete.
    for (path, bytes) in whole {
        std::fs::write(path, bytes).unwrap();
    }
    let j2 = job(dir.path(), "2026-11-25", false);
    let again = crate::run(&j2).await.unwrap();
    assert_eq!(again.summary.table_rows.total(), 30);
    assert_golden(&j2.run_dir, "after the whole copy");
}

/// Rewrites every Parquet file under `dir` as another writer might have written it (pyarrow):
/// text as large strings or dictionaries, non-key integers as int32, no Arrow schema stored in
/// the first file, none of pinpipe's metadata. False (nothing rewritten) without pyarrow.
fn rewrite_as_another_writer(dir: &std::path::Path) -> bool {
    const SCRIPT: &str = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
for n, path in enumerate(sys.argv[1:]):
    t = pq.read_table(path)
    cols = []
    for j, f in enumerate(t.schema):
        c = t.column(j)
        if pa.types.is_string(f.type):
            c = c.cast(pa.large_string()) if j % 2 else c.dictionary_encode()
        elif pa.types.is_int64(f.type) and f.name not in ("index", "ind"):
            c = c.cast(pa.int32())
        cols.append(c)
    pq.write_table(pa.table(cols, names=t.schema.names), path, store_schema=n > 0)
"#;
    if std::process::Command::new("python3").args(["-c", "import pyarrow"]).status().map_or(true, |s| !s.success()) {
        assert!(std::env::var_os("TEST_PINPIPE_REQUIRE_SERVERS").is_none(), "python3 with pyarrow is required");
        eprintln!("note: pyarrow missing; skipping");
        return false;
    }
    let files = files_ending(dir, ".parquet");
    assert!(files.len() >= 9, "{files:?}");
    let status = std::process::Command::new("python3").arg("-c").arg(SCRIPT).args(&files).status().unwrap();
    assert!(status.success());
    true
}

#[tokio::test]
async fn parquet_from_another_writer_with_other_types_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let log = fixture_log(&dir.path().join("log")).await;
    let j = job(dir.path(), "2026-11-24", false);
    for topic in ["pinterest.pin", "pinterest.geo", "pinterest.user"] {
        sink(&log, &j.input, config(topic, PartitionerKind::Default, FormatKind::Parquet, None)).await;
    }
    if !rewrite_as_another_writer(&dir.path().join("objects")) {
        return;
    }
    let out = crate::run(&j).await.unwrap();
    assert_golden(&j.run_dir, "rewritten by pyarrow");
    assert_eq!(out.summary.table_rows.total(), 30);
    assert_eq!(out.summary.dead_letters.total(), 0, "every rewritten row is read as a record");
}
