//! Incremental runs, `--full`, records lost between topics, repeats across runs, the memory
//! limit, and what a run refuses to do (a second run at once, a table it did not write, an
//! unreachable store), each checked on values: answers, table rows, versions.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::prelude::SessionContext;
use serde_json::{Value, json};

use super::{golden, job, write_fixture, write_objects};
use crate::{Error, Outcome};

const TABLES: [&str; 3] = ["pinterest_pin_table", "pinterest_geo_table", "pinterest_user_table"];

async fn run(dir: &Path, run: &str, full: bool) -> Outcome {
    crate::run(&job(dir, run, full)).await.unwrap()
}

/// The answers of a run folder, by question id.
fn answers(dir: &Path, run: &str) -> BTreeMap<String, Value> {
    let folder = dir.join("results").join(run);
    ["q1", "q2", "q3", "q3b", "q4", "q5", "q6", "q7", "q8"]
        .iter()
        .map(|id| {
            let text = std::fs::read_to_string(folder.join(format!("{id}.json"))).unwrap();
            ((*id).to_owned(), serde_json::from_str(&text).unwrap())
        })
        .collect()
}

fn golden_answers() -> BTreeMap<String, Value> {
    golden().into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Every row of a table (as JSON text, sorted) and its version.
async fn table(dir: &Path, name: &str) -> (Option<u64>, Vec<String>) {
    pinpipe_store::delta::register_handlers();
    let url = url::Url::from_directory_path(dir.join("warehouse/batch").join(name)).unwrap();
    let Ok(table) = deltalake::open_table(url).await else { return (None, Vec::new()) };
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state()).unwrap();
    ctx.register_table("t", table.table_provider().await.unwrap()).unwrap();
    let batches = ctx.sql("SELECT * FROM t").await.unwrap().collect().await.unwrap();
    let mut rows: Vec<String> = Vec::new();
    for b in &batches {
        let t = crate::output::table(
            &b.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(),
            std::slice::from_ref(b),
        );
        rows.extend(t.objects().iter().map(|o| o.to_string()));
    }
    rows.sort();
    (table.version(), rows)
}

async fn tables(dir: &Path) -> Vec<(Option<u64>, Vec<String>)> {
    let mut out = Vec::new();
    for name in TABLES {
        out.push(table(dir, name).await);
    }
    out
}

fn rows_only(t: &[(Option<u64>, Vec<String>)]) -> Vec<Vec<String>> {
    t.iter().map(|(_, r)| r.clone()).collect()
}

/// Replaces the rows of `id` in `answers`.
fn set(answers: &mut BTreeMap<String, Value>, id: &str, rows: Value) {
    answers.insert(id.to_owned(), rows);
}

