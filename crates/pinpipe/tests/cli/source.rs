//! `pinpipe source ...` and `pinpipe up` on SQLite, PostgreSQL and MariaDB.

use std::collections::HashMap;

use pinpipe_model::raw::placeholders as ph;
use pinpipe_model::{Kind, Post, RawGeo, RawPin, RawUser, schema};
use pinpipe_testkit::{Server, TestDb};

use crate::harness::{Workdir, db_data};

fn rate(posts: &[Post], f: impl Fn(&RawPin) -> bool) -> f64 {
    posts.iter().filter(|p| f(&p.pin)).count() as f64 / posts.len() as f64
}

#[test]
fn generate_is_deterministic_with_the_documented_mix() {
    let w = Workdir::new();
    let out = w.ok(&["source", "--source-url", "sqlite://a.db", "generate", "--rows", "20000", "--seed", "7"]);
    assert!(out.starts_with("generated 20,000 posts (seed 7) into sqlite://a.db in "), "{out}");
    w.ok(&["source", "--source-url", "sqlite://b.db", "generate", "--rows", "20000", "--seed", "7"]);
    w.ok(&["source", "--source-url", "sqlite://c.db", "generate", "--rows", "20000", "--seed", "8"]);
    let a = w.export(&["--source-url", "sqlite://a.db"]);
    assert_eq!(a.len(), 20_000);
    assert_eq!(a, w.export(&["--source-url", "sqlite://b.db"]));
    assert_ne!(a, w.export(&["--source-url", "sqlite://c.db"]));
    assert!(
        a.iter().enumerate().all(|(i, p)| p.pin.index == i as i64 && p.geo.ind == i as i64 && p.user.ind == i as i64)
    );

    // The ranges documented in pinpipe_source::generate.
    let is = |v: &Option<String>, s: &str| v.as_deref() == Some(s);
    for (name, r, lo, hi) in [
        ("title placeholder", rate(&a, |p| is(&p.title, ph::NO_TITLE)), 0.02, 0.04),
        ("description placeholder", rate(&a, |p| is(&p.description, ph::NO_DESCRIPTION)), 0.02, 0.04),
        ("story placeholder", rate(&a, |p| is(&p.description, ph::NO_DESCRIPTION_STORY)), 0.02, 0.045),
        ("untitled", rate(&a, |p| is(&p.description, ph::UNTITLED)), 0.008, 0.022),
        ("image src", rate(&a, |p| is(&p.image_src, ph::IMAGE_SRC_ERROR)), 0.02, 0.04),
        ("tags", rate(&a, |p| is(&p.tag_list, ph::NO_TAGS)), 0.02, 0.04),
        ("poster", rate(&a, |p| is(&p.poster_name, ph::USER_INFO_ERROR)), 0.02, 0.04),
        ("follower placeholder", rate(&a, |p| is(&p.follower_count, ph::USER_INFO_ERROR)), 0.02, 0.04),
        ("k", rate(&a, |p| p.follower_count.as_deref().is_some_and(|f| f.ends_with('k'))), 0.35, 0.55),
        ("M", rate(&a, |p| p.follower_count.as_deref().is_some_and(|f| f.ends_with('M'))), 0.12, 0.28),
    ] {
        assert!((lo..=hi).contains(&r), "{name}: {r:.4} not in [{lo}, {hi}]");
    }

    // Without --replace a non-empty source is left alone.
    let e = w.fails(&["source", "--source-url", "sqlite://a.db", "generate", "--rows", "10"], &[]);
    assert!(e.contains("already hold 20000 rows: pass --replace"), "{e}");
    w.ok(&["source", "--source-url", "sqlite://a.db", "generate", "--rows", "10", "--replace"]);
    assert_eq!(w.export(&["--source-url", "sqlite://a.db"]).len(), 10);
}

#[test]
fn sample_prints_row_r_as_the_three_raw_records() {
    let w = Workdir::new();
    w.ok(&["source", "generate", "--rows", "300", "--seed", "7"]);
    let out = w.ok(&["source", "sample", "--row", "5"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let pin: RawPin = serde_json::from_str(lines[0]).unwrap();
    let geo: RawGeo = serde_json::from_str(lines[1]).unwrap();
    let user: RawUser = serde_json::from_str(lines[2]).unwrap();
    assert_eq!((pin.index, geo.ind, user.ind), (5, 5, 5));
    // Keys in the contract's order, timestamps ISO-8601 with a `T`.
    for (line, kind) in lines.iter().zip(Kind::ALL) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        let want: Vec<String> = schema::raw(kind).fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(keys, want.iter().collect::<Vec<_>>());
    }
    let ts: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(ts["timestamp"].as_str().unwrap().as_bytes()[10], b'T');
    let exported = &w.export(&[])[5];
    assert_eq!((&pin, &geo, &user), (&exported.pin, &exported.geo, &exported.user));

    // Random rows: reproducible with a seed, always a real row.
    let a = w.ok(&["source", "sample", "--seed", "42"]);
    assert_eq!(a, w.ok(&["source", "sample", "--seed", "42"]));
    let rows: Vec<String> = (0..10).map(|s| w.ok(&["source", "sample", "--seed", &s.to_string()])).collect();
    assert!(rows.iter().collect::<std::collections::HashSet<_>>().len() > 5);

    let e = w.fails(&["source", "sample", "--row", "300"], &[]);
    assert!(e.contains("row 300 does not exist"), "{e}");
}

/// Reads a classic CSV as header → value maps.
fn csv_rows(name: &str) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(db_data().join(name)).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| headers.iter().map(String::from).zip(rec.unwrap().iter().map(String::from)).collect())
        .collect()
}

