//! The object stores of a cluster's processes: where the scheduler (which plans scans of the
//! tables' files) and the executors (which read them) find a store for an `s3://` URL.
//!
//! The job's questions over whole tables run as plans that scan the tables' Parquet files by
//! URL. A store is built on first use of each bucket from the process's own environment, as
//! every pinpipe command opens S3: the AWS default credential chain, `AWS_REGION`, and
//! `AWS_ENDPOINT_URL` for an S3-compatible server. Local files (`file://`) need nothing.

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::ObjectStore;
use url::Url;

/// Stores registered as usual, and `s3://BUCKET` stores made from the environment on first use.
#[derive(Debug, Default)]
pub struct EnvStores {
    registered: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for EnvStores {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.registered.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        self.registered.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.registered.get_store(url) {
            return Ok(store);
        }
        let (true, Some(bucket)) = (url.scheme() == "s3", url.host_str()) else {
            return self.registered.get_store(url);
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let config = pinpipe_store::StoreConfig {
            url: Some(format!("s3://{bucket}")),
            s3_endpoint: env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")),
            s3_region: env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")),
        };
        let external = |e: pinpipe_store::Error| DataFusionError::External(Box::new(e));
        let store = config.validate_or(std::env::temp_dir()).map_err(external)?.open().map_err(external)?.inner;
        let root = Url::parse(&format!("s3://{bucket}")).map_err(|e| DataFusionError::External(Box::new(e)))?;
        self.registered.register_store(&root, Arc::clone(&store));
        Ok(store)
    }
}

/// A registry of [`EnvStores`].
pub fn registry() -> Arc<dyn ObjectStoreRegistry> {
    Arc::new(EnvStores::default())
}
