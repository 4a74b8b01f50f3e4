//! The log port on Kinesis: [`Log`] for [`KinesisLog`], from its requests.

use async_trait::async_trait;

use super::*;

#[async_trait]
impl Log for KinesisLog {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { optional_keys: false, record_timestamps: false }
    }

    async fn create_topic(&self, name: &str, kind: TopicKind, partitions: u32) -> Result<TopicInfo> {
        if kind == TopicKind::Topic {
            return Err(Self::unsupported("Kafka-style topics (route topics to the embedded log or Kafka)"));
        }
        pinpipe_model::names::validate_stream(name)?;
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(Error::InvalidPartitionCount(partitions));
        }
        self.forget(name);
        let created = self.client.create_stream().stream_name(name).shard_count(partitions as i32).send().await;
        if let Err(e) = created {
            return Err(match e.code() {
                Some("ResourceInUseException") => Error::TopicExists(name.to_owned()),
                _ => remote("CreateStream", name)(e),
            });
        }
        self.wait_active(name).await
    }

    async fn delete_topic(&self, name: &str) -> Result<()> {
        pinpipe_model::names::validate_stream(name)?;
        self.forget(name);
        self.client
            .delete_stream()
            .stream_name(name)
            .enforce_consumer_deletion(true)
            .send()
            .await
            .map_err(remote("DeleteStream", name))?;
        let deadline = Instant::now() + STATUS_WAIT;
        loop {
            match self.client.describe_stream_summary().stream_name(name).send().await {
                Err(e) if e.code() == Some("ResourceNotFoundException") => return Ok(()),
                Err(e) => return Err(remote("DescribeStreamSummary", name)(e)),
                Ok(_) if Instant::now() > deadline => {
                    return Err(Error::Remote {
                        service: SERVICE,
                        operation: "DeleteStream",
                        message: format!("stream {name} still exists after {}s", STATUS_WAIT.as_secs()),
                    });
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn topics(&self) -> Result<Vec<TopicInfo>> {
        let mut names: Vec<String> = Vec::new();
        let mut token: Option<String> = None;
        let mut after: Option<String> = None;
        loop {
            let mut req = self.client.list_streams();
            if let Some(t) = &token {
                req = req.next_token(t);
            } else if let Some(a) = &after {
                req = req.exclusive_start_stream_name(a);
            }
            let out = req.send().await.map_err(remote("ListStreams", ""))?;
            let page = out.stream_names().to_vec();
            let last = page.last().cloned();
            names.extend(page);
            if !out.has_more_streams() {
                break;
            }
            // Pages go on by token, or (servers without tokens, and the older API) after the
            // last name of the page.
            match (out.next_token(), last) {
                (Some(t), _) => token = Some(t.to_owned()),
                (None, Some(l)) if after.as_ref() != Some(&l) => {
                    token = None;
                    after = Some(l);
                }
                _ => break,
            }
        }
        names.sort();
        names.dedup();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.topic(&name).await {
                Ok(t) => out.push(t),
                // Deleted in the meantime.
                Err(Error::TopicNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn topic(&self, name: &str) -> Result<TopicInfo> {
        pinpipe_model::names::validate_stream(name)?;
        if let Some((info, _)) = self
            .described
            .lock()
            .ok()
            .and_then(|d| d.get(name).cloned())
            .filter(|(_, at)| at.elapsed() < DESCRIPTION_TTL)
        {
            return Ok(info);
        }
        let out = self
            .client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(remote("DescribeStreamSummary", name))?;
        let s = out.stream_description_summary().ok_or_else(|| Error::TopicNotFound(name.to_owned()))?;
        if *s.stream_status() == StreamStatus::Deleting {
            return Err(Error::TopicNotFound(name.to_owned()));
        }
        let info = info(s);
        if *s.stream_status() == StreamStatus::Active
            && let Ok(mut d) = self.described.lock()
        {
            d.insert(name.to_owned(), (info.clone(), Instant::now()));
        }
        Ok(info)
    }

    async fn append_positioned(&self, topic: &str, partition: u32, records: Vec<Record>) -> Result<Vec<Position>> {
        if records.is_empty() {
            return Err(Error::EmptyBatch);
        }
        let shard = self.shard(topic, partition).await?;
        let mut entries = Vec::with_capacity(records.len());
        for r in &records {
            let key = partition_key(r.key.as_ref(), &shard);
            let entry = PutRecordsRequestEntry::builder()
                .data(Blob::new(r.value.to_vec()))
                .partition_key(key)
                .explicit_hash_key(&shard.start_hash_key)
                .build()
                .map_err(|e| Error::Remote { service: SERVICE, operation: "PutRecords", message: e.to_string() })?;
            entries.push(entry);
        }
        let mut positions: Vec<Option<Position>> = vec![None; entries.len()];
        // Indexes still to send, in order.
        let mut pending: Vec<usize> = (0..entries.len()).collect();
        let mut last_error = String::new();
        for attempt in 0..PUT_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
            }
            let mut refused = Vec::new();
            for chunk in chunks(&pending, &records) {
                let batch: Vec<PutRecordsRequestEntry> = chunk.iter().map(|&i| entries[i].clone()).collect();
                let out = self
                    .client
                    .put_records()
                    .stream_name(topic)
                    .set_records(Some(batch))
                    .send()
                    .await
                    .map_err(remote("PutRecords", topic))?;
                for (&i, result) in chunk.iter().zip(out.records()) {
                    match (result.error_code(), result.sequence_number()) {
                        (None, Some(seq)) => positions[i] = Some(Position::sequence(seq)?),
                        (code, _) => {
                            last_error = format!(
                                "{}: {}",
                                code.unwrap_or("no sequence number"),
                                result.error_message().unwrap_or("")
                            );
                            refused.push(i);
                        }
                    }
                }
                // A response shorter than the request leaves the rest unacknowledged.
                refused.extend(chunk.iter().skip(out.records().len()).copied());
            }
            pending = refused;
        }
        if !pending.is_empty() {
            return Err(Error::Remote {
                service: SERVICE,
                operation: "PutRecords",
                message: format!(
                    "{} of {} records were refused {PUT_ATTEMPTS} times (last: {last_error}); the others were written",
                    pending.len(),
                    records.len()
                ),
            });
        }
        Ok(positions.into_iter().flatten().collect())
    }

    async fn read_from(&self, topic: &str, partition: u32, cursor: &Cursor, limits: ReadLimits) -> Result<Chunk> {
        let shard = self.shard(topic, partition).await?;
        let mut at = cursor.clone();
        let mut records = Vec::new();
        let mut bytes = 0usize;
        let mut at_end = false;
        for _ in 0..=EMPTY_HOPS {
            let out = self.get(topic, partition, &shard, &at, limits.max_records).await?;
            let got = out.records();
            let mut truncated = false;
            for r in got {
                if records.len() >= limits.max_records || (bytes >= limits.max_bytes && !records.is_empty()) {
                    truncated = true;
                    break;
                }
                let value = Bytes::from(r.data().as_ref().to_vec());
                let key = r.partition_key().map(|k| Bytes::copy_from_slice(k.as_bytes()));
                bytes += value.len() + key.as_ref().map_or(0, Bytes::len);
                records.push(Entry {
                    position: Position::sequence(r.sequence_number())?,
                    timestamp_ms: r.approximate_arrival_timestamp().and_then(|t| t.to_millis().ok()).unwrap_or(0),
                    key,
                    value,
                });
            }
            let next = records.last().map_or_else(|| at.clone(), |r: &Entry| Cursor::After(r.position.clone()));
            if truncated {
                // The iterator stands after the whole response; the reader continues earlier.
                self.remember(topic, partition, next.clone(), None);
                at = next;
                break;
            }
            self.remember(topic, partition, next.clone(), out.next_shard_iterator());
            at = next;
            // No next iterator: the shard is closed and fully read.
            at_end = out.millis_behind_latest() == Some(0) || out.next_shard_iterator().is_none();
            if !records.is_empty() || at_end {
                break;
            }
        }
        Ok(Chunk { records, next: at, at_end })
    }

    async fn wait_from(&self, topic: &str, partition: u32, cursor: &Cursor, timeout: Duration) -> Result<bool> {
        let shard = self.shard(topic, partition).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let out = self.get(topic, partition, &shard, cursor, 1).await?;
            if !out.records().is_empty() {
                // Nothing consumed: the cached iterator still stands at `cursor`.
                return Ok(true);
            }
            // An empty answer's next iterator stands at the same place.
            self.remember(topic, partition, cursor.clone(), out.next_shard_iterator());
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            tokio::time::sleep_until((now + self.poll_interval).min(deadline)).await;
        }
    }
}

/// Splits `pending` into `PutRecords` requests within Kinesis' record and byte limits.
pub(super) fn chunks(pending: &[usize], records: &[Record]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for &i in pending {
        let size = records[i].value.len() + records[i].key.as_ref().map_or(0, Bytes::len) + 64;
        match out.last_mut() {
            Some(last) if last.len() < PUT_MAX_RECORDS && bytes + size <= PUT_MAX_BYTES => {
                last.push(i);
                bytes += size;
            }
            _ => {
                out.push(vec![i]);
                bytes = size;
            }
        }
    }
    out
}
