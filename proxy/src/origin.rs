//! Talking to replica buckets: URL building (path-style or virtual-hosted),
//! SigV4 signing, and the failover loop that tries
//! replicas in priority order under their breakers with a per-request
//! tried-set.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use http::uri::{Authority, Scheme};
use http::{
    header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri,
};
use http_body_util::Empty;
use hyper::body::Incoming;
use tandem_fleet_config::{BucketRoute, Replica};
use tokio::sync::OnceCell;

use crate::breaker::{CircuitBreaker, Permit, State};
use crate::client::OriginClient;
use crate::error::{Attempt, ProxyError};
use crate::metrics::Metrics;
use crate::request::{encode_key, encode_query_value};
use crate::sigv4::{Identity, Signable, Signer, UNSIGNED_PAYLOAD};

/// Why a replica could not be set up from config.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A credentials variable is not set.
    #[error(
        "buckets[{route}].replicas[{replica}].credentials: environment variable {var} is not set"
    )]
    MissingEnv {
        /// Route index.
        route: usize,
        /// Replica index.
        replica: usize,
        /// The variable.
        var: String,
    },
    /// The endpoint is not a usable URL.
    #[error("buckets[{route}].replicas[{replica}].endpoint: {reason}")]
    Endpoint {
        /// Route index.
        route: usize,
        /// Replica index.
        replica: usize,
        /// Why.
        reason: String,
    },
}

/// Where credentials come from.
enum Creds {
    Static(Credentials),
    /// The standard AWS chain (env, profile, web identity, IMDS...), with
    /// the result cached until shortly before it expires.
    Chain(Mutex<Option<Credentials>>),
}

static CHAIN: OnceCell<SharedCredentialsProvider> = OnceCell::const_new();

/// Credentials are refreshed this long before they expire, so a request
/// never goes out signed with credentials about to lapse.
const CREDENTIAL_REFRESH_MARGIN: Duration = Duration::from_secs(300);

impl Creds {
    async fn get(&self, region: &str) -> Result<Credentials, String> {
        match self {
            Creds::Static(c) => Ok(c.clone()),
            Creds::Chain(cache) => {
                if let Some(c) = cache.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                    let fresh = c
                        .expiry()
                        .is_none_or(|e| e > SystemTime::now() + CREDENTIAL_REFRESH_MARGIN);
                    if fresh {
                        return Ok(c.clone());
                    }
                }
                let chain = CHAIN
                    .get_or_init(|| async {
                        // An explicit region keeps the chain from asking IMDS
                        // for one; any region works for finding credentials.
                        SharedCredentialsProvider::new(
                            aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                                .region(aws_config::Region::new(region.to_string()))
                                .build()
                                .await,
                        )
                    })
                    .await;
                let c = chain
                    .provide_credentials()
                    .await
                    .map_err(|e| format!("loading AWS credentials: {e}"))?;
                *cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
                Ok(c)
            }
        }
    }
}

/// One replica, ready to receive requests.
pub struct Origin {
    /// Replica name.
    pub name: String,
    /// Bucket name.
    pub bucket: String,
    /// Region, also the signing region.
    pub region: String,
    /// Priority (lower first).
    pub priority: u32,
    /// Connect + first-byte timeout.
    pub timeout: Duration,
    scheme: Scheme,
    /// Authority requests go to (with the bucket for virtual-hosted).
    authority: Authority,
    /// The same authority as the Host header: parsed once, not per request.
    host: HeaderValue,
    /// Path prefix before the key ("/bucket/" or "/").
    path_prefix: String,
    creds: Creds,
    signer: Signer,
    /// The replica's breaker; kept across reloads when settings match.
    pub breaker: Arc<CircuitBreaker>,
    /// Endpoint as configured, for /status.
    pub endpoint: String,
}

