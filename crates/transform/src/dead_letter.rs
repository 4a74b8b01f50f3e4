//! Dead letters: records that could not be parsed or typed, kept whole with the reason and
//! where they came from, so nothing is ever silently dropped.

use pinpipe_model::Kind;
use serde::{Deserialize, Serialize};

/// Where a raw record came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Origin {
    /// A line of an object in the raw object layout (batch job).
    Object {
        /// Object key relative to the store root, e.g. `topics/p.pin/partition=0/p.pin+0+0000000000.json`.
        path: String,
        /// 1-based line number within the object.
        line: u64,
    },
    /// A record of a topic partition of the log.
    Topic {
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
        /// Offset.
        offset: u64,
    },
    /// A record of a stream shard (streaming job).
    Stream {
        /// Stream.
        stream: String,
        /// Shard id, e.g. `shardId-000000000000`.
        shard: String,
        /// Sequence number.
        sequence_number: String,
    },
}

/// A record that did not make it into a clean table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Which table it was meant for.
    pub kind: Kind,
    /// Why it was refused.
    pub reason: String,
    /// Where it came from.
    pub origin: Origin,
    /// The record exactly as received (invalid UTF-8 replaced by U+FFFD).
    pub record: String,
}
