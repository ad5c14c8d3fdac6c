//! The HTTP/1.1 client for origins: hyper's connection-level client with a
//! pool of keep-alive connections per thread.
//!
//! hyper-util's pooled client locks a shared pool on checkout and on
//! return, and spawns a task per request that waits for the response body
//! to end before it returns the connection. In a bare passthrough
//! (`examples/passthrough_floor.rs`) it cost about 15 µs of CPU per 4 KiB
//! miss, out of 130; in tandem-proxy, replacing it with this saved about
//! 7 µs (measured side by side, see docs/benchmarks.md).
//!
//! Each worker thread runs its own single-threaded runtime, so a pool per
//! thread needs no lock. A connection also stays on the thread whose runtime
//! drives it, so a request never wakes another thread.
//!
//! A connection goes back to its pool as soon as its response headers
//! arrive. It is only handed out again once hyper reports it ready, which
//! happens when the previous body has been read to the end. A connection
//! that closes, or sits idle past `POOL_IDLE_TIMEOUT`, is dropped on the
//! next checkout, or by `sweep_idle`, which every worker runs each second.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

/// Idle pooled origin connections are closed after this long. It is
/// shorter than S3's own idle timeout (about 20 s), so a connection the
/// server is about to close is never reused.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Connections kept per origin and thread, idle or busy. Past this a
/// connection is closed when its response ends rather than pooled.
pub const POOL_MAX_PER_ORIGIN: usize = 256;

/// Why an origin request got no response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection could be made (DNS, TCP or TLS).
    #[error("connecting to {origin}: {cause}")]
    Connect {
        /// `scheme://authority`.
        origin: String,
        /// Why, with its sources.
        cause: String,
    },
    /// The connection failed while sending or before a response arrived.
    #[error("{0}")]
    Http(#[from] hyper::Error),
    /// The request has no scheme or authority to connect to.
    #[error("request URI {0} is not absolute")]
    NotAbsolute(String),
}

impl ClientError {
    /// `connect` or `io`, for the metrics' reason label.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Connect { .. } | ClientError::NotAbsolute(_) => "connect",
            ClientError::Http(_) => "io",
        }
    }
}

type Sender = SendRequest<Empty<Bytes>>;

struct Pooled {
    sender: Sender,
    since: Instant,
}

/// Pools of this thread, keyed by client and origin.
type Pools = HashMap<Key, Vec<Pooled>>;

/// Client, scheme and authority: cheap to clone (shared bytes), so a
/// request allocates nothing to find its pool.
type Key = (u64, Scheme, Authority);

thread_local! {
    static POOLS: RefCell<Pools> = RefCell::new(HashMap::new());
}

static CLIENT_IDS: AtomicU64 = AtomicU64::new(0);

/// The origin client: cheap to clone; every clone shares one set of
/// per-thread pools.
#[derive(Clone)]
pub struct OriginClient {
    id: u64,
    connector: HttpsConnector<HttpConnector>,
}

