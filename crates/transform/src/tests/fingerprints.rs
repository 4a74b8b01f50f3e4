//! The fingerprinter's row encoding against `arrow-row`'s own: the same bytes, so the same
//! fingerprints as every fingerprint stored beside a table (they were `XXH3-128` of
//! `RowConverter` rows).

use std::sync::Arc;

use arrow_array::builder::{Float64Builder, ListBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, LargeStringArray, RecordBatch, StringArray,
    StringViewArray, TimestampMicrosecondArray, TimestampMillisecondArray,
};
use arrow_row::{RowConverter, SortField};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use pinpipe_model::{Kind, schema};
use twox_hash::XxHash3_128;

use crate::Fingerprinter;
use crate::fingerprint::{RAW_SEED, ROW_SEED};

/// What fingerprints were before the fingerprinter encoded rows itself: `arrow-row`'s rows of
/// the columns cast to `schema`, hashed.
fn reference(schema: &SchemaRef, batch: &RecordBatch) -> Vec<u128> {
    let converter =
        RowConverter::new(schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect()).unwrap();
    let columns: Vec<ArrayRef> =
        schema.fields().iter().zip(batch.columns()).map(|(f, c)| arrow_cast::cast(c, f.data_type()).unwrap()).collect();
    let rows = converter.convert_columns(&columns).unwrap();
    rows.iter().map(|r| XxHash3_128::oneshot_with_seed(ROW_SEED, r.as_ref())).collect()
}

/// A small deterministic generator (no dependency for it).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Texts of every length around the row format's block boundaries (8, 32, 64 …), empty ones,
/// nulls, multi-byte characters and the bytes the format uses as markers.
fn text(g: &mut Lcg) -> Option<String> {
    let lengths = [0, 1, 7, 8, 9, 12, 13, 15, 16, 17, 24, 31, 32, 33, 40, 63, 64, 65, 95, 96, 97, 200, 511];
    match g.below(12) {
        0 => None,
        _ => {
            let len = lengths[g.below(lengths.len() as u64) as usize];
            let alphabet = ["a", "Z", "0", " ", "\u{0}", "é", "ÿ", "\u{7f}", "日", "🙂", ","];
            let mut s = String::new();
            while s.len() < len {
                s.push_str(alphabet[g.below(alphabet.len() as u64) as usize]);
            }
            Some(s)
        }
    }
}

fn int(g: &mut Lcg) -> Option<i64> {
    match g.below(10) {
        0 => None,
        1 => Some(i64::MIN),
        2 => Some(i64::MAX),
        3 => Some(-1),
        4 => Some(0),
        _ => Some(g.next() as i64 - (1 << 52)),
    }
}

fn float(g: &mut Lcg) -> Option<f64> {
    match g.below(12) {
        0 => None,
        1 => Some(-0.0),
        2 => Some(0.0),
        3 => Some(f64::NAN),
        4 => Some(f64::INFINITY),
        5 => Some(f64::NEG_INFINITY),
        6 => Some(f64::MIN_POSITIVE),
        _ => Some((g.next() as f64 - (1u64 << 52) as f64) / 1e3),
    }
}

/// A batch of every type the fingerprinter encodes itself (lists of floats among them) and one it
/// hands to `arrow-row` (booleans), more rows than `arrow-row` encodes at a time.
fn mixed(rows: usize) -> (SchemaRef, RecordBatch) {
    let mut g = Lcg(7);
    let texts: Vec<Option<String>> = (0..rows).map(|_| text(&mut g)).collect();
    let more: Vec<Option<String>> = (0..rows).map(|_| text(&mut g)).collect();
    let views: Vec<Option<String>> = (0..rows).map(|_| text(&mut g)).collect();
    let ints: Vec<Option<i64>> = (0..rows).map(|_| int(&mut g)).collect();
    let floats: Vec<Option<f64>> = (0..rows).map(|_| float(&mut g)).collect();
    let times: Vec<Option<i64>> = (0..rows).map(|_| int(&mut g)).collect();
    let mut list = ListBuilder::new(Float64Builder::new()).with_field(schema::coordinates_item());
    for _ in 0..rows {
        match g.below(6) {
            0 => list.append_null(),
            _ => {
                for _ in 0..g.below(3) {
                    list.values().append_option(float(&mut g));
                }
                list.append(true);
            }
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, true),
        Field::new("t", DataType::Utf8, true),
        Field::new("f", DataType::Float64, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("l", DataType::List(schema::coordinates_item()), true),
        Field::new("v", DataType::Utf8, true),
        Field::new("large", DataType::LargeUtf8, true),
        Field::new("ms", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        // A type the fingerprinter leaves to arrow-row.
        Field::new("b", DataType::Boolean, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ints)),
        Arc::new(StringArray::from(texts)),
        Arc::new(Float64Array::from(floats)),
        Arc::new(TimestampMicrosecondArray::from(times.clone()).with_timezone("UTC")),
        Arc::new(list.finish()),
        // Views where the schema says plain text: the row format encodes them alike.
        Arc::new(StringViewArray::from_iter(views.iter().map(|v| v.as_deref()))),
        Arc::new(LargeStringArray::from(more)),
        Arc::new(TimestampMillisecondArray::from(times)),
        Arc::new(BooleanArray::from((0..rows).map(|i| (i % 7 != 0).then_some(i % 3 == 0)).collect::<Vec<_>>())),
    ];
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .zip(&columns)
                .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
                .collect::<Vec<_>>(),
        )),
        columns,
    )
    .unwrap();
    (schema, batch)
}

