//! The go-plugin side of being launched by Terraform: checking that
//! Terraform launched us, picking the protocol, listening on a private unix
//! socket, AutoMTLS with a pinned client certificate, the handshake line,
//! the controller/stdio/broker/health services, and `--debug` reattach mode.

use std::io::Write as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, Notify};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::proto::{health, plugin};
use crate::provider::Provider;
use crate::server::ProviderService;

/// The cookie Terraform sets so a provider can tell it was launched by
/// Terraform rather than by hand.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// Its value, fixed by Terraform for all providers.
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// go-plugin's own handshake protocol version.
const CORE_PROTOCOL_VERSION: u32 = 1;
/// The only plugin protocol we speak.
const PROTOCOL_VERSION: u32 = 6;
/// How long Shutdown waits for the reply to flush before the process exits;
/// Terraform kills a plugin that lingers 2 s after asking it to stop.
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(50);

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Run by hand instead of by Terraform.
    #[error(
        "This binary is a plugin. These are not meant to be executed directly.\n\
         Please execute the program that consumes these plugins, which will\n\
         load any plugins automatically.\n\n\
         terraform-provider-tandem is a Terraform provider: declare it in a\n\
         `required_providers` block (source \"tandem/tandem\") and run `terraform init`."
    )]
    NotLaunchedByTerraform,
    /// Terraform does not speak protocol 6.
    #[error("Terraform offered plugin protocol versions {0:?}, but this provider needs protocol 6 (Terraform 1.0 or later).")]
    NoCommonProtocol(String),
    /// PLUGIN_CLIENT_CERT was not a usable PEM certificate.
    #[error("PLUGIN_CLIENT_CERT does not hold a PEM certificate: {0}")]
    BadClientCert(String),
    /// Certificate or TLS set-up failed.
    #[error("setting up TLS: {0}")]
    Tls(String),
    /// Listening failed.
    #[error("listening for Terraform: {0}")]
    Listen(#[source] std::io::Error),
    /// The gRPC server failed.
    #[error("serving gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Options for [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Full provider address, e.g. `registry.terraform.io/tandem/tandem`,
    /// printed in `--debug` mode.
    pub provider_address: String,
    /// Serve in debug mode: no launcher, print a TF_REATTACH_PROVIDERS value.
    pub debug: bool,
}

