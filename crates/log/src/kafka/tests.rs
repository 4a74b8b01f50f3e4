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

/// A broker and how its clients are configured.
struct Broker(pinpipe_testkit::kafka::Broker, ResolvedKafka);

#[async_trait]
impl Harness for Broker {
    async fn open(&self) -> Arc<dyn OffsetLog> {
        Arc::new(KafkaLog::connect(&self.1).await.unwrap())
    }
}

fn broker() -> Option<Broker> {
    pinpipe_testkit::kafka::Broker::start().map(|b| {
        let c = config(&b.bootstrap);
        Broker(b, c)
    })
}

/// A client configuration with `properties`; a `sasl.password` is given as an environment
/// reference to pass validation, then replaced by its value (tests cannot set variables).
fn secured(bootstrap: &str, properties: &[(&str, &str)]) -> ResolvedKafka {
    let mut c = KafkaConfig { bootstrap_servers: Some(bootstrap.to_owned()), ..Default::default() };
    let password = properties.iter().find(|(k, _)| *k == "sasl.password").map(|(_, v)| (*v).to_owned());
    for (k, v) in properties {
        let v = if *k == "sasl.password" { "${env:PINPIPE_TEST_KAFKA_PASSWORD}" } else { v };
        c.properties.insert((*k).to_owned(), v.to_owned());
    }
    let mut resolved = c.validate().unwrap();
    if let Some(p) = password {
        resolved.properties.insert("sasl.password".into(), p);
    }
    resolved
}

