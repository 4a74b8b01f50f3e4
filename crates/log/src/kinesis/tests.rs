//! Tests of the Kinesis backend against the Kinesis API server `.ci/run` starts (moto), found
//! through `TEST_PINPIPE_KINESIS_ENDPOINT`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::port::chunks;
use super::*;
use crate::conformance::positioned_suite;

async fn connect() -> Option<Arc<dyn Log>> {
    let endpoint = pinpipe_testkit::service_url("TEST_PINPIPE_KINESIS_ENDPOINT")?;
    let config =
        KinesisConfig { region: Some("us-east-1".into()), endpoint: Some(endpoint), poll_interval_ms: Some(50) };
    Some(Arc::new(KinesisLog::connect(&config.validate().unwrap()).await.unwrap()))
}

/// A stream-name prefix no other test run on the same server uses.
fn prefix(what: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{what}-{}-{nanos}", std::process::id())
}

#[tokio::test]
async fn passes_the_positioned_conformance_suite() {
    let Some(log) = connect().await else { return };
    assert!(log.as_offsets().is_none());
    positioned_suite(&log, &prefix("conf"), true).await;
}

#[tokio::test]
async fn offsets_and_topics_are_refused_with_a_reason() {
    let Some(log) = connect().await else { return };
    let name = prefix("refuse");
    let e = log.create_topic(&name, TopicKind::Topic, 1).await.unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }) && e.to_string().contains("route topics"), "{e}");
    log.create_topic(&name, TopicKind::Stream, 1).await.unwrap();
    // No offsets: Kinesis is not an offset log (a type, not a runtime refusal).
    assert!(log.as_offsets().is_none() && Arc::clone(&log).into_offsets().is_none());
    // A record without a key gets its shard id as partition key.
    log.append_positioned(&name, 0, vec![Record::value("x")]).await.unwrap();
    let got = log.read_from(&name, 0, &Cursor::Start, ReadLimits::default()).await.unwrap();
    assert_eq!(got.records[0].key.as_deref(), Some(&b"shardId-000000000000"[..]));
    log.delete_topic(&name).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_remote_error() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = KinesisConfig {
        region: Some("us-east-1".into()),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        poll_interval_ms: None,
    };
    let log = KinesisLog::connect(&config.validate().unwrap()).await.unwrap();
    let e = log.topic("streaming-x-pin").await.unwrap_err();
    assert!(matches!(e, Error::Remote { operation: "DescribeStreamSummary", .. }), "{e}");
}

#[test]
fn puts_are_split_within_kinesis_limits() {
    let records: Vec<Record> = (0..1200).map(|_| Record::value(vec![0u8; 10])).collect();
    let pending: Vec<usize> = (0..1200).collect();
    let c = chunks(&pending, &records);
    assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), [500, 500, 200]);
    let big: Vec<Record> = (0..3).map(|_| Record::value(vec![0u8; 2 << 20])).collect();
    assert_eq!(chunks(&[0, 1, 2], &big).len(), 2);
}
