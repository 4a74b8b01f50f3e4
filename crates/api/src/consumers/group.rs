//! Consumer groups and their instances: what each instance is subscribed or assigned to, which
//! partitions a subscription gives it (Kafka's range assignment over the group's subscribed
//! instances, recomputed from the current members at every read), and idle expiry.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pinpipe_log::TopicInfo;

use super::offsets::TopicPartition;
use crate::body::Embedded;

/// Where an instance without a committed offset starts (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// The oldest record held.
    Earliest,
    /// The end: only records produced from now on.
    Latest,
    /// No reset: reading such a partition fails (40903).
    None,
}

/// What an instance reads.
#[derive(Debug, Clone, Default)]
pub enum Interest {
    /// Nothing yet.
    #[default]
    Nothing,
    /// These topics, partitions shared with the group's other subscribers.
    Topics(BTreeSet<String>),
    /// Topics whose whole name matches this pattern.
    Pattern(String, regex::Regex),
    /// Exactly these partitions (manual assignment).
    Assigned(BTreeSet<TopicPartition>),
}

impl Interest {
    /// Whether a subscription (not a manual assignment) covers `topic`.
    fn subscribes(&self, topic: &str) -> bool {
        match self {
            Interest::Topics(t) => t.contains(topic),
            Interest::Pattern(_, re) => re.is_match(topic),
            Interest::Nothing | Interest::Assigned(_) => false,
        }
    }
}

/// Per-instance reading state, held across one request at a time.
#[derive(Debug, Default)]
pub struct Reading {
    /// Where the next read of each partition starts.
    pub positions: BTreeMap<TopicPartition, u64>,
    /// Positions as last committed by auto-commit.
    pub auto_committed: BTreeMap<TopicPartition, u64>,
    /// When auto-commit last ran.
    pub last_auto_commit: Option<Instant>,
    /// First partition the next read tries (rotates, so no partition starves).
    pub rotate: usize,
}

/// A consumer instance.
#[derive(Debug)]
pub struct Instance {
    /// Its group.
    pub group: String,
    /// Its id (`name` at creation).
    pub id: String,
    /// The embedded format of its records.
    pub format: Embedded,
    /// `auto.offset.reset`.
    pub reset: Reset,
    /// `auto.commit.enable`.
    pub auto_commit: bool,
    /// Default wait of a read without `timeout` (`consumer.request.timeout.ms`).
    pub request_timeout: Duration,
    interest: Mutex<Interest>,
    last_used: Mutex<Instant>,
    /// Reading state; a read, seek or commit holds it.
    pub reading: tokio::sync::Mutex<Reading>,
}

impl Instance {
    /// A new instance.
    pub fn new(group: &str, id: &str, format: Embedded, reset: Reset, auto_commit: bool, timeout: Duration) -> Self {
        Instance {
            group: group.to_owned(),
            id: id.to_owned(),
            format,
            reset,
            auto_commit,
            request_timeout: timeout,
            interest: Mutex::default(),
            last_used: Mutex::new(Instant::now()),
            reading: Default::default(),
        }
    }

    /// What it reads.
    pub fn interest(&self) -> Interest {
        self.interest.lock().map(|i| i.clone()).unwrap_or_default()
    }

    /// Sets what it reads.
    pub fn set_interest(&self, interest: Interest) {
        if let Ok(mut i) = self.interest.lock() {
            *i = interest;
        }
    }

    fn touch(&self) {
        if let Ok(mut t) = self.last_used.lock() {
            *t = Instant::now();
        }
    }

    fn idle_for(&self) -> Duration {
        self.last_used.lock().map(|t| t.elapsed()).unwrap_or_default()
    }
}

/// Every group's instances.
#[derive(Debug)]
pub struct Registry {
    groups: Mutex<HashMap<String, BTreeMap<String, Arc<Instance>>>>,
    idle_timeout: Duration,
    max_instances: usize,
    created: AtomicU64,
    started_ms: u64,
}

/// Why an instance could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateError {
    /// The group has an instance of that name.
    Exists,
    /// `api.max_consumer_instances` instances exist.
    TooMany(usize),
}

impl Registry {
    /// An empty registry.
    pub fn new(idle_timeout: Duration, max_instances: usize) -> Self {
        let started_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Registry { groups: Mutex::default(), idle_timeout, max_instances, created: AtomicU64::new(0), started_ms }
    }

    /// A fresh instance name, unique in this server's life.
    pub fn fresh_name(&self) -> String {
        format!("rest-consumer-{:x}-{}", self.started_ms, self.created.fetch_add(1, Ordering::Relaxed))
    }

    /// Removes instances idle longer than the timeout.
    pub fn expire(&self) {
        let Ok(mut groups) = self.groups.lock() else { return };
        for members in groups.values_mut() {
            members.retain(|id, i| {
                let keep = i.idle_for() < self.idle_timeout;
                if !keep {
                    tracing::info!(group = %i.group, instance = %id, "consumer instance expired (api.consumer_instance_timeout)");
                }
                keep
            });
        }
        groups.retain(|_, m| !m.is_empty());
    }

