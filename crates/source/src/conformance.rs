//! The conformance suite of the source port: every backend runs the same checks.
//! SQLite always runs; PostgreSQL and MariaDB run against the servers `.ci/run` starts.

#![allow(clippy::unwrap_used)]

use pinpipe_model::{Post, time};
use pinpipe_testkit::{Server, TestDb};

use crate::ops::{self, KeyRange};
use crate::store::{Rows, SourceStore};
use crate::{Error, Generator};

/// Rows that stress every type: nulls in every nullable column, unicode, characters that need
/// escaping in SQL/COPY, extreme numbers, sparse and negative keys.
fn edge_posts() -> Vec<Post> {
    let g = Generator::new(1, 100);
    let mut all_null = g.post(-5);
    let p = &mut all_null.pin;
    (p.unique_id, p.title, p.description, p.poster_name, p.follower_count) = (None, None, None, None, None);
    (p.tag_list, p.is_image_or_video, p.image_src, p.downloaded, p.save_location, p.category) =
        (None, None, None, None, None, None);
    all_null.geo = pinpipe_model::RawGeo { ind: -5, timestamp: None, latitude: None, longitude: None, country: None };
    all_null.user = pinpipe_model::RawUser { ind: -5, first_name: None, last_name: None, age: None, date_joined: None };

    let mut weird = g.post(1_000_000_007);
    weird.pin.title = Some("tab\there \\N back\\slash \"quotes\" 'single' new\nline\r ✨ 可爱 🎄".into());
    weird.pin.description = Some(String::new());
    weird.pin.downloaded = Some(i64::MAX);
    weird.geo.latitude = Some(-89.9787);
    weird.geo.longitude = Some(1e-7);
    weird.geo.timestamp = Some(time::parse("2020-02-29 23:59:59.123456").unwrap());
    weird.user.age = Some(-1);
    weird.user.first_name = Some("Zoë O'Brien; DROP TABLE user_data;--".into());
    vec![all_null, weird]
}

async fn suite(store: &dyn SourceStore) {
    // Before anything exists.
    assert!(!store.tables_exist().await.unwrap());
    assert!(matches!(store.counts().await, Err(Error::NoTables { .. })));
    assert!(matches!(ops::post(store, 1).await, Err(Error::NoTables { .. })));

    store.create_tables(false).await.unwrap();
    assert!(store.tables_exist().await.unwrap());
    assert_eq!(store.counts().await.unwrap().pinterest_data, 0);
    assert_eq!(store.key_range().await.unwrap(), None);
    assert_eq!(store.next_key(0).await.unwrap(), None);

    // Round trip: what goes in comes out identical.
    let g = Generator::new(9, 40);
    let mut posts: Vec<Post> = (0..40).map(|r| g.post(r * 3)).collect();
    posts.extend(edge_posts());
    store.insert(Rows::from_posts(posts.clone())).await.unwrap();
    for p in &posts {
        assert_eq!(store.post(p.pin.index).await.unwrap().as_ref(), Some(p), "row {}", p.pin.index);
    }
    let c = store.counts().await.unwrap();
    assert_eq!((c.pinterest_data, c.geolocation_data, c.user_data), (42, 42, 42));
    assert_eq!(store.key_range().await.unwrap(), Some((-5, 1_000_000_007)));
    assert_eq!(store.next_key(4).await.unwrap(), Some(6));
    assert_eq!(store.next_key(6).await.unwrap(), Some(6));
    assert_eq!(store.next_key(1_000_000_008).await.unwrap(), None);
    assert_eq!(store.post(4).await.unwrap(), None);

    // Pages walk the table in key order without gaps or repeats.
    let mut sorted = posts.clone();
    sorted.sort_by_key(|p| p.pin.index);
    let mut walked = Vec::new();
    let mut next = i64::MIN;
    loop {
        let page = store.posts_from(next, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 7);
        next = last.pin.index + 1;
        walked.extend(page);
    }
    assert_eq!(walked, sorted);

    // Random rows come from the table.
    let range = KeyRange::of(store).await.unwrap().unwrap();
    let mut rng = <rand_pcg::Pcg64Mcg as rand::SeedableRng>::seed_from_u64(1);
    for _ in 0..20 {
        let p = range.random_post(store, &mut rng).await.unwrap().unwrap();
        assert!(posts.contains(&p));
    }

    // A batch is atomic: a duplicate key fails it and nothing of it stays.
    let mut batch = Rows::from_posts(vec![g.post(1000), g.post(1001)]);
    batch.users.push(posts[0].user.clone());
    assert!(store.insert(batch).await.is_err());
    assert_eq!(store.counts().await.unwrap().pinterest_data, 42);
    assert_eq!(store.post(1000).await.unwrap(), None);

    // A pin whose geo row is missing is reported, not papered over.
    store.insert(Rows { pins: vec![g.post(2000).pin], ..Rows::default() }).await.unwrap();
    assert!(matches!(store.post(2000).await, Err(Error::Inconsistent { key: 2000, missing_in: "geolocation_data" })));

    // Creating again keeps data; generating into a non-empty source is refused.
    store.create_tables(false).await.unwrap();
    assert_eq!(store.counts().await.unwrap().pinterest_data, 43);
    let e = ops::generate(store, 10, 1, false, |_| {}).await.unwrap_err();
    assert!(matches!(e, Error::NotEmpty { rows: 43, .. }), "{e}");

    // Replacing starts over; generation is deterministic and complete.
    let mut seen = Vec::new();
    let report = ops::generate(store, 25_000, 5, true, |n| seen.push(n)).await.unwrap();
    assert_eq!(report.rows, 25_000);
    assert_eq!(seen, [10_000, 20_000, 25_000]);
    let c = store.counts().await.unwrap();
    assert_eq!((c.pinterest_data, c.geolocation_data, c.user_data), (25_000, 25_000, 25_000));
    let g = Generator::new(5, 25_000);
    for r in [0, 1, 9_999, 10_000, 24_999] {
        assert_eq!(store.post(r).await.unwrap(), Some(g.post(r)));
    }
}

#[tokio::test]
async fn sqlite_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::sqlite::SqliteStore::open(&dir.path().join("nested/source.db")).await.unwrap();
    suite(&store).await;
}

#[tokio::test]
async fn postgres_passes_the_suite() {
    let Some(db) = TestDb::create(Server::Postgres).await else { return };
    let store = crate::postgres::PostgresStore::connect(&db.url).await.unwrap();
    suite(&store).await;
}

#[tokio::test]
async fn mysql_passes_the_suite() {
    let Some(db) = TestDb::create(Server::MySql).await else { return };
    let store = crate::mysql::MySqlStore::connect(&db.url).await.unwrap();
    suite(&store).await;
}

#[tokio::test]
async fn unreachable_servers_fail_fast_with_the_target_named() {
    for url in ["postgres://u:secret@127.0.0.1:1/db", "mysql://u:secret@127.0.0.1:1/db"] {
        let start = std::time::Instant::now();
        let err = crate::SourceUrl::parse(url).unwrap().open().await.err().unwrap();
        let text = err.to_string();
        assert!(text.starts_with("cannot connect to source database"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert!(start.elapsed() < std::time::Duration::from_secs(15));
    }
}
