//! Backpressure: a budget of request bytes in flight (`api.max_inflight_bytes`), instead of an
//! unbounded queue in front of the log.
//!
//! A produce takes its share of the budget before its body is read (its `Content-Length`; a
//! body without one takes what it turns out to be once read) and gives it back when its response
//! is ready, i.e. once the log has made its records durable or refused them. When the log cannot
//! keep up (a slow disk, a full write queue) the budget runs out and further produces are
//! answered at once with 429 (REST Proxy) or `ProvisionedThroughputExceededException` (streams),
//! both with `Retry-After`, rather than waiting in memory. Memory held by produce bodies is so
//! bounded by the budget, whatever the number of clients; nothing acknowledged is ever dropped,
//! since a refused request wrote nothing.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Seconds a refused client is told to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 1;

/// The budget of bytes in flight.
#[derive(Debug)]
pub struct Budget {
    permits: Arc<Semaphore>,
    capacity: usize,
}

/// A request's share of the budget; given back on drop.
#[derive(Debug)]
pub struct Admission {
    budget: Arc<Semaphore>,
    held: Option<OwnedSemaphorePermit>,
    bytes: usize,
    capacity: usize,
}

/// The budget is used up: the client should retry after [`RETRY_AFTER_SECS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded {
    /// Bytes the request asked for.
    pub wanted: usize,
    /// The whole budget.
    pub capacity: usize,
}

impl std::fmt::Display for Overloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "The server has {} bytes of requests in flight, its limit (api.max_inflight_bytes): the log is not keeping \
             up. Retry after {RETRY_AFTER_SECS} s",
            self.capacity
        )
    }
}

impl Budget {
    /// A budget of `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Budget { permits: Arc::new(Semaphore::new(capacity)), capacity }
    }

    /// Bytes currently held by requests in flight.
    pub fn in_use(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    /// The whole budget.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Takes `bytes` of the budget now, or refuses.
    pub fn admit(&self, bytes: usize) -> Result<Admission, Overloaded> {
        let mut a = Admission { budget: Arc::clone(&self.permits), held: None, bytes: 0, capacity: self.capacity };
        a.grow_to(bytes)?;
        Ok(a)
    }
}

impl Admission {
    /// Holds at least `bytes` of the budget (more is taken when a body turned out larger than
    /// it declared, or declared nothing), or refuses.
    pub fn grow_to(&mut self, bytes: usize) -> Result<(), Overloaded> {
        let bytes = bytes.min(self.capacity);
        if bytes <= self.bytes {
            return Ok(());
        }
        let more = u32::try_from(bytes - self.bytes).unwrap_or(u32::MAX);
        let overloaded = Overloaded { wanted: bytes, capacity: self.capacity };
        let permit = Arc::clone(&self.budget).try_acquire_many_owned(more).map_err(|_| overloaded)?;
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        self.bytes += more as usize;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn admissions_hold_their_bytes_until_dropped() {
        let b = Budget::new(100);
        let a = b.admit(60).unwrap();
        assert_eq!(b.in_use(), 60);
        let refused = b.admit(50).unwrap_err();
        assert_eq!(refused, Overloaded { wanted: 50, capacity: 100 });
        let mut c = b.admit(0).unwrap();
        c.grow_to(40).unwrap();
        assert_eq!(b.in_use(), 100);
        assert!(c.grow_to(41).is_err(), "no more than the budget");
        drop(a);
        assert_eq!(b.in_use(), 40);
        c.grow_to(90).unwrap();
        assert_eq!(b.in_use(), 90);
        drop(c);
        assert_eq!(b.in_use(), 0);
        // A request larger than the whole budget takes all of it (the body limit refuses it first).
        let all = b.admit(10_000).unwrap();
        assert_eq!(b.in_use(), 100);
        drop(all);
    }
}
