//! The Kafka backend of the log port (the classic stack's MSK path): topics and streams on Apache
//! Kafka or any broker of its protocol, through librdkafka (`rdkafka`, bundled, no system library).
//!
//! * Appends go through one idempotent producer (`enable.idempotence`, `acks=all`): an append
//!   returns once every record of it is replicated, and librdkafka's retries never duplicate or
//!   reorder. The records of one append are queued together under a lock, so they land next to
//!   each other and their offsets are dense (as the port requires); a failed append may have
//!   written part of its records (Kafka has no all-or-nothing produce without transactions).
//! * Every read first asks the broker for the partition's offsets, so a record acknowledged by
//!   an append is always visible to the next read. It then borrows a consumer from a pool,
//!   assigns it the partition manually (no consumer group, no committed offsets: the sink keeps
//!   its positions in object names and the streaming job in its Delta commits), polls up to that
//!   end and unassigns it, so an idle reader sends no fetches.
//! * Waiting for new records is the broker's long poll (a fetch that returns when data arrives);
//!   what arrives is kept for the following read.
//! * Kafka topics have no kind: a topic whose name starts with `streaming-` (the classic stack's
//!   stream names) is reported as a stream, every other one as a topic. Kafka keeps no creation
//!   time: topics report 0. Internal topics (`__consumer_offsets`, ...) are not listed.
//! * Any librdkafka property can be set (`[log.kafka] properties`), credentials only through
//!   `${env:VARIABLE}`. TLS (librdkafka on OpenSSL built from source), SASL PLAIN and SCRAM, and
//!   AWS MSK IAM ([`msk_iam`]) as the classic stack's MSK cluster used it. A connection that
//!   fails for a reason waiting will not cure (TLS handshake, refused login) fails at once with
//!   that reason and the broker named.
//!
//! Here: the clients and the requests the port is made of; [`port`]: the port's methods;
//! [`reader`]: one partition's reader; [`client`]: librdkafka's logs, errors, retries and
//! closing.

mod client;
mod config;
mod msk_iam;
mod port;
mod reader;
mod tls_check;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::AdminClient;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;

use self::client::{ATTEMPTS, BaseConsumer, Detached, Fatal, Quiet, fatal, is_transient, remote};
pub use self::config::{KafkaConfig, ResolvedKafka, Security};
use self::reader::Reader;
use crate::port::{MAX_PARTITIONS, PartitionOffsets, ReadLimits, StoredRecord, TopicKind};
use crate::{Error, Result};

const SERVICE: &str = "Kafka";

/// How long a metadata, offsets or admin request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting may take before the brokers are reported unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a read waits for records the broker said it holds.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a created or deleted topic may take to appear in (or leave) the metadata.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Names of topics the broker keeps for itself (not listed).
fn is_internal(name: &str) -> bool {
    name.starts_with("__")
}

/// How a topic is reported: streams are named like the classic stack's Kinesis streams.
fn kind_of(name: &str) -> TopicKind {
    if name.starts_with("streaming-") { TopicKind::Stream } else { TopicKind::Topic }
}

/// A partition's reader, shared by the reads and waits on it.
type SharedReader = Arc<Mutex<Reader>>;

/// What one read is about.
struct Target<'a> {
    topic: &'a str,
    partition: u32,
}

/// The Kafka backend.
pub struct KafkaLog {
    inner: Arc<Inner>,
}

struct Inner {
    describe: String,
    config: ClientConfig,
    /// The clients' context (shared: its last error, its MSK IAM signer).
    context: Quiet,
    replication_factor: Option<u16>,
    producer: FutureProducer<Quiet>,
    admin: AdminClient<Quiet>,
    /// A consumer that only answers metadata and offsets requests.
    meta: BaseConsumer,
    /// Partition counts of topics seen.
    partitions: Mutex<HashMap<String, u32>>,
    readers: Mutex<HashMap<(String, u32), SharedReader>>,
    /// Consumers no read is using.
    idle: Mutex<Vec<Detached>>,
    /// Held while an append queues its records, so that they stay contiguous.
    queueing: Mutex<()>,
}