#[tokio::test]
async fn questions_1_to_3_still_count_a_post_whose_record_was_lost_from_another_topic() {
    // The user record of post 2 (Albania, art, 2019, P2 5k; Bob B, 30, joined 2016) never
    // arrived: q1-q3 (pin ⋈ geo) are unchanged; q4-q8 (with the user) lose post 2.
    let dir = tempfile::tempdir().unwrap();
    write_objects(&dir.path().join("objects"), "pinterest", |_, _| true, Some(("user", 2)));
    run(dir.path(), "r", false).await;
    let mut expected = golden_answers();
    set(
        &mut expected,
        "q4",
        json!([
            {"age_group": "18-24", "category": "art", "category_count": 2},
            {"age_group": "25-35", "category": "travel", "category_count": 2},
            {"age_group": "36-50", "category": "diy", "category_count": 1},
            {"age_group": "36-50", "category": "quotes", "category_count": 1},
            {"age_group": "50+", "category": "diy", "category_count": 1},
        ]),
    );
    // 25-35 without post 2: [300, 2000000] + a null -> 300.
    set(
        &mut expected,
        "q5",
        json!([
            {"age_group": "18-24", "median_follower_count": 10},
            {"age_group": "25-35", "median_follower_count": 300},
            {"age_group": "36-50", "median_follower_count": 7},
        ]),
    );
    set(
        &mut expected,
        "q6",
        json!([
            {"join_year": 2015, "number_users_joined": 2},
            {"join_year": 2016, "number_users_joined": 1},
            {"join_year": 2017, "number_users_joined": 1},
            {"join_year": 2018, "number_users_joined": 1},
            {"join_year": 2020, "number_users_joined": 1},
        ]),
    );
    // 2016 had 5000 (post 2) and a null (post 11): no values left, so no row.
    set(
        &mut expected,
        "q7",
        json!([
            {"join_year": 2015, "median_follower_count": 10},
            {"join_year": 2017, "median_follower_count": 5000},
            {"join_year": 2018, "median_follower_count": 300},
            {"join_year": 2020, "median_follower_count": 1000000},
        ]),
    );
    set(
        &mut expected,
        "q8",
        json!([
            {"age_group": "18-24", "join_year": 2015, "median_follower_count": 10},
            {"age_group": "18-24", "join_year": 2020, "median_follower_count": 1000000},
            {"age_group": "25-35", "join_year": 2018, "median_follower_count": 300},
            {"age_group": "36-50", "join_year": 2015, "median_follower_count": 7},
            {"age_group": "36-50", "join_year": 2017, "median_follower_count": 5000},
        ]),
    );
    assert_eq!(answers(dir.path(), "r"), expected);
}

#[tokio::test]
async fn a_lost_geo_record_removes_the_post_from_every_question() {
    // The geo record of post 8 (Chad, quotes, 2018, P8 7; Hal H, 36, joined 2015) is lost.
    let dir = tempfile::tempdir().unwrap();
    write_objects(&dir.path().join("objects"), "pinterest", |_, _| true, Some(("geo", 8)));
    run(dir.path(), "r", false).await;
    let mut expected = golden_answers();
    set(
        &mut expected,
        "q1",
        json!([
            {"country": "Albania", "category": "art", "category_count": 2},
            {"country": "Albania", "category": "diy", "category_count": 2},
            {"country": "Brazil", "category": "travel", "category_count": 3},
            {"country": "Chad", "category": "art", "category_count": 1},
        ]),
    );
    set(
        &mut expected,
        "q2",
        json!([
            {"post_year": 2018, "category": "art", "category_count": 1},
            {"post_year": 2019, "category": "art", "category_count": 2},
            {"post_year": 2020, "category": "diy", "category_count": 1},
            {"post_year": 2020, "category": "travel", "category_count": 1},
            {"post_year": 2021, "category": "travel", "category_count": 1},
            {"post_year": 2022, "category": "travel", "category_count": 1},
        ]),
    );
    set(
        &mut expected,
        "q4",
        json!([
            {"age_group": "18-24", "category": "art", "category_count": 2},
            {"age_group": "25-35", "category": "art", "category_count": 2},
            {"age_group": "25-35", "category": "travel", "category_count": 2},
            {"age_group": "36-50", "category": "diy", "category_count": 1},
            {"age_group": "50+", "category": "diy", "category_count": 1},
        ]),
    );
    set(
        &mut expected,
        "q5",
        json!([
            {"age_group": "18-24", "median_follower_count": 10},
            {"age_group": "25-35", "median_follower_count": 5000},
            {"age_group": "36-50", "median_follower_count": 5000},
        ]),
    );
    set(
        &mut expected,
        "q6",
        json!([
            {"join_year": 2015, "number_users_joined": 1},
            {"join_year": 2016, "number_users_joined": 2},
            {"join_year": 2017, "number_users_joined": 1},
            {"join_year": 2018, "number_users_joined": 1},
            {"join_year": 2020, "number_users_joined": 1},
        ]),
    );
    set(
        &mut expected,
        "q8",
        json!([
            {"age_group": "18-24", "join_year": 2015, "median_follower_count": 10},
            {"age_group": "18-24", "join_year": 2020, "median_follower_count": 1000000},
            {"age_group": "25-35", "join_year": 2016, "median_follower_count": 5000},
            {"age_group": "25-35", "join_year": 2018, "median_follower_count": 300},
            {"age_group": "36-50", "join_year": 2017, "median_follower_count": 5000},
        ]),
    );
    assert_eq!(answers(dir.path(), "r"), expected);
}

