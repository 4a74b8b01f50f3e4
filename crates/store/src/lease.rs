//! Leases: "one job at a time on these tables", across processes and machines.
//!
//! A job takes the lease named after what it writes (e.g. `batch/_pinpipe_lease`) before it
//! changes anything and holds it until it ends; a second job finds it held and stops with a
//! message naming the holder, having changed nothing.
//!
//! * On a local directory the lease is an OS file lock (`flock`) on a file at that key: the
//!   kernel releases it when the holder exits, however it exits (kill -9 included), so a lease
//!   is never left behind. The file says who holds it, for the message.
//! * On S3 (and any store with conditional writes) the lease is an object holding its holder and
//!   an expiry time. It is taken with a create-if-absent write, renewed every third of its TTL with
//!   a write conditional on the version the holder last wrote (`If-Match`), and taken over from a
//!   holder that stopped renewing only once expired, again with a conditional write: two
//!   processes can never both believe they hold it. A holder whose renewal fails (someone took
//!   the lease after it expired, or the store was unreachable for a whole TTL) learns it through
//!   [`Lease::lost`] and must stop before committing anything more.
//!
//! Jobs also keep Delta's own conflict checks (application transaction ids), so even a lease
//! lost in the middle of a commit cannot duplicate rows; the lease turns that race into a clear
//! refusal up front.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{Error, Resolved, Result, StoreUrl};

/// Default time a lease stays valid without renewal (a holder renews every third of it).
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// Who holds a lease, as written into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// What holds it, e.g. `pinpipe batch`.
    pub job: String,
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When it was taken, milliseconds since the epoch.
    pub since_ms: u64,
    /// When it expires unless renewed (object stores), milliseconds since the epoch.
    #[serde(default)]
    pub expires_ms: u64,
}

impl Holder {
    fn me(job: &str, ttl: Duration) -> Holder {
        let now = now_ms();
        Holder {
            job: job.to_owned(),
            pid: std::process::id(),
            host: hostname(),
            since_ms: now,
            expires_ms: now + ttl.as_millis() as u64,
        }
    }

    /// `pinpipe batch (pid 42 on host1)`.
    pub fn describe(&self) -> String {
        format!("{} (pid {} on {})", self.job, self.pid, self.host)
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".to_owned())
}

/// A held lease; released when dropped (or when the process ends).
pub struct Lease {
    kind: Kind,
    watch: LeaseWatch,
}

/// What a holder's helpers need to know of its lease: whether it was lost. Cloned freely; it
/// does not keep the lease (only the [`Lease`] does, so dropping it releases the lease at once).
#[derive(Clone)]
pub struct LeaseWatch {
    what: String,
    lost: watch::Receiver<bool>,
}

enum Kind {
    /// The locked file: closing it releases the lock.
    File {
        /// The open file holding the lock.
        _lock: File,
    },
    /// The renewal task, stopped (and the lease handed back) on drop or [`Lease::release`].
    Object { stop: Option<tokio::sync::oneshot::Sender<()>>, task: Option<tokio::task::JoinHandle<()>> },
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("what", &self.watch.what).field("lost", &self.is_lost()).finish()
    }
}

impl std::ops::Deref for Lease {
    type Target = LeaseWatch;
    fn deref(&self) -> &LeaseWatch {
        &self.watch
    }
}

impl Lease {
    /// A watch on this lease for the holder's tasks.
    pub fn watch(&self) -> LeaseWatch {
        self.watch.clone()
    }

    /// Hands the lease back and waits until it is (an object lease's expiring write has
    /// completed): a process that exits right after finds the next job able to take it, instead of
    /// leaving it to expire. Dropping the lease hands it back too, without waiting.
    pub async fn release(mut self) {
        if let Kind::Object { stop, task } = &mut self.kind {
            if let Some(stop) = stop.take() {
                let _ = stop.send(());
            }
            if let Some(task) = task.take() {
                let _ = task.await;
            }
        }
    }
}

