//! The `[log.kafka]` configuration section: where the Kafka backend connects, and any librdkafka
//! property (TLS and SASL for MSK and managed Kafka, client ids, tuning).
//!
//! Security is librdkafka's own properties, checked here so that a mistake is named before
//! connecting: `security.protocol` (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), `sasl.mechanism`
//! (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, and AWS_MSK_IAM — MSK's IAM access control, which
//! pinpipe signs itself), `ssl.ca.location` / `ssl.certificate.location` / `ssl.key.location`
//! (PEM files). Host names are verified unless `ssl.endpoint.identification.algorithm = "none"`.

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
    /// The AWS region of an MSK cluster reached with `sasl.mechanism = "AWS_MSK_IAM"`; unset: the
    /// region in the brokers' host names, else the AWS default chain's (`AWS_REGION`, profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_region: Option<String>,
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
    /// How clients authenticate and encrypt.
    pub security: Security,
}

/// What the security properties amount to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Security {
    /// Connections are TLS (`SSL` or `SASL_SSL`).
    pub tls: bool,
    /// The SASL mechanism, upper case (`None`: no SASL).
    pub mechanism: Option<String>,
    /// AWS_MSK_IAM: tokens signed by pinpipe, for this region if given.
    pub msk_iam: bool,
    /// See [`KafkaConfig::aws_region`].
    pub aws_region: Option<String>,
}

/// The `security.protocol` values librdkafka knows.
const PROTOCOLS: [&str; 4] = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// The SASL mechanisms this build provides.
const MECHANISMS: [&str; 4] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM"];

/// The mechanism pinpipe handles itself (librdkafka sees OAUTHBEARER).
pub(crate) const MSK_IAM: &str = "AWS_MSK_IAM";