impl Origin {
    /// Builds a replica from config; `env` resolves credential variables.
    pub fn new(
        (ri, pi): (usize, usize),
        r: &Replica,
        breaker: Arc<CircuitBreaker>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Origin, SetupError> {
        let endpoint = r
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", r.region));
        let uri: Uri = endpoint.parse().map_err(|e| SetupError::Endpoint {
            route: ri,
            replica: pi,
            reason: format!("{endpoint:?} is not a URL: {e}"),
        })?;
        let (Some(scheme), Some(auth)) = (uri.scheme_str(), uri.authority()) else {
            return Err(SetupError::Endpoint {
                route: ri,
                replica: pi,
                reason: format!(
                    "{endpoint:?} needs a scheme and host, e.g. https://s3.eu-west-1.amazonaws.com"
                ),
            });
        };
        let (authority, path_prefix) = if r.path_style {
            (auth.to_string(), format!("/{}/", r.bucket))
        } else {
            (format!("{}.{}", r.bucket, auth), "/".to_string())
        };
        let bad_host = |e: &dyn std::fmt::Display| SetupError::Endpoint {
            route: ri,
            replica: pi,
            reason: format!("{authority:?} is not a usable host: {e}"),
        };
        let host = HeaderValue::from_str(&authority).map_err(|e| bad_host(&e))?;
        let scheme = Scheme::try_from(scheme).map_err(|e| bad_host(&e))?;
        let authority = Authority::try_from(authority.as_str()).map_err(|e| bad_host(&e))?;
        let creds = match &r.credentials {
            None => Creds::Chain(Mutex::new(None)),
            Some(c) => {
                let var = |v: &str| {
                    env(v).ok_or_else(|| SetupError::MissingEnv {
                        route: ri,
                        replica: pi,
                        var: v.to_string(),
                    })
                };
                let token = match &c.session_token_env {
                    Some(t) => Some(var(t)?),
                    None => None,
                };
                Creds::Static(Credentials::new(
                    var(&c.access_key_id_env)?,
                    var(&c.secret_access_key_env)?,
                    token,
                    None,
                    "tandem-fleet-config",
                ))
            }
        };
        Ok(Origin {
            name: r.name.clone(),
            bucket: r.bucket.clone(),
            region: r.region.clone(),
            priority: r.priority,
            timeout: r.timeout.0,
            scheme,
            authority,
            host,
            path_prefix,
            creds,
            signer: Signer::new(&r.region),
            breaker,
            endpoint,
        })
    }

    /// Builds and signs a request for `key` (or the bucket itself when
    /// `key` is empty, as the health probe does).
    pub async fn signed_request(
        &self,
        method: &Method,
        key: &str,
        version_id: Option<&str>,
        forward: &HeaderMap,
    ) -> Result<Request<Empty<bytes::Bytes>>, String> {
        let mut path = String::with_capacity(self.path_prefix.len() + key.len() + 16);
        path.push_str(&self.path_prefix);
        path.push_str(&encode_key(key));
        let version = version_id.map(encode_query_value);
        let query: &[(&str, &str)] = match &version {
            Some(v) => &[("versionId", v.as_str())],
            None => &[],
        };
        let creds = self.creds.get(&self.region).await?;
        let signed = self.signer.sign(
            &Signable {
                method: method.as_str(),
                host: self.authority.as_str(),
                path: &path,
                query,
            },
            &Identity {
                access_key_id: creds.access_key_id(),
                secret_access_key: creds.secret_access_key(),
                session_token: creds.session_token(),
            },
            SystemTime::now(),
        );
        if let Some(v) = &version {
            path.push_str("?versionId=");
            path.push_str(v);
        }
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| format!("building request: {e}"))?;
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(Empty::new())
            .map_err(|e| format!("building request: {e}"))?;
        let h = req.headers_mut();
        let value =
            |v: String| HeaderValue::try_from(v).map_err(|e| format!("building request: {e}"));
        h.insert(header::HOST, self.host.clone());
        h.insert("x-amz-date", value(signed.amz_date)?);
        h.insert(header::AUTHORIZATION, value(signed.authorization)?);
        h.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static(UNSIGNED_PAYLOAD),
        );
        if let Some(t) = creds.session_token() {
            h.insert("x-amz-security-token", value(t.to_string())?);
        }
        // Forwarded headers (Range, preconditions) are not signed: SigV4
        // only covers SignedHeaders, and S3 accepts extra unsigned ones.
        for (n, v) in forward {
            h.append(n.clone(), v.clone());
        }
        Ok(req)
    }
}

