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
//!   `${env:VARIABLE}`. This build has no OpenSSL: PLAINTEXT and SASL_PLAINTEXT with PLAIN work;
//!   TLS, SCRAM and MSK IAM do not yet.

mod config;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer as RdBaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

pub use self::config::{KafkaConfig, ResolvedKafka};
use crate::port::{Log, MAX_PARTITIONS, PartitionOffsets, ReadLimits, Record, StoredRecord, TopicInfo, TopicKind};
use crate::position::{Chunk, Cursor};
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

/// Where librdkafka's own logs and errors go: tracing at debug level (`RUST_LOG=librdkafka=debug`).
/// pinpipe reports what fails through the results of its calls, once, with the broker named;
/// librdkafka would otherwise log every reconnection attempt as an error.
#[derive(Clone, Copy)]
struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        tracing::debug!(target: "librdkafka", ?level, facility, "{message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
    }
}

impl ConsumerContext for Quiet {}

type BaseConsumer = RdBaseConsumer<Quiet>;

/// Attempts of a metadata or offsets request whose connection dropped.
const ATTEMPTS: u32 = 4;

/// Errors after which the same request is worth sending again.
fn is_transient(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::RequestTimedOut
        )
    )
}

fn remote(operation: &'static str, e: impl std::fmt::Display) -> Error {
    Error::Remote { service: SERVICE, operation, message: e.to_string() }
}

/// A consumer that is closed on a thread of its own when dropped, waiting at most
/// [`CLOSE_TIMEOUT`] for it: librdkafka's close can wait forever for a partition whose topic was
/// deleted while it was assigned (librdkafka issue #4362), and that must not stop a shutdown.
struct Detached(Option<BaseConsumer>);

/// How long dropping a reader waits for its consumer to close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

impl std::ops::Deref for Detached {
    type Target = BaseConsumer;
    fn deref(&self) -> &BaseConsumer {
        // Only `drop` takes it out.
        self.0.as_ref().unwrap_or_else(|| unreachable!("a consumer is only taken out when dropped"))
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            let _ = consumer.unassign();
            let (done, closed) = std::sync::mpsc::channel::<()>();
            let spawned = std::thread::Builder::new().name("pinpipe-kafka-close".into()).spawn(move || {
                drop(consumer);
                let _ = done.send(());
            });
            match spawned {
                Ok(_) => {
                    if closed.recv_timeout(CLOSE_TIMEOUT).is_err() {
                        tracing::warn!("a Kafka reader did not close within {CLOSE_TIMEOUT:?}; leaving it behind");
                    }
                }
                Err(e) => tracing::warn!("cannot close a Kafka reader on its own thread ({e}); leaving it open"),
            }
        }
    }
}

/// One partition's read position, and records a wait fetched ahead of the next read.
///
/// Consumers are not tied to partitions: a read or a wait borrows one from a pool, assigns it
/// the partition from its position, and unassigns it when done, so an idle reader sends no
/// fetches (a topic deleted meanwhile is never fetched from) and consumers are only closed when
/// the log is dropped.
struct Reader {
    topic: String,
    partition: u32,
    /// The consumer, while a read or a wait runs.
    consumer: Option<Detached>,
    /// The offset the next record handed out will have (`None`: never read).
    next: Option<u64>,
    /// Records fetched but not yet handed out (by a wait), starting at `next`.
    ahead: VecDeque<StoredRecord>,
}