#[tokio::test]
async fn a_lost_pin_record_removes_the_post_from_every_question() {
    // The pin of post 6 (Brazil, art, 2023, P6 2M; Fay F, 25, joined 2021) is lost.
    let dir = tempfile::tempdir().unwrap();
    write_objects(&dir.path().join("objects"), "pinterest", |_, _| true, Some(("pin", 6)));
    run(dir.path(), "r", false).await;
    let mut expected = golden_answers();
    set(
        &mut expected,
        "q3",
        json!([
            {"country": "Albania", "poster_name": "P2", "follower_count": 5000},
            {"country": "Albania", "poster_name": "P3", "follower_count": 5000},
            {"country": "Brazil", "poster_name": "P5", "follower_count": 1000000},
            {"country": "Chad", "poster_name": "P1", "follower_count": 10},
        ]),
    );
    set(&mut expected, "q3b", json!([{"country": "Brazil", "follower_count": 1000000}]));
    set(
        &mut expected,
        "q4",
        json!([
            {"age_group": "18-24", "category": "art", "category_count": 2},
            {"age_group": "25-35", "category": "travel", "category_count": 2},
            {"age_group": "36-50", "category": "diy", "category_count": 1},
            {"age_group": "36-50", "category": "quotes", "category_count": 1},
            {"age_group": "50+", "category": "diy", "category_count": 1},
        ]),
    );
    // 25-35 without post 6: [300, 5000] + a null -> 300.
    set(
        &mut expected,
        "q5",
        json!([
            {"age_group": "18-24", "median_follower_count": 10},
            {"age_group": "25-35", "median_follower_count": 300},
            {"age_group": "36-50", "median_follower_count": 7},
        ]),
    );
    assert_eq!(answers(dir.path(), "r"), expected);
}

#[tokio::test]
async fn day_by_day_runs_give_the_tables_and_answers_of_one_full_run() {
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    // Day 1: the first three objects of partition 0; day 2: the rest of it; day 3: partition 1
    // (with the second delivery of post 1 and a malformed pin).
    let days: [&dyn Fn(u32, u64) -> bool; 3] = [&|p, s| p == 0 && s < 3, &|p, _| p == 0, &|_, _| true];
    let mut added = Vec::new();
    for (day, keep) in days.iter().enumerate() {
        write_objects(&objects, "pinterest", keep, None);
        let out = run(dir.path(), &format!("day{day}"), false).await;
        assert_eq!(out.summary.mode, "incremental");
        // The first run computes the aggregates; later ones add their new rows to them.
        assert_eq!(out.summary.answers_from, if day == 0 { "recomputed" } else { "updated" });
        added.push((out.summary.objects.pin, out.summary.clean_rows.pin, out.summary.duplicates_dropped.pin));
    }
    // Each day read only its new objects; the repeat of post 1 on day 3 was dropped against the table.
    assert_eq!(added, [(3, 3, 0), (2, 2, 0), (1, 5, 1)]);
    assert_eq!(answers(dir.path(), "day2"), golden_answers());
    let incremental = tables(dir.path()).await;
    assert_eq!(incremental.iter().map(|t| t.1.len()).collect::<Vec<_>>(), [10, 10, 10]);

    // A run with nothing new changes no table and answers the same.
    let out = run(dir.path(), "again", false).await;
    assert_eq!(out.summary.objects.total(), 0);
    assert_eq!(out.summary.answers_from, "unchanged");
    assert!(out.summary.tables.values().all(|t| !t.committed), "{:?}", out.summary.tables);
    assert_eq!(tables(dir.path()).await, incremental);
    assert_eq!(answers(dir.path(), "again"), golden_answers());

    // --full rebuilds from every object: the same rows, in one new version each.
    let out = run(dir.path(), "full", true).await;
    assert_eq!(out.summary.mode, "full");
    assert_eq!(out.summary.answers_from, "recomputed");
    assert_eq!(out.summary.objects.pin, 6);
    let rebuilt = tables(dir.path()).await;
    assert_eq!(rows_only(&rebuilt), rows_only(&incremental));
    for (before, after) in incremental.iter().zip(&rebuilt) {
        assert_eq!(after.0, before.0.map(|v| v + 1));
    }
    assert_eq!(answers(dir.path(), "full"), golden_answers());

    // And a fresh warehouse over the same objects in one run holds the same rows.
    let other = tempfile::tempdir().unwrap();
    write_fixture(&other.path().join("objects"), "pinterest");
    run(other.path(), "once", false).await;
    assert_eq!(rows_only(&tables(other.path()).await), rows_only(&incremental));
}

