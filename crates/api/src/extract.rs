//! Extractors for the parts of a request the handlers take: validated names from the path and
//! query parameters, each rejecting a bad request with its route family's error body (Confluent's
//! on the REST Proxy routes, Kinesis' on the stream routes), so handlers start with valid inputs.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{KafkaError, KinesisError};

/// `{topic}`: a valid topic name (40002 otherwise).
pub struct TopicName(pub String);

/// `{topic}/partitions/{partition}`: a valid topic name and a partition number (a partition
/// that is not a number is a partition that does not exist: 40402).
pub struct TopicPartition(pub String, pub u32);

/// `{stream}`: a valid stream name (`ValidationException` otherwise).
pub struct StreamName(pub String);

/// `{group}`: a valid consumer group name (40002 otherwise).
pub struct GroupName(pub String);

/// `{group}/instances/{instance}`: valid group and instance names (40002 otherwise).
pub struct InstancePath(pub String, pub String);

/// The consumer instance named by `{group}/instances/{instance}` (40403 when there is none).
pub struct ConsumerInstance(pub std::sync::Arc<crate::consumers::group::Instance>);

impl FromRequestParts<crate::AppState> for ConsumerInstance {
    type Rejection = KafkaError;

    async fn from_request_parts(parts: &mut Parts, state: &crate::AppState) -> Result<Self, Self::Rejection> {
        let InstancePath(group, id) = InstancePath::from_request_parts(parts, state).await?;
        state.consumers.registry.get(&group, &id).map(ConsumerInstance).ok_or_else(|| {
            KafkaError::new(
                axum::http::StatusCode::NOT_FOUND,
                crate::error::code::CONSUMER_INSTANCE_NOT_FOUND,
                "Consumer instance not found.",
            )
        })
    }
}

/// Query parameters of a REST Proxy route (a malformed query is 400).
pub struct KafkaQuery<T>(pub T);

/// Query parameters of a stream route (a malformed query is a `ValidationException`).
pub struct KinesisQuery<T>(pub T);

/// A name that must pass the topic naming rules; `what` names it in the message.
fn valid_name(what: &str, name: &str) -> Result<(), KafkaError> {
    pinpipe_model::names::validate_topic(name).map_err(|e| KafkaError::kafka_bad_request(format!("{what}: {e}")))
}

async fn path<T: DeserializeOwned + Send, S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<T, String> {
    Path::<T>::from_request_parts(parts, state).await.map(|Path(p)| p).map_err(|e| e.body_text())
}

impl<S: Send + Sync> FromRequestParts<S> for TopicName {
    type Rejection = KafkaError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let topic: String = path(parts, state).await.map_err(KafkaError::kafka_bad_request)?;
        pinpipe_model::names::validate_topic(&topic).map_err(|e| KafkaError::kafka_bad_request(e.to_string()))?;
        Ok(TopicName(topic))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TopicPartition {
    type Rejection = KafkaError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let (topic, partition): (String, String) = path(parts, state).await.map_err(KafkaError::kafka_bad_request)?;
        pinpipe_model::names::validate_topic(&topic).map_err(|e| KafkaError::kafka_bad_request(e.to_string()))?;
        let p = partition.parse::<u32>().map_err(|_| KafkaError::partition_not_found(&topic, u32::MAX))?;
        Ok(TopicPartition(topic, p))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for StreamName {
    type Rejection = KinesisError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let stream: String = path(parts, state).await.map_err(KinesisError::validation)?;
        pinpipe_model::names::validate_stream(&stream).map_err(|e| {
            KinesisError::validation(format!(
                "1 validation error detected: Value at 'streamName' failed to satisfy constraint: {e}"
            ))
        })?;
        Ok(StreamName(stream))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for GroupName {
    type Rejection = KafkaError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let group: String = path(parts, state).await.map_err(KafkaError::kafka_bad_request)?;
        valid_name("consumer group", &group)?;
        Ok(GroupName(group))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for InstancePath {
    type Rejection = KafkaError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let (group, id): (String, String) = path(parts, state).await.map_err(KafkaError::kafka_bad_request)?;
        valid_name("consumer group", &group)?;
        valid_name("consumer instance", &id)?;
        Ok(InstancePath(group, id))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for KafkaQuery<T> {
    type Rejection = KafkaError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(q) =
            Query::<T>::from_request_parts(parts, state).await.map_err(|e| KafkaError::bad_request(e.body_text()))?;
        Ok(KafkaQuery(q))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for KinesisQuery<T> {
    type Rejection = KinesisError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(q) =
            Query::<T>::from_request_parts(parts, state).await.map_err(|e| KinesisError::validation(e.body_text()))?;
        Ok(KinesisQuery(q))
    }
}
