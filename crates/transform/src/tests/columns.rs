//! The column-by-column path ([`Cleaner::push_raw_batch`], Parquet objects) against the
//! record-by-record path ([`Cleaner::push`], JSON lines) on the same records: every value a
//! rule treats specially, in every column, combined with the others, including records the
//! rules refuse. Same rows, same fingerprints, same dead letters (reason and line), in order.

use pinpipe_model::Kind;
use pinpipe_model::raw::placeholders as ph;
use serde_json::{Value, json};

use crate::{Cleaned, Cleaner, Origin, RawBuilder};

fn origin(line: usize) -> Origin {
    Origin::Object { path: "o".into(), line: line as u64 }
}

/// The records, as JSON, cleaned both ways; records the sink's raw schema cannot hold are left
/// out of both (the sink refuses those, before any cleaning).
fn both_ways(kind: Kind, records: &[Value], batch_rows: usize) -> (Cleaned, Cleaned, usize) {
    let mut raw = RawBuilder::new(kind);
    let mut by_row = Cleaner::new(kind).unwrap();
    let mut line = 0;
    for r in records {
        let bytes = serde_json::to_vec(r).unwrap();
        if raw.push(&bytes).is_ok() {
            line += 1;
            by_row.push(&bytes, || origin(line));
        }
    }
    let raw = raw.finish().unwrap();
    let mut by_column = Cleaner::new(kind).unwrap();
    let mut first = 0;
    while first < raw.num_rows() {
        let part = raw.slice(first, batch_rows.min(raw.num_rows() - first));
        by_column.push_raw_batch(&part, |i| origin(first + i + 1)).unwrap();
        first += part.num_rows();
    }
    (by_row.finish().unwrap(), by_column.finish().unwrap(), line)
}

fn assert_same(kind: Kind, records: &[Value], min_rows: usize, min_dead: usize) {
    for batch_rows in [1, 7, 4096] {
        let (by_row, by_column, offered) = both_ways(kind, records, batch_rows);
        assert_eq!(by_column.records, offered as u64);
        assert_eq!(by_row.records, by_column.records);
        assert_eq!(
            by_row.batch().unwrap(),
            by_column.batch().unwrap(),
            "{kind}: the clean rows differ ({batch_rows} rows a batch)"
        );
        assert_eq!(by_row.fingerprints, by_column.fingerprints);
        let reasons =
            |c: &Cleaned| c.dead_letters.iter().map(|d| (d.reason.clone(), d.origin.clone())).collect::<Vec<_>>();
        assert_eq!(reasons(&by_row), reasons(&by_column), "{kind}: the dead letters differ");
        assert!(by_row.rows() >= min_rows && by_row.dead_letters.len() >= min_dead, "{kind}: too few cases");
        // Dropping the same rows from both (as de-duplication does) keeps the same rows: the
        // column path's text is held as views, the row path's as plain strings.
        let (mut by_row, mut by_column) = (by_row, by_column);
        let keep: Vec<bool> = (0..by_row.rows()).map(|i| i % 3 != 1 && i % 11 != 0).collect();
        let dropped = keep.iter().filter(|k| !**k).count();
        assert_eq!(by_row.retain(&keep).unwrap(), dropped);
        assert_eq!(by_column.retain(&keep).unwrap(), dropped);
        assert_eq!(by_column.rows(), keep.len() - dropped);
        assert_eq!(by_row.batch().unwrap(), by_column.batch().unwrap(), "{kind}: the rows kept differ");
        assert_eq!(by_row.fingerprints, by_column.fingerprints);
    }
}

/// The `i`-th combination: value `i / stride % len` of each field's list (strides coprime
/// enough that every pair of values meets).
fn pick(values: &[Value], i: usize, stride: usize) -> &Value {
    &values[(i / stride) % values.len()]
}

fn texts(items: &[&str]) -> Vec<Value> {
    let mut v: Vec<Value> = items.iter().map(|s| json!(s)).collect();
    v.push(Value::Null);
    v
}

