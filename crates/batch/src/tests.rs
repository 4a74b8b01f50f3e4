//! Golden tests on the hand-made fixture in the sink layout (`pinpipe_testkit::golden`: the
//! fixture table, its objects and the answers worked out by hand from it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pinpipe_model::Names;
pub(crate) use pinpipe_testkit::golden::{golden, posts, records, write_fixture, write_objects};
use serde_json::{Value, json};

use crate::{Job, Outcome, read::ReadProgress};

mod incremental;
mod layouts;
mod pool;

/// A job over the objects under `<dir>/objects` with its warehouse under `<dir>/warehouse`.
pub(crate) fn job(dir: &Path, run: &str, full: bool) -> Job {
    let objects = dir.join("objects");
    std::fs::create_dir_all(&objects).unwrap();
    let store = pinpipe_store::StoreConfig { url: Some(format!("file://{}", objects.display())), ..Default::default() }
        .validate(dir)
        .unwrap()
        .open()
        .unwrap();
    Job {
        names: Names::new("pinterest").unwrap(),
        input: store,
        warehouse: Some(pinpipe_store::StoreConfig::default().validate_or(dir.join("warehouse")).unwrap()),
        run_dir: dir.join("results").join(run),
        read_concurrency: 8,
        full,
        memory_limit: crate::config::DEFAULT_MEMORY_LIMIT,
        spill_dir: dir.join("spill"),
        progress: Arc::new(ReadProgress::default()),
        reader: None,
        cluster_questions: crate::ClusterQuestions::Auto,
    }
}

pub(crate) async fn run_fixture(dir: &Path) -> (Outcome, PathBuf) {
    write_fixture(&dir.join("objects"), "pinterest");
    let job = job(dir, "2026-11-24", false);
    (crate::run(&job).await.unwrap(), job.run_dir)
}

