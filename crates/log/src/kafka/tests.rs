//! Tests of the Kafka backend against a real Kafka-protocol broker: tansu, installed by
//! `.ci/run`, one broker per test (see `pinpipe_testkit::kafka`).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use async_trait::async_trait;

use crate::{Log, OffsetLog, Record};

use super::*;
use crate::conformance::{Harness, deletion_suite, positioned_suite, suite};

/// Whether the suites check topic deletion. They do not: on tansu 0.6 a deletion removes every
/// topic of the cluster, and librdkafka 2.12.1 then crashes (SIGSEGV in its metadata cache,
/// `rd_kafka_metadata_cache_find`) when a client that knew the topic refreshes its metadata —
/// librdkafka issues #4778 / #4964, a cache entry updated with a different topic id. Deletion is
/// checked on its own instead, by a client that never read (no consumer knows the topic).
const DELETES: bool = false;

fn config(bootstrap: &str) -> ResolvedKafka {
    KafkaConfig { bootstrap_servers: Some(bootstrap.to_owned()), ..Default::default() }.validate().unwrap()
}

struct Broker(pinpipe_testkit::kafka::Broker);

#[async_trait]
impl Harness for Broker {
    async fn open(&self) -> Arc<dyn OffsetLog> {
        Arc::new(KafkaLog::connect(&config(&self.0.bootstrap)).await.unwrap())
    }
}

fn broker() -> Option<Broker> {
    pinpipe_testkit::kafka::Broker::start().map(Broker)
}

/// A name prefix no other test run on the same broker uses.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{what}{}n{nanos}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_conformance_suite() {
    let Some(b) = broker() else { return };
    suite(&b, &format!("{}-", unique("dense")), DELETES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_positioned_conformance_suite() {
    let Some(b) = broker() else { return };
    let log: Arc<dyn Log> = b.open().await;
    assert!(log.as_offsets().is_some());
    // Named like a stream, so that the broker's topic is reported as one.
    positioned_suite(&log, &unique("streaming-cursor"), DELETES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_topics() {
    let Some(b) = broker() else { return };
    let log = b.open().await;
    deletion_suite(&*log, "del-").await;
    // What another client sees: the topic is gone.
    let other = b.open().await;
    assert!(matches!(other.offsets("del-doomed").await, Err(Error::TopicNotFound(_))));
    assert!(other.topics().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_client_sees_every_acknowledged_record_and_reads_resume_anywhere() {
    let Some(b) = broker() else { return };
    let (writer, reader) = (b.open().await, b.open().await);
    let topic = unique("handoff");
    writer.create_topic(&topic, TopicKind::Topic, 2).await.unwrap();
    assert_eq!(reader.topic(&topic).await.unwrap().partitions, 2);
    let mut sent = Vec::new();
    for i in 0..20 {
        let batch: Vec<Record> = (0..50).map(|j| Record::value(format!("{i}-{j}"))).collect();
        sent.extend(batch.iter().map(|r| r.value.clone()));
        let first = writer.append(&topic, 1, batch).await.unwrap();
        assert_eq!(first, i * 50);
        // Visible to the other client as soon as acknowledged.
        assert_eq!(reader.offsets(&topic).await.unwrap()[1].end, (i + 1) * 50);
    }
    // Chunks that walk the partition, then jumps backwards and forwards.
    let limits = ReadLimits { max_records: 300, max_bytes: usize::MAX };
    let mut got = Vec::new();
    let mut at = 0;
    loop {
        let chunk = reader.read(&topic, 1, at, limits).await.unwrap();
        if chunk.is_empty() {
            break;
        }
        at = chunk.last().unwrap().offset + 1;
        got.extend(chunk.into_iter().map(|r| r.value));
    }
    assert_eq!(got, sent);
    assert_eq!(reader.read(&topic, 1, 997, limits).await.unwrap().len(), 3);
    assert_eq!(reader.read(&topic, 1, 10, ReadLimits { max_records: 1, ..limits }).await.unwrap()[0].value, sent[10]);
    assert_eq!(reader.read(&topic, 1, 500, ReadLimits { max_records: 2, ..limits }).await.unwrap()[1].value, sent[501]);
}

#[tokio::test]
async fn an_unset_credential_variable_is_named() {
    let mut c = config("127.0.0.1:9");
    c.properties.insert("sasl.password".into(), "${env:PINPIPE_TEST_UNSET_KAFKA_PASSWORD}".into());
    let e = KafkaLog::connect(&c).await.err().unwrap().to_string();
    assert!(e.contains("PINPIPE_TEST_UNSET_KAFKA_PASSWORD") && e.contains("sasl.password"), "{e}");
}

#[tokio::test]
async fn a_bad_property_and_an_unreachable_broker_are_remote_errors() {
    let mut c = config("127.0.0.1:9");
    c.properties.insert("no.such.property".into(), "1".into());
    let e = KafkaLog::connect(&c).await.err().unwrap();
    assert!(
        matches!(e, Error::Remote { operation: "configuration", .. }) && e.to_string().contains("no.such.property"),
        "{e}"
    );
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = KafkaLog::connect(&config(&format!("127.0.0.1:{port}"))).await.err().unwrap();
    assert!(matches!(e, Error::Remote { operation: "Metadata", .. }), "{e}");
}
