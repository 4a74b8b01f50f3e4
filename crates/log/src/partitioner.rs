//! Which partition a record goes to, compatible with the systems pinpipe stands in for:
//!
//! * Kafka's default partitioner: `(murmur2(key) & 0x7fffffff) % partitions` for keyed records;
//!   keyless records of one request stay together on one partition, rotating per request.
//! * Kinesis: the MD5 of the partition key as a 128-bit number falls in one shard's hash-key range;
//!   shards split the range evenly, as `CreateStream` does.
//! * Kinesis sequence numbers and shard ids derived from (partition, offset), and back.

use std::sync::atomic::{AtomicU32, Ordering};

use md5::{Digest, Md5};

/// Kafka's `Utils.murmur2` (the Java client's default partitioner hash).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for a keyed record.
pub fn kafka_partition(key: &[u8], partitions: u32) -> u32 {
    ((murmur2(key) & 0x7fff_ffff) as u32) % partitions.max(1)
}

/// Rotates keyless records across partitions, one partition per request (Kafka's sticky idea).
#[derive(Debug, Default)]
pub struct RoundRobin(AtomicU32);

impl RoundRobin {
    /// The partition for the next keyless request.
    pub fn next(&self, partitions: u32) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed) % partitions.max(1)
    }
}

/// The 128-bit hash key Kinesis derives from a partition key.
pub fn kinesis_hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// First hash key of shard `i` of `n`: the 2^128 keys split evenly.
pub fn shard_start(i: u32, n: u32) -> u128 {
    if i == 0 || n <= 1 {
        return 0;
    }
    let (n, i) = (u128::from(n), u128::from(i));
    // 2^128 = q * n + r, computed without overflowing.
    let (mut q, mut r) = (u128::MAX / n, u128::MAX % n + 1);
    if r == n {
        q += 1;
        r = 0;
    }
    i * q + (i * r) / n
}

/// Last hash key of shard `i` of `n`.
pub fn shard_end(i: u32, n: u32) -> u128 {
    if i + 1 >= n { u128::MAX } else { shard_start(i + 1, n) - 1 }
}

/// The shard whose hash-key range holds `partition_key`.
pub fn kinesis_shard(partition_key: &str, shards: u32) -> u32 {
    let h = kinesis_hash_key(partition_key);
    let (mut lo, mut hi) = (0u32, shards.max(1) - 1);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if shard_start(mid, shards) <= h { lo = mid } else { hi = mid - 1 }
    }
    lo
}

/// `shardId-000000000003` for partition 3.
pub fn shard_id(partition: u32) -> String {
    format!("shardId-{partition:012}")
}

/// The partition of a `shardId-...`.
pub fn parse_shard_id(id: &str) -> Option<u32> {
    let digits = id.strip_prefix("shardId-")?;
    if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A Kinesis-shaped sequence number (56 decimal digits, increasing with the offset within a
/// shard) for (partition, offset).
pub fn sequence_number(partition: u32, offset: u64) -> String {
    format!("49{partition:012}{offset:042}")
}

/// The Kinesis sequence number of a record at `position` of `partition`: the log's own (Kinesis),
/// or [`sequence_number`] derived from the offset (dense logs).
pub fn sequence_of(partition: u32, position: &crate::Position) -> String {
    match position {
        crate::Position::Offset(offset) => sequence_number(partition, *offset),
        crate::Position::Sequence(s) => s.clone(),
    }
}

/// The (partition, offset) of a sequence number made by [`sequence_number`].
pub fn parse_sequence_number(seq: &str) -> Option<(u32, u64)> {
    if seq.len() != 56 || !seq.starts_with("49") || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((seq[2..14].parse().ok()?, seq[14..].parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Vectors from Apache Kafka's UtilsTest.testMurmur2.
        for (input, want) in [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ] {
            assert_eq!(murmur2(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn kinesis_ranges_cover_every_key_once() {
        assert_eq!(shard_start(0, 1), 0);
        assert_eq!(shard_end(0, 1), u128::MAX);
        assert_eq!(shard_start(1, 2), 1u128 << 127);
        for n in [1, 2, 3, 7, 1024] {
            for i in 0..n {
                assert!(shard_start(i, n) <= shard_end(i, n));
                if i > 0 {
                    assert_eq!(shard_start(i, n), shard_end(i - 1, n) + 1);
                }
            }
        }
        // The shard chosen for a key holds its hash.
        for key in ["a", "user-1", "7528", ""] {
            for n in [1, 2, 5] {
                let s = kinesis_shard(key, n);
                let h = kinesis_hash_key(key);
                assert!(shard_start(s, n) <= h && h <= shard_end(s, n));
            }
        }
        assert_eq!(kinesis_hash_key(""), 0xd41d8cd98f00b204e9800998ecf8427e);
    }

    #[test]
    fn sequence_numbers_round_trip_and_order() {
        let s = sequence_number(3, 42);
        assert_eq!(s.len(), 56);
        assert_eq!(parse_sequence_number(&s), Some((3, 42)));
        assert!(sequence_number(0, 9) < sequence_number(0, 10));
        assert_eq!(parse_sequence_number("49x"), None);
        assert_eq!(shard_id(3), "shardId-000000000003");
        assert_eq!(parse_shard_id("shardId-000000000003"), Some(3));
        assert_eq!(parse_shard_id("shardId-3"), None);
    }

    #[test]
    fn keyless_requests_rotate() {
        let rr = RoundRobin::default();
        let picks: Vec<u32> = (0..6).map(|_| rr.next(3)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        assert_eq!(kafka_partition(b"same", 8), kafka_partition(b"same", 8));
    }
}
