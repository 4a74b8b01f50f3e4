//! Backpressure: a log made slow on purpose (a gate in front of the real embedded log holds every
//! append until it is opened). The API answers 429 / `ProvisionedThroughputExceededException`
//! with `Retry-After` once its in-flight budget is used, never hands the log more than the
//! budget, loses no acknowledged record, and recovers when the pressure goes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use pinpipe_log::embedded::EmbeddedLog;
use pinpipe_log::port::dense;
use pinpipe_log::{
    Chunk, Cursor, Log, LogConfig, OffsetLog, PartitionOffsets, Position, ReadLimits, Record, StoredRecord, TopicInfo,
    TopicKind,
};
use serde_json::Value;
use tower::ServiceExt;

use super::{Api, JSON_V2};
use crate::ApiConfig;

/// The embedded log behind a gate: appends wait until it opens.
struct Gate {
    inner: EmbeddedLog,
    open: tokio::sync::watch::Sender<bool>,
    /// Appends waiting at the gate, and the bytes they carry (and the most ever).
    waiting: AtomicUsize,
    waiting_bytes: AtomicUsize,
    most_bytes: AtomicUsize,
}

#[async_trait]
impl Log for Gate {
    fn describe(&self) -> String {
        "gated embedded log".into()
    }
    async fn create_topic(&self, name: &str, kind: TopicKind, partitions: u32) -> pinpipe_log::Result<TopicInfo> {
        self.inner.create_topic(name, kind, partitions).await
    }
    async fn delete_topic(&self, name: &str) -> pinpipe_log::Result<()> {
        self.inner.delete_topic(name).await
    }
    async fn topics(&self) -> pinpipe_log::Result<Vec<TopicInfo>> {
        self.inner.topics().await
    }
    async fn topic(&self, name: &str) -> pinpipe_log::Result<TopicInfo> {
        self.inner.topic(name).await
    }
    async fn append_positioned(&self, t: &str, p: u32, records: Vec<Record>) -> pinpipe_log::Result<Vec<Position>> {
        dense::append_positioned(self, t, p, records).await
    }
    async fn read_from(&self, t: &str, p: u32, c: &Cursor, l: ReadLimits) -> pinpipe_log::Result<Chunk> {
        dense::read_from(self, t, p, c, l).await
    }
    async fn wait_from(&self, t: &str, p: u32, c: &Cursor, timeout: Duration) -> pinpipe_log::Result<bool> {
        dense::wait_from(self, t, p, c, timeout).await
    }
    fn as_offsets(&self) -> Option<&dyn OffsetLog> {
        Some(self)
    }
}

#[async_trait]
impl OffsetLog for Gate {
    async fn offsets(&self, name: &str) -> pinpipe_log::Result<Vec<PartitionOffsets>> {
        self.inner.offsets(name).await
    }
    async fn append(&self, topic: &str, partition: u32, records: Vec<Record>) -> pinpipe_log::Result<u64> {
        let bytes: usize = records.iter().map(|r| r.value.len()).sum();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let now = self.waiting_bytes.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.most_bytes.fetch_max(now, Ordering::SeqCst);
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|o| *o).await;
        self.waiting_bytes.fetch_sub(bytes, Ordering::SeqCst);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        self.inner.append(topic, partition, records).await
    }
    async fn read(&self, t: &str, p: u32, o: u64, l: ReadLimits) -> pinpipe_log::Result<Vec<StoredRecord>> {
        self.inner.read(t, p, o, l).await
    }
    async fn wait_for(&self, t: &str, p: u32, o: u64, timeout: Duration) -> pinpipe_log::Result<bool> {
        self.inner.wait_for(t, p, o, timeout).await
    }
}

async fn send(router: axum::Router, method: &str, uri: &str, body: String) -> (StatusCode, Option<String>, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", JSON_V2)
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap();
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, retry, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_log_gets_429s_with_retry_after_bounded_memory_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inner = EmbeddedLog::open(&LogConfig::default().validate(dir.path()).unwrap()).unwrap();
    let (open, _) = tokio::sync::watch::channel(false);
    let gate = Arc::new(Gate {
        inner,
        open,
        waiting: AtomicUsize::new(0),
        waiting_bytes: AtomicUsize::new(0),
        most_bytes: AtomicUsize::new(0),
    });
    let budget = 8 << 10;
    let config = ApiConfig { max_body_bytes: 2048, max_inflight_bytes: budget, ..ApiConfig::default() };
    let api = Api::over(dir, Arc::clone(&gate) as Arc<dyn OffsetLog>, config);
    gate.inner.create_topic("t", TopicKind::Topic, 1).await.unwrap();
    gate.inner.create_topic("s", TopicKind::Stream, 1).await.unwrap();

    // 40 produces of ~1 KiB and 10 stream puts while the log takes nothing.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let router = api.router.clone();
        let value = format!("{i:04}{}", "x".repeat(1000));
        tasks.push(tokio::spawn(async move {
            if i < 40 {
                let body = format!(r#"{{"records":[{{"value":"{value}"}}]}}"#);
                (i, send(router, "POST", "/topics/t", body).await)
            } else {
                let body = format!(r#"{{"Data":"{value}","PartitionKey":"k"}}"#);
                (i, send(router, "PUT", "/streams/s/record", body).await)
            }
        }));
    }
    // Every request is either waiting at the gate or answered.
    let mut answered = Vec::new();
    let mut pending = Vec::new();
    for t in tasks {
        pending.push(t);
    }
    loop {
        let (done, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|t| t.is_finished());
        for t in done {
            answered.push(t.await.unwrap());
        }
        pending = rest;
        if answered.len() + gate.waiting.load(Ordering::SeqCst) == 50 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(!answered.is_empty(), "some requests were refused");
    for (i, (status, retry, body)) in &answered {
        assert_eq!(retry.as_deref(), Some("1"), "request {i}: {body}");
        if *i < 40 {
            assert_eq!((status.as_u16(), body["error_code"].as_u64()), (429, Some(429)), "{body}");
        } else {
            assert_eq!(status.as_u16(), 400, "{body}");
            assert_eq!(body["__type"], "ProvisionedThroughputExceededException", "{body}");
        }
    }
    assert!(gate.most_bytes.load(Ordering::SeqCst) <= budget, "the log was handed more than the budget");
    assert!(api.state.budget.in_use() <= budget);
    let waiting = gate.waiting.load(Ordering::SeqCst);
    assert!(waiting >= 4, "the budget admitted {waiting} requests of ~1 KiB out of 8 KiB");

    // The pressure goes: every admitted request is acknowledged and stored, exactly once.
    gate.open.send_replace(true);
    let mut acked = Vec::new();
    for t in pending {
        let (i, (status, _, body)) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        acked.push(i);
    }
    assert_eq!(acked.len(), waiting);
    let stored: Vec<String> = [api.values("t", 0).await, api.values("s", 0).await].concat();
    let mut stored_ids: Vec<usize> = stored.iter().map(|v| v[1..5].parse().unwrap()).collect();
    stored_ids.sort_unstable();
    acked.sort_unstable();
    assert_eq!(stored_ids, acked, "acknowledged records stored, refused ones not");
    assert_eq!(api.state.budget.in_use(), 0);
    // And produces succeed again.
    assert_eq!(api.produce("t", JSON_V2, r#"{"records":[{"value":"after"}]}"#).await.0, StatusCode::OK);
    let (_, _, v) = api.call("GET", "/metrics", &[], "").await;
    let refused = answered.len();
    assert!(v.as_str().unwrap().contains(&format!("pinpipe_api_overloaded_requests_total {refused}")), "{v}");
}