#[tokio::test]
async fn a_post_repeated_in_a_later_run_is_dropped_even_without_fingerprint_files() {
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    write_fixture(&objects, "pinterest");
    run(dir.path(), "first", false).await;
    let before = tables(dir.path()).await;
    // Weeks later, posts 2 and 7 arrive again in a new object of partition 1, with one new post.
    let fresh = r#"{"index": 99, "unique_id": "u-99", "category": "art", "poster_name": "P9", "follower_count": "9"}"#;
    let repeat = |ind: i64| {
        let posts = super::posts();
        let p = posts.iter().find(|p| p.0 == ind).unwrap();
        super::records(p)[0].to_string()
    };
    let body = format!("{}\n{}\n{fresh}\n", repeat(2), repeat(7));
    std::fs::write(objects.join("topics/pinterest.pin/partition=1/pinterest.pin+1+0000000008.json"), body).unwrap();
    // The fingerprint files are gone (an older pinpipe wrote the table): computed from the data.
    std::fs::remove_dir_all(dir.path().join("warehouse/batch/pinterest_pin_table/_pinpipe_fingerprints")).unwrap();
    let out = run(dir.path(), "later", false).await;
    assert_eq!((out.summary.objects.pin, out.summary.raw_records.pin), (1, 3));
    assert_eq!((out.summary.duplicates_dropped.pin, out.summary.clean_rows.pin), (2, 1));
    assert_eq!(out.summary.table_rows.pin, 11);
    let after = tables(dir.path()).await;
    assert_eq!(after[0].1.len(), 11);
    assert!(after[0].1.iter().any(|r| r.contains("\"ind\":99")));
    assert_eq!(after[1], before[1], "geo unchanged");
    // The fingerprint files were written again: a third run with the same repeat drops it too.
    assert!(
        dir.path().join("warehouse/batch/pinterest_pin_table/_pinpipe_fingerprints").read_dir().unwrap().count() >= 2
    );
    std::fs::write(
        objects.join("topics/pinterest.pin/partition=1/pinterest.pin+1+0000000011.json"),
        format!("{}\n{fresh}\n", repeat(3)),
    )
    .unwrap();
    let out = run(dir.path(), "third", false).await;
    assert_eq!((out.summary.duplicates_dropped.pin, out.summary.clean_rows.pin), (2, 0));
}

#[tokio::test]
async fn a_low_memory_limit_spills_and_gives_the_same_tables_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    // Enough rows that the second run's new rows exceed a quarter of 16 MiB, and that the joins
    // of the questions do not fit in it either.
    write_many(&objects, 0, 20_000);
    run(dir.path(), "first", false).await;
    write_many(&objects, 20_000, 45_000);
    let mut j = job(dir.path(), "second", false);
    j.memory_limit = crate::config::MIN_MEMORY_LIMIT;
    let low = crate::run(&j).await.unwrap();
    assert!(low.summary.ingested["pinterest_pin_table"].spilled, "{:?}", low.summary.ingested);
    assert!(low.summary.joins_on_disk);
    assert_eq!(std::fs::read_dir(dir.path().join("spill")).unwrap().count(), 0, "spill files are removed");

    let other = tempfile::tempdir().unwrap();
    write_many(&other.path().join("objects"), 0, 45_000);
    let roomy = run(other.path(), "once", false).await;
    assert!(!roomy.summary.ingested["pinterest_pin_table"].spilled && !roomy.summary.joins_on_disk);
    assert_eq!(rows_only(&tables(dir.path()).await), rows_only(&tables(other.path()).await));
    assert_eq!(answers(dir.path(), "second"), answers(other.path(), "once"));
    assert_eq!(low.summary.table_rows, roomy.summary.table_rows);
    // Posts 40,000 on repeat the first run's rows: dropped against the table.
    assert_eq!(low.summary.duplicates_dropped.pin, 5_000);
    assert_eq!(low.summary.table_rows.pin, 40_000);
}