/// Serves the provider until Terraform asks it to shut down.
pub async fn serve<P: Provider>(provider: P, opts: ServeOptions) -> Result<(), ServeError> {
    if !opts.debug && std::env::var(MAGIC_COOKIE_KEY).ok().as_deref() != Some(MAGIC_COOKIE_VALUE) {
        return Err(ServeError::NotLaunchedByTerraform);
    }
    if !opts.debug {
        check_protocol(std::env::var("PLUGIN_PROTOCOL_VERSIONS").ok().as_deref())?;
    }
    // go-plugin plugins leave Ctrl-C to Terraform, which relays it as
    // StopProvider; dying on SIGINT would lose in-flight state.
    tokio::spawn(async {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                break;
            }
        }
    });

    let dir = tempfile::Builder::new()
        .prefix("tandem-plugin")
        .tempdir()
        .map_err(ServeError::Listen)?;
    let listener = Listener::bind(dir.path().join("plugin.sock")).await?;

    let tls = if opts.debug {
        None
    } else {
        match std::env::var("PLUGIN_CLIENT_CERT") {
            Ok(pem) if !pem.trim().is_empty() => Some(tls_setup(&pem)?),
            _ => None,
        }
    };

    let shutdown = Arc::new(Notify::new());
    let incoming = accept_loop(
        listener.clone_inner(),
        tls.as_ref().map(|t| t.acceptor.clone()),
    );

    let address = listener.describe();
    if opts.debug {
        let reattach = serde_json::json!({
            opts.provider_address.clone(): {
                "Protocol": "grpc",
                "ProtocolVersion": PROTOCOL_VERSION,
                "Pid": std::process::id(),
                "Test": true,
                "Addr": {"Network": address.0, "String": address.1},
            }
        });
        println!("Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n");
        println!("\tTF_REATTACH_PROVIDERS='{reattach}'\n");
    } else {
        let cert = tls
            .as_ref()
            .map(|t| base64::engine::general_purpose::STANDARD_NO_PAD.encode(&t.server_cert_der))
            .unwrap_or_default();
        println!(
            "{CORE_PROTOCOL_VERSION}|{PROTOCOL_VERSION}|{}|{}|grpc|{cert}",
            address.0, address.1
        );
    }
    let _ = std::io::stdout().flush();

    let svc = ProviderService::new(provider);
    let stop = svc.stop_token();
    let controller = Controller {
        shutdown: shutdown.clone(),
    };
    let notified = shutdown.clone();
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(
            crate::proto::tfplugin6::provider_server::ProviderServer::new(svc)
                .max_decoding_message_size(256 << 20),
        )
        .add_service(plugin::grpc_controller_server::GrpcControllerServer::new(
            controller,
        ))
        .add_service(plugin::grpc_stdio_server::GrpcStdioServer::new(Stdio))
        .add_service(plugin::grpc_broker_server::GrpcBrokerServer::new(Broker))
        .add_service(health::health_server::HealthServer::new(Health))
        .serve_with_incoming_shutdown(incoming, async move { notified.notified().await });

    tokio::select! {
        r = server => r?,
        () = async {
            shutdown.notified().await;
            tokio::time::sleep(SHUTDOWN_FLUSH).await;
        } => {}
    }
    stop.cancel();
    drop(dir);
    Ok(())
}

fn check_protocol(offered: Option<&str>) -> Result<(), ServeError> {
    // An absent list means an old launcher that assumes the plugin's own
    // version; go-plugin treats it the same way.
    let Some(list) = offered else { return Ok(()) };
    if list
        .split(',')
        .any(|v| v.trim() == PROTOCOL_VERSION.to_string())
    {
        Ok(())
    } else {
        Err(ServeError::NoCommonProtocol(list.to_string()))
    }
}

// ----------------------------------------------------------------- listen

#[derive(Clone)]
enum Listener {
    /// Unix only: Windows has no Unix-domain listener in tokio, and
    /// go-plugin itself uses TCP there.
    #[cfg(unix)]
    Unix(Arc<tokio::net::UnixListener>, PathBuf),
    Tcp(Arc<tokio::net::TcpListener>),
}

