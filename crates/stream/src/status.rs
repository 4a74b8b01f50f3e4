//! Where each stream's table stands: per partition the committed position and the log's end,
//! and what the running job has done (for `pinpipe stream status`, `pinpipe up` and the bench).

use pinpipe_log::Cursor;
use serde::Serialize;

/// One partition's position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    /// Partition number.
    pub partition: u32,
    /// Dense logs: the next offset to read, as committed to the table.
    pub committed: Option<u64>,
    /// Where reading continues, as committed (on Kinesis: after a sequence number).
    pub cursor: Cursor,
    /// Dense logs: the log's end offset, last seen.
    pub end: Option<u64>,
}

/// What one stream's worker has done, and where it stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableStatus {
    /// The stream read.
    pub stream: String,
    /// The Delta table written.
    pub table: String,
    /// The table's URL.
    pub location: String,
    /// The table's version, if it exists.
    pub version: Option<u64>,
    /// Per partition: committed position and log end.
    pub partitions: Vec<PartitionStatus>,
    /// Last committed micro-batch id.
    pub last_batch: Option<u64>,
    /// Time of the table's last commit, milliseconds since the epoch.
    pub last_commit_ms: Option<i64>,
    /// Micro-batches committed by this run.
    pub batches: u64,
    /// Records read by this run.
    pub records: u64,
    /// Rows appended by this run.
    pub rows: u64,
    /// Exact duplicates dropped by this run.
    pub duplicates: u64,
    /// Dead letters written by this run.
    pub dead_letters: u64,
    /// Compactions run by this run.
    pub compactions: u64,
    /// Time each committed micro-batch took, read to commit.
    #[serde(skip)]
    pub batch_latency: pinpipe_model::histogram::Histogram,
    /// Per record committed: from its arrival in the log (its timestamp; the API's ack) to its
    /// commit in the table, when it became visible to readers.
    #[serde(skip)]
    pub visible_latency: pinpipe_model::histogram::Histogram,
}

impl TableStatus {
    /// Records in the log not yet committed to the table; `None` where the log cannot count
    /// them (Kinesis: positions are sequence numbers).
    pub fn lag(&self) -> Option<u64> {
        self.partitions.iter().map(|p| Some(p.end?.saturating_sub(p.committed?))).sum()
    }
}
