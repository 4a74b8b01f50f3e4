//! The warehouse layout: where the two layers keep their tables and what belongs to them, under
//! one warehouse URL (`[warehouse]`, default `<data_dir>/warehouse`).
//!
//! ```text
//! batch/<p>_{pin,geo,user}_table/           the batch layer's clean Delta tables
//! batch/_pinpipe_aggregates                 the questions' aggregates, beside them
//! batch/_pinpipe_lease                      one batch run at a time
//! stream/<p>_{pin,geo,user}_table/          the speed layer's Delta tables
//! stream/_dead_letters/<table>/<batch>.jsonl  records a micro-batch could not clean
//! stream/_pinpipe_lease                     one streaming job at a time
//! ```

/// The directory of the batch layer's table `table`.
pub fn batch_table(table: &str) -> String {
    format!("batch/{table}")
}

/// The batch layer's saved aggregates.
pub const BATCH_AGGREGATES: &str = "batch/_pinpipe_aggregates";

/// Prefix where a cluster's executors leave the batch job's cleaned units until the job reads
/// them (`pinpipe cluster`); the job removes what it read.
pub const BATCH_STAGING: &str = "batch/_pinpipe_staging";

/// The batch job's lease.
pub const BATCH_LEASE: &str = "batch/_pinpipe_lease";

/// The directory of the speed layer's table `table`.
pub fn stream_table(table: &str) -> String {
    format!("stream/{table}")
}

/// The dead letters of micro-batch `batch` of the speed layer's table `table`.
pub fn stream_dead_letters(table: &str, batch: u64) -> String {
    format!("{}/{batch:010}.jsonl", stream_dead_letter_dir(table))
}

/// Where the dead letters of the speed layer's table `table` are.
pub fn stream_dead_letter_dir(table: &str) -> String {
    format!("stream/_dead_letters/{table}")
}

/// The streaming job's lease.
pub const STREAM_LEASE: &str = "stream/_pinpipe_lease";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_documented_ones() {
        assert_eq!(batch_table("p_pin_table"), "batch/p_pin_table");
        assert_eq!(stream_table("p_geo_table"), "stream/p_geo_table");
        assert_eq!(stream_dead_letters("p_user_table", 12), "stream/_dead_letters/p_user_table/0000000012.jsonl");
    }
}
