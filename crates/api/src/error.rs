//! Errors as the outside world expects them: Confluent's `{"error_code","message"}` on the
//! REST Proxy routes, Kinesis' `{"__type","message"}` on the stream routes.
//!
//! | Confluent `error_code` | HTTP | meaning |
//! |---|---|---|
//! | 40002 | 400 | invalid topic name |
//! | 40301 | 403 | missing or wrong `x-api-key` |
//! | 40401 | 404 | topic not found |
//! | 40402 | 404 | partition not found |
//! | 404, 405 | 404, 405 | no such route, method not allowed |
//! | 413 | 413 | body larger than `api.max_body_bytes` |
//! | 415 | 415 | unsupported content type |
//! | 42201 | 422 | body is not valid JSON |
//! | 42202 | 422 | body JSON has the wrong shape (no `records`, wrong types, unknown fields) |
//! | 42203 | 422 | `records` is empty |
//! | 42204 | 422 | a record has no `value` |
//! | 42205 | 422 | a key or value of the binary format is not valid base64 |
//! | 42206 | 422 | too many records, or a record larger than `api.max_record_bytes` |
//! | 50001 | 500 | the log failed |

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Content type of REST Proxy v2 responses.
pub const KAFKA_V2_JSON: &str = "application/vnd.kafka.v2+json";
/// Content type of Kinesis responses.
pub const AMZ_JSON: &str = "application/x-amz-json-1.1";

/// AWS account shown in stream ARNs and messages.
pub const ACCOUNT: &str = "000000000000";
/// AWS region shown in stream ARNs.
pub const REGION: &str = "us-east-1";

/// A REST Proxy error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KafkaError {
    /// HTTP status.
    pub status: StatusCode,
    /// Confluent error code.
    pub code: u32,
    /// Message for the client.
    pub message: String,
}

impl KafkaError {
    /// An error with status `status` and code `code`.
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        KafkaError { status, code, message: message.into() }
    }
    /// 40401.
    pub fn topic_not_found(topic: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, 40401, format!("Topic {topic} not found."))
    }
    /// 40402.
    pub fn partition_not_found(topic: &str, partition: u32) -> Self {
        Self::new(StatusCode::NOT_FOUND, 40402, format!("Partition {partition} of topic {topic} not found."))
    }
    /// 422xx.
    pub fn unprocessable(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    /// 50001.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, 50001, message)
    }
}

impl IntoResponse for KafkaError {
    fn into_response(self) -> Response {
        let body = json!({ "error_code": self.code, "message": self.message }).to_string();
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(KAFKA_V2_JSON));
        r
    }
}

/// A Kinesis error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct KinesisError {
    /// HTTP status (Kinesis answers client errors with 400).
    pub status: StatusCode,
    /// `__type`, e.g. `ResourceNotFoundException`.
    pub kind: &'static str,
    /// Message for the client.
    pub message: String,
}

impl KinesisError {
    /// A 400 error of `kind`.
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        KinesisError { status: StatusCode::BAD_REQUEST, kind, message: message.into() }
    }
    /// `ResourceNotFoundException`.
    pub fn not_found(stream: &str) -> Self {
        Self::new("ResourceNotFoundException", format!("Stream {stream} under account {ACCOUNT} not found."))
    }
    /// `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }
    /// `InternalFailure` (500).
    pub fn internal(message: impl Into<String>) -> Self {
        KinesisError { status: StatusCode::INTERNAL_SERVER_ERROR, kind: "InternalFailure", message: message.into() }
    }
    /// With another status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl IntoResponse for KinesisError {
    fn into_response(self) -> Response {
        let body = json!({ "__type": self.kind, "message": self.message }).to_string();
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
        r
    }
}

/// Which API family a path belongs to, so generic errors (404, 405, 403, 413) get its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// REST Proxy routes (and everything else).
    Kafka,
    /// `/streams...` routes.
    Kinesis,
}

impl Family {
    /// The family of a request path under `base`.
    pub fn of(path: &str, base: &str) -> Self {
        let rest = path.strip_prefix(base).unwrap_or(path);
        if rest == "/streams" || rest.starts_with("/streams/") { Family::Kinesis } else { Family::Kafka }
    }

    /// A generic error in this family's shape.
    pub fn error(self, status: StatusCode, kafka_code: u32, kinesis_kind: &'static str, message: String) -> Response {
        match self {
            Family::Kafka => KafkaError::new(status, kafka_code, message).into_response(),
            Family::Kinesis => KinesisError::new(kinesis_kind, message).with_status(status).into_response(),
        }
    }
}
