//! Why a broker's TLS certificate was refused.
//!
//! librdkafka reports every refused certificate as "certificate verify failed", whatever the
//! cause. When that happens at connect, pinpipe repeats the handshake once with rustls (the
//! TLS library the rest of pinpipe uses), trusting the same CAs, and reports what rustls found:
//! a CA that did not sign the certificate, a certificate for another host name, an expired one.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore};

/// How long the repeated handshake may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why `server` (`host:port`) refuses TLS with the CAs of `ca_file` (`None` or `probe`: the
/// system's), or `None` when the reason cannot be told.
pub(super) fn why_refused(server: &str, ca_file: Option<&str>) -> Option<String> {
    let (host, _) = server.rsplit_once(':')?;
    let mut roots = RootCertStore::empty();
    let trusted = match ca_file.filter(|f| *f != "probe") {
        Some(file) => {
            for cert in CertificateDer::pem_file_iter(file).ok()? {
                roots.add(cert.ok()?).ok()?;
            }
            format!("the CAs of ssl.ca.location ({file})")
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            "the system's CAs".to_owned()
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_owned()).ok()?;
    let mut conn = ClientConnection::new(Arc::new(config), name).ok()?;
    let address = server.to_socket_addrs().ok()?.next()?;
    let mut tcp = TcpStream::connect_timeout(&address, TIMEOUT).ok()?;
    tcp.set_read_timeout(Some(TIMEOUT)).ok()?;
    tcp.set_write_timeout(Some(TIMEOUT)).ok()?;
    let error = loop {
        match conn.complete_io(&mut tcp) {
            Ok(_) if !conn.is_handshaking() => return None,
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    let certificate_error = error.get_ref()?.downcast_ref::<rustls::Error>().and_then(|e| match e {
        rustls::Error::InvalidCertificate(c) => Some(c.clone()),
        _ => None,
    })?;
    Some(match certificate_error {
        CertificateError::UnknownIssuer => {
            format!("the broker's certificate is not signed by a trusted CA (checked against {trusted})")
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("the broker's certificate is not for this host name ({host})")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the broker's certificate has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the broker's certificate is not valid yet (check this machine's clock)".to_owned()
        }
        other => format!("the broker's certificate was refused ({other:?})"),
    })
}
