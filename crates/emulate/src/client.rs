//! Requests to the API, with retries: connection errors, timeouts, 429, Kinesis'
//! `ProvisionedThroughputExceededException` and 5xx are retried with exponential backoff (100 ms
//! doubling to 5 s, with jitter), waiting at least what the server's `Retry-After` asks (at most
//! 30 s); other 4xx are final and reported with the server's message. A 200 can still carry per-record failures (Confluent `error_code`,
//! Kinesis `FailedRecordCount`); those records count as failed.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// What became of the records of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Records the server accepted.
    pub accepted: u64,
    /// Records not accepted.
    pub failed: u64,
    /// Why (a short key such as `HTTP 403` or `connection error`, and the server's message).
    pub failure: Option<(String, String)>,
}

impl Outcome {
    fn all_failed(records: u64, key: String, message: String) -> Self {
        Outcome { accepted: 0, failed: records, failure: Some((key, message)) }
    }
}

/// An HTTP client for the API at one base URL.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    retries: u32,
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Longest `Retry-After` honoured.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(30);

/// The wait a `Retry-After` header asks for (seconds; an HTTP date is not used by pinpipe).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(secs).min(RETRY_AFTER_MAX))
}

/// Whether a failed response says "slow down, then retry": 429, 5xx, or Kinesis' throttling
/// error (a 400 whose `__type` is `ProvisionedThroughputExceededException`).
fn retriable(status: reqwest::StatusCode, body: &str) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || (status == reqwest::StatusCode::BAD_REQUEST
            && serde_json::from_str::<Value>(body).is_ok_and(|v| {
                v.get("__type").and_then(Value::as_str) == Some("ProvisionedThroughputExceededException")
            }))
}

fn message_of(body: &str) -> String {
    let text = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned());
    text.chars().take(300).collect()
}

/// Records a 200 response reports as failed inside its body.
fn failed_inside(body: &str) -> (u64, Option<String>) {
    let Ok(v) = serde_json::from_str::<Value>(body) else { return (0, None) };
    if let Some(offsets) = v.get("offsets").and_then(Value::as_array) {
        let failed: Vec<&Value> = offsets.iter().filter(|o| !o.get("error_code").is_none_or(Value::is_null)).collect();
        let message = failed.first().and_then(|o| o.get("error").and_then(Value::as_str)).map(str::to_owned);
        return (failed.len() as u64, message);
    }
    if let Some(n) = v.get("FailedRecordCount").and_then(Value::as_u64) {
        let message = v
            .get("Records")
            .and_then(Value::as_array)
            .and_then(|r| r.iter().find_map(|e| e.get("ErrorMessage").and_then(Value::as_str)))
            .map(str::to_owned);
        return (n, message);
    }
    (0, None)
}

impl Client {
    /// A client for `base` (no trailing slash) sending `api_key` as `x-api-key` when given.
    pub fn new(base: &str, timeout: Duration, retries: u32, api_key: Option<&str>) -> reqwest::Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = api_key
            && let Ok(v) = reqwest::header::HeaderValue::from_str(key)
        {
            headers.insert("x-api-key", v);
        }
        let http = reqwest::Client::builder().timeout(timeout).default_headers(headers).tcp_nodelay(true).build()?;
        Ok(Client { http, base: base.to_owned(), retries })
    }

    /// Sends `body` to `path` and reports what became of its `records` records.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &'static str,
        body: Bytes,
        records: u64,
        stop: &CancellationToken,
    ) -> Outcome {
        let url = format!("{}{path}", self.base);
        let mut backoff = BACKOFF_MIN;
        let mut attempt = 0;
        loop {
            let sent = self
                .http
                .request(method.clone(), &url)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.clone())
                .send()
                .await;
            let mut wait_at_least = Duration::ZERO;
            let (retry, key, message) = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    wait_at_least = retry_after(resp.headers()).unwrap_or_default();
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        let (failed, message) = failed_inside(&text);
                        return Outcome {
                            accepted: records.saturating_sub(failed),
                            failed,
                            failure: (failed > 0).then(|| ("rejected record".to_owned(), message.unwrap_or_default())),
                        };
                    }
                    (retriable(status, &text), format!("HTTP {}", status.as_u16()), message_of(&text))
                }
                Err(e) if e.is_timeout() => (true, "timeout".to_owned(), e.to_string()),
                Err(e) => (true, "connection error".to_owned(), pinpipe_model::error_chain(&e)),
            };
            if !retry || attempt >= self.retries || stop.is_cancelled() {
                return Outcome::all_failed(records, key, message);
            }
            attempt += 1;
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            let jitter = Duration::from_millis(u64::from(nanos) % (backoff.as_millis() as u64 / 2 + 1));
            tracing::debug!(url, attempt, "retrying after {key}: {message}");
            tokio::select! {
                () = stop.cancelled() => return Outcome::all_failed(records, key, message),
                () = tokio::time::sleep((backoff + jitter).max(wait_at_least)) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_failures_out_of_bodies() {
        assert_eq!(
            message_of(r#"{"error_code":40301,"message":"Forbidden: missing x-api-key header"}"#),
            "Forbidden: missing x-api-key header"
        );
        assert_eq!(message_of(r#"{"__type":"ValidationException","message":"bad"}"#), "bad");
        assert_eq!(message_of("plain text\n"), "plain text");
        let ok = r#"{"offsets":[{"partition":0,"offset":1,"error_code":null,"error":null}],"key_schema_id":null,"value_schema_id":null}"#;
        assert_eq!(failed_inside(ok), (0, None));
        let partial = r#"{"offsets":[{"partition":0,"offset":1,"error_code":null,"error":null},{"partition":1,"offset":null,"error_code":50003,"error":"disk"}]}"#;
        assert_eq!(failed_inside(partial), (1, Some("disk".into())));
        let kinesis = r#"{"FailedRecordCount":1,"Records":[{"SequenceNumber":"1"},{"ErrorCode":"InternalFailure","ErrorMessage":"x"}]}"#;
        assert_eq!(failed_inside(kinesis), (1, Some("x".into())));
    }

    #[test]
    fn throttling_is_retried_and_retry_after_read() {
        use reqwest::StatusCode as S;
        let throttled = r#"{"__type":"ProvisionedThroughputExceededException","message":"slow down"}"#;
        assert!(retriable(S::BAD_REQUEST, throttled));
        assert!(retriable(S::TOO_MANY_REQUESTS, "{}"));
        assert!(retriable(S::SERVICE_UNAVAILABLE, ""));
        assert!(!retriable(S::BAD_REQUEST, r#"{"__type":"ValidationException","message":"bad"}"#));
        assert!(!retriable(S::UNPROCESSABLE_ENTITY, r#"{"error_code":422,"message":"no"}"#));
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(reqwest::header::RETRY_AFTER, "99999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(RETRY_AFTER_MAX));
    }
}
