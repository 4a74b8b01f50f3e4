//! librdkafka's plumbing: where its logs go, what its last connection error was, MSK IAM
//! tokens on its request, which of its errors are worth a retry, and consumers closed off the
//! caller's thread.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer as RdBaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::SERVICE;
use super::msk_iam::MskIam;
use crate::Error;

/// The context of every client of one log: where librdkafka's own logs and errors go (tracing at
/// debug level, `RUST_LOG=librdkafka=debug`), the last of those errors (so that a failed connect
/// says why: a TLS handshake or a refused login, with the broker named), and the MSK IAM signer
/// when that is the mechanism. pinpipe reports what fails through the results of its calls,
/// once; librdkafka would otherwise log every reconnection attempt as an error.
#[derive(Clone, Default)]
pub(super) struct Quiet {
    last_error: Arc<Mutex<Option<String>>>,
    iam: Option<Arc<MskIam>>,
}

impl Quiet {
    pub(super) fn new(iam: Option<Arc<MskIam>>) -> Quiet {
        Quiet { last_error: Arc::default(), iam }
    }

    /// The last error librdkafka reported, if any.
    pub(super) fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Whether tokens are signed here (MSK IAM).
    pub(super) fn has_signer(&self) -> bool {
        self.iam.is_some()
    }

    /// Forgets the last error (before an attempt whose own errors are wanted).
    pub(super) fn clear(&self) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = None;
        }
    }
}

impl ClientContext for Quiet {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        tracing::debug!(target: "librdkafka", ?level, facility, "{message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
        // "1/1 brokers are down" follows the error that says why: it must not hide it.
        let summary = error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown);
        if let Ok(mut e) = self.last_error.lock()
            && (!summary || e.is_none())
        {
            *e = Some(reason.to_owned());
        }
    }

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        // Only AWS_MSK_IAM reaches here: validation refuses OAUTHBEARER otherwise.
        let Some(iam) = &self.iam else {
            return Err("OAUTHBEARER tokens are only provided for sasl.mechanism = AWS_MSK_IAM".into());
        };
        let token = iam.token().inspect_err(|e| {
            if let Ok(mut last) = self.last_error.lock() {
                *last = Some(e.clone());
            }
        })?;
        Ok(OAuthToken { token: token.value, principal_name: "pinpipe".into(), lifetime_ms: token.expires_ms })
    }
}

impl ConsumerContext for Quiet {}

/// An error at connect that trying again will not cure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fatal {
    /// The broker's certificate was refused (librdkafka does not say why).
    Certificate,
    /// The broker asked for a client certificate and got none.
    ClientCertificateMissing,
    /// The broker refused the client certificate.
    ClientCertificateRefused,
    /// Another TLS failure.
    Tls,
    /// The broker refused the login.
    Login,
}

/// What a librdkafka error at connect means, if waiting will not cure it (`None`: e.g. a
/// broker not up yet).
pub(super) fn fatal(reason: &str) -> Option<Fatal> {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("certificate verify failed") {
        Some(Fatal::Certificate)
    } else if lower.contains("alert certificate required") {
        Some(Fatal::ClientCertificateMissing)
    } else if lower.contains("alert bad certificate")
        || lower.contains("alert unknown ca")
        || lower.contains("alert certificate unknown")
        || lower.contains("alert certificate expired")
    {
        Some(Fatal::ClientCertificateRefused)
    } else if lower.contains("ssl handshake failed") || lower.contains("ssl alert") {
        Some(Fatal::Tls)
    } else if lower.contains("authentication failed")
        || lower.contains("sasl authentication error")
        || lower.contains("aws_msk_iam")
    {
        Some(Fatal::Login)
    } else {
        None
    }
}

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
