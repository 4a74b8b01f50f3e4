//! Golden tests on a hand-made fixture in the sink layout; every expected answer below was
//! worked out by hand from the fixture table in `posts()`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pinpipe_model::Names;
use serde_json::{Value, json};

use crate::{Job, Outcome, read::ReadProgress};

mod incremental;
mod layouts;

/// One post of the fixture: (ind, country, category, post time, poster, followers, first,
/// last, age, joined).
type Post = (
    i64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static str,
);

// ind | country | category | posted    | poster | followers | user  | age | joined
//  1  | Albania | art      | 2018 edge | P1     | 10        | Ann A | 20  | 2015 edge
//  2  | Albania | art      | 2019      | P2     | 5k        | Bob B | 30  | 2016
//  3  | Albania | diy      | 2020      | P3     | 5k        | Cid C | 40  | 2017
//  4  | Albania | diy      | 2017 edge | (UIE)  | (UIE)     | Dee D | 55  | 2014 edge
//  5  | Brazil  | travel   | 2022 edge | P5     | 1M        | Eve E | 24  | 2020 edge
//  6  | Brazil  | art      | 2023 edge | P6     | 2M        | Fay F | 25  | 2021 edge
//  7  | Brazil  | travel   | 2021      | P7     | 300       | Gus G | 35  | 2018
//  8  | Chad    | quotes   | 2018      | P8     | 7         | Hal H | 36  | 2015
// 10  | Chad    | art      | 2019      | P1     | 10        | Ann A | 20  | 2015 (same user as 1)
// 11  | Brazil  | travel   | 2020      | (UIE)  | (UIE)     | Ivy I | 30  | 2016
// Post 1 is delivered twice; one pin record is not JSON.
fn posts() -> Vec<Post> {
    vec![
        (1, "Albania", "art", "2018-01-01T00:00:00", "P1", "10", "Ann", "A", 20, "2015-01-01T00:00:00"),
        (2, "Albania", "art", "2019-06-01T10:00:00", "P2", "5k", "Bob", "B", 30, "2016-03-01T00:00:00"),
        (3, "Albania", "diy", "2020-06-01T10:00:00", "P3", "5k", "Cid", "C", 40, "2017-03-01T00:00:00"),
        (
            4,
            "Albania",
            "diy",
            "2017-12-31T23:59:59",
            "User Info Error",
            "User Info Error",
            "Dee",
            "D",
            55,
            "2014-12-31 23:59:59",
        ),
        (5, "Brazil", "travel", "2022-12-31 23:59:59", "P5", "1M", "Eve", "E", 24, "2020-12-31T23:59:59"),
        (6, "Brazil", "art", "2023-01-01T00:00:00", "P6", "2M", "Fay", "F", 25, "2021-01-01T00:00:00"),
        (7, "Brazil", "travel", "2021-02-02T02:02:02", "P7", "300", "Gus", "G", 35, "2018-05-05T00:00:00"),
        (8, "Chad", "quotes", "2018-07-07T07:07:07", "P8", "7", "Hal", "H", 36, "2015-08-08T00:00:00"),
        (10, "Chad", "art", "2019-09-09T09:09:09", "P1", "10", "Ann", "A", 20, "2015-01-01T00:00:00"),
        (
            11,
            "Brazil",
            "travel",
            "2020-10-10T10:10:10",
            "User Info Error",
            "User Info Error",
            "Ivy",
            "I",
            30,
            "2016-04-04T00:00:00",
        ),
    ]
}

fn records(p: &Post) -> [Value; 3] {
    let (ind, country, category, posted, poster, followers, first, last, age, joined) = *p;
    let placeholders = ind == 4;
    [
        json!({"index": ind, "unique_id": format!("u-{ind}"),
            "title": if placeholders { "No Title Data Available" } else { "A title" },
            "description": if placeholders { "No description available" } else if ind == 7 { "Untitled" } else { "Nice" },
            "poster_name": poster, "follower_count": followers,
            "tag_list": if placeholders { "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e" } else { "a,b" },
            "is_image_or_video": "image",
            "image_src": if placeholders { "Image src error." } else { "https://i.example/x.jpg" },
            "downloaded": 1, "save_location": format!("Local save in /data/{category}"), "category": category}),
        json!({"ind": ind, "timestamp": posted, "latitude": 10.5, "longitude": -20.25, "country": country}),
        json!({"ind": ind, "first_name": first, "last_name": last, "age": age, "date_joined": joined}),
    ]
}

