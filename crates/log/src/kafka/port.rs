//! The log port on Kafka: [`Log`] and [`OffsetLog`] for [`KafkaLog`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::FutureRecord;

use super::client::remote;
use super::*;
use crate::port::{Log, OffsetLog, PartitionOffsets, ReadLimits, Record, StoredRecord, TopicInfo, TopicKind, dense};
use crate::position::{Chunk, Cursor, Position};
use crate::{Error, Result};

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
        self.admin_allowed("creating topics with AWS_MSK_IAM (create them with the AWS console or kafka-topics.sh)")?;
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
        self.admin_allowed("deleting topics with AWS_MSK_IAM (delete them with the AWS console or kafka-topics.sh)")?;
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

    async fn append_positioned(&self, topic: &str, partition: u32, records: Vec<Record>) -> Result<Vec<Position>> {
        dense::append_positioned(self, topic, partition, records).await
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

    fn as_offsets(&self) -> Option<&dyn OffsetLog> {
        Some(self)
    }

    fn into_offsets(self: Arc<Self>) -> Option<Arc<dyn OffsetLog>> {
        Some(self)
    }
}

#[async_trait]
impl OffsetLog for KafkaLog {
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
}
