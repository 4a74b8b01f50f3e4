//! Unit tests of the aggregates: their saved form, the merge of users, and the plan.

use datafusion::arrow::array::Int64Array;

use super::compute::merge_sorted;
use super::*;

fn sample() -> Aggregates {
    let mut tables = BTreeMap::new();
    for name in expected_tables() {
        let schema =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("n", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(datafusion::arrow::array::StringArray::from(vec![Some(name), None])),
                Arc::new(Int64Array::from(vec![3, 4])),
            ],
        )
        .unwrap();
        tables.insert(name.to_owned(), (schema, vec![batch]));
    }
    let covers = BTreeMap::from([("pin".to_owned(), vec!["part-1.parquet".to_owned()])]);
    Aggregates { covers, tables, users: vec![1, 5, u128::MAX] }
}

#[test]
fn the_saved_form_reads_back_and_anything_damaged_is_refused() {
    let a = sample();
    let body = a.encode().unwrap();
    let b = Aggregates::decode(&body).unwrap();
    assert_eq!(b.covers, a.covers);
    assert_eq!(b.users, a.users);
    assert_eq!(b.tables.keys().collect::<Vec<_>>(), a.tables.keys().collect::<Vec<_>>());
    for (name, (_, batches)) in &a.tables {
        assert_eq!(&b.tables[name].1, batches, "{name}");
    }
    // Torn anywhere, another format, or users out of order: not used.
    for cut in [1, body.len() / 2, body.len() - 1] {
        assert!(Aggregates::decode(&body[..cut]).is_none(), "cut at {cut}");
    }
    let nl = body.iter().position(|&b| b == b'\n').unwrap();
    let header = std::str::from_utf8(&body[..nl]).unwrap();
    assert!(header.starts_with("{\"format\":1,"), "{header}");
    let mut other = header.replacen("\"format\":1", "\"format\":2", 1).into_bytes();
    other.extend_from_slice(&body[nl..]);
    assert!(Aggregates::decode(&other).is_none());
    let mut same = header.as_bytes().to_vec();
    same.extend_from_slice(&body[nl..]);
    assert!(Aggregates::decode(&same).is_some());
    let mut unsorted = a.clone();
    unsorted.users = vec![5, 1];
    assert!(Aggregates::decode(&unsorted.encode().unwrap()).is_none());
    let mut missing = a;
    missing.tables.remove(TOP_POSTERS_TABLE);
    assert!(Aggregates::decode(&missing.encode().unwrap()).is_none());
}

#[test]
fn merging_sorted_users_keeps_them_sorted() {
    assert_eq!(merge_sorted(&[], vec![2, 9]), [2, 9]);
    assert_eq!(merge_sorted(&[1, 4, 8], vec![2, 9]), [1, 2, 4, 8, 9]);
    assert_eq!(merge_sorted(&[3], vec![]), [3]);
}

#[test]
fn a_plan_updates_only_while_every_covered_file_is_in_its_table() {
    let file = |p: &str, rows| DataFile { path: p.into(), rows: Some(rows), size: 0 };
    let saved = Aggregates {
        covers: BTreeMap::from([
            ("pin".to_owned(), vec!["a".to_owned()]),
            ("geo".to_owned(), vec!["b".to_owned()]),
            ("user".to_owned(), vec![]),
        ]),
        ..Default::default()
    };
    let files = [vec![file("a", 100)], vec![file("b", 100)], vec![]];
    assert!(matches!(plan(Some(saved.clone()), &files, 1 << 30), Plan::Unchanged(_)));
    let grown = [vec![file("a", 100), file("c", 10)], vec![file("b", 100)], vec![file("d", 10)]];
    match plan(Some(saved.clone()), &grown, 1 << 30) {
        Plan::Update { files, new_rows, .. } => {
            assert_eq!(new_rows, 20);
            assert_eq!(files[0], (vec!["a".to_owned()], vec!["c".to_owned()]));
            assert_eq!(files[2], (vec![], vec!["d".to_owned()]));
        }
        other => panic!("{other:?}"),
    }
    // More new rows than old, or than a quarter of the memory limit holds: recompute.
    let many = [vec![file("a", 100), file("c", 300)], vec![file("b", 100)], vec![]];
    assert!(matches!(plan(Some(saved.clone()), &many, 1 << 30), Plan::Recompute));
    assert!(matches!(plan(Some(saved.clone()), &grown, 4 * 400 * 19), Plan::Recompute));
    // A covered file gone (a rebuild): recompute; nothing saved: recompute.
    let rebuilt = [vec![file("e", 100)], vec![file("b", 100)], vec![]];
    assert!(matches!(plan(Some(saved), &rebuilt, 1 << 30), Plan::Recompute));
    assert!(matches!(plan(None, &files, 1 << 30), Plan::Recompute));
}
