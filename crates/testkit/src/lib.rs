//! Test support shared by pinpipe's crates (a dev-dependency only).
//!
//! * [`delta`]: Delta tables read back by an independent reader (Python `deltalake`).
//! * [`golden`]: the hand-made fixture in the sink layout and its answers, worked out by hand.
//! * [`http`]: a minimal HTTP/1.1 client for talking to a real `pinpipe serve`.
//! * [`kafka`]: a Kafka-protocol broker (tansu) of the test's own.
//! * [`s3`]: a throwaway bucket on the S3 API server (moto) that `.ci/run` starts.
//! * [`TestDb`]: a throwaway database on the PostgreSQL or MariaDB server that `.ci/run` starts,
//!   dropped again when the test ends, so tests never share tables.
//!
//! Servers are found through `TEST_PINPIPE_POSTGRES_URL` and `TEST_PINPIPE_MYSQL_URL` (admin URLs
//! of a server on 127.0.0.1), `TEST_PINPIPE_S3_ENDPOINT` and `TEST_PINPIPE_KINESIS_ENDPOINT`, and the broker binary through `TEST_PINPIPE_TANSU`. When one is unset the test is skipped with a note, unless
//! `TEST_PINPIPE_REQUIRE_SERVERS=1` (set by `.ci/run`), which turns a missing server into a failure.

#![allow(clippy::unwrap_used)]

pub mod delta;
pub mod golden;
pub mod http;
pub mod kafka;
pub mod s3;

use std::sync::atomic::{AtomicU32, Ordering};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// PostgreSQL.
    Postgres,
    /// MySQL / MariaDB.
    MySql,
}

impl Server {
    fn env(self) -> &'static str {
        match self {
            Server::Postgres => "TEST_PINPIPE_POSTGRES_URL",
            Server::MySql => "TEST_PINPIPE_MYSQL_URL",
        }
    }
}

/// The admin URL of `server`, or `None` (test skipped) when it is not configured.
///
/// # Panics
/// When the server is not configured but `TEST_PINPIPE_REQUIRE_SERVERS=1`.
pub fn server_url(server: Server) -> Option<String> {
    service_url(server.env())
}

/// The value of the environment variable `var` naming a test service, or `None` (test skipped).
///
/// # Panics
/// When it is unset but `TEST_PINPIPE_REQUIRE_SERVERS=1`.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("TEST_PINPIPE_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "{var} is not set but TEST_PINPIPE_REQUIRE_SERVERS=1"
            );
            eprintln!("note: {var} not set; skipping a test that needs it");
            None
        }
    }
}

/// A database created for one test and dropped when it goes out of scope.
pub struct TestDb {
    admin_url: String,
    name: String,
    server: Server,
    /// URL of the new database.
    pub url: String,
}

fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{db}{query}")
}

async fn admin_exec(server: Server, admin_url: &str, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    match server {
        Server::Postgres => {
            let mut c = sqlx::PgConnection::connect(admin_url).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut c).await?;
            c.close().await
        }
        Server::MySql => {
            let mut c = sqlx::MySqlConnection::connect(admin_url).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut c).await?;
            c.close().await
        }
    }
}

impl TestDb {
    /// Creates a fresh database on `server`; `None` when the server is not configured.
    pub async fn create(server: Server) -> Option<TestDb> {
        static N: AtomicU32 = AtomicU32::new(0);
        let admin_url = server_url(server)?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("pinpipe_t{}_{}_{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        admin_exec(server, &admin_url, &format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("creating test database on {}: {e}", server.env()));
        let url = with_database(&admin_url, &name);
        Some(TestDb { admin_url, name, server, url })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, admin, name) = (self.server, self.admin_url.clone(), self.name.clone());
        let sql = match server {
            Server::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            Server::MySql => format!("DROP DATABASE IF EXISTS {name}"),
        };
        // Drop may run inside a runtime: do the work on a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            if let Err(e) = rt.block_on(admin_exec(server, &admin, &sql)) {
                eprintln!("warning: could not drop test database {name}: {e}");
            }
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_replaces_the_path() {
        assert_eq!(with_database("postgres://u:p@127.0.0.1:5432/postgres", "x"), "postgres://u:p@127.0.0.1:5432/x");
        assert_eq!(with_database("mysql://root@127.0.0.1:3306", "x"), "mysql://root@127.0.0.1:3306/x");
        assert_eq!(with_database("postgres://h/db?sslmode=disable", "x"), "postgres://h/x?sslmode=disable");
    }
}
