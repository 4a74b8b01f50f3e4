//! librdkafka's plumbing: where its logs go, which of its errors are worth a retry, and
//! consumers closed off the caller's thread.

use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer as RdBaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::SERVICE;
use crate::Error;

/// Where librdkafka's own logs and errors go: tracing at debug level (`RUST_LOG=librdkafka=debug`).
/// pinpipe reports what fails through the results of its calls, once, with the broker named;
/// librdkafka would otherwise log every reconnection attempt as an error.
#[derive(Clone, Copy)]
pub(super) struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        tracing::debug!(target: "librdkafka", ?level, facility, "{message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
    }
}

impl ConsumerContext for Quiet {}

pub(super) type BaseConsumer = RdBaseConsumer<Quiet>;

/// Attempts of a metadata or offsets request whose connection dropped.
pub(super) const ATTEMPTS: u32 = 4;

/// Errors after which the same request is worth sending again.
pub(super) fn is_transient(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::RequestTimedOut
        )
    )
}

pub(super) fn remote(operation: &'static str, e: impl std::fmt::Display) -> Error {
    Error::Remote { service: SERVICE, operation, message: e.to_string() }
}

/// A consumer that is closed on a thread of its own when dropped, waiting at most
/// [`CLOSE_TIMEOUT`] for it: librdkafka's close can wait forever for a partition whose topic was
/// deleted while it was assigned (librdkafka issue #4362), and that must not stop a shutdown.
pub(super) struct Detached(pub(super) Option<BaseConsumer>);

/// How long dropping a reader waits for its consumer to close.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

impl std::ops::Deref for Detached {
    type Target = BaseConsumer;
    fn deref(&self) -> &BaseConsumer {
        // Only `drop` takes it out.
        self.0.as_ref().unwrap_or_else(|| unreachable!("a consumer is only taken out when dropped"))
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            let _ = consumer.unassign();
            let (done, closed) = std::sync::mpsc::channel::<()>();
            let spawned = std::thread::Builder::new().name("pinpipe-kafka-close".into()).spawn(move || {
                drop(consumer);
                let _ = done.send(());
            });
            match spawned {
                Ok(_) => {
                    if closed.recv_timeout(CLOSE_TIMEOUT).is_err() {
                        tracing::warn!("a Kafka reader did not close within {CLOSE_TIMEOUT:?}; leaving it behind");
                    }
                }
                Err(e) => tracing::warn!("cannot close a Kafka reader on its own thread ({e}); leaving it open"),
            }
        }
    }
}
