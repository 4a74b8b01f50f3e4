//! A Kafka-protocol broker of one's own: `tansu` (installed by `.ci/run`, found through
//! `TEST_PINPIPE_TANSU`) started on a free port on 127.0.0.1 with its own SQLite storage, and
//! stopped when the [`Broker`] is dropped.
//!
//! [`Broker::start_with`] adds what secured clusters have: TLS — `stunnel` (Debian's, found
//! through `TEST_PINPIPE_STUNNEL`) in front of the broker with a CA and a certificate for
//! `localhost` made by `openssl` for the test (tansu 0.6 takes a certificate but does not use
//! it), the broker advertising the TLS port — and SASL (tansu's `--authentication`: SCRAM users
//! created before it starts; tansu 0.6 offers no PLAIN).
//!
//! Each test gets its own broker: tansu 0.6's SQLite storage deletes every topic of the cluster
//! when asked to delete one (its `topic_delete_by.sql` matches on the cluster only), so tests
//! that delete topics cannot share a broker.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running broker.
pub struct Broker {
    child: Child,
    /// `127.0.0.1:PORT` (`localhost:PORT` with TLS, the name in the certificate), for
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// The TLS port's files, when started with TLS.
    pub tls: Option<Tls>,
    stunnel: Option<Child>,
    dir: tempfile::TempDir,
}

/// What a client of a TLS broker needs, and what it must refuse.
pub struct Tls {
    /// The CA that signed the broker's certificate (PEM).
    pub ca: PathBuf,
    /// A CA that did not (PEM): a client trusting only it must refuse the broker.
    pub other_ca: PathBuf,
    /// The TLS port on 127.0.0.1 (its certificate is for `localhost` only).
    pub port: u16,
    /// A client certificate and its key signed by [`Tls::ca`] (PEM), for mutual TLS.
    pub client_cert: PathBuf,
    /// The client certificate's key.
    pub client_key: PathBuf,
}

/// A SCRAM user the broker accepts.
pub struct User {
    /// The name.
    pub name: &'static str,
    /// The password.
    pub password: &'static str,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: &'static str,
}