fn file_json(dir: &Path, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

#[tokio::test]
async fn the_eight_questions_on_the_hand_made_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let (out, run_dir) = run_fixture(dir.path()).await;
    let q = |id: &str| file_json(&run_dir, &format!("{id}.json"));

    for (id, expected) in golden() {
        assert_eq!(q(id), expected, "{id}");
    }
    // CSV carries the same rows.
    let csv = std::fs::read_to_string(run_dir.join("q3b.csv")).unwrap();
    assert_eq!(csv, "country,follower_count\nBrazil,2000000\n");

    // Counts: 12 pin records (10 posts, post 1 again, one malformed), 11 geo, 11 user.
    let s = file_json(&run_dir, "summary.json");
    assert_eq!(s["raw_records"], json!({"pin": 12, "geo": 11, "user": 11}));
    assert_eq!(s["dead_letters"], json!({"pin": 1, "geo": 0, "user": 0}));
    assert_eq!(s["duplicates_dropped"], json!({"pin": 1, "geo": 1, "user": 1}));
    assert_eq!(s["clean_rows"], json!({"pin": 10, "geo": 10, "user": 10}));
    assert_eq!(s["table_rows"], json!({"pin": 10, "geo": 10, "user": 10}));
    assert_eq!(s["objects"], json!({"pin": 6, "geo": 6, "user": 6}));
    assert_eq!(s["mode"], "incremental");
    assert_eq!(out.summary.clean_rows.total(), 30);
    for phase in ["ingest_s", "clean_busy_s", "dedup_busy_s", "write_busy_s", "queries_s", "outputs_s", "total_s"] {
        assert!(s["phases"][phase].as_f64().unwrap() >= 0.0, "{phase}");
    }

    // The malformed record, with its origin.
    let dl = std::fs::read_to_string(run_dir.join("dead_letters.jsonl")).unwrap();
    let letters: Vec<Value> = dl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["kind"], "pin");
    assert_eq!(letters[0]["record"], r#"{"index": 12, "title": "cut off"#);
    assert_eq!(letters[0]["origin"]["path"], "topics/pinterest.pin/partition=1/pinterest.pin+1+0000000000.json");
    assert_eq!(letters[0]["origin"]["line"], 7);
    assert!(letters[0]["reason"].as_str().unwrap().contains("not a valid pin record"));

    // Three Delta tables, each created (version 0) and then holding the run's commit (1).
    assert_eq!(out.summary.tables.len(), 3);
    for name in ["pinterest_pin_table", "pinterest_geo_table", "pinterest_user_table"] {
        let t = &out.summary.tables[name];
        assert_eq!((t.version, t.committed), (1, true));
        let log = dir.path().join(format!("warehouse/batch/{name}/_delta_log/00000000000000000001.json"));
        assert!(log.is_file(), "{}", log.display());
    }
    let report = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert_eq!(report.matches(r#"<svg class="chart""#).count(), 9);
}

/// `path` when it exists; `None` (test skipped) otherwise, unless the CI requires every tool.
fn tool(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("TEST_PINPIPE_REQUIRE_SERVERS").as_deref() != Ok("1"),
        "{path} is missing but TEST_PINPIPE_REQUIRE_SERVERS=1"
    );
    eprintln!("note: {path} missing; skipping a test that needs it");
    None
}

#[tokio::test]
async fn the_report_renders_its_charts_in_headless_chromium() {
    let Some(chromium) = tool("/usr/bin/chromium") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_, run_dir) = run_fixture(dir.path()).await;
    let report = run_dir.join("report.html");
    let url = url::Url::from_file_path(&report).unwrap().to_string();
    let profile = dir.path().join("chromium-profile");
    let shot = dir.path().join("report.png");
    let base = |extra: &[&str]| {
        let mut c = std::process::Command::new(&chromium);
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url);
        c
    };
    // The DOM as Chromium parsed it: nine charts, one bar per row of each answer.
    let dom = base(&["--dump-dom"]).output().unwrap();
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8(dom.stdout).unwrap();
    assert_eq!(dom.matches(r#"<svg class="chart""#).count(), 9);
    // q1 5 + q2 7 + q3 4 + q3b 1 + q4 6 + q5 3 + q6 5 + q7 5 + q8 6 bars.
    assert_eq!(dom.matches(r#"<rect class="bar""#).count(), 42);
    // The screenshot: the charts at the top of the page are really drawn (bar colour present
    // in quantity, the page is not blank).
    let out = base(&["--hide-scrollbars", "--window-size=1000,1400", &format!("--screenshot={}", shot.display())])
        .output()
        .unwrap();
    assert!(out.status.success() && shot.is_file(), "{}", String::from_utf8_lossy(&out.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let (mut bar, mut non_white) = (0usize, 0usize);
    for px in pixels.chunks(channels) {
        let (r, g, b) = (px[0], px[1], px[2]);
        if r.abs_diff(0x4e) < 8 && g.abs_diff(0x79) < 8 && b.abs_diff(0xa7) < 8 {
            bar += 1;
        }
        if r < 240 || g < 240 || b < 240 {
            non_white += 1;
        }
    }
    assert_eq!((info.width, info.height), (1000, 1400));
    assert!(bar > 2_000, "bar-coloured pixels: {bar}");
    assert!(non_white > 20_000, "non-white pixels: {non_white}");
}

#[tokio::test]
async fn the_delta_tables_are_read_back_by_the_python_deltalake_package() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run_fixture(dir.path()).await;
    let paths: Vec<String> = ["pinterest_pin_table", "pinterest_geo_table", "pinterest_user_table"]
        .iter()
        .map(|n| url::Url::parse(&out.summary.tables[*n].url).unwrap().to_file_path().unwrap().display().to_string())
        .collect();
    let Some(v) = pinpipe_testkit::delta::read_tables(&paths) else { return };

    let pin = &v["pinterest_pin_table"];
    assert_eq!(pin["version"], 1);
    assert_eq!(
        pin["columns"],
        json!([
            "ind",
            "unique_id",
            "title",
            "description",
            "follower_count",
            "poster_name",
            "tag_list",
            "is_image_or_video",
            "image_src",
            "save_location",
            "category"
        ])
    );
    let rows = pin["rows"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["ind"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6, 7, 8, 10, 11]);
    let r4 = &rows[3];
    for col in ["title", "description", "follower_count", "poster_name", "tag_list", "image_src"] {
        assert!(r4[col].is_null(), "ind 4 {col}: {}", r4[col]);
    }
    assert_eq!(r4["save_location"], "/data/diy");
    assert!(rows[6]["description"].is_null(), "Untitled is a description placeholder");
    assert_eq!(rows[1]["follower_count"], 5000);
    assert_eq!(rows[4]["follower_count"], 1_000_000);
    assert_eq!(rows[0]["title"], "A title");

    let geo = &v["pinterest_geo_table"];
    assert_eq!(geo["columns"], json!(["ind", "country", "coordinates", "timestamp"]));
    assert_eq!(geo["rows"][0]["coordinates"], json!([10.5, -20.25]));
    assert_eq!(geo["rows"][0]["timestamp"], "2018-01-01T00:00:00+00:00");
    assert_eq!(geo["rows"][4]["timestamp"], "2022-12-31T23:59:59+00:00");

    let user = &v["pinterest_user_table"];
    assert_eq!(user["columns"], json!(["ind", "user_name", "age", "date_joined"]));
    assert_eq!(user["rows"][0]["user_name"], "Ann A");
    assert_eq!(user["rows"][3]["date_joined"], "2014-12-31T23:59:59+00:00");
    assert_eq!(user["rows"].as_array().unwrap().len(), 10);
}
