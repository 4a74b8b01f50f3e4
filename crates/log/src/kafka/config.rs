//! The `[log.kafka]` configuration section: where the Kafka backend connects, and any librdkafka
//! property (SASL for MSK and Confluent Cloud users, client ids, tuning).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `[log.kafka]` section.
///
/// Credentials are never written here: a property whose name looks like a secret
/// (`sasl.password`, `ssl.key.password`, `sasl.oauthbearer.client.secret`, ...) must have the
/// value `${env:VARIABLE}` (Kafka Connect's syntax for environment values), and the variable
/// provides it when pinpipe connects. Any other value may use `${env:VARIABLE}` too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `host:port` of one or more brokers, comma-separated (librdkafka's `bootstrap.servers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<String>,
    /// Replication factor of the topics pinpipe creates; unset: the cluster's default
    /// (`default.replication.factor`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<u16>,
    /// librdkafka properties given to every client pinpipe makes (producer, readers, admin),
    /// e.g. `"security.protocol" = "SASL_PLAINTEXT"`. They override pinpipe's own settings.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// A validated [`KafkaConfig`]; `${env:...}` values are still unresolved (they are read when
/// connecting, so that `pinpipe config` never prints a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKafka {
    /// The `bootstrap.servers` list.
    pub bootstrap_servers: String,
    /// See [`KafkaConfig`]; `None`: the cluster's default.
    pub replication_factor: Option<u16>,
    /// See [`KafkaConfig`].
    pub properties: BTreeMap<String, String>,
}

/// Words that mark a property as a credential.
const SECRET_WORDS: [&str; 4] = ["password", "secret", "jaas", ".key.pem"];

/// Whether a librdkafka property holds a credential.
fn is_secret(property: &str) -> bool {
    SECRET_WORDS.iter().any(|w| property.contains(w))
}

/// The variable named by a `${env:NAME}` value.
pub(crate) fn env_reference(value: &str) -> Option<&str> {
    let name = value.strip_prefix("${env:")?.strip_suffix('}')?;
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

impl KafkaConfig {
    /// Checks the section; returns `(key, message)` for the first bad value.
    pub fn validate(&self) -> Result<ResolvedKafka, (&'static str, String)> {
        let Some(servers) = self.bootstrap_servers.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
            return Err((
                "log.kafka.bootstrap_servers",
                "is required when topics or streams live on Kafka (e.g. \"127.0.0.1:9092\", or pass --log kafka://HOST:PORT)".into(),
            ));
        };
        for server in servers.split(',') {
            let server = server.trim();
            let port_ok = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                return Err(("log.kafka.bootstrap_servers", format!("{server:?} is not HOST:PORT")));
            }
        }
        if self.replication_factor == Some(0) {
            return Err((
                "log.kafka.replication_factor",
                "must be at least 1 (or unset for the cluster's default)".into(),
            ));
        }
        for (key, value) in &self.properties {
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
                return Err(("log.kafka.properties", format!("{key:?} is not a librdkafka property name")));
            }
            if value.starts_with("${") && env_reference(value).is_none() {
                return Err(("log.kafka.properties", format!("{key}: {value:?} is not of the form ${{env:VARIABLE}}")));
            }
            if is_secret(key) && env_reference(value).is_none() {
                return Err((
                    "log.kafka.properties",
                    format!(
                        "{key} is a credential and must not be written in a file: set it to \"${{env:VARIABLE}}\" and put the value in that environment variable"
                    ),
                ));
            }
        }
        Ok(ResolvedKafka {
            bootstrap_servers: servers.split(',').map(str::trim).collect::<Vec<_>>().join(","),
            replication_factor: self.replication_factor,
            properties: self.properties.clone(),
        })
    }
}

impl ResolvedKafka {
    /// The properties with every `${env:NAME}` replaced by the variable's value; `(property,
    /// variable)` of the first one that is unset.
    pub fn resolved_properties(&self) -> Result<Vec<(String, String)>, (String, String)> {
        self.properties
            .iter()
            .map(|(k, v)| match env_reference(v) {
                None => Ok((k.clone(), v.clone())),
                Some(name) => {
                    std::env::var(name).map(|value| (k.clone(), value)).map_err(|_| (k.clone(), name.to_owned()))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(servers: &str, properties: &[(&str, &str)]) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: Some(servers.into()),
            replication_factor: None,
            properties: properties.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    #[test]
    fn validates_servers() {
        assert_eq!(config(" a:9092 , b:9093", &[]).validate().unwrap().bootstrap_servers, "a:9092,b:9093");
        assert_eq!(KafkaConfig::default().validate().unwrap_err().0, "log.kafka.bootstrap_servers");
        for bad in ["a", "a:", ":9092", "a:0", "a:99999", "a:9092,"] {
            assert!(config(bad, &[]).validate().is_err(), "{bad}");
        }
        let zero = KafkaConfig { replication_factor: Some(0), ..config("a:1", &[]) };
        assert_eq!(zero.validate().unwrap_err().0, "log.kafka.replication_factor");
    }

    #[test]
    fn credentials_only_come_from_the_environment() {
        let e = config("a:1", &[("sasl.password", "hunter2")]).validate().unwrap_err();
        assert!(e.1.contains("${env:VARIABLE}") && !e.1.contains("hunter2"), "{}", e.1);
        assert!(config("a:1", &[("sasl.oauthbearer.client.secret", "x")]).validate().is_err());
        assert!(config("a:1", &[("sasl.password", "${env:}")]).validate().is_err());
        assert!(config("a:1", &[("client.id", "${env:bad-name}")]).validate().is_err());
        let ok = config("a:1", &[("sasl.password", "${env:PINPIPE_TEST_KAFKA_PW}"), ("sasl.mechanism", "PLAIN")]);
        let resolved = ok.validate().unwrap();
        // The variable is unset (no other test uses its name).
        assert_eq!(
            resolved.resolved_properties().unwrap_err(),
            ("sasl.password".to_owned(), "PINPIPE_TEST_KAFKA_PW".to_owned())
        );
        assert!(config("a:1", &[("bad key", "x")]).validate().is_err());
    }
}
