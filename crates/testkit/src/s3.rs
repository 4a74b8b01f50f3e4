//! A throwaway bucket on the S3 API server named by `TEST_PINPIPE_S3_ENDPOINT` (moto in CI).

use std::sync::atomic::{AtomicU32, Ordering};

use crate::http::HttpClient;

/// A bucket created for one test (moto keeps it in memory; it goes when the server stops).
pub struct TestBucket {
    /// The server, e.g. `http://127.0.0.1:5000`.
    pub endpoint: String,
    /// The bucket's name.
    pub name: String,
}

impl TestBucket {
    /// Creates a fresh bucket; `None` when no S3 server is configured.
    pub async fn create() -> Option<TestBucket> {
        static N: AtomicU32 = AtomicU32::new(0);
        let endpoint = crate::service_url("TEST_PINPIPE_S3_ENDPOINT")?;
        let name = format!("pinpipe-t{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let r = HttpClient::default().send("PUT", &format!("{endpoint}/{name}"), &[], "").await;
        match r {
            Ok(r) if r.status == 200 => Some(TestBucket { endpoint, name }),
            other => panic!("creating bucket {name} on {endpoint}: {other:?}"),
        }
    }

    /// `s3://<bucket>/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.name)
    }
}