#[tokio::test]
async fn updated_aggregates_answer_as_a_run_over_everything_also_when_records_arrive_late() {
    use pinpipe_model::Kind;
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    // Run 1: pins of posts 0..3,000, but geo and user records only up to 2,000 (the rest are
    // late). Run 2: the late records, and posts 3,000..3,500 (repeated users and posters, new
    // countries' top posters). Run 3: posts 3,500..4,000.
    write_kinds(&objects, &[Kind::Pin], 0, 3_000);
    write_kinds(&objects, &[Kind::Geo, Kind::User], 0, 2_000);
    let first = run(dir.path(), "one", false).await;
    assert_eq!(first.summary.answers_from, "recomputed");
    write_kinds(&objects, &[Kind::Pin], 3_000, 3_500);
    write_kinds(&objects, &[Kind::Geo, Kind::User], 2_000, 3_500);
    let second = run(dir.path(), "two", false).await;
    assert_eq!(second.summary.answers_from, "updated");
    assert_ne!(answers(dir.path(), "two"), answers(dir.path(), "one"));
    let saved = dir.path().join("warehouse/batch/_pinpipe_aggregates");
    let after_two = std::fs::read(&saved).unwrap();

    let reference = |to: u64, name: &'static str| async move {
        let other = tempfile::tempdir().unwrap();
        write_kinds(&other.path().join("objects"), &Kind::ALL, 0, to);
        let out = run(other.path(), name, false).await;
        assert_eq!(out.summary.answers_from, "recomputed");
        answers(other.path(), name)
    };
    assert_eq!(answers(dir.path(), "two"), reference(3_500, "two").await);

    // Run 3 as if run 2 had been killed after its commits, before saving the aggregates: the
    // aggregates of run 1 get the files of runs 2 and 3 added.
    let mut older = dir.path().join("older");
    std::fs::create_dir_all(&older).unwrap();
    older.push("aggregates");
    std::fs::copy(&saved, &older).unwrap();
    write_kinds(&objects, &Kind::ALL, 3_500, 4_000);
    let before_three = std::fs::read(&saved).unwrap();
    assert_eq!(before_three, after_two);
    std::fs::write(&saved, std::fs::read(&older).unwrap()).unwrap();
    let third = run(dir.path(), "three", false).await;
    assert_eq!(third.summary.answers_from, "updated");
    let expected = reference(4_000, "three").await;
    assert_eq!(answers(dir.path(), "three"), expected);

    // Unreadable aggregates are recomputed, with the same answers.
    std::fs::write(&saved, b"{\"format\": 1, torn").unwrap();
    let out = run(dir.path(), "four", false).await;
    assert_eq!(out.summary.answers_from, "recomputed");
    assert_eq!(answers(dir.path(), "four"), expected);
    let out = run(dir.path(), "five", false).await;
    assert_eq!(out.summary.answers_from, "unchanged");
    assert_eq!(answers(dir.path(), "five"), expected);
}

/// Posts `from..to` of the topics of `kinds`, as [`write_many`] writes them.
fn write_kinds(objects: &Path, kinds: &[pinpipe_model::Kind], from: u64, to: u64) {
    let g = pinpipe_source::Generator::new(11, 40_000);
    for &kind in kinds {
        write_posts(objects, &g, kind, from, to);
    }
}

