//! What a worker knows of its stream and what a micro-batch reads from it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use pinpipe_log::{Cursor, Entry, Log, PartitionOffsets, Position, ReadLimits};

use super::{Progress, Worker};
use crate::Result;
use crate::status::PartitionStatus;

/// Bytes one log read may return.
const READ_BYTES: usize = 16 << 20;

/// What the worker knows of the stream: its partitions and, on dense logs, their offsets.
#[derive(Debug, Default)]
pub(crate) struct LogView {
    pub(crate) partitions: u32,
    pub(crate) offsets: Option<Vec<PartitionOffsets>>,
}

impl LogView {
    pub(crate) async fn of(log: &dyn Log, stream: &str) -> pinpipe_log::Result<LogView> {
        if let Some(log) = log.as_offsets() {
            let offsets = log.offsets(stream).await?;
            Ok(LogView { partitions: offsets.len() as u32, offsets: Some(offsets) })
        } else {
            Ok(LogView { partitions: log.topic(stream).await?.partitions, offsets: None })
        }
    }

    /// Where partition `p` starts when nothing was committed.
    fn start(&self, p: u32) -> Cursor {
        match self.offsets.as_ref().and_then(|o| o.iter().find(|o| o.partition == p)) {
            Some(o) => Cursor::At(Position::Offset(o.start)),
            None => Cursor::Start,
        }
    }

    /// Each partition's status given where the job continues.
    pub(crate) fn status(&self, next: &BTreeMap<u32, Cursor>) -> Vec<PartitionStatus> {
        (0..self.partitions)
            .map(|p| {
                let cursor = next.get(&p).cloned().unwrap_or_else(|| self.start(p));
                let o = self.offsets.as_ref().and_then(|o| o.iter().find(|o| o.partition == p));
                PartitionStatus {
                    partition: p,
                    committed: o.and_then(|o| cursor.dense_offset(o.start).ok()),
                    end: o.map(|o| o.end),
                    cursor,
                }
            })
            .collect()
    }
}

/// What one micro-batch read from one partition, and where that partition continues.
pub(super) struct PartitionRead {
    pub(super) partition: u32,
    pub(super) records: Vec<Entry>,
    pub(super) next: Cursor,
}

impl Worker {
    /// Starts new partitions at their first record and, on dense logs, moves past records the
    /// log no longer holds (removed by retention before the job read them: reported, not
    /// silently skipped; Kinesis starts from its trim horizon by itself).
    pub(super) fn adopt_partitions(&self, pos: &mut Progress, view: &LogView) {
        for p in 0..view.partitions {
            pos.next.entry(p).or_insert_with(|| view.start(p));
        }
        for o in view.offsets.iter().flatten() {
            let Some(next) = pos.next.get_mut(&o.partition) else { continue };
            let at = next.dense_offset(o.start).unwrap_or(o.start);
            if at < o.start {
                tracing::warn!(
                    stream = %self.stream, partition = o.partition,
                    lost = o.start - at,
                    "records were removed from the log by retention before the stream job read them"
                );
                *next = Cursor::At(Position::Offset(o.start));
            }
        }
        self.update_status(|s| s.partitions = view.status(&pos.next));
    }

    /// Reads what the next micro-batch takes: from each partition's position up to its end
    /// (in `Once` mode: the end at start on dense logs, the end as first reached on Kinesis,
    /// recorded in `drained`), sharing the batch's record budget equally between partitions.
    pub(super) async fn read(
        &self,
        pos: &Progress,
        view: &LogView,
        targets: Option<&BTreeMap<u32, u64>>,
        mut drained: Option<&mut BTreeSet<u32>>,
    ) -> Result<Vec<PartitionRead>> {
        let share = (self.config.max_records_per_batch / view.partitions.max(1) as usize).max(1);
        let mut out = Vec::new();
        for p in 0..view.partitions {
            if drained.as_deref().is_some_and(|d| d.contains(&p)) {
                continue;
            }
            let mut cursor = pos.next.get(&p).cloned().unwrap_or_else(|| view.start(p));
            let target = targets.map(|t| t.get(&p).copied().unwrap_or(0));
            let mut records: Vec<Entry> = Vec::new();
            while records.len() < share {
                let mut want = share - records.len();
                if let Some(end) = target {
                    let at = cursor.dense_offset(0)?;
                    if at >= end {
                        break;
                    }
                    want = want.min((end - at) as usize);
                }
                let limits = ReadLimits { max_records: want, max_bytes: READ_BYTES };
                // On a dense log `want` stops the read at the target: no record beyond it.
                let chunk = self.log.read_from(&self.stream, p, &cursor, limits).await?;
                let got = chunk.records.len();
                records.extend(chunk.records);
                cursor = chunk.next;
                if chunk.at_end {
                    if let Some(d) = drained.as_deref_mut() {
                        d.insert(p);
                    }
                    break;
                }
                if got == 0 {
                    break;
                }
            }
            if !records.is_empty() {
                out.push(PartitionRead { partition: p, records, next: cursor });
            }
        }
        Ok(out)
    }

    /// Waits until some partition has data beyond its position, or one trigger interval.
    pub(super) async fn wait_for_data(&self, pos: &Progress) {
        let timeout = self.config.trigger_interval.max(Duration::from_millis(200));
        let mut waits: FuturesUnordered<_> = pos
            .next
            .iter()
            .map(|(&p, next)| {
                let log = Arc::clone(&self.log);
                let stream = self.stream.clone();
                let next = next.clone();
                async move { log.wait_from(&stream, p, &next, timeout).await.unwrap_or(false) }
            })
            .collect();
        if waits.is_empty() {
            tokio::time::sleep(timeout).await;
            return;
        }
        while let Some(has_data) = waits.next().await {
            if has_data {
                return;
            }
        }
    }
}