/// Properties naming files pinpipe checks before connecting.
pub(crate) const FILE_PROPERTIES: [&str; 3] = ["ssl.ca.location", "ssl.certificate.location", "ssl.key.location"];

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
        let security = self.security()?;
        Ok(ResolvedKafka {
            bootstrap_servers: servers.split(',').map(str::trim).collect::<Vec<_>>().join(","),
            replication_factor: self.replication_factor,
            properties: self.properties.clone(),
            security,
        })
    }

    /// Checks the security properties against each other.
    fn security(&self) -> Result<Security, (&'static str, String)> {
        let bad = |m: String| Err(("log.kafka.properties", m));
        let get = |k: &str| self.properties.get(k).map(|v| v.trim().to_ascii_uppercase());
        let protocol = get("security.protocol").unwrap_or_else(|| "PLAINTEXT".into());
        if !PROTOCOLS.contains(&protocol.as_str()) {
            return bad(format!("security.protocol {protocol:?} is not one of {}", PROTOCOLS.join(", ")));
        }
        if self.properties.contains_key("sasl.mechanism") && self.properties.contains_key("sasl.mechanisms") {
            return bad("set sasl.mechanism once (sasl.mechanisms is its other name)".into());
        }
        let mechanism = get("sasl.mechanism").or_else(|| get("sasl.mechanisms"));
        let sasl = protocol.starts_with("SASL_");
        let tls = protocol == "SSL" || protocol == "SASL_SSL";
        match (&mechanism, sasl) {
            (Some(m), _) if m == "OAUTHBEARER" => {
                return bad(format!(
                    "sasl.mechanism OAUTHBEARER: pinpipe provides tokens for Amazon MSK only; use \"{MSK_IAM}\""
                ));
            }
            (Some(m), _) if m == "GSSAPI" => return bad("sasl.mechanism GSSAPI (Kerberos) is not built in".into()),
            (Some(m), _) if !MECHANISMS.contains(&m.as_str()) => {
                return bad(format!("sasl.mechanism {m:?} is not one of {}", MECHANISMS.join(", ")));
            }
            (Some(m), false) => {
                return bad(format!("sasl.mechanism {m} needs security.protocol SASL_SSL (or SASL_PLAINTEXT)"));
            }
            (None, true) => {
                return bad(format!(
                    "security.protocol {protocol} needs sasl.mechanism (one of {})",
                    MECHANISMS.join(", ")
                ));
            }
            _ => {}
        }
        let msk_iam = mechanism.as_deref() == Some(MSK_IAM);
        let has = |k: &str| self.properties.contains_key(k);
        if msk_iam {
            if !tls {
                return bad(format!(
                    "sasl.mechanism {MSK_IAM} needs security.protocol SASL_SSL (MSK's IAM port, 9098)"
                ));
            }
            if has("sasl.username") || has("sasl.password") {
                return bad(format!(
                    "sasl.mechanism {MSK_IAM} signs with AWS credentials: remove sasl.username and sasl.password"
                ));
            }
        } else if mechanism.is_some() && !(has("sasl.username") && has("sasl.password")) {
            return bad(format!(
                "sasl.mechanism {} needs sasl.username and sasl.password (\"${{env:VARIABLE}}\")",
                mechanism.as_deref().unwrap_or_default()
            ));
        }
        if !tls && let Some(k) = self.properties.keys().find(|k| k.starts_with("ssl.")) {
            return bad(format!("{k} has no effect without TLS: set security.protocol to SSL or SASL_SSL"));
        }
        if let Some(region) = &self.aws_region
            && (region.is_empty() || !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(("log.kafka.aws_region", format!("{region:?} is not an AWS region (e.g. \"us-east-1\")")));
        }
        Ok(Security { tls, mechanism, msk_iam, aws_region: self.aws_region.clone() })
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

    /// What librdkafka is given: the resolved properties, AWS_MSK_IAM as the OAUTHBEARER it
    /// rides on, and, for TLS without a CA of the user's, the system's CA bundle (`probe`: the
    /// bundled OpenSSL does not know where the system keeps it).
    pub(crate) fn librdkafka_properties(&self) -> Result<Vec<(String, String)>, (String, String)> {
        let mut properties = self.resolved_properties()?;
        for (k, v) in &mut properties {
            if (k == "sasl.mechanism" || k == "sasl.mechanisms") && v.trim().eq_ignore_ascii_case(MSK_IAM) {
                *v = "OAUTHBEARER".into();
            }
        }
        let own_ca = properties.iter().any(|(k, _)| k == "ssl.ca.location" || k == "ssl.ca.pem");
        if self.security.tls && !own_ca {
            properties.push(("ssl.ca.location".into(), "probe".into()));
        }
        Ok(properties)
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
            aws_region: None,
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
        let ok = config(
            "a:1",
            &[
                ("sasl.password", "${env:PINPIPE_TEST_KAFKA_PW}"),
                ("sasl.username", "u"),
                ("sasl.mechanism", "PLAIN"),
                ("security.protocol", "SASL_PLAINTEXT"),
            ],
        );
        let resolved = ok.validate().unwrap();
        // The variable is unset (no other test uses its name).
        assert_eq!(
            resolved.resolved_properties().unwrap_err(),
            ("sasl.password".to_owned(), "PINPIPE_TEST_KAFKA_PW".to_owned())
        );
        assert!(config("a:1", &[("bad key", "x")]).validate().is_err());
    }

    #[test]
    fn security_settings_are_checked_against_each_other() {
        let err = |props: &[(&str, &str)]| config("a:1", props).validate().unwrap_err().1;
        let ok = |props: &[(&str, &str)]| config("a:1", props).validate().unwrap().security;
        let user = [("sasl.username", "u"), ("sasl.password", "${env:PW}")];
        let with = |extra: &[(&'static str, &'static str)]| [&user[..], extra].concat();

        assert_eq!(ok(&[]), Security::default());
        assert!(ok(&[("security.protocol", "ssl")]).tls);
        let scram = ok(&with(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "scram-sha-512")]));
        assert!(scram.tls && scram.mechanism.as_deref() == Some("SCRAM-SHA-512") && !scram.msk_iam);
        let iam = ok(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "AWS_MSK_IAM")]);
        assert!(iam.tls && iam.msk_iam);

        assert!(err(&[("security.protocol", "TLS")]).contains("not one of PLAINTEXT, SSL"));
        assert!(
            err(&with(&[("security.protocol", "SSL"), ("sasl.mechanism", "PLAIN")]))
                .contains("needs security.protocol SASL_SSL")
        );
        assert!(err(&[("security.protocol", "SASL_SSL")]).contains("needs sasl.mechanism"));
        assert!(
            err(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-256")]).contains("sasl.username")
        );
        assert!(
            err(&with(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "OAUTHBEARER")])).contains("AWS_MSK_IAM")
        );
        assert!(err(&with(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "GSSAPI")])).contains("Kerberos"));
        assert!(
            err(&[("security.protocol", "SASL_PLAINTEXT"), ("sasl.mechanism", "AWS_MSK_IAM")]).contains("SASL_SSL")
        );
        assert!(
            err(&with(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "AWS_MSK_IAM")]))
                .contains("remove sasl.username")
        );
        assert!(err(&[("ssl.ca.location", "/ca.pem")]).contains("without TLS"));
        assert!(
            err(&with(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "PLAIN"), ("sasl.mechanisms", "PLAIN")]))
                .contains("once")
        );
        let bad_region = KafkaConfig { aws_region: Some("us east".into()), ..config("a:1", &[]) };
        assert_eq!(bad_region.validate().unwrap_err().0, "log.kafka.aws_region");
    }

    #[test]
    fn librdkafka_gets_oauthbearer_for_msk_iam_and_the_system_cas_for_tls() {
        let props = |p: &[(&str, &str)]| {
            let r = config("a:1", p).validate().unwrap();
            r.librdkafka_properties().unwrap().into_iter().collect::<BTreeMap<_, _>>()
        };
        let iam = props(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "AWS_MSK_IAM")]);
        assert_eq!(iam["sasl.mechanism"], "OAUTHBEARER");
        assert_eq!(iam["ssl.ca.location"], "probe");
        let own = props(&[("security.protocol", "SSL"), ("ssl.ca.location", "/etc/pinpipe/ca.pem")]);
        assert_eq!(own["ssl.ca.location"], "/etc/pinpipe/ca.pem");
        assert!(!props(&[]).contains_key("ssl.ca.location"));
    }
}
