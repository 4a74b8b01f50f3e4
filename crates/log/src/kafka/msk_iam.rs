//! AWS MSK IAM authentication (`sasl.mechanism = "AWS_MSK_IAM"`), the classic stack's way into
//! its MSK cluster, through librdkafka's SASL/OAUTHBEARER.
//!
//! The token is what AWS's MSK IAM signer libraries produce: the URL
//! `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect`, presigned with SigV4
//! (service `kafka-cluster`, valid 900 s, only the `host` header signed, the empty payload's
//! hash, the session token inside the signature), with a `User-Agent` parameter added, base64url-encoded without padding.
//! Signing is the AWS SDK's own signer (`aws-sigv4`); credentials come from the AWS default chain
//! (environment, profile, web identity, ECS and EC2 roles), never from a file of pinpipe's.
//! librdkafka asks for a new token when 80% of the last one's life has passed.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine as _;

/// The SigV4 service name of MSK's IAM access control.
const SIGNING_NAME: &str = "kafka-cluster";

/// How long a token is valid (the signer libraries' value).
pub(crate) const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// What pinpipe calls itself in the token's `User-Agent` parameter.
pub(crate) const USER_AGENT: &str = concat!("pinpipe/", env!("CARGO_PKG_VERSION"));

/// How long fetching credentials may take (an instance or container role answers in
/// milliseconds; an STS role assumption in well under this).
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(20);

/// A signed token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// The base64url text sent as the OAUTHBEARER token.
    pub value: String,
    /// When it expires, in milliseconds since the Unix epoch.
    pub expires_ms: i64,
}

/// Signs a token for the cluster in `region` with `credentials`, as of `at`.
pub(crate) fn sign_token(
    credentials: &Credentials,
    region: &str,
    at: SystemTime,
    user_agent: &str,
) -> Result<Token, String> {
    let url = format!("https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| format!("cannot sign an MSK IAM token: {e}"))?
        .into();
    let request = SignableRequest::new("GET", url.as_str(), std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| format!("cannot sign an MSK IAM token: {e}"))?;
    let (instructions, _signature) =
        sign(request, &params).map_err(|e| format!("cannot sign an MSK IAM token: {e}"))?.into_parts();
    let (_headers, query) = instructions.into_parts();
    let mut signed = url;
    for (name, value) in query.iter().map(|(n, v)| (*n, v.as_ref())).chain([("User-Agent", user_agent)]) {
        signed.push('&');
        signed.extend(url::form_urlencoded::byte_serialize(name.as_bytes()));
        signed.push('=');
        signed.extend(url::form_urlencoded::byte_serialize(value.as_bytes()));
    }
    let signed_at = at.duration_since(UNIX_EPOCH).map_err(|_| "the clock is before 1970".to_owned())?.as_secs();
    let expires_ms = i64::try_from((signed_at + TOKEN_LIFETIME.as_secs()) * 1000).unwrap_or(i64::MAX);
    Ok(Token { value: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed), expires_ms })
}

/// The AWS region of an MSK broker from its host name (`b-1.c.x.c2.kafka.us-east-1.amazonaws.com`,
/// `boot-x.c1.kafka-serverless.eu-west-1.amazonaws.com`), if it is one.
pub(crate) fn region_of_broker(server: &str) -> Option<&str> {
    let host = server.rsplit_once(':').map_or(server, |(h, _)| h);
    let labels: Vec<&str> = host.split('.').collect();
    labels.windows(3).find_map(|w| {
        let service = w[0] == "kafka" || w[0] == "kafka-serverless";
        (service && w[2] == "amazonaws" && !w[1].is_empty()).then_some(w[1])
    })
}

/// Signs tokens on librdkafka's request, with credentials from the AWS default chain.
pub(crate) struct MskIam {
    region: String,
    credentials: SharedCredentialsProvider,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for MskIam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MskIam").field("region", &self.region).finish_non_exhaustive()
    }
}

impl MskIam {
    /// Loads the AWS default credential chain for `region` (or the first broker's region, or the
    /// chain's own region setting); `Err` says what is missing.
    pub(crate) async fn load(region: Option<&str>, servers: &str) -> Result<Arc<MskIam>, String> {
        let from_brokers = servers.split(',').find_map(region_of_broker);
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(r) = region.or(from_brokers) {
            loader = loader.region(aws_config::Region::new(r.to_owned()));
        }
        let shared = loader.load().await;
        let Some(region) = shared.region().map(ToString::to_string) else {
            return Err("AWS_MSK_IAM needs the cluster's AWS region: set log.kafka.aws_region or AWS_REGION".into());
        };
        let Some(credentials) = shared.credentials_provider() else {
            return Err("AWS_MSK_IAM: the AWS SDK has no credentials provider".into());
        };
        Ok(Arc::new(MskIam { region, credentials, runtime: tokio::runtime::Handle::current() }))
    }

