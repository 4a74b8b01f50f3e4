//! The `[source]` configuration section and the URL that selects a backend.
//!
//! | URL | backend |
//! |---|---|
//! | (unset) | SQLite file `<data_dir>/source.db` |
//! | `sqlite://relative/path.db`, `sqlite:///absolute/path.db` | SQLite file |
//! | `postgres://user@host:5432/db` (`postgresql://` too) | PostgreSQL |
//! | `mysql://user@host:3306/db` (`mariadb://` too) | MySQL / MariaDB |
//!
//! Passwords belong in the URL given through the environment (`PINPIPE_SOURCE__URL`), never in a
//! committed file; every message pinpipe prints shows the URL with the password removed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result, SourceStore};

/// The `[source]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// Database URL; unset means the embedded SQLite file `<data_dir>/source.db`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A parsed source URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUrl {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://...`).
    Postgres(String),
    /// A MySQL/MariaDB URL (`mysql://...`).
    MySql(String),
}

impl SourceConfig {
    /// Checks the section without touching anything; returns the URL it selects.
    pub fn validate(&self, data_dir: &Path) -> Result<SourceUrl> {
        match &self.url {
            None => Ok(SourceUrl::Sqlite(data_dir.join("source.db"))),
            Some(url) => SourceUrl::parse(url),
        }
    }

    /// Opens (and for SQLite creates) the database.
    pub async fn build(&self, data_dir: &Path) -> Result<Box<dyn SourceStore>> {
        self.validate(data_dir)?.open().await
    }
}

impl SourceUrl {
    /// Parses a URL of one of the supported schemes.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidUrl { url: redact(url), reason: reason.to_owned() };
        let (scheme, rest) =
            url.split_once(':').ok_or_else(|| bad("expected sqlite://PATH, postgres://... or mysql://..."))?;
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                let path = path.split('?').next().unwrap_or_default();
                if path.is_empty() {
                    return Err(bad("the SQLite URL has no file path (sqlite://PATH)"));
                }
                Ok(SourceUrl::Sqlite(PathBuf::from(path)))
            }
            "postgres" | "postgresql" => {
                check_server_url(rest).map_err(|r| bad(&r))?;
                Ok(SourceUrl::Postgres(url.to_owned()))
            }
            "mysql" | "mariadb" => {
                check_server_url(rest).map_err(|r| bad(&r))?;
                Ok(SourceUrl::MySql(format!("mysql:{rest}")))
            }
            other => Err(bad(&format!(
                "unsupported scheme {other:?}: use sqlite://PATH, postgres://USER@HOST/DB or mysql://USER@HOST/DB"
            ))),
        }
    }

    /// The URL for messages: password removed.
    pub fn display(&self) -> String {
        match self {
            SourceUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            SourceUrl::Postgres(u) | SourceUrl::MySql(u) => redact(u),
        }
    }

    /// Connects to the backend.
    pub async fn open(&self) -> Result<Box<dyn SourceStore>> {
        Ok(match self {
            SourceUrl::Sqlite(path) => Box::new(crate::sqlite::SqliteStore::open(path).await?),
            SourceUrl::Postgres(url) => Box::new(crate::postgres::PostgresStore::connect(url).await?),
            SourceUrl::MySql(url) => Box::new(crate::mysql::MySqlStore::connect(url).await?),
        })
    }
}

fn check_server_url(rest: &str) -> Result<(), String> {
    let Some(authority_and_path) = rest.strip_prefix("//") else {
        return Err("expected SCHEME://USER@HOST[:PORT]/DATABASE".into());
    };
    let authority = authority_and_path.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() {
        return Err("the URL names no host".into());
    }
    Ok(())
}

/// Removes the password from `scheme://user:password@host/...`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_backends() {
        let dd = Path::new("/data");
        assert_eq!(SourceConfig::default().validate(dd).unwrap(), SourceUrl::Sqlite("/data/source.db".into()));
        assert_eq!(SourceUrl::parse("sqlite://a/b.db").unwrap(), SourceUrl::Sqlite("a/b.db".into()));
        assert_eq!(SourceUrl::parse("sqlite:///tmp/b.db").unwrap(), SourceUrl::Sqlite("/tmp/b.db".into()));
        assert!(matches!(SourceUrl::parse("postgresql://u@h/db").unwrap(), SourceUrl::Postgres(_)));
        assert_eq!(SourceUrl::parse("mariadb://u@h:3306/db").unwrap(), SourceUrl::MySql("mysql://u@h:3306/db".into()));
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        for (url, needle) in [
            ("oracle://x", "unsupported scheme"),
            ("nourl", "expected"),
            ("sqlite://", "no file path"),
            ("postgres:///db", "no host"),
            ("mysql:host", "expected SCHEME://"),
        ] {
            let e = SourceUrl::parse(url).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
        }
    }

    #[test]
    fn passwords_never_shown() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("mysql://u@h/db"), "mysql://u@h/db");
        let e = SourceUrl::parse("oracle://u:secret@h/db").unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}