/// A route ready to serve: its replicas sorted by priority.
pub struct Route {
    /// Config of the route.
    pub config: BucketRoute,
    /// Replicas in the order they are tried.
    pub origins: Vec<Origin>,
    /// Changes when the route's replica set changes, so cached objects
    /// from another bucket are never served after a reload.
    pub generation: String,
    /// JWT verification, when the route has `auth`.
    pub auth: Option<crate::auth::Verifier>,
}

/// How a replica answered (or didn't).
enum Outcome {
    Answer(Response<Incoming>),
    Retry(String, &'static str),
}

/// Classifies a replica's response: 5xx and 429 are the replica's trouble
/// and fail over; everything else (200, 206, 304, 403, 404, 412, 416) is an
/// answer about the object.
fn classify(resp: Response<Incoming>) -> Outcome {
    let s = resp.status();
    if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS {
        Outcome::Retry(format!("HTTP {}", s.as_u16()), "error_status")
    } else {
        Outcome::Answer(resp)
    }
}

/// The answer from the replica that served, and its index.
pub struct Served {
    /// The response (headers received; body not yet read).
    pub response: Response<Incoming>,
    /// Index of the replica in `route.origins`.
    pub replica: usize,
}

/// Tries replicas in priority order. A replica is tried at most once per
/// request (the tried-set), skipped while its breaker is open, and given
/// its own timeout for connect and first byte. `accept` may reject an
/// answer as retryable (e.g. a body that will not arrive) via `Err`.
pub async fn fetch(
    client: &OriginClient,
    route: &Route,
    method: &Method,
    key: &str,
    version_id: Option<&str>,
    forward: &HeaderMap,
    metrics: &Metrics,
    tried: &mut Vec<bool>,
    attempts: &mut Vec<Attempt>,
) -> Result<Served, ProxyError> {
    tried.resize(route.origins.len(), false);
    let rname = route.config.name.as_str();
    let mut not_found: Option<Served> = None;
    for (i, o) in route.origins.iter().enumerate() {
        if tried[i] {
            continue;
        }
        tried[i] = true;
        let Some(permit) = o.breaker.try_acquire(Instant::now()) else {
            attempts.push(Attempt {
                replica: o.name.clone(),
                reason: "breaker open".into(),
            });
            continue;
        };
        let guard = PermitGuard {
            breaker: &o.breaker,
            permit: Some(permit),
        };
        let outcome = match o.signed_request(method, key, version_id, forward).await {
            Err(e) => Outcome::Retry(e, "signing"),
            Ok(req) => match tokio::time::timeout(o.timeout, client.request(req)).await {
                Err(_) => Outcome::Retry(
                    format!("no response within {:?} (replica timeout)", o.timeout),
                    "timeout",
                ),
                Ok(Err(e)) => Outcome::Retry(crate::client::error_chain(&e), e.kind()),
                Ok(Ok(resp)) => classify(resp),
            },
        };
        match outcome {
            Outcome::Answer(resp) => {
                guard.finish(true, metrics, rname, &o.name);
                let nf = resp.status() == StatusCode::NOT_FOUND;
                metrics
                    .origin_requests
                    .inc(&[rname, &o.name, if nf { "not_found" } else { "ok" }]);
                if nf && route.config.fallback_on_404 {
                    // Keep the first 404 as the answer if nobody has it.
                    not_found.get_or_insert(Served {
                        response: resp,
                        replica: i,
                    });
                    continue;
                }
                return Ok(Served {
                    response: resp,
                    replica: i,
                });
            }
            Outcome::Retry(reason, kind) => {
                guard.finish(false, metrics, rname, &o.name);
                metrics.origin_requests.inc(&[rname, &o.name, kind]);
                metrics.failovers.inc(&[rname, &o.name]);
                tracing::warn!(route = rname, replica = %o.name, reason = %reason, "replica failed; trying the next");
                attempts.push(Attempt {
                    replica: o.name.clone(),
                    reason,
                });
            }
        }
    }
    if let Some(nf) = not_found {
        return Ok(nf);
    }
    Err(ProxyError::Unavailable {
        route: rname.to_string(),
        attempts: std::mem::take(attempts),
    })
}

/// Records a failure against a replica whose answer turned out unusable
/// after the headers (e.g. the body stalled while being cached).
pub fn record_late_failure(route: &Route, replica: usize, metrics: &Metrics, reason: &str) {
    let o = &route.origins[replica];
    if let Some(to) = o.breaker.record(Permit::Normal, false, Instant::now()) {
        metrics
            .breaker_transitions
            .inc(&[&route.config.name, &o.name, to.as_str()]);
    }
    metrics
        .origin_requests
        .inc(&[&route.config.name, &o.name, "io"]);
    metrics.failovers.inc(&[&route.config.name, &o.name]);
    tracing::warn!(route = %route.config.name, replica = %o.name, reason, "replica failed mid-body; trying the next");
}

/// Gives a probe permit back if the request is dropped before finishing.
struct PermitGuard<'a> {
    breaker: &'a CircuitBreaker,
    permit: Option<Permit>,
}