    /// A token signed now. Blocking (librdkafka calls it from its own threads); the credentials
    /// are fetched on a thread of their own so that this works from any thread.
    pub(crate) fn token(&self) -> Result<Token, String> {
        let provider = self.credentials.clone();
        let runtime = self.runtime.clone();
        let fetched = std::thread::scope(|s| {
            s.spawn(move || {
                runtime.block_on(async move {
                    tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials()).await
                })
            })
            .join()
        });
        let credentials = match fetched {
            Ok(Ok(Ok(c))) => c,
            Ok(Ok(Err(e))) => {
                return Err(format!("AWS_MSK_IAM: no AWS credentials ({})", pinpipe_model::error_chain(&e)));
            }
            Ok(Err(_)) => return Err(format!("AWS_MSK_IAM: no AWS credentials within {CREDENTIALS_TIMEOUT:?}")),
            Err(_) => return Err("AWS_MSK_IAM: fetching credentials failed".into()),
        };
        sign_token(&credentials, &self.region, SystemTime::now(), USER_AGENT)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn decode(token: &str) -> url::Url {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).unwrap();
        url::Url::parse(std::str::from_utf8(&bytes).unwrap()).unwrap()
    }

    fn query(url: &url::Url) -> std::collections::BTreeMap<String, String> {
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    const AT: u64 = 1_764_979_200; // 2025-12-06T00:00:00Z

    fn credentials(session: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session.map(str::to_owned),
            None,
            "test",
        )
    }

    #[test]
    fn the_token_is_a_presigned_connect_url() {
        let at = UNIX_EPOCH + Duration::from_secs(AT) + Duration::from_millis(700);
        let token = sign_token(&credentials(Some("FwoG/session+token=")), "us-east-1", at, USER_AGENT).unwrap();
        assert!(!token.value.contains('=') && !token.value.contains('+') && !token.value.contains('/'));
        assert_eq!(token.expires_ms, ((AT + 900) * 1000) as i64);
        let url = decode(&token.value);
        assert_eq!((url.scheme(), url.host_str(), url.path()), ("https", Some("kafka.us-east-1.amazonaws.com"), "/"));
        let q = query(&url);
        assert_eq!(q["Action"], "kafka-cluster:Connect");
        assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(q["X-Amz-Credential"], "AKIDEXAMPLE/20251206/us-east-1/kafka-cluster/aws4_request");
        assert_eq!(q["X-Amz-Date"], "20251206T000000Z");
        assert_eq!(q["X-Amz-Expires"], "900");
        assert_eq!(q["X-Amz-SignedHeaders"], "host");
        assert_eq!(q["X-Amz-Security-Token"], "FwoG/session+token=");
        assert_eq!(q["User-Agent"], USER_AGENT);
        let signature = &q["X-Amz-Signature"];
        assert!(signature.len() == 64 && signature.chars().all(|c| c.is_ascii_hexdigit()));
        // Another second, another key or another region: another signature.
        for other in [
            sign_token(&credentials(Some("FwoG/session+token=")), "us-east-1", at + Duration::from_secs(1), USER_AGENT),
            sign_token(&credentials(None), "us-east-1", at, USER_AGENT),
            sign_token(&credentials(Some("FwoG/session+token=")), "eu-west-1", at, USER_AGENT),
        ] {
            assert_ne!(&query(&decode(&other.unwrap().value))["X-Amz-Signature"], signature);
        }
        assert!(
            !query(&decode(&sign_token(&credentials(None), "us-east-1", at, USER_AGENT).unwrap().value))
                .contains_key("X-Amz-Security-Token")
        );
    }

    /// The known answer comes from AWS's own signer library (`aws-msk-iam-sasl-signer-python`,
    /// on botocore), run with the same credentials and a clock fixed at the same second.
    /// Skipped where that library is not installed (`.ci/run` installs it).
    #[test]
    fn the_token_equals_the_one_aws_signer_library_makes() {
        let script = r#"
import base64, datetime, sys
import botocore.auth
from botocore.credentials import Credentials
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider as p
at = datetime.datetime.fromtimestamp(int(sys.argv[1]), tz=datetime.timezone.utc).replace(tzinfo=None)
botocore.auth.get_current_datetime = lambda *a, **k: at
creds = Credentials(sys.argv[2], sys.argv[3], sys.argv[4] or None)
token, expiry = getattr(p, "__construct_auth_token")(sys.argv[5], creds)
print(token)
print(expiry)
print(p.__get_user_agent__())
"#;
        let run = |session: &str| {
            std::process::Command::new("python3")
                .args(["-c", script, &AT.to_string(), "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"])
                .args([session, "eu-central-1"])
                .output()
        };
        let probe = run("");
        let Some(out) = probe.ok().filter(|o| o.status.success()) else {
            assert!(
                std::env::var("TEST_PINPIPE_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "aws-msk-iam-sasl-signer-python is not installed (pip install aws-msk-iam-sasl-signer-python)"
            );
            eprintln!("skipped: aws-msk-iam-sasl-signer-python is not installed");
            return;
        };
        for (session, out) in [("", out), ("FwoG/session+token=", run("FwoG/session+token=").unwrap())] {
            let text = String::from_utf8(out.stdout).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let (theirs, expiry, agent) = (lines[0], lines[1], lines[2]);
            let creds = credentials((!session.is_empty()).then_some(session));
            let ours = sign_token(&creds, "eu-central-1", UNIX_EPOCH + Duration::from_secs(AT), agent).unwrap();
            let (a, b) = (decode(&ours.value), decode(theirs));
            assert_eq!((a.host_str(), a.path()), (b.host_str(), b.path()));
            assert_eq!(query(&a), query(&b), "session {session:?}");
            assert_eq!(ours.expires_ms.to_string(), expiry);
        }
    }

    #[test]
    fn the_region_is_read_from_msk_broker_names() {
        assert_eq!(region_of_broker("b-1.pins.abc123.c2.kafka.us-east-1.amazonaws.com:9098"), Some("us-east-1"));
        assert_eq!(region_of_broker("boot-x.c1.kafka-serverless.eu-west-1.amazonaws.com:9098"), Some("eu-west-1"));
        assert_eq!(region_of_broker("b-1.pins.x.c3.kafka.cn-north-1.amazonaws.com.cn:9098"), Some("cn-north-1"));
        assert_eq!(region_of_broker("127.0.0.1:9092"), None);
        assert_eq!(region_of_broker("kafka.internal:9092"), None);
    }
}
