use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use pinpipe_model::Kind;

use crate::{Cleaner, Origin, dedup};

fn origin(line: u64) -> impl FnOnce() -> Origin {
    move || Origin::Object { path: "topics/p.pin/partition=0/p.pin+0+0000000000.json".into(), line }
}

fn strings(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    b.column_by_name(col).unwrap().as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect()
}

fn ints(b: &RecordBatch, col: &str) -> Vec<Option<i64>> {
    b.column_by_name(col).unwrap().as_primitive::<Int64Type>().iter().collect()
}

const PIN_ALL_PLACEHOLDERS: &str = r#"{"index":1,"unique_id":"u1","title":"No Title Data Available","description":"No description available Story format","poster_name":"User Info Error","follower_count":"User Info Error","tag_list":"N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e","is_image_or_video":"multi-video(story page format)","image_src":"Image src error.","downloaded":0,"save_location":"Local save in /data/art","category":"art"}"#;
// The same placeholder texts in other columns stay as they are.
const PIN_TEXTS_ELSEWHERE: &str = r#"{"index":2,"unique_id":"u2","title":"Untitled","description":"No Title Data Available","poster_name":"Image src error.","follower_count":"51k","tag_list":"User Info Error","is_image_or_video":"image","image_src":"https://i.pinimg.com/x.jpg","downloaded":1,"save_location":"Local save in /data/quotes","category":"quotes"}"#;