impl PermitGuard<'_> {
    fn finish(mut self, ok: bool, metrics: &Metrics, route: &str, replica: &str) {
        if let Some(p) = self.permit.take() {
            if let Some(to) = self.breaker.record(p, ok, Instant::now()) {
                metrics
                    .breaker_transitions
                    .inc(&[route, replica, to.as_str()]);
                if to == State::Open {
                    tracing::warn!(route, replica, "circuit breaker opened");
                } else {
                    tracing::info!(
                        route,
                        replica,
                        state = to.as_str(),
                        "circuit breaker changed state"
                    );
                }
            }
        }
    }
}

impl Drop for PermitGuard<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            self.breaker.release(p);
        }
    }
}

/// Probes every replica whose open breaker is due, with a signed HEAD of
/// the bucket, so a route recovers even when no client traffic arrives
/// (otherwise /ready would stay 503 and a load balancer would never send
/// the traffic that closes the breaker). Any HTTP answer below 500 means
/// the replica is reachable; 403 included, since read-only credentials may
/// not allow HeadBucket.
pub async fn probe_due(client: &OriginClient, route: &Route, metrics: &Metrics) {
    for o in &route.origins {
        if !o.breaker.probe_due(Instant::now()) {
            continue;
        }
        let Some(permit) = o.breaker.try_acquire(Instant::now()) else {
            continue;
        };
        let guard = PermitGuard {
            breaker: &o.breaker,
            permit: Some(permit),
        };
        let ok = match o
            .signed_request(&Method::HEAD, "", None, &HeaderMap::new())
            .await
        {
            Ok(req) => matches!(
                tokio::time::timeout(o.timeout, client.request(req)).await,
                Ok(Ok(r)) if !r.status().is_server_error()
            ),
            Err(_) => false,
        };
        metrics.origin_requests.inc(&[
            &route.config.name,
            &o.name,
            if ok { "probe_ok" } else { "probe_failed" },
        ]);
        guard.finish(ok, metrics, &route.config.name, &o.name);
    }
}

/// Origin response headers that describe the connection or the origin's
/// own request, not the object; everything else passes through unchanged.
pub fn is_hop_or_origin_header(n: &HeaderName) -> bool {
    matches!(
        n.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "date"
            | "server"
            | "x-amz-request-id"
            | "x-amz-id-2"
            | "content-length"
            | "content-range"
    )
}

