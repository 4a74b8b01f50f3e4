//! Errors as the outside world expects them: Confluent's `{"error_code","message"}` on the
//! REST Proxy routes, Kinesis' `{"__type","message"}` on the stream routes.
//!
//! The Confluent codes are the ones Confluent's REST Proxy publishes (`io.confluent.kafkarest.Errors`
//! and rest-utils' exception mappers); [`code`] names each. `docs/api-errors.md` maps every error
//! pinpipe answers to its status and code, for both families.

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

/// Confluent REST Proxy error codes (`error_code`), as Confluent's REST Proxy defines them.
pub mod code {
    /// Malformed JSON, or JSON of the wrong shape (rest-utils' Jackson mappers: status 400).
    pub const BAD_REQUEST: u32 = 400;
    /// A request that breaks a constraint, e.g. no records (rest-utils' constraint mapper: 422).
    pub const UNPROCESSABLE: u32 = 422;
    /// A bad request to Kafka: an invalid topic name, too many partitions (`KAFKA_BAD_REQUEST`).
    pub const KAFKA_BAD_REQUEST: u32 = 40002;
    /// Invalid consumer configuration constraint (`INVALID_CONSUMER_CONFIG_CONSTRAINT`).
    pub const INVALID_CONSUMER_CONFIG_CONSTRAINT: u32 = 40001;
    /// Not allowed (`KAFKA_AUTHORIZATION`): here, a missing or wrong `x-api-key`.
    pub const FORBIDDEN: u32 = 40301;
    /// `TOPIC_NOT_FOUND`.
    pub const TOPIC_NOT_FOUND: u32 = 40401;
    /// `PARTITION_NOT_FOUND`.
    pub const PARTITION_NOT_FOUND: u32 = 40402;
    /// `CONSUMER_INSTANCE_NOT_FOUND`.
    pub const CONSUMER_INSTANCE_NOT_FOUND: u32 = 40403;
    /// `CONSUMER_FORMAT_MISMATCH` (406): the `Accept` format is not the instance's.
    pub const CONSUMER_FORMAT_MISMATCH: u32 = 40601;
    /// `CONSUMER_ALREADY_SUBSCRIBED` (409): subscription and manual assignment are exclusive.
    pub const CONSUMER_ALREADY_SUBSCRIBED: u32 = 40901;
    /// `CONSUMER_ALREADY_EXISTS` (409).
    pub const CONSUMER_ALREADY_EXISTS: u32 = 40902;
    /// `ILLEGAL_STATE` (409), e.g. seeking a partition the instance is not assigned.
    pub const ILLEGAL_STATE: u32 = 40903;
    /// `JSON_CONVERSION` (422): a key or value that cannot be converted (bad base64).
    pub const JSON_CONVERSION: u32 = 42203;
    /// `INVALID_CONSUMER_CONFIG` (422).
    pub const INVALID_CONSUMER_CONFIG: u32 = 42204;
    /// Too many requests in flight (429): retry after `Retry-After`.
    pub const TOO_MANY_REQUESTS: u32 = 429;
    /// `KAFKA_ERROR` (500): the log failed in a way a retry will not fix.
    pub const KAFKA_ERROR: u32 = 50002;
    /// `KAFKA_RETRIABLE_ERROR` (500): the log failed, a retry may succeed (I/O, a full disk).
    pub const KAFKA_RETRIABLE_ERROR: u32 = 50003;
    /// `BROKER_NOT_AVAILABLE` (503): the remote log (Kafka, Kinesis) cannot be reached.
    pub const BROKER_NOT_AVAILABLE: u32 = 50302;
}

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
    /// Seconds for a `Retry-After` header (overload).
    pub retry_after: Option<u64>,
}