impl Reader {
    /// Borrows a consumer and assigns it the partition from `offset`.
    fn start(&mut self, offset: u64, inner: &Inner) -> Result<()> {
        if self.next != Some(offset) {
            self.ahead.clear();
            self.next = Some(offset);
        }
        let pooled = inner.idle.lock().ok().and_then(|mut idle| idle.pop());
        let consumer = match pooled {
            Some(c) => c,
            None => Detached(Some(inner.config.create_with_context(Quiet).map_err(|e| remote("configuration", e))?)),
        };
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.topic, self.partition as i32, Offset::Offset(offset as i64))
            .map_err(|e| remote("Assign", e))?;
        consumer.assign(&list).map_err(|e| remote("Assign", e))?;
        self.consumer = Some(consumer);
        Ok(())
    }

    /// Unassigns the consumer and gives it back.
    fn stop(&mut self, inner: &Inner) {
        if let Some(consumer) = self.consumer.take() {
            match consumer.unassign() {
                Ok(()) => {
                    if let Ok(mut idle) = inner.idle.lock() {
                        idle.push(consumer);
                    }
                }
                Err(e) => tracing::warn!("cannot unassign a reader of {}/{}: {e}", self.topic, self.partition),
            }
        }
    }

    /// The next record, from what was fetched ahead or from the broker within `timeout`.
    fn next_record(&mut self, timeout: Duration) -> Result<Option<StoredRecord>> {
        if let Some(r) = self.ahead.pop_front() {
            self.next = Some(r.offset + 1);
            return Ok(Some(r));
        }
        let Some(consumer) = &self.consumer else { return Ok(None) };
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(polled) = consumer.poll(left) else { return Ok(None) };
            let m = polled.map_err(|e| remote("Fetch", e))?;
            let offset = m.offset() as u64;
            // Anything else can only be a leftover of an earlier assignment.
            if m.topic() != self.topic || m.partition() != self.partition as i32 || Some(offset) < self.next {
                continue;
            }
            let record = StoredRecord {
                offset,
                timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
                key: m.key().map(Bytes::copy_from_slice),
                value: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
            };
            self.next = Some(offset + 1);
            return Ok(Some(record));
        }
    }

    /// Where the assigned consumer continues fetching (after records it skipped), if known.
    fn position(&self) -> Option<u64> {
        let list = self.consumer.as_ref()?.position().ok()?;
        let element = list.find_partition(&self.topic, self.partition as i32)?;
        element.offset().to_raw().and_then(|o| u64::try_from(o).ok())
    }

    /// Records from the current position up to (not including) `end`, within `limits`.
    fn read_until(&mut self, end: u64, limits: ReadLimits) -> Result<Vec<StoredRecord>> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let deadline = Instant::now() + READ_TIMEOUT;
        while self.next.is_some_and(|n| n < end) && out.len() < limits.max_records && bytes < limits.max_bytes {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_record(left.min(Duration::from_millis(100)))? {
                Some(r) => {
                    bytes += r.value.len() + r.key.as_ref().map_or(0, Bytes::len);
                    out.push(r);
                }
                // Offsets without a record (transaction markers, compacted records) end below
                // `end`: the consumer's position moves past them.
                None if self.position().is_some_and(|p| p >= end) => {
                    self.next = self.position();
                    break;
                }
                None if left.is_zero() => {
                    if out.is_empty() {
                        return Err(remote(
                            "Fetch",
                            format!(
                                "no records arrived within {READ_TIMEOUT:?} though the broker holds offsets up to {end}"
                            ),
                        ));
                    }
                    break;
                }
                None => {}
            }
        }
        Ok(out)
    }
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
        let properties = config.resolved_properties().map_err(|(property, variable)| {
            remote(
                "configuration",
                format!("environment variable {variable} (for log.kafka.properties.{property}) is not set"),
            )
        })?;
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
        let producer: FutureProducer<Quiet> =
            producer.create_with_context(Quiet).map_err(|e| remote("configuration", e))?;
        let admin: AdminClient<Quiet> = base.create_with_context(Quiet).map_err(|e| remote("configuration", e))?;
        // Metadata and offsets only: no group id, so nothing to leave when it is dropped.
        let mut meta = consumer.clone();
        meta.remove("group.id");
        let meta: BaseConsumer = meta.create_with_context(Quiet).map_err(|e| remote("configuration", e))?;
        let log = KafkaLog {
            inner: Arc::new(Inner {
                describe: format!("Kafka at {}", config.bootstrap_servers),
                config: consumer,
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
        let servers = config.bootstrap_servers.clone();
        // Once, without the retries of later requests: librdkafka already retries within the timeout.
        log.blocking(move |i| {
            i.meta.fetch_metadata(None, CONNECT_TIMEOUT).map(drop).map_err(|e| {
                remote("Metadata", format!("no broker of {servers} answered within {CONNECT_TIMEOUT:?} ({e})"))
            })
        })
        .await?;
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

#[async_trait]
impl Log for KafkaLog {
    fn describe(&self) -> String {
        self.inner.describe.clone()
    }

    async fn create_topic(&self, name: &str, kind: TopicKind, partitions: u32) -> Result<TopicInfo> {
        match kind {
            TopicKind::Topic => pinpipe_model::names::validate_topic(name)?,
            TopicKind::Stream => pinpipe_model::names::validate_stream(name)?,
        }
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(Error::InvalidPartitionCount(partitions));
        }
        let replication = self.inner.replication_factor.map_or(-1, i32::from);
        let new = NewTopic::new(name, partitions as i32, TopicReplication::Fixed(replication));
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self.inner.admin.create_topics([&new], &options).await.map_err(|e| remote("CreateTopics", e))?;
        for r in results {
            match r {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => return Err(Error::TopicExists(name.to_owned())),
                Err((_, code)) => return Err(remote("CreateTopics", format!("topic {name}: {code}"))),
            }
        }
        // Wait until the metadata shows it with every partition.
        let deadline = Instant::now() + PROPAGATION_TIMEOUT;
        loop {
            self.forget(name);
            let seen = self.metadata(Some(name)).await?.into_iter().any(|(n, p)| n == name && p == partitions);
            if seen {
                break;
            }
            if Instant::now() > deadline {
                return Err(remote(
                    "CreateTopics",
                    format!("topic {name} did not appear within {PROPAGATION_TIMEOUT:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(TopicInfo { name: name.to_owned(), kind: kind_of(name), partitions, created_ms: 0 })
    }

    async fn delete_topic(&self, name: &str) -> Result<()> {
        pinpipe_model::names::validate_topic(name)?;
        self.forget(name);
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self.inner.admin.delete_topics(&[name], &options).await.map_err(|e| remote("DeleteTopics", e))?;
        for r in results {
            match r {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)) => {
                    return Err(Error::TopicNotFound(name.to_owned()));
                }
                Err((_, code)) => return Err(remote("DeleteTopics", format!("topic {name}: {code}"))),
            }
        }
        let deadline = Instant::now() + PROPAGATION_TIMEOUT;
        while self.metadata(Some(name)).await?.iter().any(|(n, _)| n == name) {
            if Instant::now() > deadline {
                return Err(remote(
                    "DeleteTopics",
                    format!("topic {name} is still listed after {PROPAGATION_TIMEOUT:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.forget(name);
        Ok(())
    }

    async fn topics(&self) -> Result<Vec<TopicInfo>> {
        let mut out: Vec<TopicInfo> = self
            .metadata(None)
            .await?
            .into_iter()
            .filter(|(name, partitions)| !is_internal(name) && *partitions > 0)
            .map(|(name, partitions)| TopicInfo { kind: kind_of(&name), name, partitions, created_ms: 0 })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn topic(&self, name: &str) -> Result<TopicInfo> {
        pinpipe_model::names::validate_topic(name)?;
        let partitions = self.partition_count(name).await?;
        Ok(TopicInfo { name: name.to_owned(), kind: kind_of(name), partitions, created_ms: 0 })
    }

    async fn offsets(&self, name: &str) -> Result<Vec<PartitionOffsets>> {
        // Asked afresh: a topic deleted or grown by another client is seen here.
        self.forget_count(name);
        let partitions = self.partition_count(name).await?;
        let topic = name.to_owned();
        let marks = self
            .request(move |i| {
                (0..partitions)
                    .map(|p| i.meta.fetch_watermarks(&topic, p as i32, REQUEST_TIMEOUT))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(|e| self.request_error("ListOffsets", name, 0, &e))?;
        Ok(marks
            .into_iter()
            .zip(0..)
            .map(|((low, high), p)| PartitionOffsets {
                partition: p,
                start: low.max(0) as u64,
                end: high.max(0) as u64,
            })
            .collect())
    }

    async fn append(&self, topic: &str, partition: u32, records: Vec<Record>) -> Result<u64> {
        if records.is_empty() {
            return Err(Error::EmptyBatch);
        }
        self.check_partition(topic, partition).await?;
        let mut deliveries = Vec::with_capacity(records.len());
        {
            let _queueing = self.inner.queueing.lock().map_err(|_| remote("Produce", "a producer panicked"))?;
            for r in &records {
                let mut out = FutureRecord::<[u8], [u8]>::to(topic).partition(partition as i32).payload(&r.value[..]);
                if let Some(key) = &r.key {
                    out = out.key(&key[..]);
                }
                if let Some(ts) = r.timestamp_ms {
                    out = out.timestamp(ts);
                }
                match self.inner.producer.send_result(out) {
                    Ok(delivery) => deliveries.push(delivery),
                    Err((e, _)) => return Err(self.request_error("Produce", topic, partition, &e)),
                }
            }
        }
        let mut first = None;
        for d in deliveries {
            match d.await {
                Ok(Ok(delivery)) => {
                    first.get_or_insert(delivery.offset as u64);
                }
                Ok(Err((e, _))) => return Err(self.request_error("Produce", topic, partition, &e)),
                Err(_) => return Err(Error::Closed),
            }
        }
        first.ok_or(Error::EmptyBatch)
    }

    async fn read(&self, topic: &str, partition: u32, offset: u64, limits: ReadLimits) -> Result<Vec<StoredRecord>> {
        let t = Target { topic, partition };
        let o = self.watermarks(&t).await?;
        self.read_at(&t, &o, offset, limits).await
    }

    async fn wait_for(&self, topic: &str, partition: u32, offset: u64, timeout: Duration) -> Result<bool> {
        let t = Target { topic, partition };
        let o = self.watermarks(&t).await?;
        self.wait_at(&t, &o, offset, timeout).await
    }

    async fn read_from(&self, topic: &str, partition: u32, cursor: &Cursor, limits: ReadLimits) -> Result<Chunk> {
        let t = Target { topic, partition };
        let o = self.watermarks(&t).await?;
        let at = cursor.dense_offset(o.start)?;
        let records = self.read_at(&t, &o, at, limits).await?;
        Ok(Chunk::dense(records, cursor, at, o.end))
    }

    async fn wait_from(&self, topic: &str, partition: u32, cursor: &Cursor, timeout: Duration) -> Result<bool> {
        let t = Target { topic, partition };
        let o = self.watermarks(&t).await?;
        self.wait_at(&t, &o, cursor.dense_offset(o.start)?, timeout).await
    }
}

#[cfg(test)]
mod tests;