/// Posts `from..to`: post i is source row i·7919 mod 40,000 (so posts 40,000 on repeat earlier
/// ones), one object per 1,000 posts.
fn write_many(objects: &Path, from: u64, to: u64) {
    write_kinds(objects, &pinpipe_model::Kind::ALL, from, to);
}

fn write_posts(objects: &Path, g: &pinpipe_source::Generator, kind: pinpipe_model::Kind, from: u64, to: u64) {
    let topic = format!("pinterest.{kind}");
    let part = objects.join(format!("topics/{topic}/partition=0"));
    std::fs::create_dir_all(&part).unwrap();
    for start in (from..to).step_by(1_000) {
        let mut body = String::new();
        for i in start..(start + 1_000).min(to) {
            let row = (i * 7_919 % 40_000) as i64;
            body.push_str(&g.post(row).json(kind).to_string());
            body.push('\n');
        }
        std::fs::write(part.join(format!("{topic}+0+{start:010}.json")), body).unwrap();
    }
}

#[tokio::test]
async fn a_second_run_at_the_same_time_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(&dir.path().join("objects"), "pinterest");
    let warehouse = pinpipe_store::StoreConfig::default().validate_or(dir.path().join("warehouse")).unwrap();
    let held = warehouse.lease(crate::LEASE, "pinpipe batch", pinpipe_store::lease::DEFAULT_TTL).await.unwrap();
    let e = crate::run(&job(dir.path(), "second", false)).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Store(pinpipe_store::Error::LeaseHeld { .. })), "{msg}");
    assert!(msg.contains("held by pinpipe batch") && msg.contains("another job"), "{msg}");
    assert!(tables(dir.path()).await.iter().all(|t| t.0.is_none()), "no table was created");
    drop(held);
    run(dir.path(), "after", false).await;
    assert_eq!(answers(dir.path(), "after"), golden_answers());
}

#[tokio::test]
async fn a_table_written_by_something_else_is_refused_and_left_alone() {
    use deltalake::arrow::array::{Int64Array, RecordBatch};
    use deltalake::arrow::datatypes::{DataType, Field, Schema};
    let dir = tempfile::tempdir().unwrap();
    write_fixture(&dir.path().join("objects"), "pinterest");
    // Someone else's table where the geo table belongs.
    let path = dir.path().join("warehouse/batch/pinterest_geo_table");
    std::fs::create_dir_all(&path).unwrap();
    let schema = std::sync::Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(schema, vec![std::sync::Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
    let theirs = deltalake::DeltaTable::try_from_url(url::Url::from_directory_path(&path).unwrap()).await.unwrap();
    theirs.write(vec![batch]).await.unwrap();
    let before = table(dir.path(), "pinterest_geo_table").await;

    let e = crate::run(&job(dir.path(), "r", false)).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::NotOurs { .. }), "{msg}");
    assert!(
        msg.contains("pinterest_geo_table") && msg.contains("not written by pinpipe") && !msg.contains('\n'),
        "{msg}"
    );
    assert_eq!(table(dir.path(), "pinterest_geo_table").await, before);
}

#[tokio::test]
async fn a_store_that_cannot_be_read_fails_in_one_line_and_changes_nothing() {
    let Some(endpoint) = pinpipe_testkit::service_url("TEST_PINPIPE_S3_ENDPOINT") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path(), "r", false);
    // A bucket that does not exist on the S3 server.
    j.input = pinpipe_store::StoreConfig {
        url: Some("s3://pinpipe-no-such-bucket/raw".into()),
        s3_endpoint: Some(endpoint),
        s3_region: Some("us-east-1".into()),
    }
    .validate(dir.path())
    .unwrap()
    .open()
    .unwrap();
    let e = crate::run(&j).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("cannot list") && msg.contains("raw/topics/pinterest.pin"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert!(tables(dir.path()).await.iter().all(|t| t.0.is_none()), "no table was created");
}
