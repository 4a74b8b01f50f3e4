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
    let staged = wire::from_ipc(Kind::Pin, 7, wire::to_ipc(Kind::Pin, &batches).unwrap().into()).unwrap();
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
    // A unit's file read as another unit is refused, not taken for it.
    assert!(wire::from_ipc(Kind::Pin, 8, wire::to_ipc(Kind::Pin, &batches).unwrap().into()).is_err());
}
