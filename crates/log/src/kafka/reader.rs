//! One partition's reader: where it stands and what a wait fetched ahead, over consumers
//! borrowed from the log's pool.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Message, Offset, TopicPartitionList};

use bytes::Bytes;

use super::client::{Detached, remote};
use super::{Inner, READ_TIMEOUT};
use crate::Result;
use crate::port::{ReadLimits, StoredRecord};

/// One partition's read position, and records a wait fetched ahead of the next read.
///
/// Consumers are not tied to partitions: a read or a wait borrows one from a pool, assigns it
/// the partition from its position, and unassigns it when done, so an idle reader sends no
/// fetches (a topic deleted meanwhile is never fetched from) and consumers are only closed when
/// the log is dropped.
pub(super) struct Reader {
    pub(super) topic: String,
    pub(super) partition: u32,
    /// The consumer, while a read or a wait runs.
    pub(super) consumer: Option<Detached>,
    /// The offset the next record handed out will have (`None`: never read).
    pub(super) next: Option<u64>,
    /// Records fetched but not yet handed out (by a wait), starting at `next`.
    pub(super) ahead: VecDeque<StoredRecord>,
}

impl Reader {
    /// Borrows a consumer and assigns it the partition from `offset`.
    pub(super) fn start(&mut self, offset: u64, inner: &Inner) -> Result<()> {
        if self.next != Some(offset) {
            self.ahead.clear();
            self.next = Some(offset);
        }
        let pooled = inner.idle.lock().ok().and_then(|mut idle| idle.pop());
        let consumer = match pooled {
            Some(c) => c,
            None => Detached(Some(
                inner.config.create_with_context(inner.context.clone()).map_err(|e| remote("configuration", e))?,
            )),
        };
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.topic, self.partition as i32, Offset::Offset(offset as i64))
            .map_err(|e| remote("Assign", e))?;
        consumer.assign(&list).map_err(|e| remote("Assign", e))?;
        self.consumer = Some(consumer);
        Ok(())
    }

    /// Unassigns the consumer and gives it back.
    pub(super) fn stop(&mut self, inner: &Inner) {
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
    pub(super) fn next_record(&mut self, timeout: Duration) -> Result<Option<StoredRecord>> {
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
    pub(super) fn position(&self) -> Option<u64> {
        let list = self.consumer.as_ref()?.position().ok()?;
        let element = list.find_partition(&self.topic, self.partition as i32)?;
        element.offset().to_raw().and_then(|o| u64::try_from(o).ok())
    }

    /// Records from the current position up to (not including) `end`, within `limits`.
    pub(super) fn read_until(&mut self, end: u64, limits: ReadLimits) -> Result<Vec<StoredRecord>> {
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