impl LeaseWatch {
    /// Whether the lease was lost (object stores only: a renewal failed). A holder checks this
    /// before each commit.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Completes when the lease is lost (never, for a file lock).
    pub async fn lost(&self) {
        let mut rx = self.lost.clone();
        // The sender is gone without a loss: a file lock, or a lease handed back.
        if rx.wait_for(|lost| *lost).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// An error for a holder that must stop because the lease is gone.
    pub fn lost_error(&self) -> Error {
        Error::LeaseLost { what: self.what.clone() }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // A file lock goes with its descriptor; an object lease is handed back by its task.
        if let Kind::Object { stop, .. } = &mut self.kind
            && let Some(stop) = stop.take()
        {
            let _ = stop.send(());
        }
    }
}

impl Resolved {
    /// Takes the lease `rel` (a key under this store, e.g. `batch/_pinpipe_lease`) for `job`, or
    /// fails with [`Error::LeaseHeld`] naming its holder. `ttl` applies to object stores.
    pub async fn lease(&self, rel: &str, job: &str, ttl: Duration) -> Result<Lease> {
        let what = format!("{}/{rel}", self.url.display());
        match &self.url {
            StoreUrl::File(dir) => file_lease(&dir.join(rel), what, job),
            StoreUrl::S3 { .. } => {
                let store = self.open()?;
                let key = store.key(rel);
                object_lease(store.inner, key, what, job, ttl).await
            }
        }
    }
}

fn file_lease(path: &Path, what: String, job: &str) -> Result<Lease> {
    let io = |e: std::io::Error| Error::Lease { what: what.clone(), source: Box::new(e) };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file =
        std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            // The holder writes who it is just after taking the lock: give it a moment to.
            let read = || std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str::<Holder>(&t).ok());
            let mut holder = read();
            for _ in 0..20 {
                if holder.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
                holder = read();
            }
            return Err(Error::LeaseHeld {
                what,
                holder: holder.map_or_else(|| "another process".into(), |h| h.describe()),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    // Ours now: say who holds it (for the message a second job prints).
    let me = serde_json::to_vec(&Holder::me(job, Duration::ZERO)).unwrap_or_default();
    file.set_len(0).and_then(|()| file.write_all(&me)).and_then(|()| file.flush()).map_err(io)?;
    let (_tx, lost) = watch::channel(false);
    Ok(Lease { kind: Kind::File { _lock: file }, watch: LeaseWatch { what, lost } })
}

fn version_of(r: &object_store::PutResult) -> UpdateVersion {
    UpdateVersion { e_tag: r.e_tag.clone(), version: r.version.clone() }
}

async fn put(
    store: &dyn ObjectStore,
    key: &ObjectPath,
    holder: &Holder,
    mode: PutMode,
) -> object_store::Result<object_store::PutResult> {
    let body = serde_json::to_vec(holder).unwrap_or_default();
    store.put_opts(key, body.into(), PutOptions { mode, ..Default::default() }).await
}

async fn object_lease(
    store: Arc<dyn ObjectStore>,
    key: ObjectPath,
    what: String,
    job: &str,
    ttl: Duration,
) -> Result<Lease> {
    let failed = |e: object_store::Error| Error::Lease { what: what.clone(), source: Box::new(e) };
    let me = Holder::me(job, ttl);
    let taken = match put(store.as_ref(), &key, &me, PutMode::Create).await {
        Ok(r) => r,
        Err(object_store::Error::AlreadyExists { .. }) => {
            let current = store.get(&key).await.map_err(failed)?;
            let version = UpdateVersion { e_tag: current.meta.e_tag.clone(), version: current.meta.version.clone() };
            let body = current.bytes().await.map_err(failed)?;
            let holder: Option<Holder> = serde_json::from_slice(&body).ok();
            if let Some(h) = holder.as_ref().filter(|h| h.expires_ms > now_ms()) {
                return Err(Error::LeaseHeld { what, holder: h.describe() });
            }
            // Expired (or unreadable): take it over, unless someone else does first.
            match put(store.as_ref(), &key, &me, PutMode::Update(version)).await {
                Ok(r) => r,
                Err(object_store::Error::Precondition { .. }) => {
                    return Err(Error::LeaseHeld {
                        what,
                        holder: "another process (it took the expired lease first)".into(),
                    });
                }
                Err(e) => return Err(failed(e)),
            }
        }
        Err(e) => return Err(failed(e)),
    };
    let (lost_tx, lost) = watch::channel(false);
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let renew_every = (ttl / 3).max(Duration::from_millis(50));
    let task_what = what.clone();
    let task = tokio::spawn(async move {
        let mut version = version_of(&taken);
        let mut holder = me;
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                () = tokio::time::sleep(renew_every) => {}
            }
            holder.expires_ms = now_ms() + ttl.as_millis() as u64;
            match put(store.as_ref(), &key, &holder, PutMode::Update(version.clone())).await {
                Ok(r) => {
                    version = version_of(&r);
                    last_renewed = tokio::time::Instant::now();
                }
                Err(object_store::Error::Precondition { .. }) => {
                    tracing::error!(lease = %task_what, "the lease was taken by another process; stopping");
                    let _ = lost_tx.send(true);
                    return;
                }
                Err(e) if last_renewed.elapsed() + renew_every >= ttl => {
                    tracing::error!(lease = %task_what, error = %e, "the lease could not be renewed before it expired; stopping");
                    let _ = lost_tx.send(true);
                    return;
                }
                Err(e) => tracing::warn!(lease = %task_what, error = %e, "renewing the lease failed; retrying"),
            }
        }
        // Hand it back: expire it with a conditional write, so a lease someone else holds by
        // now is never touched.
        holder.expires_ms = 0;
        let _ = put(store.as_ref(), &key, &holder, PutMode::Update(version)).await;
    });
    Ok(Lease { kind: Kind::Object { stop: Some(stop), task: Some(task) }, watch: LeaseWatch { what, lost } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_lease_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::StoreConfig::default().validate_or(dir.path().join("w")).unwrap();
        let first = store.lease("batch/_pinpipe_lease", "pinpipe batch", DEFAULT_TTL).await.unwrap();
        assert!(!first.is_lost());
        let e = store.lease("batch/_pinpipe_lease", "pinpipe batch", DEFAULT_TTL).await.unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::LeaseHeld { .. }), "{msg}");
        assert!(msg.contains(&format!("pid {}", std::process::id())) && msg.contains("pinpipe batch"), "{msg}");
        // Another name is another lease.
        let _other = store.lease("stream/_pinpipe_lease", "pinpipe stream", DEFAULT_TTL).await.unwrap();
        drop(first);
        store.lease("batch/_pinpipe_lease", "pinpipe batch", DEFAULT_TTL).await.unwrap();
    }

    /// A store on the test S3 server, in a fresh bucket.
    async fn s3() -> Option<(pinpipe_testkit::s3::TestBucket, Resolved)> {
        let bucket = pinpipe_testkit::s3::TestBucket::create().await?;
        let store = crate::StoreConfig {
            url: Some(bucket.url("warehouse")),
            s3_endpoint: Some(bucket.endpoint.clone()),
            s3_region: Some("us-east-1".into()),
        }
        .validate(Path::new("/unused"))
        .unwrap();
        Some((bucket, store))
    }

    #[tokio::test]
    async fn an_s3_lease_is_exclusive_renewed_and_handed_back() {
        let Some((_bucket, store)) = s3().await else { return };
        let ttl = Duration::from_millis(600);
        let first = store.lease("batch/_pinpipe_lease", "pinpipe batch", ttl).await.unwrap();
        // Held across several renewals: a second taker is refused all along.
        let until = tokio::time::Instant::now() + ttl * 3;
        while tokio::time::Instant::now() < until {
            let e = store.lease("batch/_pinpipe_lease", "other", ttl).await.unwrap_err();
            assert!(matches!(e, Error::LeaseHeld { .. }), "{e}");
            assert!(e.to_string().contains("pinpipe batch (pid"), "{e}");
            tokio::time::sleep(ttl / 4).await;
        }
        assert!(!first.is_lost());
        // Handed back on drop: the next taker gets it as soon as the release is written.
        drop(first);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let second = loop {
            match store.lease("batch/_pinpipe_lease", "second", ttl).await {
                Ok(l) => break l,
                Err(Error::LeaseHeld { .. }) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert!(!second.is_lost());
        // Released and awaited: taken again at once, with no retry (a process that exits right
        // after releasing leaves nothing behind).
        second.release().await;
        let third = store.lease("batch/_pinpipe_lease", "third", ttl).await.unwrap();
        assert!(!third.is_lost());
    }

    #[tokio::test]
    async fn an_expired_s3_lease_is_taken_over_and_its_holder_learns_it_lost_it() {
        let Some((_bucket, store)) = s3().await else { return };
        let opened = store.open().unwrap();
        let key = opened.key("stream/_pinpipe_lease");
        // A holder that died long ago.
        let dead = Holder { job: "pinpipe stream".into(), pid: 1, host: "gone".into(), since_ms: 1, expires_ms: 2 };
        opened.inner.put(&key, serde_json::to_vec(&dead).unwrap().into()).await.unwrap();
        let ttl = Duration::from_millis(600);
        let mine = store.lease("stream/_pinpipe_lease", "pinpipe stream", ttl).await.unwrap();
        // Someone overwrites the lease behind its holder's back: the next renewal notices.
        opened.inner.put(&key, serde_json::to_vec(&dead).unwrap().into()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), mine.lost()).await.expect("the loss is noticed");
        assert!(mine.is_lost());
        assert!(mine.lost_error().to_string().contains("lost the lease"));
    }
}