/// Writes the fixture in the sink layout: posts 1-5 one record per object in partition 0, the
/// rest (plus the second delivery of post 1 and, for pins, a malformed record) in one
/// multi-line object of partition 1. Only the objects `keep(partition, start)` accepts are
/// written, and no record of `lost` = (topic kind, ind), as when a post fails for one topic.
pub(crate) fn write_objects(root: &Path, prefix: &str, keep: impl Fn(u32, u64) -> bool, lost: Option<(&str, i64)>) {
    let posts = posts();
    let arrives = |kind: &str, p: &Post| lost != Some((kind, p.0));
    for (k, kind) in ["pin", "geo", "user"].iter().enumerate() {
        let topic = format!("{prefix}.{kind}");
        let p0 = root.join(format!("topics/{topic}/partition=0"));
        let p1 = root.join(format!("topics/{topic}/partition=1"));
        std::fs::create_dir_all(&p0).unwrap();
        std::fs::create_dir_all(&p1).unwrap();
        for (off, p) in posts[..5].iter().filter(|p| arrives(kind, p)).enumerate() {
            if keep(0, off as u64) {
                let text = format!("{}\n", records(p)[k]);
                std::fs::write(p0.join(format!("{topic}+0+{off:010}.json")), text).unwrap();
            }
        }
        let mut lines: Vec<String> =
            posts[5..].iter().filter(|p| arrives(kind, p)).map(|p| records(p)[k].to_string()).collect();
        lines.push(records(&posts[0])[k].to_string());
        if *kind == "pin" {
            lines.push(r#"{"index": 12, "title": "cut off"#.to_owned());
        }
        if keep(1, 0) {
            std::fs::write(p1.join(format!("{topic}+1+0000000000.json")), lines.join("\n") + "\n").unwrap();
        }
        // Not raw objects: ignored.
        std::fs::write(p1.join("notes.txt"), "not data").unwrap();
    }
}

/// The whole fixture.
pub(crate) fn write_fixture(root: &Path, prefix: &str) {
    write_objects(root, prefix, |_, _| true, None);
}

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
    }
}

/// The answers to the fixture, worked out by hand from the table in `posts()`.
pub(crate) fn golden() -> std::collections::BTreeMap<&'static str, Value> {
    std::collections::BTreeMap::from([
        (
            "q1",
            json!([
                {"country": "Albania", "category": "art", "category_count": 2},
                {"country": "Albania", "category": "diy", "category_count": 2},
                {"country": "Brazil", "category": "travel", "category_count": 3},
                {"country": "Chad", "category": "art", "category_count": 1},
                {"country": "Chad", "category": "quotes", "category_count": 1},
            ]),
        ),
        (
            "q2",
            json!([
                {"post_year": 2018, "category": "art", "category_count": 1},
                {"post_year": 2018, "category": "quotes", "category_count": 1},
                {"post_year": 2019, "category": "art", "category_count": 2},
                {"post_year": 2020, "category": "diy", "category_count": 1},
                {"post_year": 2020, "category": "travel", "category_count": 1},
                {"post_year": 2021, "category": "travel", "category_count": 1},
                {"post_year": 2022, "category": "travel", "category_count": 1},
            ]),
        ),
        (
            "q3",
            json!([
                {"country": "Albania", "poster_name": "P2", "follower_count": 5000},
                {"country": "Albania", "poster_name": "P3", "follower_count": 5000},
                {"country": "Brazil", "poster_name": "P6", "follower_count": 2000000},
                {"country": "Chad", "poster_name": "P1", "follower_count": 10},
            ]),
        ),
        ("q3b", json!([{"country": "Brazil", "follower_count": 2000000}])),
        (
            "q4",
            json!([
                {"age_group": "18-24", "category": "art", "category_count": 2},
                {"age_group": "25-35", "category": "art", "category_count": 2},
                {"age_group": "25-35", "category": "travel", "category_count": 2},
                {"age_group": "36-50", "category": "diy", "category_count": 1},
                {"age_group": "36-50", "category": "quotes", "category_count": 1},
                {"age_group": "50+", "category": "diy", "category_count": 1},
            ]),
        ),
        // 18-24: [10, 10, 1000000] (odd) -> 10; 25-35: [300, 5000, 2000000] + a null -> 5000;
        // 36-50: [7, 5000] (even) -> the lower median 7; 50+: only a null -> absent.
        (
            "q5",
            json!([
                {"age_group": "18-24", "median_follower_count": 10},
                {"age_group": "25-35", "median_follower_count": 5000},
                {"age_group": "36-50", "median_follower_count": 7},
            ]),
        ),
        (
            "q6",
            json!([
                {"join_year": 2015, "number_users_joined": 2},
                {"join_year": 2016, "number_users_joined": 2},
                {"join_year": 2017, "number_users_joined": 1},
                {"join_year": 2018, "number_users_joined": 1},
                {"join_year": 2020, "number_users_joined": 1},
            ]),
        ),
        (
            "q7",
            json!([
                {"join_year": 2015, "median_follower_count": 10},
                {"join_year": 2016, "median_follower_count": 5000},
                {"join_year": 2017, "median_follower_count": 5000},
                {"join_year": 2018, "median_follower_count": 300},
                {"join_year": 2020, "median_follower_count": 1000000},
            ]),
        ),
        (
            "q8",
            json!([
                {"age_group": "18-24", "join_year": 2015, "median_follower_count": 10},
                {"age_group": "18-24", "join_year": 2020, "median_follower_count": 1000000},
                {"age_group": "25-35", "join_year": 2016, "median_follower_count": 5000},
                {"age_group": "25-35", "join_year": 2018, "median_follower_count": 300},
                {"age_group": "36-50", "join_year": 2015, "median_follower_count": 7},
                {"age_group": "36-50", "join_year": 2017, "median_follower_count": 5000},
            ]),
        ),
    ])
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