fn tls_broker(users: Option<Vec<pinpipe_testkit::kafka::User>>) -> Option<pinpipe_testkit::kafka::Broker> {
    let options = pinpipe_testkit::kafka::Options { tls: true, users, ..Default::default() };
    pinpipe_testkit::kafka::Broker::start_with(options)
}

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// Connects with `c`, which must fail at once (well before the connect timeout) with a connect
/// error naming the brokers; returns the message.
async fn refused(c: &ResolvedKafka) -> String {
    let started = Instant::now();
    let e = KafkaLog::connect(c).await.err().unwrap();
    let text = e.to_string();
    assert!(matches!(e, Error::Remote { operation: "connect", .. }), "{text}");
    assert!(text.contains(&c.bootstrap_servers), "{text}");
    assert!(started.elapsed() < CONNECT_TIMEOUT, "took {:?}: {text}", started.elapsed());
    text
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_conformance_suite_over_tls() {
    let Some(b) = tls_broker(None) else { return };
    let ca = path(&b.tls.as_ref().unwrap().ca);
    let c = secured(&b.bootstrap, &[("security.protocol", "SSL"), ("ssl.ca.location", &ca)]);
    assert!(c.security.tls);
    let b = Broker(b, c);
    suite(&b, &format!("{}-", unique("dense-tls")), DELETES).await;
    // What went through TLS is there for a client of the broker's own port.
    let plain = KafkaLog::connect(&config(&format!("127.0.0.1:{}", b.0.bootstrap.rsplit_once(':').unwrap().1))).await;
    assert!(plain.is_err(), "a plaintext client must not get through the TLS port");
}

/// The errors a user meets first: a CA that did not sign the broker's certificate, a host
/// name the certificate is not for. Each fails at once (not after the connect timeout), names
/// the brokers and the reason, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_an_unknown_ca_and_a_wrong_host_name_and_says_which() {
    let Some(b) = tls_broker(None) else { return };
    let tls = b.tls.as_ref().unwrap();
    let (ca, other) = (path(&tls.ca), path(&tls.other_ca));
    let cases = [
        (b.bootstrap.clone(), other.as_str(), "not signed by a trusted CA"),
        (format!("127.0.0.1:{}", tls.port), ca.as_str(), "not for this host name"),
    ];
    for (servers, ca, reason) in cases {
        let text = refused(&secured(&servers, &[("security.protocol", "SSL"), ("ssl.ca.location", ca)])).await;
        assert!(text.contains(reason), "{text}");
    }
    // Hostname verification off (the user's explicit choice) lets the second one through.
    let c = secured(
        &format!("127.0.0.1:{}", tls.port),
        &[("security.protocol", "SSL"), ("ssl.ca.location", &ca), ("ssl.endpoint.identification.algorithm", "none")],
    );
    let log = KafkaLog::connect(&c).await.unwrap();
    assert!(log.topics().await.unwrap().is_empty(), "nothing was written by the refused clients");
    // A CA file that is not there is named before connecting.
    let e = KafkaLog::connect(&secured(
        &b.bootstrap,
        &[("security.protocol", "SSL"), ("ssl.ca.location", "/nonexistent/ca.pem")],
    ))
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("ssl.ca.location") && e.contains("/nonexistent/ca.pem"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_over_tls_logs_in_and_a_wrong_password_is_refused_by_name() {
    use pinpipe_testkit::kafka::User;
    let users = vec![
        User { name: "alice", password: "alice-secret", mechanism: "SCRAM-SHA-256" },
        User { name: "bob", password: "bob-secret", mechanism: "SCRAM-SHA-512" },
    ];
    let Some(b) = tls_broker(Some(users)) else { return };
    let ca = path(&b.tls.as_ref().unwrap().ca);
    let login = |mechanism: &str, user: &str, password: &str| {
        secured(
            &b.bootstrap,
            &[
                ("security.protocol", "SASL_SSL"),
                ("ssl.ca.location", &ca),
                ("sasl.mechanism", mechanism),
                ("sasl.username", user),
                ("sasl.password", password),
            ],
        )
    };
    let topic = unique("scram");
    let alice = KafkaLog::connect(&login("SCRAM-SHA-256", "alice", "alice-secret")).await.unwrap();
    alice.create_topic(&topic, TopicKind::Topic, 1).await.unwrap();
    alice.append(&topic, 0, vec![Record::value("from alice")]).await.unwrap();
    let bob = KafkaLog::connect(&login("SCRAM-SHA-512", "bob", "bob-secret")).await.unwrap();
    bob.append(&topic, 0, vec![Record::value("from bob")]).await.unwrap();
    let values: Vec<_> =
        bob.read(&topic, 0, 0, ReadLimits::default()).await.unwrap().into_iter().map(|r| r.value).collect();
    assert_eq!(values, [bytes::Bytes::from("from alice"), bytes::Bytes::from("from bob")]);

    for (mechanism, user, password) in [("SCRAM-SHA-256", "alice", "wrong"), ("SCRAM-SHA-512", "mallory", "bob-secret")]
    {
        let e = refused(&login(mechanism, user, password)).await;
        assert!(e.contains("refused the login") && e.contains(mechanism), "{e}");
        assert!(!e.contains(password), "the password must not be printed: {e}");
    }
    assert_eq!(alice.offsets(&topic).await.unwrap()[0].end, 2, "refused clients wrote nothing");
}

/// Mutual TLS: with the client certificate and key from files the log works; without them the
/// broker ends the handshake and the connect fails at once, saying it was TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_the_client_certificate() {
    let options = pinpipe_testkit::kafka::Options { tls: true, client_auth: true, ..Default::default() };
    let Some(b) = pinpipe_testkit::kafka::Broker::start_with(options) else { return };
    let tls = b.tls.as_ref().unwrap();
    let (ca, cert, key) = (path(&tls.ca), path(&tls.client_cert), path(&tls.client_key));
    let with_cert = secured(
        &b.bootstrap,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", &ca),
            ("ssl.certificate.location", &cert),
            ("ssl.key.location", &key),
        ],
    );
    let log = KafkaLog::connect(&with_cert).await.unwrap();
    let topic = unique("mtls");
    log.create_topic(&topic, TopicKind::Topic, 1).await.unwrap();
    log.append(&topic, 0, vec![Record::value("signed")]).await.unwrap();
    assert_eq!(log.read(&topic, 0, 0, ReadLimits::default()).await.unwrap()[0].value, bytes::Bytes::from("signed"));

    let e = refused(&secured(&b.bootstrap, &[("security.protocol", "SSL"), ("ssl.ca.location", &ca)])).await;
    assert!(e.contains("requires a client certificate"), "{e}");
    // A certificate the broker's CA did not sign: refused by the broker, said so.
    let d = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=stranger", "-keyout", "stranger.key", "-out", "stranger.pem"])
        .current_dir(d.path())
        .status()
        .unwrap();
    assert!(made.success());
    let (cert, key) = (path(&d.path().join("stranger.pem")), path(&d.path().join("stranger.key")));
    let stranger = secured(
        &b.bootstrap,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", &ca),
            ("ssl.certificate.location", &cert),
            ("ssl.key.location", &key),
        ],
    );
    let e = refused(&stranger).await;
    assert!(e.contains("did not accept the client certificate") || e.contains("refused the client certificate"), "{e}");
    assert_eq!(log.offsets(&topic).await.unwrap()[0].end, 1, "refused clients wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_an_expired_certificate_and_says_so() {
    let options = pinpipe_testkit::kafka::Options { tls: true, expired: true, ..Default::default() };
    let Some(b) = pinpipe_testkit::kafka::Broker::start_with(options) else { return };
    let ca = path(&b.tls.as_ref().unwrap().ca);
    let e = refused(&secured(&b.bootstrap, &[("security.protocol", "SSL"), ("ssl.ca.location", &ca)])).await;
    assert!(e.contains("certificate has expired"), "{e}");
}
