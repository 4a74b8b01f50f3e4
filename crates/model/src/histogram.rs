//! A latency histogram kept as plain counts in a stage's status (the sink's flushes, the
//! streaming job's ack-to-visible latency), so that a stage records latencies without depending
//! on a metrics library; the process's metrics encode it as a Prometheus histogram.

use std::time::Duration;

/// Upper bounds of the buckets, in seconds (the last one catches everything).
pub const LATENCY_BOUNDS: [f64; 16] =
    [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, f64::INFINITY];

/// Counts of latencies per bucket of [`LATENCY_BOUNDS`], their number and their sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative).
    pub counts: [u64; LATENCY_BOUNDS.len()],
    /// Observations.
    pub count: u64,
    /// Their sum, in nanoseconds.
    pub sum_nanos: u64,
}

impl Histogram {
    /// Records one latency.
    pub fn observe(&mut self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let bucket = LATENCY_BOUNDS.iter().position(|b| seconds <= *b).unwrap_or(LATENCY_BOUNDS.len() - 1);
        self.counts[bucket] += 1;
        self.count += 1;
        self.sum_nanos = self.sum_nanos.saturating_add(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// `(upper bound in seconds, observations in that bucket)`, in order.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        LATENCY_BOUNDS.iter().copied().zip(self.counts).collect()
    }

    /// The sum of the observations, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_first_bucket_that_holds_them() {
        let mut h = Histogram::default();
        for ms in [0, 1, 3, 1_000, 1_001, 3_600_000] {
            h.observe(Duration::from_millis(ms));
        }
        let b = h.buckets();
        assert_eq!((b[0], b[2], b[9], b[10], b[15]), ((0.001, 2), (0.005, 1), (1.0, 1), (2.5, 1), (f64::INFINITY, 1)));
        assert_eq!(h.count, 6);
        assert_eq!(h.sum_nanos, 3_602_005 * 1_000_000);
    }
}