/// How a broker is reached.
#[derive(Default)]
pub struct Options {
    /// Behind TLS.
    pub tls: bool,
    /// Clients must log in (SASL); these SCRAM users exist.
    pub users: Option<Vec<User>>,
    /// Mutual TLS: clients must show a certificate signed by the CA.
    pub client_auth: bool,
    /// The broker's certificate expired yesterday.
    pub expired: bool,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_listening(port: u16, what: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen within 60 s: {}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`<name>.pem`, `<name>.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN=pinpipe test {name}"), "-keyout", &format!("{name}.key"), "-out"])
        .arg(format!("{name}.pem"))
        .current_dir(dir));
    dir.join(format!("{name}.pem"))
}

/// A certificate `<name>.pem` (key `<name>.key`) with `extension`, signed by the CA `ca`, valid
/// for `days` from now (`-1`: it expired a day ago).
fn make_cert(dir: &Path, ca: &str, name: &str, subject: &str, extension: &str, days: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), format!("{extension}\n")).unwrap();
    run(Command::new("openssl")
        .args(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", subject])
        .args(["-keyout", &format!("{name}.key"), "-out", &format!("{name}.csr")])
        .current_dir(dir));
    run(Command::new("openssl")
        .args(["x509", "-req", "-in", &format!("{name}.csr"), "-CA", &format!("{ca}.pem")])
        .args(["-CAkey", &format!("{ca}.key"), "-CAcreateserial", "-days", days])
        .args(["-extfile", &format!("{name}.ext"), "-out", &format!("{name}.pem")])
        .current_dir(dir));
}

impl Broker {
    /// Starts a broker, or `None` (test skipped) when `TEST_PINPIPE_TANSU` is unset.
    ///
    /// # Panics
    /// When it is unset but `TEST_PINPIPE_REQUIRE_SERVERS=1`, or the broker does not start.
    pub fn start() -> Option<Broker> {
        Broker::start_with(Options::default())
    }

    /// Starts a broker as `options` say, or `None` (test skipped) when `TEST_PINPIPE_TANSU` (or,
    /// for TLS, `TEST_PINPIPE_STUNNEL`) is unset.
    ///
    /// # Panics
    /// As [`Broker::start`]; when TLS files cannot be made, or a user cannot be created.
    pub fn start_with(options: Options) -> Option<Broker> {
        let binary = crate::service_url("TEST_PINPIPE_TANSU")?;
        let stunnel = if options.tls { Some(crate::service_url("TEST_PINPIPE_STUNNEL")?) } else { None };
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let listen = format!("tcp://127.0.0.1:{port}");
        let tls_port = stunnel.as_ref().map(|_| free_port());
        let advertised = tls_port.map_or_else(|| listen.clone(), |p| format!("tcp://localhost:{p}"));
        let tansu = |authentication: bool, log: &str| {
            let log = std::fs::File::create(dir.path().join(log)).unwrap();
            let mut command = Command::new(&binary);
            command.args(["broker", "--listener-url", &listen, "--advertised-listener-url", &advertised]).args([
                "--storage-engine",
                "sqlite://tansu.db",
                "--cluster-id",
                "pinpipe-test",
            ]);
            if authentication {
                command.arg("--authentication");
            }
            command
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"))
        };
        let path = dir.path().to_path_buf();
        let read = |name: &str| std::fs::read_to_string(path.join(name)).unwrap_or_default();
        if let Some(users) = &options.users {
            // Users are created through the broker's API, which refuses everything before a
            // login once authentication is on: create them first, then restart with it.
            let mut setup = tansu(false, "tansu-setup.log");
            wait_listening(port, "tansu", || read("tansu-setup.log"));
            for u in users {
                let mechanism = if u.mechanism == "SCRAM-SHA-256" { "scram256" } else { "scram512" };
                run(Command::new(&binary)
                    .args(["user", "create", "--broker", &listen, "--mechanism", mechanism, u.name, u.password])
                    .current_dir(dir.path()));
            }
            let _ = setup.kill();
            let _ = setup.wait();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let child = tansu(options.users.is_some(), "tansu.log");
        let mut broker = Broker { child, bootstrap: format!("127.0.0.1:{port}"), tls: None, stunnel: None, dir };
        wait_listening(port, "tansu", || broker.log());
        if let (Some(stunnel), Some(tls_port)) = (stunnel, tls_port) {
            let d = broker.dir.path();
            let ca = make_ca(d, "ca");
            let other_ca = make_ca(d, "other-ca");
            let days = if options.expired { "-1" } else { "2" };
            make_cert(d, "ca", "server", "/CN=localhost", "subjectAltName=DNS:localhost", days);
            make_cert(d, "ca", "client", "/CN=pinpipe-client", "extendedKeyUsage=clientAuth", "2");
            let mut config = format!(
                "foreground = yes\npid =\noutput = {out}\n[kafka]\naccept = 127.0.0.1:{tls_port}\n\
                 connect = 127.0.0.1:{port}\ncert = {cert}\nkey = {key}\n",
                out = d.join("stunnel.log").display(),
                cert = d.join("server.pem").display(),
                key = d.join("server.key").display(),
            );
            if options.client_auth {
                config.push_str(&format!("verifyChain = yes\nrequireCert = yes\nCAfile = {}\n", ca.display()));
            }
            std::fs::write(d.join("stunnel.conf"), config).unwrap();
            let child = Command::new(&stunnel)
                .arg(d.join("stunnel.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {stunnel}: {e}"));
            broker.stunnel = Some(child);
            wait_listening(tls_port, "stunnel", || read("stunnel.log"));
            broker.bootstrap = format!("localhost:{tls_port}");
            let (client_cert, client_key) = (d.join("client.pem"), d.join("client.key"));
            broker.tls = Some(Tls { ca, other_ca, port: tls_port, client_cert, client_key });
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
        for child in [Some(&mut self.child), self.stunnel.as_mut()].into_iter().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