impl Listener {
    async fn bind(sock: PathBuf) -> Result<Listener, ServeError> {
        if std::env::var_os("TANDEM_PLUGIN_FORCE_TCP").is_none() {
            if let Some(l) = Listener::bind_unix(sock) {
                return Ok(l);
            }
        }
        let min: u16 = std::env::var("PLUGIN_MIN_PORT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10000);
        let max: u16 = std::env::var("PLUGIN_MAX_PORT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(25000);
        let mut last = None;
        for port in min..=max {
            match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => return Ok(Listener::Tcp(Arc::new(l))),
                Err(e) => last = Some(e),
            }
        }
        Err(ServeError::Listen(last.unwrap_or_else(|| {
            std::io::Error::other("no port in range")
        })))
    }

    #[cfg(unix)]
    fn bind_unix(sock: PathBuf) -> Option<Listener> {
        match tokio::net::UnixListener::bind(&sock) {
            Ok(l) => Some(Listener::Unix(Arc::new(l), sock)),
            Err(e) => {
                tracing::warn!(error = %e, "unix socket unavailable; falling back to TCP");
                None
            }
        }
    }

    /// Windows: TCP, as go-plugin uses there.
    #[cfg(not(unix))]
    fn bind_unix(_sock: PathBuf) -> Option<Listener> {
        None
    }

    fn clone_inner(&self) -> Listener {
        self.clone()
    }

    fn describe(&self) -> (&'static str, String) {
        match self {
            #[cfg(unix)]
            Listener::Unix(_, p) => ("unix", p.display().to_string()),
            Listener::Tcp(l) => (
                "tcp",
                l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            ),
        }
    }
}

/// Any accepted connection, plain or TLS, unix or TCP.
trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A connection handed to tonic.
pub struct Conn(Box<dyn Io>);

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// Accepts connections and completes TLS handshakes off the accept path,
/// so one slow or hostile client cannot stall Terraform's own connection.
fn accept_loop(
    listener: Listener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> ReceiverStream<std::io::Result<Conn>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let raw: Box<dyn Io> = match &listener {
                #[cfg(unix)]
                Listener::Unix(l, _) => match l.accept().await {
                    Ok((s, _)) => Box::new(s),
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                Listener::Tcp(l) => match l.accept().await {
                    Ok((s, _)) => {
                        // Without this every small gRPC frame waits ~40 ms
                        // on Nagle plus delayed ACK.
                        let _ = s.set_nodelay(true);
                        Box::new(s)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
            };
            let tx = tx.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let conn = match tls {
                    None => Conn(raw),
                    Some(acc) => match acc.accept(raw).await {
                        Ok(s) => Conn(Box::new(s)),
                        Err(e) => {
                            tracing::warn!(error = %e, "refused a connection that failed mutual TLS");
                            return;
                        }
                    },
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
    });
    ReceiverStream::new(rx)
}

// -------------------------------------------------------------------- TLS

struct TlsSetup {
    acceptor: tokio_rustls::TlsAcceptor,
    server_cert_der: Vec<u8>,
}

/// ring for everything that needs randomness (key exchange, signing, the
/// server key), aws-lc only to verify signatures: the client certificate is
/// P-521, which ring cannot verify, while aws-lc's first use of its random
/// generator costs ~35 ms per process, and Terraform starts the provider
/// several times per plan.
fn crypto() -> Arc<rustls::crypto::CryptoProvider> {
    let aws = rustls::crypto::aws_lc_rs::default_provider();
    Arc::new(rustls::crypto::CryptoProvider {
        signature_verification_algorithms: aws.signature_verification_algorithms,
        ..rustls::crypto::ring::default_provider()
    })
}

fn tls_setup(client_pem: &str) -> Result<TlsSetup, ServeError> {
    let client_der = parse_pem_cert(client_pem)?;
    let (cert_der, key_der) = server_cert()?;
    let verifier = Arc::new(PinnedClientCert {
        der: client_der,
        provider: crypto(),
    });
    let mut cfg = rustls::ServerConfig::builder_with_provider(crypto())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![CertificateDer::from(cert_der.clone())], key_der)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsSetup {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
        server_cert_der: cert_der,
    })
}

/// Parses the first certificate of a PEM bundle.
pub fn parse_pem_cert(pem: &str) -> Result<Vec<u8>, ServeError> {
    let mut rd = pem.as_bytes();
    let first = rustls_pemfile::certs(&mut rd).next();
    match first {
        Some(Ok(c)) => Ok(c.to_vec()),
        Some(Err(e)) => Err(ServeError::BadClientCert(e.to_string())),
        None => Err(ServeError::BadClientCert("no CERTIFICATE block".into())),
    }
}

/// A fresh self-signed server certificate for this process, valid for
/// `localhost`, shaped as go-plugin's own (a CA that is also a server),
/// since Terraform trusts exactly the certificate we print.
fn server_cert() -> Result<(Vec<u8>, PrivateKeyDer<'static>), ServeError> {
    let tls = |e: rcgen::Error| ServeError::Tls(e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(tls)?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).map_err(tls)?;
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "HashiCorp");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let now = std::time::SystemTime::now();
    params.not_before = (now - Duration::from_secs(30)).into();
    // go-plugin uses ~30 years; the cert only lives as long as this process.
    params.not_after = (now + Duration::from_secs(262_980 * 3600)).into();
    let cert = params.self_signed(&key).map_err(tls)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().to_vec(), key_der))
}

