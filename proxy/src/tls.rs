//! TLS on the data listener: rustls on ring, with the certificate chain
//! and key the config names, read again at every load so a renewed
//! certificate is served after SIGHUP without a restart (as nginx does on
//! reload). Connections already open keep the certificate they began with.
//!
//! ALPN offers `h2` and `http/1.1`. Over h2 the same deadlines hold (the
//! handshake and first request within `header_timeout`, an idle
//! connection closed after `keepalive_timeout`, the send timeouts on the
//! socket), with a stream cap and reset budgets (see `server::h2_builder`).
//! Plain-text h2 (h2c) stays refused: S3 clients speak HTTP/1.1, and a
//! browser only speaks h2 over TLS.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The data listener's TLS, as loaded from the config's files.
pub struct ListenerTls {
    /// Accepts TLS on a connection.
    pub acceptor: TlsAcceptor,
    /// Digest of the certificate and key files, so a reload can tell a
    /// renewed certificate from the same one.
    pub digest: String,
}

impl ListenerTls {
    /// Reads `cert_file` (PEM chain, leaf first) and `key_file` (PEM key).
    /// Errors name the config field.
    pub fn load(cert_file: &str, key_file: &str) -> Result<ListenerTls, String> {
        let read = |field: &str, f: &str| {
            std::fs::read(f).map_err(|e| format!("listen.{field}: reading {f}: {e}"))
        };
        let (cert_pem, key_pem) = (
            read("tls_cert_file", cert_file)?,
            read("tls_key_file", key_file)?,
        );
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("listen.tls_cert_file: {cert_file}: not PEM: {e}"))?;
        if chain.is_empty() {
            return Err(format!(
                "listen.tls_cert_file: {cert_file} holds no certificate"
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| format!("listen.tls_key_file: {key_file}: no private key: {e}"))?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("listen.tls_cert_file: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!("listen.tls_key_file: {key_file} does not go with {cert_file}: {e}")
        })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut both = cert_pem;
        both.extend_from_slice(&key_pem);
        Ok(ListenerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            digest: tandem_fleet_config::version_of(&both),
        })
    }
}
