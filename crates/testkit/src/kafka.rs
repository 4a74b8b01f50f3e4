//! A Kafka-protocol broker of one's own: `tansu` (installed by `.ci/run`, found through
//! `TEST_PINPIPE_TANSU`) started on a free port on 127.0.0.1 with its own SQLite storage, and
//! stopped when the [`Broker`] is dropped.
//!
//! Each test gets its own broker: tansu 0.6's SQLite storage deletes every topic of the cluster
//! when asked to delete one (its `topic_delete_by.sql` matches on the cluster only), so tests
//! that delete topics cannot share a broker.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running broker.
pub struct Broker {
    child: Child,
    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub bootstrap: String,
    dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker, or `None` (test skipped) when `TEST_PINPIPE_TANSU` is unset.
    ///
    /// # Panics
    /// When it is unset but `TEST_PINPIPE_REQUIRE_SERVERS=1`, or the broker does not start.
    pub fn start() -> Option<Broker> {
        let binary = crate::service_url("TEST_PINPIPE_TANSU")?;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("tansu.log")).unwrap();
        let child = Command::new(&binary)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db", "--cluster-id", "pinpipe-test"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let broker = Broker { child, bootstrap: format!("127.0.0.1:{port}"), dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen within 60 s: {}", broker.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(broker)
    }

    /// What the broker printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
