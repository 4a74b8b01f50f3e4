//! The exactly-once commit protocol between the log and a stream's Delta table.
//!
//! Every micro-batch is ONE Delta commit that holds its rows (add actions) and its offsets:
//!
//! * a `txn` action `{appId: "pinpipe-stream:<stream>", version: <micro-batch id>}`, as Spark's
//!   Delta sink writes;
//! * on logs with dense offsets, one `txn` action per partition (shard) read,
//!   `{appId: "pinpipe-stream:<stream>:<partition>", version: <next offset to read>}`;
//! * `commitInfo.pinpipe`: the stream, the micro-batch id and per partition the positions read
//!   (`from`, `last`, and on dense logs `to`, the next offset), with record, row, duplicate and
//!   dead-letter counts, for people and tools reading the table's history; on logs whose
//!   positions are sequence numbers (Kinesis), which do not fit a `txn` version, also `cursors`:
//!   where every partition continues.
//!
//! `txn` actions are part of the table's snapshot (and of its checkpoints), so on start the job
//! reads its position back from the table alone: there is no second place that could disagree.
//! On Kinesis it reads the `cursors` of the commit of the last micro-batch (the newest data
//! commit, which log clean-up never removes: clean-up only drops commits older than the newest
//! checkpoint and the retention period).
//! A crash before the commit redoes the batch from the same offsets (its rows were never
//! visible); after the commit, the offsets are there with the rows. Two jobs committing the same
//! app ids conflict in Delta's own conflict check (`ConcurrentTransaction`), so a second job
//! started by mistake cannot duplicate rows either.

use std::collections::BTreeMap;

use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::{DeltaResult, DeltaTable};
use futures_util::StreamExt;
use pinpipe_log::{Cursor, Position};
use serde::{Deserialize, Serialize};

/// Prefix of every app id pinpipe's streaming job writes.
pub const APP_ID_PREFIX: &str = "pinpipe-stream";

/// Key of pinpipe's entry in `commitInfo`.
pub const COMMIT_INFO_KEY: &str = "pinpipe";

/// The app id whose version is the last committed micro-batch id of `stream`.
pub fn batch_app_id(stream: &str) -> String {
    format!("{APP_ID_PREFIX}:{stream}")
}

/// The app id whose version is the next offset of `stream`'s `partition` to read.
pub fn partition_app_id(stream: &str, partition: u32) -> String {
    format!("{APP_ID_PREFIX}:{stream}:{partition}")
}

/// What a table says has been consumed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// Last committed micro-batch id.
    pub batch: Option<u64>,
    /// Dense logs: next offset to read, per partition that was ever committed.
    pub offsets: BTreeMap<u32, u64>,
    /// Logs with sequence numbers: where each partition continues.
    pub cursors: BTreeMap<u32, Cursor>,
}

impl Committed {
    /// Where each committed partition continues, on either kind of log.
    pub fn positions(&self) -> BTreeMap<u32, Cursor> {
        let mut out = self.cursors.clone();
        out.extend(self.offsets.iter().map(|(&p, &next)| (p, Cursor::At(Position::Offset(next)))));
        out
    }
}

/// How a stream's positions are committed, which follows from its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracking {
    /// Dense offsets (the embedded log, Kafka): a `txn` action per partition, its version the
    /// next offset to read.
    Offsets,
    /// Sequence numbers (Kinesis): the cursors in the last micro-batch's `commitInfo`.
    Cursors,
}

impl Tracking {
    /// How positions of `log` are committed.
    pub fn of(log: &dyn pinpipe_log::Log) -> Tracking {
        if log.as_offsets().is_some() { Tracking::Offsets } else { Tracking::Cursors }
    }
}

/// Commits of a table searched for the last micro-batch's `commitInfo` (compactions may have
/// committed after it).
const HISTORY_SEARCH: usize = 1000;

/// Reads the committed position of `stream` (partitions `0..partitions`) from `table`: from
/// `txn` actions or from the last micro-batch's `commitInfo`, as `tracking` says. A location
/// that is not a table yet has committed nothing.
pub async fn committed(
    table: &DeltaTable,
    stream: &str,
    partitions: u32,
    tracking: Tracking,
) -> DeltaResult<Committed> {
    let Ok(state) = table.snapshot() else {
        return Ok(Committed::default());
    };
    let store = table.log_store();
    let as_u64 = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    let batch = as_u64(state.transaction_version(store.as_ref(), batch_app_id(stream)).await?);
    let mut offsets = BTreeMap::new();
    let mut cursors = BTreeMap::new();
    if tracking == Tracking::Offsets {
        for p in 0..partitions {
            if let Some(next) = as_u64(state.transaction_version(store.as_ref(), partition_app_id(stream, p)).await?) {
                offsets.insert(p, next);
            }
        }
    } else if let Some(b) = batch {
        let mut history = table.history(Some(HISTORY_SEARCH));
        let mut found = false;
        while let Some(commit) = history.next().await {
            let info: Option<BatchInfo> =
                commit?.info.get(COMMIT_INFO_KEY).and_then(|v| serde_json::from_value(v.clone()).ok());
            if let Some(info) = info.filter(|i| i.stream == stream && i.batch == b) {
                cursors = info.cursors;
                found = true;
                break;
            }
        }
        if !found {
            return Err(deltalake::DeltaTableError::Generic(format!(
                "the commit of micro-batch {b} of {stream}, which holds where to continue reading, is not among the \
                 table's last {HISTORY_SEARCH} commits"
            )));
        }
    }
    Ok(Committed { batch, offsets, cursors })
}

/// What one micro-batch read from one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRange {
    /// Partition number.
    pub partition: u32,
    /// Its Kinesis-style shard id.
    pub shard: String,
    /// Position (offset or sequence number) of the first record read.
    pub from: Position,
    /// Position of the last record read.
    pub last: Position,
    /// Dense logs: the offset after the last one read (the next to read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
}

/// What a micro-batch commit records in `commitInfo.pinpipe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchInfo {
    /// The stream read.
    pub stream: String,
    /// Micro-batch id (0, 1, 2, ... per table).
    pub batch: u64,
    /// Offsets read.
    pub offsets: Vec<PartitionRange>,
    /// Records read.
    pub records: u64,
    /// Rows appended.
    pub rows: u64,
    /// Exact duplicates dropped within the batch.
    pub duplicates: u64,
    /// Records sent to the dead letters.
    pub dead_letters: u64,
    /// Logs with sequence numbers: where every partition continues after this batch.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cursors: BTreeMap<u32, Cursor>,
}

/// The commit properties of a micro-batch: its `txn` actions and `commitInfo.pinpipe`.
/// Checkpoints are left to the job, which writes them on its own schedule.
pub fn properties(info: &BatchInfo) -> CommitProperties {
    let now = chrono::Utc::now().timestamp_millis();
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut txns = vec![Transaction::new_with_last_update(batch_app_id(&info.stream), as_i64(info.batch), Some(now))];
    txns.extend(info.offsets.iter().filter_map(|r| {
        let next = r.to?;
        Some(Transaction::new_with_last_update(partition_app_id(&info.stream, r.partition), as_i64(next), Some(now)))
    }));
    let meta = serde_json::to_value(info).unwrap_or_default();
    CommitProperties::default()
        .with_application_transactions(txns)
        .with_metadata([(COMMIT_INFO_KEY.to_owned(), meta)])
        .with_create_checkpoint(false)
}