impl KafkaLog {
    /// Makes the clients (connections are opened lazily) and checks that the cluster answers.
    pub async fn connect(config: &ResolvedKafka) -> Result<Self> {
        let properties = config.librdkafka_properties().map_err(|(property, variable)| {
            remote(
                "configuration",
                format!("environment variable {variable} (for log.kafka.properties.{property}) is not set"),
            )
        })?;
        check_local_files(&properties)?;
        let iam = match config.security.msk_iam {
            true => Some(
                msk_iam::MskIam::load(config.security.aws_region.as_deref(), &config.bootstrap_servers)
                    .await
                    .map_err(|e| remote("configuration", e))?,
            ),
            false => None,
        };
        let context = Quiet::new(iam);
        let mut base = ClientConfig::new();
        base.set("bootstrap.servers", &config.bootstrap_servers)
            .set("client.id", "pinpipe")
            .set("allow.auto.create.topics", "false")
            .set("socket.keepalive.enable", "true");
        let mut producer = base.clone();
        producer
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", "60000")
            .set("queue.buffering.max.messages", "1000000");
        let mut consumer = base.clone();
        consumer
            // Readers assign partitions themselves (librdkafka still needs a group id for that);
            // they never join the group or commit offsets.
            .set("group.id", "pinpipe-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "error")
            .set("fetch.wait.max.ms", "100")
            .set("isolation.level", "read_committed");
        for (k, v) in &properties {
            for c in [&mut base, &mut producer, &mut consumer] {
                c.set(k, v);
            }
        }
        let create = |e: KafkaError| remote("configuration", e);
        let producer: FutureProducer<Quiet> = producer.create_with_context(context.clone()).map_err(create)?;
        let admin: AdminClient<Quiet> = base.create_with_context(context.clone()).map_err(create)?;
        // Metadata and offsets only: no group id, so nothing to leave when it is dropped.
        let mut meta = consumer.clone();
        meta.remove("group.id");
        let meta: BaseConsumer = meta.create_with_context(context.clone()).map_err(create)?;
        let log = KafkaLog {
            inner: Arc::new(Inner {
                describe: format!("Kafka at {}", config.bootstrap_servers),
                config: consumer,
                context,
                replication_factor: config.replication_factor,
                producer,
                admin,
                meta,
                partitions: Mutex::new(HashMap::new()),
                readers: Mutex::new(HashMap::new()),
                idle: Mutex::new(Vec::new()),
                queueing: Mutex::new(()),
            }),
        };
        let ca = properties.iter().find(|(k, _)| k == "ssl.ca.location").map(|(_, v)| v.clone());
        let client_certificate =
            properties.iter().any(|(k, _)| k == "ssl.certificate.location" || k == "ssl.certificate.pem");
        let contact = Contact {
            servers: config.bootstrap_servers.clone(),
            mechanism: config.security.mechanism.clone(),
            ca,
            client_certificate,
        };
        log.blocking(move |i| i.first_contact(&contact)).await?;
        Ok(log)
    }

    /// Runs a blocking librdkafka request, again (up to [`ATTEMPTS`] times) when the connection
    /// dropped under it.
    async fn request<T: Send + 'static>(
        &self,
        f: impl Fn(&Inner) -> std::result::Result<T, KafkaError> + Send + Sync + 'static,
    ) -> std::result::Result<T, KafkaError> {
        let inner = Arc::clone(&self.inner);
        let run = move || {
            let mut attempt = 1;
            loop {
                inner.serve_events();
                match f(&inner) {
                    Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                        attempt += 1;
                        std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
                    }
                    other => return other,
                }
            }
        };
        match tokio::task::spawn_blocking(run).await {
            Ok(r) => r,
            Err(e) => Err(KafkaError::Canceled).inspect_err(|_| tracing::error!("a Kafka request panicked: {e}")),
        }
    }

    /// Runs a blocking librdkafka call off the async threads.
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Inner) -> Result<T> + Send + 'static) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(|e| remote("task", e))?
    }

    /// `(name, partitions)` of every topic, or of `topic` (empty if it does not exist).
    async fn metadata(&self, topic: Option<&str>) -> Result<Vec<(String, u32)>> {
        let topic = topic.map(str::to_owned);
        let md = self
            .request(move |i| i.meta.fetch_metadata(topic.as_deref(), REQUEST_TIMEOUT))
            .await
            .map_err(|e| remote("Metadata", e))?;
        let mut found = Vec::new();
        for t in md.topics() {
            match t.error().map(RDKafkaErrorCode::from) {
                None => found.push((t.name().to_owned(), t.partitions().len() as u32)),
                Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {}
                Some(e) => return Err(remote("Metadata", format!("topic {}: {e}", t.name()))),
            }
        }
        if let Ok(mut cache) = self.inner.partitions.lock() {
            for (name, n) in &found {
                cache.insert(name.clone(), *n);
            }
        }
        Ok(found)
    }

    /// The partition count of `topic` (cached), `Error::TopicNotFound` if it does not exist.
    async fn partition_count(&self, topic: &str) -> Result<u32> {
        if let Some(n) = self.inner.partitions.lock().ok().and_then(|c| c.get(topic).copied()) {
            return Ok(n);
        }
        pinpipe_model::names::validate_topic(topic)?;
        match self.metadata(Some(topic)).await?.into_iter().find(|(n, _)| n == topic) {
            Some((_, n)) if n > 0 => Ok(n),
            _ => Err(Error::TopicNotFound(topic.to_owned())),
        }
    }

    async fn check_partition(&self, topic: &str, partition: u32) -> Result<()> {
        let partitions = self.partition_count(topic).await?;
        if partition >= partitions {
            return Err(Error::PartitionNotFound { topic: topic.to_owned(), partition, partitions });
        }
        Ok(())
    }

    fn forget_count(&self, topic: &str) {
        if let Ok(mut c) = self.inner.partitions.lock() {
            c.remove(topic);
        }
    }

    fn forget(&self, topic: &str) {
        self.forget_count(topic);
        if let Ok(mut r) = self.inner.readers.lock() {
            r.retain(|(t, _), _| t != topic);
        }
    }

    /// The offsets a partition holds, asked of the broker.
    async fn watermarks(&self, t: &Target<'_>) -> Result<PartitionOffsets> {
        self.check_partition(t.topic, t.partition).await?;
        let (topic, partition) = (t.topic.to_owned(), t.partition);
        let (low, high) = self
            .request(move |i| i.meta.fetch_watermarks(&topic, partition as i32, REQUEST_TIMEOUT))
            .await
            .map_err(|e| self.request_error("ListOffsets", t.topic, t.partition, &e))?;
        Ok(PartitionOffsets { partition: t.partition, start: low.max(0) as u64, end: high.max(0) as u64 })
    }

    fn reader(&self, t: &Target<'_>) -> Result<SharedReader> {
        let mut readers = self.inner.readers.lock().map_err(|_| remote("reader", "a reader panicked"))?;
        if let Some(r) = readers.get(&(t.topic.to_owned(), t.partition)) {
            return Ok(Arc::clone(r));
        }
        let reader = Arc::new(Mutex::new(Reader {
            consumer: None,
            topic: t.topic.to_owned(),
            partition: t.partition,
            next: None,
            ahead: VecDeque::new(),
        }));
        readers.insert((t.topic.to_owned(), t.partition), Arc::clone(&reader));
        Ok(reader)
    }

    /// Reads from `offset` up to the end `o` gives (within `limits`) through the partition's
    /// reader; `Error::OffsetOutOfRange` outside `o`.
    async fn read_at(
        &self,
        t: &Target<'_>,
        o: &PartitionOffsets,
        offset: u64,
        limits: ReadLimits,
    ) -> Result<Vec<StoredRecord>> {
        if offset < o.start || offset > o.end {
            return Err(Error::OffsetOutOfRange {
                topic: t.topic.to_owned(),
                partition: t.partition,
                offset,
                start: o.start,
                end: o.end,
            });
        }
        let end = o.end;
        if offset == end || limits.max_records == 0 {
            return Ok(Vec::new());
        }
        let reader = self.reader(t)?;
        self.blocking(move |inner| {
            let mut r = reader.lock().map_err(|_| remote("reader", "a reader panicked"))?;
            r.start(offset, inner)?;
            let read = r.read_until(end, limits);
            r.stop(inner);
            read
        })
        .await
    }

    /// Waits until a record at `offset` is there — beyond the end `o` gives, or arriving (it is
    /// kept for the next read) — or `timeout` passes.
    async fn wait_at(&self, t: &Target<'_>, o: &PartitionOffsets, offset: u64, timeout: Duration) -> Result<bool> {
        if o.end > offset {
            return Ok(true);
        }
        let offset = offset.max(o.start);
        let reader = self.reader(t)?;
        self.blocking(move |inner| {
            let mut r = reader.lock().map_err(|_| remote("reader", "a reader panicked"))?;
            if r.next == Some(offset) && !r.ahead.is_empty() {
                return Ok(true);
            }
            r.start(offset, inner)?;
            let got = r.next_record(timeout);
            r.stop(inner);
            match got? {
                Some(record) => {
                    r.next = Some(record.offset);
                    r.ahead.push_back(record);
                    Ok(true)
                }
                None => Ok(false),
            }
        })
        .await
    }

    /// `Error::Unsupported` for `what` when the admin client cannot authenticate: librdkafka asks
    /// for OAUTHBEARER tokens through the client's event queue, and rust-rdkafka's admin client
    /// never serves it (rust-rdkafka issue #757), so its requests would only time out.
    fn admin_allowed(&self, what: &'static str) -> Result<()> {
        match self.inner.context.has_signer() {
            true => Err(Error::Unsupported { backend: SERVICE, what }),
            false => Ok(()),
        }
    }

    /// The port's error for a failed request on `topic`: the topic (or partition) no longer
    /// exists — and is forgotten — or the broker failed.
    fn request_error(&self, operation: &'static str, topic: &str, partition: u32, e: &KafkaError) -> Error {
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                self.forget(topic);
                Error::TopicNotFound(topic.to_owned())
            }
            Some(RDKafkaErrorCode::UnknownPartition) => {
                self.forget(topic);
                Error::PartitionNotFound { topic: topic.to_owned(), partition, partitions: 0 }
            }
            _ => remote(operation, e),
        }
    }
}

