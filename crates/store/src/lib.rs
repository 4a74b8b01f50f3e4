//! Object stores by URL, shared by every stage that reads or writes objects (the sink writes the
//! raw objects, the batch job reads them, both layers keep their Delta tables in one).
//!
//! | URL | store |
//! |---|---|
//! | (unset) | directory `<data_dir>/objects` |
//! | `file:///absolute/dir`, `file://relative/dir` | a local directory |
//! | `s3://bucket/optional/prefix` | Amazon S3 or any S3-compatible server |
//!
//! S3 credentials and region come from the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, ...) and, on AWS, from the instance,
//! container or web-identity credentials that `object_store` resolves; never from a file of ours.
//! `s3_endpoint` points at an S3-compatible server (MinIO, moto, ...), using path-style requests.
//!
//! The storage contracts between the stages live here, in one place:
//!
//! * [`layout`]: the raw object names the sink writes and the batch job reads.
//! * [`warehouse`]: where the batch and speed layers keep their tables, leases and dead letters.
//! * [`delta`]: opening Delta tables in a store, and the Parquet settings of their files.
//! * [`lease`]: one job at a time on a set of tables (file locks locally, conditional writes on S3).

pub mod delta;
pub mod layout;
pub mod lease;
pub mod warehouse;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

/// Errors of the store crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not one of the supported forms.
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Listing objects failed.
    #[error("cannot list {key}")]
    List {
        /// The prefix listed.
        key: String,
        /// The cause.
        #[source]
        source: object_store::Error,
    },
    /// A sink's commit marker could not be read.
    #[error("the sink's commit marker {key} is unreadable ({reason}); remove it only if no sink writes this store")]
    Marker {
        /// Its key.
        key: String,
        /// Why.
        reason: String,
    },
    /// Another job holds the lease.
    #[error("{what} is held by {holder}: another job is working on the same tables; wait for it to finish or stop it")]
    LeaseHeld {
        /// The lease.
        what: String,
        /// Who holds it.
        holder: String,
    },
    /// The lease could not be taken or kept (an I/O or store error).
    #[error("cannot take the lease {what}")]
    Lease {
        /// The lease.
        what: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The lease was taken by another process after this one failed to renew it in time.
    #[error(
        "lost the lease {what} (not renewed in time, and another job took it over); stopped without committing more"
    )]
    LeaseLost {
        /// The lease.
        what: String,
    },
    /// The store could not be set up.
    #[error("cannot open the object store {target}")]
    Open {
        /// The store URL.
        target: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Result alias of the store crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The `[store]` configuration section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Store URL; unset means `file://<data_dir>/objects`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Endpoint of an S3-compatible server, e.g. `http://127.0.0.1:9000`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    /// Region (otherwise `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_region: Option<String>,
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A local directory.
    File(PathBuf),
    /// An S3 bucket and key prefix (no leading or trailing slash).
    S3 {
        /// Bucket.
        bucket: String,
        /// Key prefix, possibly empty.
        prefix: String,
    },
}

impl StoreUrl {
    /// Parses `file://...`, `s3://...` or a plain directory path.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidUrl { url: url.to_owned(), reason: reason.to_owned() };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !valid_bucket {
                return Err(bad("the bucket name must be 3-63 characters of a-z 0-9 . -"));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|seg| seg == "." || seg == "..") {
                return Err(bad("the key prefix must not contain . or .. segments"));
            }
            return Ok(StoreUrl::S3 { bucket: bucket.to_owned(), prefix: prefix.to_owned() });
        }
        let path = match url.split_once("://") {
            Some(("file", rest)) => rest,
            Some((scheme, _)) => {
                return Err(bad(&format!("unsupported scheme {scheme:?}: use file:///DIR or s3://BUCKET/PREFIX")));
            }
            None => url,
        };
        if path.is_empty() {
            return Err(bad("the file URL has no directory (file:///DIR)"));
        }
        Ok(StoreUrl::File(PathBuf::from(path)))
    }

    /// The URL in canonical form.
    pub fn display(&self) -> String {
        match self {
            StoreUrl::File(p) => format!("file://{}", p.display()),
            StoreUrl::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            StoreUrl::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

/// A validated `[store]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Where.
    pub url: StoreUrl,
    /// S3 endpoint override.
    pub s3_endpoint: Option<String>,
    /// S3 region override.
    pub s3_region: Option<String>,
}

impl StoreConfig {
    /// Checks the section without touching anything.
    pub fn validate(&self, data_dir: &Path) -> Result<Resolved> {
        self.validate_or(data_dir.join("objects"))
    }

    /// Like [`validate`](Self::validate), with `default_dir` as the store when no URL is set
    /// (the `[warehouse]` section uses `<data_dir>/warehouse`).
    pub fn validate_or(&self, default_dir: PathBuf) -> Result<Resolved> {
        let url = match &self.url {
            Some(u) => StoreUrl::parse(u)?,
            None => StoreUrl::File(default_dir),
        };
        if let Some(e) = &self.s3_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(Error::InvalidUrl {
                url: e.clone(),
                reason: "the S3 endpoint must start with http:// or https://".into(),
            });
        }
        Ok(Resolved { url, s3_endpoint: self.s3_endpoint.clone(), s3_region: self.s3_region.clone() })
    }
}

/// An open store and the prefix every key lives under.
#[derive(Clone)]
pub struct Store {
    /// The store.
    pub inner: Arc<dyn ObjectStore>,
    /// Prefix of every key (empty for a directory store).
    pub prefix: ObjectPath,
    /// The store URL, for messages.
    pub url: String,
}