fn sql_time(t: &Option<chrono::NaiveDateTime>) -> String {
    t.unwrap().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Every geo and user value of the export equals the CSV's text.
fn assert_matches_real_csv(posts: &[Post]) {
    let geo = csv_rows("geolocation_data.csv");
    let user = csv_rows("user_data.csv");
    assert_eq!((posts.len(), geo.len(), user.len()), (11_154, 11_154, 11_154));
    for ((p, g), u) in posts.iter().zip(&geo).zip(&user) {
        assert_eq!(p.geo.ind.to_string(), g["ind"]);
        assert_eq!(sql_time(&p.geo.timestamp), g["timestamp"]);
        assert_eq!(p.geo.latitude.unwrap(), g["latitude"].parse::<f64>().unwrap());
        assert_eq!(p.geo.longitude.unwrap(), g["longitude"].parse::<f64>().unwrap());
        assert_eq!(p.geo.country.as_deref().unwrap(), g["country"]);
        assert_eq!(p.user.ind.to_string(), u["ind"]);
        assert_eq!(p.user.first_name.as_deref().unwrap(), u["first_name"]);
        assert_eq!(p.user.last_name.as_deref().unwrap(), u["last_name"]);
        assert_eq!(p.user.age.unwrap().to_string(), u["age"]);
        assert_eq!(sql_time(&p.user.date_joined), u["date_joined"]);
        assert_eq!(p.pin.index, p.geo.ind);
    }
}

#[test]
fn load_reads_the_real_csv_files_unchanged() {
    let w = Workdir::new();
    let dir = db_data();
    let out = w.ok(&["source", "load", "--csv-dir", dir.to_str().unwrap()]);
    assert!(out.starts_with("loaded 11,154 posts from"), "{out}");
    assert!(out.contains("pins were generated"), "{out}");
    let posts = w.export(&[]);
    assert_matches_real_csv(&posts);
    // The generated pins are those the generator makes for the same rows.
    let info: serde_json::Value = serde_json::from_str(&w.ok(&["source", "info", "--json"])).unwrap();
    assert_eq!(info["counts"]["user_data"], 11_154);
    assert_eq!(info["key_range"], serde_json::json!([0, 11_153]));
}

#[test]
fn a_malformed_csv_is_one_error_line_and_writes_nothing() {
    let w = Workdir::new();
    let dir = w.path().join("db_data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(db_data().join("user_data.csv"), dir.join("user_data.csv")).unwrap();
    let mut geo = std::fs::read_to_string(db_data().join("geolocation_data.csv")).unwrap();
    // Break the last row's latitude: the first 11,153 rows are fine and must not be written.
    let cut = geo.trim_end().rfind('\n').unwrap();
    geo.truncate(cut + 1);
    geo.push_str("11153,11153,2022-01-01 00:00:00,north,1.0,Aruba\n");
    std::fs::write(dir.join("geolocation_data.csv"), geo).unwrap();
    let e = w.fails(&["source", "load", "--csv-dir", "db_data"], &[]);
    assert!(e.contains("geolocation_data.csv: line 11155: column latitude: \"north\" is not a number"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    let e = w.fails(&["source", "sample"], &[]);
    assert!(e.contains("the source tables do not exist"), "{e}");

    let e = w.fails(&["source", "load", "--csv-dir", "nowhere"], &[]);
    assert!(e.contains("nowhere: not a directory"), "{e}");
}

#[test]
fn unreachable_databases_fail_with_one_clear_error() {
    let w = Workdir::new();
    for url in ["postgres://me:pw@127.0.0.1:1/db", "mysql://me:pw@127.0.0.1:1/db"] {
        let e = w.fails(&["source", "--source-url", url, "info"], &[]);
        let redacted = url.replace(":pw@", ":***@");
        assert!(e.starts_with(&format!("error: cannot connect to source database {redacted}\n")), "{e}");
        assert!(e.contains("Connection refused"), "{e}");
    }
    let e = w.fails(&["source", "--source-url", "postgres:nohost", "info"], &[]);
    assert!(e.contains("invalid source URL"), "{e}");
}

fn server_backend_matches_sqlite(server: Server) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = rt.block_on(TestDb::create(server)) else { return };
    let w = Workdir::new();
    let url = db.url.as_str();

    // Generation gives the same tables as SQLite, value for value.
    w.ok(&["source", "--source-url", url, "generate", "--rows", "20000", "--seed", "7"]);
    w.ok(&["source", "--source-url", "sqlite://ref.db", "generate", "--rows", "20000", "--seed", "7"]);
    let exported = w.export(&["--source-url", url]);
    assert_eq!(exported.len(), 20_000);
    assert!(exported == w.export(&["--source-url", "sqlite://ref.db"]), "{server:?} differs from SQLite");
    let sample = w.ok(&["source", "--source-url", url, "sample", "--row", "5"]);
    assert_eq!(sample, w.ok(&["source", "--source-url", "sqlite://ref.db", "sample", "--row", "5"]));

    // Loading the real CSVs keeps every value.
    let dir = db_data();
    w.ok(&["source", "--source-url", url, "load", "--replace", "--csv-dir", dir.to_str().unwrap()]);
    assert_matches_real_csv(&w.export(&["--source-url", url]));
    drop(db);
}

#[test]
fn postgres_backend_matches_sqlite() {
    server_backend_matches_sqlite(Server::Postgres);
}

#[test]
fn mysql_backend_matches_sqlite() {
    server_backend_matches_sqlite(Server::MySql);
}
