#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn scheduler_addresses_are_parsed_and_bad_ones_refused() {
    let a = SchedulerAddr::parse("df://10.0.0.5:50051").unwrap();
    assert_eq!((a.host.as_str(), a.port), ("10.0.0.5", 50051));
    assert_eq!(SchedulerAddr::parse("sched.internal").unwrap().port, DEFAULT_SCHEDULER_PORT);
    assert_eq!(SchedulerAddr::parse("df://[::1]:7000").unwrap().to_string(), "[::1]:7000");
    for bad in ["http://x:1", "df://", "df://x:0", "df://x:70000", "df://x/y", "df://u@x:1", "df://x y:1"] {
        let e = SchedulerAddr::parse(bad).unwrap_err().to_string();
        assert!(e.contains("df://HOST:PORT"), "{bad}: {e}");
    }
}

/// A unit cleaned by the job's own read module survives the trip through an executor's staged
/// file unchanged: rows, fingerprints, dead letters with their origins, objects and counts.
#[tokio::test]
async fn a_cleaned_unit_is_the_same_after_staging() {
    use std::sync::Arc;

    use pinpipe_batch::read::{self, Busy, ReadProgress, RunSets};
    use pinpipe_model::Kind;

    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("topics/pinterest.pin/partition=0");
    std::fs::create_dir_all(&part).unwrap();
    let pin = |i: u32, followers: &str| {
        format!(
            r#"{{"index": {i}, "unique_id": "u{i}", "title": "T {i}", "description": "No description available Story format", "poster_name": "p", "follower_count": "{followers}", "tag_list": "a,b", "is_image_or_video": "image", "image_src": "Image src error.", "downloaded": 1, "save_location": "Local save in /data/x", "category": "art"}}"#
        )
    };
    // Two objects: repeats within the unit, a bad count, and a line that is not JSON.
    let first = [pin(1, "12k"), pin(2, "3M"), pin(1, "12k"), pin(3, "abc")].join("\n");
    let second = [pin(4, "7"), "{\"index\": 5, \"title\": \"cut".to_owned(), pin(2, "3M")].join("\n");
    std::fs::write(part.join("pinterest.pin+0+0000000000.json"), first).unwrap();
    std::fs::write(part.join("pinterest.pin+0+0000000004.json"), second).unwrap();
    let store =
        pinpipe_store::StoreConfig { url: Some(format!("file://{}", dir.path().display())), ..Default::default() }
            .validate(dir.path())
            .unwrap()
            .open()
            .unwrap();
    let planned = read::plan(&store, "pinterest.pin", &Default::default()).await.unwrap().objects;
    assert_eq!(planned.len(), 2);
    let clean = || async {
        let sets = Arc::new(RunSets::new(1000));
        let (p, b) = (Arc::new(ReadProgress::default()), Arc::new(Busy::default()));
        read::read_unit(&store, Kind::Pin, planned.clone(), 4, sets, p, b).await.unwrap()
    };
    let here = clean().await;
    let batches = wire::encode(Kind::Pin, 7, clean().await, 5, 6).unwrap();
    let staged = wire::from_ipc(Kind::Pin, 7, wire::to_ipc(&batches).unwrap().into()).unwrap();
    assert_eq!(staged.records, 7);
    assert_eq!((staged.records, staged.duplicates, staged.bytes), (here.records, here.duplicates, here.bytes));
    assert_eq!(staged.duplicates, 2, "the repeated pin 1 and pin 2");
    assert_eq!(staged.dead_letters, here.dead_letters);
    assert_eq!(staged.dead_letters.len(), 2, "{:?}", staged.dead_letters);
    assert_eq!(staged.objects, vec![(0, 0, 4), (0, 4, 3)]);
    assert_eq!(staged.cleaned_elsewhere_ns, 11);
    assert_eq!(staged.cleaned.fingerprints, here.cleaned.fingerprints);
    assert_eq!(staged.cleaned.batch().unwrap(), here.cleaned.batch().unwrap());
    assert_eq!(staged.cleaned.rows(), 3);
    // Its keys, what the job reads: the same fingerprints, dead letters and counts, no rows.
    let keys = wire::from_ipc(Kind::Pin, 7, wire::to_ipc(&wire::keys(&batches).unwrap()).unwrap().into()).unwrap();
    assert_eq!(keys.cleaned.fingerprints, here.cleaned.fingerprints);
    assert!(keys.cleaned.batches.is_empty());
    assert_eq!((keys.records, keys.duplicates, keys.bytes, keys.cleaned_elsewhere_ns), (7, 2, here.bytes, 11));
    assert_eq!((keys.dead_letters, keys.objects), (here.dead_letters, here.objects));
    // A unit's file read as another unit is refused, not taken for it.
    assert!(wire::from_ipc(Kind::Pin, 8, wire::to_ipc(&batches).unwrap().into()).is_err());
}