/// The object headers to keep from an origin response.
pub fn object_headers(h: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(h.len());
    for (n, v) in h {
        if !is_hop_or_origin_header(n) {
            out.append(n.clone(), v.clone());
        }
    }
    if !out.contains_key(header::ACCEPT_RANGES) {
        out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(path_style: bool, endpoint: Option<&str>) -> Replica {
        Replica {
            name: "eu".into(),
            bucket: "assets-eu".into(),
            region: "eu-west-1".into(),
            endpoint: endpoint.map(Into::into),
            path_style,
            priority: 1,
            timeout: tandem_fleet_config::Dur::secs(1),
            credentials: Some(tandem_fleet_config::Credentials {
                access_key_id_env: "K".into(),
                secret_access_key_env: "S".into(),
                session_token_env: None,
            }),
        }
    }

    fn env(v: &str) -> Option<String> {
        match v {
            "K" => Some("AKIDEXAMPLE".into()),
            "S" => Some("secret".into()),
            _ => None,
        }
    }

    fn origin(r: &Replica) -> Origin {
        let b = Arc::new(CircuitBreaker::new(&Default::default()));
        Origin::new((0, 0), r, b, &env).unwrap()
    }

    #[tokio::test]
    async fn urls_and_signatures() {
        let o = origin(&replica(false, None));
        let req = o
            .signed_request(&Method::GET, "a b/c+d.txt", Some("v/1"), &HeaderMap::new())
            .await
            .unwrap();
        assert_eq!(
            req.uri().to_string(),
            "https://assets-eu.s3.eu-west-1.amazonaws.com/a%20b/c%2Bd.txt?versionId=v%2F1"
        );
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/eu-west-1/s3/aws4_request"));
        assert_eq!(req.headers()["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");

        let o = origin(&replica(true, Some("http://127.0.0.1:8333")));
        let mut fwd = HeaderMap::new();
        fwd.insert(header::RANGE, "bytes=0-1".parse().unwrap());
        let req = o
            .signed_request(&Method::HEAD, "k", None, &fwd)
            .await
            .unwrap();
        assert_eq!(req.uri().to_string(), "http://127.0.0.1:8333/assets-eu/k");
        assert_eq!(req.headers()["range"], "bytes=0-1");
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(
            !auth.contains("range"),
            "forwarded headers stay unsigned: {auth}"
        );
    }

    #[test]
    fn missing_credentials_and_bad_endpoints_name_the_field() {
        let mut r = replica(true, Some("127.0.0.1:8333"));
        let b = Arc::new(CircuitBreaker::new(&Default::default()));
        let e = Origin::new((1, 2), &r, b.clone(), &env).err().unwrap();
        assert!(
            e.to_string()
                .starts_with("buckets[1].replicas[2].endpoint: "),
            "{e}"
        );
        r.endpoint = None;
        r.credentials.as_mut().unwrap().secret_access_key_env = "NOPE".into();
        let e = Origin::new((1, 2), &r, b, &env).err().unwrap();
        assert_eq!(
            e.to_string(),
            "buckets[1].replicas[2].credentials: environment variable NOPE is not set"
        );
    }

    #[test]
    fn object_headers_keep_metadata_and_drop_hop_by_hop() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("etag", "\"abc\""),
            ("x-amz-meta-owner", "ops"),
            ("content-disposition", "attachment"),
            ("connection", "keep-alive"),
            ("x-amz-request-id", "r"),
            ("content-length", "3"),
        ] {
            h.insert(HeaderName::from_static(k), v.parse().unwrap());
        }
        let o = object_headers(&h);
        assert_eq!(o["etag"], "\"abc\"");
        assert_eq!(o["x-amz-meta-owner"], "ops");
        assert_eq!(o["content-disposition"], "attachment");
        assert_eq!(o["accept-ranges"], "bytes");
        assert!(
            !o.contains_key("connection")
                && !o.contains_key("x-amz-request-id")
                && !o.contains_key("content-length")
        );
    }
}