    /// Adds `instance`.
    pub fn create(&self, instance: Instance) -> Result<Arc<Instance>, CreateError> {
        self.expire();
        let mut groups = self.groups.lock().map_err(|_| CreateError::TooMany(0))?;
        let count: usize = groups.values().map(BTreeMap::len).sum();
        if count >= self.max_instances {
            return Err(CreateError::TooMany(self.max_instances));
        }
        let members = groups.entry(instance.group.clone()).or_default();
        if members.contains_key(&instance.id) {
            return Err(CreateError::Exists);
        }
        let instance = Arc::new(instance);
        members.insert(instance.id.clone(), Arc::clone(&instance));
        Ok(instance)
    }

    /// The instance, marked as used now.
    pub fn get(&self, group: &str, id: &str) -> Option<Arc<Instance>> {
        self.expire();
        let found = self.groups.lock().ok()?.get(group)?.get(id).cloned();
        if let Some(i) = &found {
            i.touch();
        }
        found
    }

    /// Removes the instance.
    pub fn remove(&self, group: &str, id: &str) -> Option<Arc<Instance>> {
        let mut groups = self.groups.lock().ok()?;
        let members = groups.get_mut(group)?;
        let removed = members.remove(id);
        if members.is_empty() {
            groups.remove(group);
        }
        removed
    }

    /// Instances over every group.
    pub fn count(&self) -> usize {
        self.groups.lock().map(|g| g.values().map(BTreeMap::len).sum()).unwrap_or(0)
    }

    /// The partitions `instance` reads now, given every topic of the log: a manual assignment as
    /// it is (partitions of topics that exist), a subscription by range assignment among the
    /// group's instances subscribed to each topic (sorted by id, as Kafka's range assignor).
    pub fn assignment(&self, instance: &Instance, topics: &[TopicInfo]) -> Vec<TopicPartition> {
        let exists = |t: &str, p: u32| topics.iter().any(|i| i.name == t && p < i.partitions);
        let mine = instance.interest();
        if let Interest::Assigned(parts) = &mine {
            return parts.iter().filter(|(t, p)| exists(t, *p)).cloned().collect();
        }
        let members: Vec<(String, Interest)> = self
            .groups
            .lock()
            .ok()
            .and_then(|g| g.get(&instance.group).map(|m| m.values().map(|i| (i.id.clone(), i.interest())).collect()))
            .unwrap_or_default();
        let mut out = Vec::new();
        for t in topics.iter().filter(|t| mine.subscribes(&t.name)) {
            let subscribers: Vec<&String> =
                members.iter().filter(|(_, i)| i.subscribes(&t.name)).map(|(id, _)| id).collect();
            let n = subscribers.len().max(1) as u64;
            let Some(me) = subscribers.iter().position(|id| **id == instance.id) else { continue };
            let parts = u64::from(t.partitions);
            let (from, to) = (me as u64 * parts / n, (me as u64 + 1) * parts / n);
            out.extend((from..to).map(|p| (t.name.clone(), p as u32)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pinpipe_log::TopicKind;

    fn topic(name: &str, partitions: u32) -> TopicInfo {
        TopicInfo { name: name.into(), kind: TopicKind::Topic, partitions, created_ms: 0 }
    }

    fn instance(r: &Registry, id: &str, interest: Interest) -> Arc<Instance> {
        let i = r.create(Instance::new("g", id, Embedded::Json, Reset::Earliest, false, Duration::ZERO)).unwrap();
        i.set_interest(interest);
        i
    }

    #[test]
    fn subscribers_share_partitions_by_range_and_assignments_stand_alone() {
        let r = Registry::new(Duration::from_secs(60), 10);
        let topics = [topic("a", 5), topic("b", 1), topic("c", 2)];
        let both = Interest::Topics(["a".to_owned(), "b".to_owned()].into());
        let x = instance(&r, "x", both.clone());
        assert_eq!(r.assignment(&x, &topics).len(), 6);
        let y = instance(&r, "y", both);
        let z = instance(&r, "z", Interest::Pattern("c".into(), regex::Regex::new("^(?:[ac])$").unwrap()));
        let (ax, ay, az) = (r.assignment(&x, &topics), r.assignment(&y, &topics), r.assignment(&z, &topics));
        // a has three subscribers (z's pattern matches it), b two, c one: ranges over each.
        assert_eq!(ax, [("a".into(), 0)]);
        assert_eq!(ay, [("a".into(), 1), ("a".into(), 2), ("b".into(), 0)]);
        assert_eq!(az, [("a".into(), 3), ("a".into(), 4), ("c".into(), 0), ("c".into(), 1)]);
        let m = instance(&r, "m", Interest::Assigned([("a".to_owned(), 4), ("nope".to_owned(), 0)].into()));
        assert_eq!(r.assignment(&m, &topics), [("a".into(), 4)]);
        assert_eq!(
            r.create(Instance::new("g", "x", Embedded::Json, Reset::Earliest, false, Duration::ZERO)).unwrap_err(),
            CreateError::Exists
        );
        r.remove("g", "y");
        assert_eq!(r.count(), 3);
    }

    #[test]
    fn idle_instances_expire_and_the_limit_holds() {
        let r = Registry::new(Duration::from_millis(1), 2);
        instance(&r, "old", Interest::Nothing);
        std::thread::sleep(Duration::from_millis(5));
        assert!(r.get("g", "old").is_none());
        let r = Registry::new(Duration::from_secs(60), 2);
        instance(&r, "a", Interest::Nothing);
        instance(&r, "b", Interest::Nothing);
        let third = r.create(Instance::new("h", "c", Embedded::Json, Reset::Earliest, false, Duration::ZERO));
        assert_eq!(third.unwrap_err(), CreateError::TooMany(2));
    }
}