impl OriginClient {
    /// Builds the client: HTTP/1.1 (S3 speaks nothing else), TLS on ring
    /// with the Mozilla roots, TCP_NODELAY since requests are small.
    pub fn new() -> Result<OriginClient, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        OriginClient::with_roots(roots)
    }

    /// A client that trusts only the CA certificates in `pem`, for an
    /// origin with a private CA; its connections are pooled apart from
    /// every other client's. `Err` says what is wrong with the file.
    pub fn with_ca(pem: &[u8]) -> Result<OriginClient, String> {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("not PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("a certificate rustls refuses as a CA: {e}"))?;
        }
        if roots.is_empty() {
            return Err("holds no PEM certificate".into());
        }
        OriginClient::with_roots(roots).map_err(|e| e.to_string())
    }

    fn with_roots(roots: rustls::RootCertStore) -> Result<OriginClient, rustls::Error> {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(OriginClient {
            id: CLIENT_IDS.fetch_add(1, Ordering::Relaxed),
            connector,
        })
    }

    /// Sends `req` (absolute URI, Host header set) on a pooled connection
    /// or a new one. A pooled connection the origin closed just as the
    /// request went out is retried once on a new connection, as the request
    /// never reached the origin.
    pub async fn request(
        &self,
        mut req: Request<Empty<Bytes>>,
    ) -> Result<Response<Incoming>, ClientError> {
        let (Some(scheme), Some(authority)) =
            (req.uri().scheme().cloned(), req.uri().authority().cloned())
        else {
            return Err(ClientError::NotAbsolute(req.uri().to_string()));
        };
        let key = (self.id, scheme, authority);
        // Origin-form on the wire; the absolute URI is kept for connecting.
        let origin_form = Uri::from(
            req.uri()
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        let target = std::mem::replace(req.uri_mut(), origin_form);
        let mut fresh_only = false;
        loop {
            let (mut sender, reused) = match (!fresh_only).then(|| checkout(&key)).flatten() {
                Some(s) => (s, true),
                None => (self.connect(&target).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    checkin(key, sender);
                    return Ok(resp);
                }
                Err(mut e) => match e.take_message() {
                    Some(again) if reused => {
                        req = again;
                        fresh_only = true;
                    }
                    _ => return Err(ClientError::Http(e.into_error())),
                },
            }
        }
    }

    async fn connect(&self, target: &Uri) -> Result<Sender, ClientError> {
        let failed = |cause: String| ClientError::Connect {
            origin: format!(
                "{}://{}",
                target.scheme_str().unwrap_or(""),
                target.authority().map_or("", |a| a.as_str())
            ),
            cause,
        };
        let io = self
            .connector
            .clone()
            .call(target.clone())
            .await
            .map_err(|e| failed(error_chain(&*e)))?;
        // hyper's adaptive read buffer (8 KiB growing to about 400 KiB) is
        // what a streaming body holds while its client is slower than its
        // origin. Capping it cost CPU on every large miss: at 256 KiB a
        // 1 MiB pass-through took 6 reads instead of 4 and 20 % more CPU,
        // at 64 KiB 16 (measured side by side, docs/benchmarks.md).
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| failed(error_chain(&e)))?;
        tokio::spawn(async move {
            // Errors here surface on the request that was in flight.
            let _ = conn.await;
        });
        Ok(sender)
    }
}

/// A ready connection from this thread's pool, dropping any that closed
/// or idled too long. Busy ones (a body still streaming) stay.
fn checkout(key: &Key) -> Option<Sender> {
    POOLS.with(|p| {
        let mut pools = p.borrow_mut();
        let list = pools.get_mut(key)?;
        let now = Instant::now();
        list.retain(|c| !c.sender.is_closed() && now.duration_since(c.since) < POOL_IDLE_TIMEOUT);
        let i = list.iter().rposition(|c| c.sender.is_ready())?;
        Some(list.swap_remove(i).sender)
    })
}

/// Closes this thread's pooled connections that have been idle longer
/// than `max_idle` (and forgets closed ones), so an origin that gets no
/// more requests (one removed from the config, say) does not keep them
/// open. Busy connections stay. Each worker calls this periodically.
pub fn sweep_idle(max_idle: Duration) {
    let now = Instant::now();
    POOLS.with(|p| {
        p.borrow_mut().retain(|_, list| {
            list.retain(|c| {
                !c.sender.is_closed()
                    && (!c.sender.is_ready() || now.duration_since(c.since) < max_idle)
            });
            !list.is_empty()
        });
    });
}

fn checkin(key: Key, sender: Sender) {
    POOLS.with(|p| {
        let mut pools = p.borrow_mut();
        let list = pools.entry(key).or_default();
        if list.len() < POOL_MAX_PER_ORIGIN {
            list.push(Pooled {
                sender,
                since: Instant::now(),
            });
        }
    });
}

/// An error and its sources, joined with ": ".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg.push_str(": ");
            msg.push_str(&s_msg);
        }
        src = s.source();
    }
    msg
}