impl Inner {
    /// Serves the events queued for the metadata client: an MSK IAM token refresh is one, and
    /// that client is not polled otherwise.
    fn serve_events(&self) {
        if self.context.has_signer() {
            let _ = self.meta.poll(Duration::ZERO);
        }
    }

    /// The first metadata request, within [`CONNECT_TIMEOUT`], without the retries of later
    /// requests (librdkafka retries within the timeout); it stops at the first error that
    /// waiting will not cure (TLS, a refused login), and says which.
    fn first_contact(&self, contact: &Contact) -> Result<()> {
        let servers = &contact.servers;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        self.context.clear();
        loop {
            self.serve_events();
            let step = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(500));
            let result = self.meta.fetch_metadata(None, step);
            let last = self.context.last_error();
            let Err(e) = result else { return Ok(()) };
            if let Some((kind, reason)) = last.as_deref().and_then(|l| Some((fatal(l)?, l))) {
                let why = match kind {
                    Fatal::Certificate => {
                        let first = servers.split(',').next().unwrap_or(servers);
                        let why = tls_check::why_refused(first, contact.ca.as_deref());
                        why.unwrap_or_else(|| "the broker's certificate was refused".into())
                    }
                    Fatal::ClientCertificateMissing if contact.client_certificate => {
                        "the broker did not accept the client certificate of ssl.certificate.location (mutual TLS: \
                         it must be signed by a CA the broker trusts)"
                            .into()
                    }
                    Fatal::ClientCertificateMissing => "the broker requires a client certificate (mutual TLS): set \
                                                        ssl.certificate.location and ssl.key.location"
                        .into(),
                    Fatal::ClientCertificateRefused => "the broker refused the client certificate (mutual TLS)".into(),
                    Fatal::Tls => "TLS handshake failed".into(),
                    Fatal::Login => format!(
                        "the broker refused the login with sasl.mechanism {}",
                        contact.mechanism.as_deref().unwrap_or("(none)")
                    ),
                };
                return Err(remote("connect", format!("cannot connect to {servers}: {why} ({reason})")));
            }
            if Instant::now() >= deadline {
                let detail = last.map_or_else(|| e.to_string(), |l| format!("{e}; last error: {l}"));
                return Err(remote(
                    "Metadata",
                    format!("no broker of {servers} answered within {CONNECT_TIMEOUT:?} ({detail})"),
                ));
            }
        }
    }
}

/// Checks, before any client is made, that the files the properties name can be read (naming
/// the property), and warns when broker host names will not be verified.
fn check_local_files(properties: &[(String, String)]) -> Result<()> {
    for (k, v) in properties {
        if config::FILE_PROPERTIES.contains(&k.as_str()) && v != "probe" {
            std::fs::File::open(v)
                .map_err(|e| remote("configuration", format!("log.kafka.properties.{k}: cannot read {v}: {e}")))?;
        }
        if k == "ssl.endpoint.identification.algorithm" && v.eq_ignore_ascii_case("none") {
            tracing::warn!("Kafka: broker host names are not verified (ssl.endpoint.identification.algorithm = none)");
        }
    }
    Ok(())
}

/// What the first contact needs to explain a failure.
struct Contact {
    servers: String,
    mechanism: Option<String>,
    /// `ssl.ca.location` as librdkafka was given it.
    ca: Option<String>,
    /// A client certificate is configured.
    client_certificate: bool,
}

#[cfg(test)]
mod tests;