/// A task cleans, and then writes, only the units of its partitions. Ballista's scheduler
/// restricts the scans it knows to each task's partitions and sends other leaves whole, so the
/// plan's units must come from such a scan: restricted to unit 1 and carried through the codec as
/// the scheduler sends it, the plan cleans unit 1 alone (with a leaf of its own, every task
/// cleaned every unit); the write task then writes that unit's kept rows, and only those, as a
/// data file of the table with its fingerprint file.
#[tokio::test]
async fn a_task_restricted_to_one_unit_cleans_and_writes_that_unit_only() {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Int64Type, UInt32Type, UInt64Type};
    use datafusion::catalog::TableProvider;
    use datafusion::prelude::SessionContext;
    use futures_util::TryStreamExt;
    use pinpipe_model::Kind;
    use pinpipe_store::StoreConfig;

    let input = tempfile::tempdir().unwrap();
    let stage = tempfile::tempdir().unwrap();
    let part = input.path().join("topics/pinterest.geo/partition=0");
    std::fs::create_dir_all(&part).unwrap();
    let geo = |i: u32| {
        format!(
            r#"{{"ind": {i}, "timestamp": "2020-01-0{i}T10:00:00", "latitude": 1.5, "longitude": -2.5, "country": "Chad"}}"#
        )
    };
    let mut units = Vec::new();
    for u in 0..3u32 {
        let name = format!("pinterest.geo+0+{:010}.json", u * 2);
        std::fs::write(part.join(&name), [geo(u * 2 + 1), geo(u * 2 + 2)].join("\n")).unwrap();
        units.push(vec![plan::Object {
            key: format!("topics/pinterest.geo/partition=0/{name}"),
            size: std::fs::metadata(part.join(&name)).unwrap().len(),
            partition: 0,
            start: u64::from(u) * 2,
            format: pinpipe_store::layout::Format::Json,
        }]);
    }
    let url = |d: &tempfile::TempDir| StoreConfig {
        url: Some(format!("file://{}", d.path().display())),
        ..Default::default()
    };
    let task = plan::Task {
        store: url(&input),
        kind: Kind::Geo,
        requests: 2,
        memory_limit: 1 << 30,
        units,
        stage: url(&stage),
        stage_prefix: "staging/run/geo".into(),
    };
    let ctx = SessionContext::new();
    // The plan of `work` as the executor of the task for partition 1 runs it: every partition of
    // what the scheduler sends it.
    let run_as_task_1 = |work: plan::Work| {
        let ctx = &ctx;
        async move {
            let whole = plan::Units::new(work).scan(&ctx.state(), None, &[], None).await.unwrap();
            assert_eq!(whole.properties().output_partitioning().partition_count(), 3);
            let mine = ballista_scheduler::state::task_builder::restrict_plan_to_partitions(whole, &[1]).unwrap();
            let codec = plan::Codec::default();
            let bytes = datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(mine, &codec).unwrap();
            let sent =
                datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &codec)
                    .unwrap();
            let partitions = sent.properties().output_partitioning().partition_count();
            assert_eq!(partitions, 1);
            let mut out = Vec::new();
            for p in 0..partitions {
                let batches: Vec<_> = sent.execute(p, ctx.task_ctx()).unwrap().try_collect().await.unwrap();
                out.extend(batches);
            }
            out
        }
    };
    let mut rows = Vec::new();
    for b in run_as_task_1(plan::Work::Clean(task)).await {
        let (u, k) = (b.column(0).as_primitive::<UInt32Type>(), b.column(1).as_string::<i32>());
        rows.extend((0..b.num_rows()).map(|i| (u.value(i), k.value(i).to_owned())));
    }
    assert_eq!(rows, vec![(1, "staging/run/geo/unit-000001.arrow".to_owned())]);
    let unit_1 = ["staging/run/geo/unit-000001.arrow", "staging/run/geo/unit-000001.keys.arrow"];
    assert_eq!(walk(stage.path()), unit_1, "only unit 1 was cleaned");
    let bytes = std::fs::read(stage.path().join(unit_1[0])).unwrap();
    let chunk = wire::from_ipc(Kind::Geo, 1, bytes.into()).unwrap();
    assert_eq!((chunk.records, chunk.cleaned.rows()), (2, 2));
    assert_eq!(chunk.objects, vec![(0, 2, 2)]);
    let fingerprints = chunk.cleaned.fingerprints.clone();

    // Writing: units 0 and 2 in the task too (nothing of them is staged: a task that touched them
    // would fail); unit 1 keeps its second row only.
    let table_dir = "batch/pinterest_geo_table";
    let warehouse = url(&stage).validate(stage.path()).unwrap();
    let location = warehouse.table_location(table_dir).unwrap();
    let table = pinpipe_store::delta::open(&location).await.unwrap();
    pinpipe_batch::delta::ensure_table(table, &location, "pinterest_geo_table", Kind::Geo).await.unwrap();
    let write = plan::WriteTask {
        kind: Kind::Geo,
        stage: url(&stage),
        stage_prefix: "staging/run/geo".into(),
        table: table_dir.into(),
        units: vec![
            plan::UnitKeep::new(0, &[true, true]),
            plan::UnitKeep::new(1, &[false, true]),
            plan::UnitKeep::new(2, &[true, true]),
        ],
    };
    let out = run_as_task_1(plan::Work::Write(write)).await;
    assert_eq!(out.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    let b = &out[0];
    assert_eq!(b.column(0).as_primitive::<UInt32Type>().value(0), 1);
    assert_eq!(b.column(2).as_primitive::<UInt64Type>().value(0), 1, "one row kept");
    let adds: Vec<deltalake::kernel::Add> = serde_json::from_str(b.column(1).as_string::<i32>().value(0)).unwrap();
    assert_eq!(adds.len(), 1);
    // The data file holds the kept row (ind 4, the unit's second); its fingerprint file, that
    // row's fingerprint. Neither is committed.
    let data = std::fs::File::open(stage.path().join(table_dir).join(&adds[0].path)).unwrap();
    let batches: Vec<_> = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(data, 1024)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(batches.iter().map(|r| r.num_rows()).sum::<usize>(), 1);
    assert_eq!(batches[0].column_by_name("ind").unwrap().as_primitive::<Int64Type>().value(0), 4);
    let table = pinpipe_store::delta::open(&location).await.unwrap();
    assert_eq!(table.version(), Some(0), "nothing committed");
    let seen = std::sync::Mutex::new(Vec::new());
    let file = pinpipe_batch::delta::DataFile { path: adds[0].path.clone(), size: adds[0].size as u64, rows: Some(1) };
    pinpipe_batch::fingerprints::scan(table.object_store(), location.url.as_str(), Kind::Geo, &[file], &|fp: u128| {
        seen.lock().unwrap().push(fp)
    })
    .await
    .unwrap();
    assert_eq!(seen.into_inner().unwrap(), vec![fingerprints[1]]);
    // A staged unit cut short (a torn write, a full disk) is refused, naming it.
    let staged = stage.path().join(unit_1[0]);
    let whole = std::fs::read(&staged).unwrap();
    std::fs::write(&staged, &whole[..whole.len() / 2]).unwrap();
    let again = plan::WriteTask {
        kind: Kind::Geo,
        stage: url(&stage),
        stage_prefix: "staging/run/geo".into(),
        table: table_dir.into(),
        units: (0..3).map(|u| plan::UnitKeep::new(u, &[true, true])).collect(),
    };
    let plan = plan::Units::new(plan::Work::Write(again)).scan(&ctx.state(), None, &[], None).await.unwrap();
    let e = plan.execute(1, ctx.task_ctx()).unwrap().try_collect::<Vec<_>>().await.unwrap_err().to_string();
    assert!(e.contains("the cleaned unit staging/run/geo/unit-000001.arrow is not readable"), "{e}");
    std::fs::write(&staged, &whole).unwrap();
    // A keep list that does not match the unit's rows is refused.
    let bad = plan::WriteTask {
        kind: Kind::Geo,
        stage: url(&stage),
        stage_prefix: "staging/run/geo".into(),
        table: table_dir.into(),
        units: (0..3).map(|u| plan::UnitKeep::new(u, &[true; 3])).collect(),
    };
    let plan = plan::Units::new(plan::Work::Write(bad)).scan(&ctx.state(), None, &[], None).await.unwrap();
    let e = plan.execute(1, ctx.task_ctx()).unwrap().try_collect::<Vec<_>>().await.unwrap_err().to_string();
    assert!(e.contains("do not match its rows"), "{e}");
}

/// The files under `root`, as relative paths with `/`, sorted.
fn walk(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}