#[test]
fn fingerprints_are_xxh3_of_the_row_format_for_every_type_and_length() {
    let (schema, batch) = mixed(9_000);
    let fingerprinter = Fingerprinter::for_schema(Arc::clone(&schema)).unwrap();
    let fps = fingerprinter.fingerprints(&batch).unwrap();
    assert_eq!(fps.len(), 9_000);
    assert_eq!(fps, reference(&schema, &batch));
    // Rows are told apart: the generator repeats few rows.
    let distinct: std::collections::HashSet<_> = fps.iter().collect();
    assert!(distinct.len() > 8_900, "{} distinct", distinct.len());
    // A slice (arrays with an offset) and a batch of one row.
    let part = batch.slice(4_001, 4_500);
    assert_eq!(fingerprinter.fingerprints(&part).unwrap(), reference(&schema, &part));
    assert_eq!(fingerprinter.fingerprints(&batch.slice(8_999, 1)).unwrap(), fps[8_999..]);
}

#[test]
fn fingerprints_of_cast_columns_and_of_every_clean_table_match_the_row_format() {
    // A column of another integer type is cast first, as before.
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
    let narrow = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, true)])),
        vec![Arc::new(Int32Array::from(vec![Some(-5), None, Some(i32::MAX)]))],
    )
    .unwrap();
    let fingerprinter = Fingerprinter::for_schema(Arc::clone(&schema)).unwrap();
    let fps = fingerprinter.fingerprints(&narrow).unwrap();
    assert_eq!(fps, reference(&schema, &narrow));
    // Columns after the schema's are not part of a row's fingerprint; too few columns is an error.
    let extra: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
    let wider = RecordBatch::try_from_iter([("n", Arc::clone(narrow.column(0))), ("extra", extra)]).unwrap();
    assert_eq!(fingerprinter.fingerprints(&wider).unwrap(), fps);
    let two = Fingerprinter::for_schema(wider.schema()).unwrap();
    assert!(two.fingerprints(&narrow).is_err());
    // The clean tables, from records with values, placeholders and missing fields.
    let records: [(Kind, &[&str]); 3] = [
        (
            Kind::Pin,
            &[
                super::PIN_ALL_PLACEHOLDERS,
                super::PIN_TEXTS_ELSEWHERE,
                r#"{"index":3,"follower_count":"1M","description":"Untitled"}"#,
            ],
        ),
        (
            Kind::Geo,
            &[
                r#"{"ind":1,"timestamp":"2020-01-01T00:00:00","latitude":-45.5,"longitude":12.25,"country":"Peru"}"#,
                r#"{"ind":2,"timestamp":"2021-06-30T23:59:59","country":""}"#,
            ],
        ),
        (
            Kind::User,
            &[
                r#"{"ind":1,"first_name":"Ada","last_name":"Lovelace","age":36,"date_joined":"2015-10-10T10:10:10"}"#,
                r#"{"ind":2,"first_name":"Bo"}"#,
            ],
        ),
    ];
    for (kind, lines) in records {
        let mut c = crate::Cleaner::new(kind).unwrap();
        for (i, l) in lines.iter().enumerate() {
            assert!(c.push(l.as_bytes(), super::origin(i as u64 + 1)), "{kind}: {l}");
        }
        let out = c.finish().unwrap();
        let batch = out.batch().unwrap();
        assert_eq!(out.fingerprints, reference(&schema::clean(kind), &batch), "{kind}");
    }
}

#[test]
fn raw_fingerprints_are_seeded_xxh3_of_the_trimmed_bytes_at_every_length() {
    // Lengths on both sides of XXH3's thresholds (16, 128, 240 bytes; above 240 the seed's
    // derived secret is used), surrounded by the whitespace the cleaner trims.
    for len in [0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 242, 1000, 5000] {
        let record: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let padded = [b"  ".as_slice(), &record, b"\r\n"].concat();
        let expected = XxHash3_128::oneshot_with_seed(RAW_SEED, &record);
        assert_eq!(crate::raw_fingerprint(&padded), expected, "{len} bytes");
    }
}