#[test]
fn pin_records_clean_the_same_by_column_as_by_row() {
    let odd = ["", " ", "naïve ✓ 中文", "line\nfeed", "tab\there", "\"quoted\"", "\u{0}nul"];
    let field = |special: &[&str]| texts(&[special, &odd[..]].concat());
    let title = field(&[ph::NO_TITLE, ph::UNTITLED, "A title"]);
    let description = field(&[ph::NO_DESCRIPTION, ph::NO_DESCRIPTION_STORY, ph::UNTITLED, ph::NO_TITLE, "About"]);
    let poster = field(&[ph::USER_INFO_ERROR, ph::IMAGE_SRC_ERROR, "Poster"]);
    let tags = field(&[ph::NO_TAGS, ph::USER_INFO_ERROR, "a,b,c"]);
    let image = field(&[ph::IMAGE_SRC_ERROR, "https://i.pinimg.com/x.jpg"]);
    let save =
        field(&[ph::SAVE_LOCATION_PREFIX, "Local save in /data/art", "Local save in Local save in x", "/data/y"]);
    let mut counts: Vec<Value> =
        ["305", "51k", "1M", "0", ph::USER_INFO_ERROR, "", "k", "1.5k", "12x", "99999999999999999999M"]
            .iter()
            .map(|s| json!(s))
            .collect();
    counts.extend([json!(305), json!(0), Value::Null]);
    let mut records = Vec::new();
    for i in 0..2000 {
        let mut r = json!({
            "index": i,
            "unique_id": pick(&texts(&["u-1", "u-2"]), i, 1),
            "title": pick(&title, i, 1),
            "description": pick(&description, i, 2),
            "poster_name": pick(&poster, i, 3),
            "follower_count": pick(&counts, i, 5),
            "tag_list": pick(&tags, i, 7),
            "is_image_or_video": pick(&texts(&ph::MEDIA_TYPES), i, 11),
            "image_src": pick(&image, i, 13),
            "downloaded": if i % 9 == 0 { Value::Null } else { json!(i % 2) },
            "save_location": pick(&save, i, 17),
            "category": pick(&texts(&["art", "quotes"]), i, 19),
        });
        if i % 23 == 0 {
            r.as_object_mut().unwrap().remove("title");
        }
        records.push(r);
    }
    assert_same(Kind::Pin, &records, 1000, 100);
}

#[test]
fn geo_records_clean_the_same_by_column_as_by_row() {
    let times = texts(&[
        "2020-08-28T03:52:47",
        "2020-08-28 03:52:47",
        "1970-01-01T00:00:00",
        "yesterday",
        "",
        "2020-13-01T00:00:00",
    ]);
    let floats = [json!(-89.9), json!(0), json!(180.0), json!(1e-300), Value::Null];
    let countries = texts(&["Albania", "Côte d'Ivoire", ""]);
    let records: Vec<Value> = (0..600)
        .map(|i| {
            json!({
                "ind": i,
                "timestamp": pick(&times, i, 1),
                "latitude": pick(&floats, i, 2),
                "longitude": pick(&floats, i, 3),
                "country": pick(&countries, i, 5),
            })
        })
        .collect();
    assert_same(Kind::Geo, &records, 300, 100);
}

#[test]
fn user_records_clean_the_same_by_column_as_by_row() {
    let names = texts(&["Abigail", "", "Zoë", "O'Brien"]);
    let times = texts(&["2015-10-20T07:46:26", "2015-10-20 07:46:26", "not a date"]);
    let ages = [json!(20), json!(0), json!(-1), Value::Null];
    let records: Vec<Value> = (0..600)
        .map(|i| {
            json!({
                "ind": i,
                "first_name": pick(&names, i, 1),
                "last_name": pick(&names, i, 2),
                "age": pick(&ages, i, 3),
                "date_joined": pick(&times, i, 5),
            })
        })
        .collect();
    assert_same(Kind::User, &records, 300, 100);
}

#[test]
fn json_and_parquet_rows_in_one_chunk_keep_their_order() {
    let json_record = br#"{"index":1,"title":"first"}"#;
    let mut raw = RawBuilder::new(Kind::Pin);
    raw.push(br#"{"index":2,"title":"second"}"#).unwrap();
    let raw = raw.finish().unwrap();
    let mut c = Cleaner::new(Kind::Pin).unwrap();
    c.push(json_record, || origin(1));
    c.push_raw_batch(&raw, |i| origin(i + 1)).unwrap();
    c.push(br#"{"index":3,"title":"third"}"#, || origin(2));
    let out = c.finish().unwrap();
    assert_eq!(super::ints(&out.batch().unwrap(), "ind"), [Some(1), Some(2), Some(3)]);
    assert_eq!(out.records, 3);
    assert_eq!(out.fingerprints.len(), 3);
}