#[test]
fn pin_placeholders_become_null_only_in_their_own_column() {
    let mut c = Cleaner::new(Kind::Pin).unwrap();
    assert!(c.push(PIN_ALL_PLACEHOLDERS.as_bytes(), origin(1)));
    assert!(c.push(PIN_TEXTS_ELSEWHERE.as_bytes(), origin(2)));
    assert!(c.push(br#"{"index":3,"follower_count":"1M","description":"Untitled"}"#, origin(3)));
    assert!(c.push(br#"{"index":4,"follower_count":"305","description":"No description available"}"#, origin(4)));
    let out = c.finish().unwrap();
    let b = &out.batch().unwrap();
    assert_eq!(b.schema(), pinpipe_model::schema::clean(Kind::Pin));
    assert_eq!(ints(b, "ind"), [Some(1), Some(2), Some(3), Some(4)]);
    assert_eq!(ints(b, "follower_count"), [None, Some(51_000), Some(1_000_000), Some(305)]);
    assert_eq!(strings(b, "title"), [None, Some("Untitled".into()), None, None]);
    assert_eq!(strings(b, "description"), [None, Some("No Title Data Available".into()), None, None]);
    assert_eq!(strings(b, "poster_name"), [None, Some("Image src error.".into()), None, None]);
    assert_eq!(strings(b, "tag_list"), [None, Some("User Info Error".into()), None, None]);
    assert_eq!(strings(b, "image_src"), [None, Some("https://i.pinimg.com/x.jpg".into()), None, None]);
    assert_eq!(strings(b, "save_location"), [Some("/data/art".into()), Some("/data/quotes".into()), None, None]);
    assert_eq!(strings(b, "is_image_or_video")[0].as_deref(), Some("multi-video(story page format)"));
    assert!(out.dead_letters.is_empty());
    assert_eq!(out.records, 4);
}

#[test]
fn geo_and_user_columns() {
    let mut g = Cleaner::new(Kind::Geo).unwrap();
    assert!(g.push(
        br#"{"ind":7528,"timestamp":"2020-08-28T03:52:47","latitude":-89.9787,"longitude":-173.293,"country":"Albania"}"#,
        origin(1)
    ));
    assert!(g.push(
        br#"{"ind":9,"timestamp":"2019-01-01 07:21:13","latitude":1,"longitude":null,"country":null}"#,
        origin(2)
    ));
    let b = g.finish().unwrap().batch().unwrap();
    assert_eq!(b.schema(), pinpipe_model::schema::clean(Kind::Geo));
    let coords = b.column_by_name("coordinates").unwrap().as_list::<i32>();
    let first: Vec<Option<f64>> = coords.value(0).as_primitive::<Float64Type>().iter().collect();
    assert_eq!(first, [Some(-89.9787), Some(-173.293)]);
    let second: Vec<Option<f64>> = coords.value(1).as_primitive::<Float64Type>().iter().collect();
    assert_eq!(second, [Some(1.0), None]);
    let ts: Vec<Option<i64>> =
        b.column_by_name("timestamp").unwrap().as_primitive::<TimestampMicrosecondType>().iter().collect();
    assert_eq!(ts, [Some(1_598_586_767_000_000), Some(1_546_327_273_000_000)]);
    assert_eq!(strings(&b, "country"), [Some("Albania".into()), None]);

    let mut u = Cleaner::new(Kind::User).unwrap();
    assert!(u.push(
        br#"{"ind":7528,"first_name":"Abigail","last_name":"Ali","age":20,"date_joined":"2015-10-24T11:23:51"}"#,
        origin(1)
    ));
    assert!(u.push(br#"{"ind":5,"first_name":"Zo\u00eb","last_name":null,"age":null,"date_joined":null}"#, origin(2)));
    let b = u.finish().unwrap().batch().unwrap();
    assert_eq!(b.schema(), pinpipe_model::schema::clean(Kind::User));
    assert_eq!(strings(&b, "user_name"), [Some("Abigail Ali".into()), None]);
    assert_eq!(ints(&b, "age"), [Some(20), None]);
    assert_eq!(b.column_by_name("date_joined").unwrap().null_count(), 1);
}

#[test]
fn bad_records_become_dead_letters_with_reason_and_origin() {
    let mut c = Cleaner::new(Kind::Pin).unwrap();
    let bad: [&[u8]; 6] = [
        b"{not json",
        br#"{"unique_id":"no key"}"#,
        br#"{"index":"7","title":"key of the wrong type"}"#,
        br#"{"index":8,"follower_count":"12x"}"#,
        br#"{"index":9,"downloaded":"yes"}"#,
        b"[1,2]",
    ];
    for (i, r) in bad.iter().enumerate() {
        assert!(!c.push(r, origin(i as u64 + 1)));
    }
    assert!(!c.push(b"   \n", origin(99)), "blank lines are not records");
    assert!(c.push(br#"{"index":10,"extra_field":"ignored"}"#, origin(7)));
    let out = c.finish().unwrap();
    assert_eq!(out.rows(), 1);
    assert_eq!(out.records, 7);
    assert_eq!(out.dead_letters.len(), 6);
    let reasons: Vec<&str> = out.dead_letters.iter().map(|d| d.reason.as_str()).collect();
    assert!(reasons[0].starts_with("not a valid pin record"), "{reasons:?}");
    assert!(reasons[1].contains("missing field `index`"), "{reasons:?}");
    assert!(reasons[2].contains("invalid type"), "{reasons:?}");
    assert!(reasons[3].contains("follower_count \"12x\""), "{reasons:?}");
    assert!(reasons[4].contains("invalid type"), "{reasons:?}");
    let d = &out.dead_letters[3];
    assert_eq!(d.record, r#"{"index":8,"follower_count":"12x"}"#);
    assert_eq!(d.origin, Origin::Object { path: "topics/p.pin/partition=0/p.pin+0+0000000000.json".into(), line: 4 });
    let json = serde_json::to_value(d).unwrap();
    assert_eq!(json["kind"], "pin");
    assert_eq!(json["origin"]["source"], "object");
    assert_eq!(json["origin"]["line"], 4);

    let mut g = Cleaner::new(Kind::Geo).unwrap();
    assert!(!g.push(br#"{"ind":1,"timestamp":"28/08/2020","latitude":1.0,"longitude":2.0,"country":"X"}"#, origin(1)));
    let mut u = Cleaner::new(Kind::User).unwrap();
    assert!(!u.push(br#"{"ind":1,"first_name":"a","last_name":"b","age":"old","date_joined":null}"#, origin(1)));
    assert!(g.finish().unwrap().dead_letters[0].reason.contains("timestamp \"28/08/2020\""));
    assert_eq!(u.finish().unwrap().dead_letters.len(), 1);
}

#[test]
fn exact_duplicates_are_dropped_across_chunks_keeping_the_first() {
    let mut a = Cleaner::new(Kind::User).unwrap();
    let dup = br#"{"ind":1,"first_name":"A","last_name":"B","age":30,"date_joined":"2016-01-01T00:00:00"}"#;
    assert!(a.push(dup, origin(1)));
    assert!(a.push(dup, origin(2)));
    // Same key, one value different: not a duplicate.
    assert!(a.push(
        br#"{"ind":1,"first_name":"A","last_name":"B","age":31,"date_joined":"2016-01-01T00:00:00"}"#,
        origin(3)
    ));
    let first = a.finish().unwrap();
    // The same record in a later chunk, written differently (space, key order): still a duplicate.
    assert!(a.push(
        br#"{"date_joined":"2016-01-01 00:00:00","ind":1,"age":30,"first_name":"A","last_name":"B"}"#,
        origin(1)
    ));
    assert!(a.push(
        br#"{"ind":2,"first_name":"A","last_name":"B","age":30,"date_joined":"2016-01-01T00:00:00"}"#,
        origin(2)
    ));
    let second = a.finish().unwrap();
    let out = dedup(vec![first, second]).unwrap();
    assert_eq!(ints(&out[0], "age"), [Some(30), Some(31)]);
    assert_eq!(ints(&out[1], "ind"), [Some(2)]);
}

#[test]
fn fingerprints_tell_rows_apart_by_every_value_and_survive_a_cast() {
    use arrow_array::{Array, ArrayRef, StringViewArray};
    let mut c = Cleaner::new(Kind::User).unwrap();
    for (i, r) in [
        br#"{"ind":1,"first_name":"A","last_name":"B","age":1,"date_joined":null}"#.as_slice(),
        br#"{"ind":1,"first_name":"A","last_name":"B","age":null,"date_joined":null}"#,
        br#"{"ind":1,"first_name":"A","last_name":"B","age":0,"date_joined":null}"#,
        br#"{"ind":1,"first_name":"A","last_name":"B ","age":1,"date_joined":null}"#,
        br#"{"ind":1,"first_name":"A","last_name":"B","age":1,"date_joined":"2015-01-01T00:00:00"}"#,
        br#"{"ind":2,"first_name":"A","last_name":"B","age":1,"date_joined":null}"#,
        br#"{"ind":1,"first_name":"A","age":1,"date_joined":null}"#,
    ]
    .iter()
    .enumerate()
    {
        assert!(c.push(r, origin(i as u64)));
    }
    let chunk = c.finish().unwrap();
    let fps = &chunk.fingerprints;
    assert_eq!(fps.len(), 7);
    let distinct: std::collections::HashSet<_> = fps.iter().collect();
    assert_eq!(distinct.len(), 7, "every row differs in one value");
    // The same rows read back with strings as views (as from Parquet) have the same fingerprints.
    let mut columns: Vec<ArrayRef> = chunk.batch().unwrap().columns().to_vec();
    let names = columns[1].as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
    columns[1] = std::sync::Arc::new(names.iter().collect::<StringViewArray>());
    let schema = arrow_schema::Schema::new(
        chunk
            .batch()
            .unwrap()
            .schema()
            .fields()
            .iter()
            .zip(&columns)
            .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
            .collect::<Vec<_>>(),
    );
    let viewed = arrow_array::RecordBatch::try_new(std::sync::Arc::new(schema), columns).unwrap();
    assert_eq!(&crate::Fingerprinter::new(Kind::User).unwrap().fingerprints(&viewed).unwrap(), fps);
    // A raw record's fingerprint ignores the whitespace the cleaner trims.
    assert_eq!(crate::raw_fingerprint(b" {} \n"), crate::raw_fingerprint(b"{}"));
    assert_ne!(crate::raw_fingerprint(b"{\"a\":1}"), crate::raw_fingerprint(b"{\"a\":2}"));
}

#[test]
fn a_shared_set_keeps_each_row_once_across_threads() {
    let user = |ind: i64| format!(r#"{{"ind":{ind},"first_name":"A","last_name":"B","age":1,"date_joined":null}}"#);
    let set = crate::FingerprintSet::default();
    let kept: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut c = Cleaner::new(Kind::User).unwrap();
                    for ind in 0..1000 {
                        c.push(user(ind % 600).as_bytes(), origin(0));
                    }
                    let mut chunk = c.finish().unwrap();
                    let dropped = chunk.retain_new(&set).unwrap();
                    assert_eq!(dropped + chunk.rows(), 1000);
                    assert_eq!(chunk.fingerprints.len(), chunk.rows());
                    chunk.rows()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_eq!(kept, 600);
    assert_eq!(set.len(), 600);
}

#[test]
fn inserting_many_at_once_marks_only_first_occurrences_new() {
    let set = crate::FingerprintSet::default();
    assert!(set.insert(7));
    // Spread over shards (the high bits pick one) and repeated within the call.
    let fps = [1u128 << 127, 7, 3, 1u128 << 127, 5 | (1u128 << 123), 3, 7];
    assert_eq!(set.insert_all(&fps), [true, false, true, false, true, false, false]);
    assert_eq!(set.len(), 4);
    assert_eq!(set.insert_all(&[]), Vec::<bool>::new());
}

#[test]
fn the_set_agrees_with_a_hash_set_through_growth_collisions_and_zero() {
    use std::collections::HashSet;
    let set = crate::FingerprintSet::default();
    let mut reference = HashSet::new();
    assert!(!set.contains(0) && !set.contains(u128::MAX));
    // Uniform fingerprints (a fixed xorshift), and colliding ones: all in one shard with the same
    // 64 low bits, so they share a first slot and probe past each other (and around the table's
    // end); and 0, which marks empty slots inside a table.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut fps: Vec<u128> = (0..20_000).map(|_| (u128::from(next()) << 64) | u128::from(next())).collect();
    fps.extend((1..2_000u128).map(|k| (k << 64) | u128::from(u64::MAX)));
    fps.push(0);
    // Every fingerprint offered three times, singly and in batches, in a shuffled order.
    let mut offers: Vec<u128> = fps.iter().chain(&fps).chain(&fps).copied().collect();
    for i in (1..offers.len()).rev() {
        offers.swap(i, next() as usize % (i + 1));
    }
    for (n, batch) in offers.chunks(997).enumerate() {
        if n % 2 == 0 {
            let expected: Vec<bool> = batch.iter().map(|fp| reference.insert(*fp)).collect();
            assert_eq!(set.insert_all(batch), expected);
        } else {
            for fp in batch {
                assert_eq!(set.insert(*fp), reference.insert(*fp), "{fp:#x}");
            }
        }
    }
    assert_eq!(set.len(), fps.len());
    assert!(fps.iter().all(|fp| set.contains(*fp)));
    // Absent ones: same first slot as present ones, or anywhere.
    assert!(!set.contains((5_000u128 << 64) | u128::from(u64::MAX)));
    assert!((0..1_000).all(|_| {
        let fp = (u128::from(next()) << 64) | u128::from(next());
        set.contains(fp) == reference.contains(&fp)
    }));
    // The colliding ones sit in one run of slots; nothing else is displaced far.
    assert!(set.longest_probe() >= 1_998, "{}", set.longest_probe());
    // At most seven slots in ten full.
    assert!(set.allocated_bytes() >= (fps.len() - 1) * 16 * 10 / 7, "{} bytes", set.allocated_bytes());
}

#[test]
fn fingerprints_crafted_to_share_low_bits_do_not_pile_up() {
    // What an attacker can make offline from public seeds: 20,000 fingerprints in one shard
    // whose low 24 bits are equal (about 2^24 tries each), as a table indexed by low bits would
    // put in one run of slots. The set's random multiplier spreads them.
    let set = crate::FingerprintSet::default();
    let crafted = (1..=20_000u128).map(|k| (k << 24) | 0xAB_CDEF);
    assert!(crafted.clone().all(|fp| set.insert(fp)));
    assert_eq!(set.len(), 20_000);
    assert!(set.longest_probe() < 64, "a run of {} slots", set.longest_probe());
    assert!(crafted.clone().all(|fp| set.contains(fp)));
    assert!(!set.contains(0xAB_CDEF));
}

mod columns;
mod fingerprints;