/// Accepts exactly one client certificate: the one Terraform put in
/// PLUGIN_CLIENT_CERT. Chain building does not apply (it is self-signed and
/// marked as a CA, which webpki rejects as a leaf), so we pin the bytes and
/// still verify the handshake signature with that certificate's key.
#[derive(Debug)]
pub struct PinnedClientCert {
    der: Vec<u8>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl PinnedClientCert {
    /// A verifier pinned to `der`.
    pub fn new(der: Vec<u8>) -> PinnedClientCert {
        PinnedClientCert {
            der,
            provider: crypto(),
        }
    }
}

impl ClientCertVerifier for PinnedClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.der.as_slice() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

// ------------------------------------------------------ go-plugin services

struct Controller {
    shutdown: Arc<Notify>,
}

#[tonic::async_trait]
impl plugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _: Request<plugin::Empty>) -> Result<Response<plugin::Empty>, Status> {
        tracing::debug!("shutdown requested by Terraform");
        // notify_one stores a permit, so the waiter sees it even if it
        // starts waiting after this call returns.
        self.shutdown.notify_one();
        self.shutdown.notify_waiters();
        Ok(Response::new(plugin::Empty {}))
    }
}

struct Stdio;

#[tonic::async_trait]
impl plugin::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = futures::stream::Pending<Result<plugin::StdioData, Status>>;

    async fn stream_stdio(
        &self,
        _: Request<plugin::Empty>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        // Our logs go to the real stderr, which go-plugin already reads.
        Ok(Response::new(futures::stream::pending()))
    }
}

struct Broker;

#[tonic::async_trait]
impl plugin::grpc_broker_server::GrpcBroker for Broker {
    type StartStreamStream = futures::stream::Pending<Result<plugin::ConnInfo, Status>>;

    async fn start_stream(
        &self,
        _: Request<tonic::Streaming<plugin::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        Ok(Response::new(futures::stream::pending()))
    }
}

struct Health;

#[tonic::async_trait]
impl health::health_server::Health for Health {
    async fn check(
        &self,
        _: Request<health::HealthCheckRequest>,
    ) -> Result<Response<health::HealthCheckResponse>, Status> {
        Ok(Response::new(health::HealthCheckResponse {
            status: health::health_check_response::ServingStatus::Serving as i32,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_negotiation() {
        assert!(check_protocol(Some("5,6")).is_ok());
        assert!(check_protocol(Some("6")).is_ok());
        assert!(check_protocol(None).is_ok());
        let err = check_protocol(Some("4,5")).unwrap_err();
        assert!(err.to_string().contains("protocol 6"), "{err}");
    }

    #[test]
    fn server_certificate_is_for_localhost() {
        let (der, _) = server_cert().unwrap();
        // The SAN "localhost" appears as an IA5String in the DER.
        assert!(der.windows(9).any(|w| w == b"localhost"));
    }

    #[test]
    fn pinned_verifier_accepts_only_its_certificate() {
        let (a, _) = server_cert().unwrap();
        let (b, _) = server_cert().unwrap();
        let v = PinnedClientCert::new(a.clone());
        let now = UnixTime::now();
        assert!(v
            .verify_client_cert(&CertificateDer::from(a), &[], now)
            .is_ok());
        assert!(v
            .verify_client_cert(&CertificateDer::from(b), &[], now)
            .is_err());
        assert!(v.client_auth_mandatory());
    }

    #[test]
    fn bad_pem_is_a_clear_error() {
        let err = parse_pem_cert("not a cert").unwrap_err();
        assert!(err.to_string().contains("PLUGIN_CLIENT_CERT"));
    }
}
