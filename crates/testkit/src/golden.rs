//! The golden fixture: ten posts (and a repeat, and a malformed record) in the sink layout,
//! chosen to hit every rule and edge of DESIGN.md's questions, with the answers worked out by hand
//! from the table below. The batch job's tests run it in one process; the cluster's, through a
//! Ballista cluster.

use std::path::Path;

use serde_json::{Value, json};

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

/// One post of the fixture: (ind, country, category, post time, poster, followers, first,
/// last, age, joined).
pub type Post = (
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

/// The posts of the fixture table, in `ind` order.
pub fn posts() -> Vec<Post> {
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

/// A post's pin, geo and user records, as the emulator posts them.
pub fn records(p: &Post) -> [Value; 3] {
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
pub fn write_objects(root: &Path, prefix: &str, keep: impl Fn(u32, u64) -> bool, lost: Option<(&str, i64)>) {
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
pub fn write_fixture(root: &Path, prefix: &str) {
    write_objects(root, prefix, |_, _| true, None);
}

/// The answers to the fixture, worked out by hand from the table in `posts()`.
pub fn golden() -> std::collections::BTreeMap<&'static str, Value> {
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