impl Resolved {
    /// Opens the store (for a directory: creates it).
    pub fn open(&self) -> Result<Store> {
        let target = self.url.display();
        let open_err = |e: Box<dyn std::error::Error + Send + Sync>| Error::Open { target: target.clone(), source: e };
        match &self.url {
            StoreUrl::File(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| open_err(Box::new(e)))?;
                let fs =
                    object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| open_err(Box::new(e)))?;
                Ok(Store { inner: Arc::new(fs), prefix: ObjectPath::default(), url: target.clone() })
            }
            StoreUrl::S3 { bucket, prefix } => {
                let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(endpoint) = &self.s3_endpoint {
                    b = b
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                if let Some(region) = &self.s3_region {
                    b = b.with_region(region);
                }
                let s3 = b.build().map_err(|e| open_err(Box::new(e)))?;
                Ok(Store { inner: Arc::new(s3), prefix: ObjectPath::from(prefix.as_str()), url: target.clone() })
            }
        }
    }
}

/// Where a table-format library (delta-rs) finds a table directory of a store.
pub struct TableLocation {
    /// Absolute URL of the directory (`file:///...` or `s3://bucket/key/`), ending in `/`.
    pub url: url::Url,
    /// For `s3://`: the bucket's store (endpoint, region and credentials as configured), with
    /// `/` at the bucket root, for the library to use instead of building its own client.
    /// `None` for a local directory.
    pub root: Option<Arc<dyn ObjectStore>>,
}

impl Resolved {
    /// Where table-format libraries (delta-rs) reach the directory `rel` of this store. A local
    /// directory is created.
    pub fn table_location(&self, rel: &str) -> Result<TableLocation> {
        let target = self.url.display();
        let open_err = |e: Box<dyn std::error::Error + Send + Sync>| Error::Open { target: target.clone(), source: e };
        match &self.url {
            StoreUrl::File(dir) => {
                let dir = std::path::absolute(dir.join(rel)).map_err(|e| open_err(Box::new(e)))?;
                std::fs::create_dir_all(&dir).map_err(|e| open_err(Box::new(e)))?;
                let url = url::Url::from_directory_path(&dir)
                    .map_err(|()| open_err(format!("{} is not an absolute path", dir.display()).into()))?;
                Ok(TableLocation { url, root: None })
            }
            StoreUrl::S3 { bucket, prefix } => {
                let key = if prefix.is_empty() { rel.to_owned() } else { format!("{prefix}/{rel}") };
                let url = url::Url::parse(&format!("s3://{bucket}/{key}/")).map_err(|e| open_err(Box::new(e)))?;
                Ok(TableLocation { url, root: Some(self.open()?.inner) })
            }
        }
    }
}

impl Store {
    /// The key `rel` (slash-separated) under the prefix.
    pub fn key(&self, rel: &str) -> ObjectPath {
        let joined = if self.prefix.as_ref().is_empty() { rel.to_owned() } else { format!("{}/{rel}", self.prefix) };
        ObjectPath::from(joined.as_str())
    }

    /// `key` with the prefix removed (for listing results).
    pub fn relative<'a>(&self, key: &'a ObjectPath) -> &'a str {
        let k = key.as_ref();
        if self.prefix.as_ref().is_empty() {
            return k;
        }
        k.strip_prefix(self.prefix.as_ref()).map_or(k, |r| r.trim_start_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;

    use super::*;

    #[test]
    fn urls() {
        assert_eq!(StoreUrl::parse("file:///tmp/x").unwrap(), StoreUrl::File("/tmp/x".into()));
        assert_eq!(StoreUrl::parse("file://rel/x").unwrap(), StoreUrl::File("rel/x".into()));
        assert_eq!(StoreUrl::parse("plain/dir").unwrap(), StoreUrl::File("plain/dir".into()));
        assert_eq!(
            StoreUrl::parse("s3://my-bucket/raw/data/").unwrap(),
            StoreUrl::S3 { bucket: "my-bucket".into(), prefix: "raw/data".into() }
        );
        assert_eq!(StoreUrl::parse("s3://my-bucket").unwrap().display(), "s3://my-bucket");
        for bad in ["s3://B/x", "s3://ab", "gs://x/y", "file://", "s3://bucket/../x"] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
        let dd = Path::new("/d");
        assert_eq!(StoreConfig::default().validate(dd).unwrap().url, StoreUrl::File("/d/objects".into()));
        let bad_endpoint = StoreConfig { s3_endpoint: Some("127.0.0.1:9000".into()), ..Default::default() };
        assert!(bad_endpoint.validate(dd).is_err());
    }

    #[tokio::test]
    async fn keys_live_under_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreConfig { url: Some(format!("file://{}/objs", dir.path().display())), ..Default::default() }
            .validate(dir.path())
            .unwrap()
            .open()
            .unwrap();
        let key = store.key("topics/t/partition=0/t+0+0000000000.json");
        store.inner.put(&key, "x\n".into()).await.unwrap();
        assert!(dir.path().join("objs/topics/t/partition=0/t+0+0000000000.json").is_file());
        assert_eq!(store.relative(&key), "topics/t/partition=0/t+0+0000000000.json");
        let s3 = Store { inner: store.inner.clone(), prefix: ObjectPath::from("raw/v1"), url: String::new() };
        let k = s3.key("topics/a");
        assert_eq!(k.as_ref(), "raw/v1/topics/a");
        assert_eq!(s3.relative(&k), "topics/a");
    }
}