impl KafkaError {
    /// An error with status `status` and code `code`.
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        KafkaError { status, code, message: message.into(), retry_after: None }
    }
    /// 429: too much in flight; retry after the budget's delay.
    pub fn overloaded(o: crate::pressure::Overloaded) -> Self {
        KafkaError {
            retry_after: Some(crate::pressure::RETRY_AFTER_SECS),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code::TOO_MANY_REQUESTS, o.to_string())
        }
    }
    /// 40401.
    pub fn topic_not_found(topic: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, code::TOPIC_NOT_FOUND, format!("Topic {topic} not found."))
    }
    /// 40402.
    pub fn partition_not_found(topic: &str, partition: u32) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            code::PARTITION_NOT_FOUND,
            format!("Partition {partition} of topic {topic} not found."),
        )
    }
    /// 400 with code 400: the body is not JSON, or JSON of the wrong shape.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::BAD_REQUEST, message)
    }
    /// 400 with code 40002: an invalid name or a request Kafka would refuse.
    pub fn kafka_bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::KAFKA_BAD_REQUEST, message)
    }
    /// 422 with `code` (422 for a broken constraint, 422xx for Confluent's specific ones).
    pub fn unprocessable(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    /// 500 with 50002 (`KAFKA_ERROR`).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, code::KAFKA_ERROR, message)
    }
    /// The error for a failure of the log, by its kind.
    pub fn from_log(e: pinpipe_log::Error) -> Self {
        match e {
            pinpipe_log::Error::TopicNotFound(t) => Self::topic_not_found(&t),
            pinpipe_log::Error::PartitionNotFound { topic, partition, .. } => {
                Self::partition_not_found(&topic, partition)
            }
            e @ (pinpipe_log::Error::InvalidName(_)
            | pinpipe_log::Error::TooManyPartitions { .. }
            | pinpipe_log::Error::TooManyTopics { .. }
            | pinpipe_log::Error::InvalidPartitionCount(_)
            | pinpipe_log::Error::TopicExists(_)) => Self::kafka_bad_request(e.to_string()),
            e @ pinpipe_log::Error::Remote { .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, code::BROKER_NOT_AVAILABLE, e.to_string())
            }
            e if is_retriable(&e) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, code::KAFKA_RETRIABLE_ERROR, e.to_string())
            }
            other => Self::internal(other.to_string()),
        }
    }
}

/// Whether a failure of the log may go away on a retry (I/O, a full disk, a closing log), as
/// Kafka's `RetriableException`s: per-record produce errors carry 50003 for these, else 50002.
pub fn is_retriable(e: &pinpipe_log::Error) -> bool {
    matches!(e, pinpipe_log::Error::Io { .. } | pinpipe_log::Error::Closed | pinpipe_log::Error::Failed { .. })
}

/// The per-record `error_code` of a produce response whose record was not stored.
pub fn record_error_code(e: &pinpipe_log::Error) -> u32 {
    if is_retriable(e) { code::KAFKA_RETRIABLE_ERROR } else { code::KAFKA_ERROR }
}

impl IntoResponse for KafkaError {
    fn into_response(self) -> Response {
        let body = json!({ "error_code": self.code, "message": self.message }).to_string();
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(KAFKA_V2_JSON));
        if let Some(secs) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
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
    /// Seconds for a `Retry-After` header (throttling).
    pub retry_after: Option<u64>,
}

impl KinesisError {
    /// A 400 error of `kind`.
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        KinesisError { status: StatusCode::BAD_REQUEST, kind, message: message.into(), retry_after: None }
    }
    /// `ProvisionedThroughputExceededException` (400, as Kinesis answers it) with `Retry-After`.
    pub fn overloaded(o: crate::pressure::Overloaded) -> Self {
        KinesisError {
            retry_after: Some(crate::pressure::RETRY_AFTER_SECS),
            ..Self::new("ProvisionedThroughputExceededException", o.to_string())
        }
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
        Self::new("InternalFailure", message).with_status(StatusCode::INTERNAL_SERVER_ERROR)
    }
    /// With another status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
    /// The error for a failure of the log, by its kind, as Kinesis names it.
    pub fn from_log(e: pinpipe_log::Error) -> Self {
        use pinpipe_log::Error as E;
        match e {
            E::TopicNotFound(s) => Self::not_found(&s),
            E::TopicExists(s) => {
                Self::new("ResourceInUseException", format!("Stream {s} under account {ACCOUNT} already exists."))
            }
            E::InvalidName(e) => Self::validation(e.to_string()),
            E::InvalidPartitionCount(n) => Self::new(
                "LimitExceededException",
                format!("ShardCount {n} is outside 1..={}", pinpipe_log::port::MAX_PARTITIONS),
            ),
            e @ (E::TooManyPartitions { .. } | E::TooManyTopics { .. }) => {
                Self::new("LimitExceededException", e.to_string())
            }
            e @ E::Unsupported { .. } => Self::new("InvalidArgumentException", e.to_string()),
            // The stream lives on Kinesis and Kinesis failed: the client may retry.
            e @ E::Remote { .. } => {
                Self::new("ServiceUnavailable", e.to_string()).with_status(StatusCode::SERVICE_UNAVAILABLE)
            }
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<pinpipe_log::Error> for KinesisError {
    fn from(e: pinpipe_log::Error) -> Self {
        Self::from_log(e)
    }
}

impl From<pinpipe_log::Error> for KafkaError {
    fn from(e: pinpipe_log::Error) -> Self {
        Self::from_log(e)
    }
}

impl IntoResponse for KinesisError {
    fn into_response(self) -> Response {
        let body = json!({ "__type": self.kind, "message": self.message }).to_string();
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
        if let Some(secs) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
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
