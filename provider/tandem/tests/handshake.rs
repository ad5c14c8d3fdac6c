//! The provider binary launched the way Terraform launches it: the
//! go-plugin handshake, AutoMTLS with the pinned client certificate, the
//! schema over gRPC, and prompt exit on Shutdown. Runs the real binary; no
//! Terraform needed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tfplugin6::plugin::{MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};
use tfplugin6::proto::plugin::grpc_controller_client::GrpcControllerClient;
use tfplugin6::proto::tfplugin6::get_provider_schema;
use tfplugin6::proto::tfplugin6::provider_client::ProviderClient;

const BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-tandem");

/// A client certificate shaped like go-plugin's: self-signed P-521, a CA.
fn client_identity() -> (String, Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().to_vec(), key.serialize_der())
}

struct Plugin {
    child: Child,
    socket: String,
    server_cert: Vec<u8>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A killed provider cannot remove its private socket directory.
        if self.socket.starts_with('/') {
            if let Some(dir) = std::path::Path::new(&self.socket).parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

fn launch(client_pem: &str) -> Plugin {
    launch_with(client_pem, &[])
}

fn launch_with(client_pem: &str, env: &[(&str, &str)]) -> Plugin {
    let mut child = Command::new(BIN)
        .envs(env.iter().copied())
        .env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_CLIENT_CERT", client_pem)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start provider");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let parts: Vec<&str> = line.trim().split('|').collect();
    assert_eq!(parts.len(), 6, "handshake line: {line:?}");
    assert_eq!(&parts[..2], &["1", "6"], "{line:?}");
    assert!(parts[2] == "unix" || parts[2] == "tcp", "{line:?}");
    assert_eq!(parts[4], "grpc");
    // go-plugin decodes with RawStdEncoding: no padding allowed.
    assert!(!parts[5].ends_with('='));
    let server_cert = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(parts[5])
        .unwrap();
    Plugin {
        child,
        socket: parts[3].to_string(),
        server_cert,
    }
}

async fn connect(
    p: &Plugin,
    identity: Option<(&[u8], &[u8])>,
) -> Result<tonic::transport::Channel, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer {
            der: p.server_cert.clone(),
            provider,
        }));
    let mut cfg = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(cert.to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let socket = p.socket.clone();
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(tower::service_fn(move |_| {
            let connector = connector.clone();
            let socket = socket.clone();
            async move {
                let name = ServerName::try_from("localhost").unwrap();
                let io: Box<dyn Io> = if socket.starts_with('/') {
                    let s = tokio::net::UnixStream::connect(socket).await?;
                    Box::new(connector.connect(name, s).await?)
                } else {
                    let s = tokio::net::TcpStream::connect(socket).await?;
                    Box::new(connector.connect(name, s).await?)
                };
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(io))
            }
        }))
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(channel)
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// Trusts exactly the certificate from the handshake line, as go-plugin's
/// client does (it is a self-signed CA, which webpki refuses as a leaf).
#[derive(Debug)]
struct PinnedServer {
    der: Vec<u8>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.der.as_slice() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "unexpected server certificate".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

async fn schema(
    ch: tonic::transport::Channel,
) -> Result<get_provider_schema::Response, tonic::Status> {
    ProviderClient::new(ch)
        .get_provider_schema(get_provider_schema::Request {})
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn pinned_client_certificate_is_accepted_and_schema_served() {
    let (pem, der, key) = client_identity();
    let p = launch(&pem);
    let ch = connect(&p, Some((&der, &key)))
        .await
        .expect("connect with the pinned certificate");
    let s = schema(ch.clone()).await.expect("schema");
    let provider = s.provider.unwrap().block.unwrap();
    assert!(provider.attributes.iter().any(|a| a.name == "region"));
    assert!(provider
        .attributes
        .iter()
        .all(|a| !a.description.is_empty()));
    assert!(s.server_capabilities.unwrap().get_provider_schema_optional);
}

#[tokio::test]
async fn other_or_missing_client_certificates_are_refused() {
    let (pem, _, _) = client_identity();
    let (_, other_der, other_key) = client_identity();
    let p = launch(&pem);
    let refused = match connect(&p, Some((&other_der, &other_key))).await {
        Err(_) => true,
        Ok(ch) => schema(ch).await.is_err(),
    };
    assert!(refused, "a different client certificate must be refused");
    let refused = match connect(&p, None).await {
        Err(_) => true,
        Ok(ch) => schema(ch).await.is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");
}

#[tokio::test]
async fn shutdown_exits_promptly_with_status_zero() {
    let (pem, der, key) = client_identity();
    let mut p = launch(&pem);
    let ch = connect(&p, Some((&der, &key))).await.unwrap();
    GrpcControllerClient::new(ch)
        .shutdown(tfplugin6::proto::plugin::Empty {})
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        // Terraform gives a plugin 2 s before SIGKILL; we want far less.
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "provider did not exit after Shutdown"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn run_by_hand_prints_a_human_message_and_fails() {
    let out = Command::new(BIN)
        .env_remove(MAGIC_COOKIE_KEY)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("This binary is a plugin"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn unsupported_protocol_versions_are_refused_clearly() {
    let out = Command::new(BIN)
        .env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "4,5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("protocol 6"));
}

#[tokio::test]
async fn tcp_fallback_serves_on_loopback() {
    let (pem, der, key) = client_identity();
    let p = launch_with(
        &pem,
        &[
            ("TANDEM_PLUGIN_FORCE_TCP", "1"),
            ("PLUGIN_MIN_PORT", "20000"),
            ("PLUGIN_MAX_PORT", "25000"),
        ],
    );
    assert!(p.socket.starts_with("127.0.0.1:"), "{}", p.socket);
    let port: u16 = p.socket.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        (20000..=25000).contains(&port),
        "port {port} outside PLUGIN_MIN_PORT..PLUGIN_MAX_PORT"
    );
    let ch = connect(&p, Some((&der, &key)))
        .await
        .expect("connect over TCP");
    schema(ch).await.expect("schema over TCP");
}

#[test]
fn debug_mode_prints_a_reattach_value() {
    let mut child = Command::new(BIN)
        .arg("--debug")
        .env_remove(MAGIC_COOKIE_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut rd = BufReader::new(child.stdout.take().unwrap());
    let mut reattach = None;
    for _ in 0..10 {
        let mut line = String::new();
        if rd.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(v) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS='") {
            reattach = Some(v.trim_end_matches('\'').to_string());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value =
        serde_json::from_str(&reattach.expect("a TF_REATTACH_PROVIDERS line")).unwrap();
    let p = &v["registry.terraform.io/tandem/tandem"];
    assert_eq!(p["Protocol"], "grpc");
    assert_eq!(p["ProtocolVersion"], 6);
    assert_eq!(p["Addr"]["Network"], "unix");
    assert!(p["Pid"].as_u64().is_some());
}
