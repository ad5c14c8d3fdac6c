//! Replica buckets as the proxy talks to them: URL building (path-style or
//! virtual-hosted), credentials and SigV4 signing. Which replica is asked
//! when is [`crate::failover`]'s business.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use http::uri::{Authority, Scheme};
use http::{header, HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::Empty;
use tandem_fleet_config::{BucketRoute, Replica};
use tokio::sync::OnceCell;

use crate::breaker::CircuitBreaker;
use crate::client::OriginClient;
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
    /// The private CA file cannot be used.
    #[error("buckets[{route}].replicas[{replica}].tls_ca_file: {file}: {reason}")]
    Ca {
        /// Route index.
        route: usize,
        /// Replica index.
        replica: usize,
        /// The file.
        file: String,
        /// Why.
        reason: String,
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
    /// The last failure and when, for /status (clients never see it: it
    /// may name endpoints, DNS or TLS errors, or credentials).
    last_failure: Mutex<Option<(SystemTime, String)>>,
    /// The replica's own trust, with `tls_ca_file`.
    pub private_ca: Option<PrivateCa>,
}

/// A client that trusts only a replica's private CA, and a digest of the
/// file it came from: a reload that finds the same file keeps the client,
/// and with it the pooled connections; a replaced file makes a new one.
#[derive(Clone)]
pub struct PrivateCa {
    /// Digest of the PEM file.
    pub digest: String,
    /// The client for this replica's requests.
    pub client: OriginClient,
}

impl Origin {
    /// The client this replica's requests go through: its own, with a
    /// private CA, or the shared one.
    pub fn client<'a>(&'a self, shared: &'a OriginClient) -> &'a OriginClient {
        self.private_ca.as_ref().map_or(shared, |c| &c.client)
    }

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
        let private_ca = match &r.tls_ca_file {
            None => None,
            Some(file) => {
                let ca_error = |reason: String| SetupError::Ca {
                    route: ri,
                    replica: pi,
                    file: file.clone(),
                    reason,
                };
                let pem = std::fs::read(file).map_err(|e| ca_error(e.to_string()))?;
                Some(PrivateCa {
                    digest: tandem_fleet_config::version_of(&pem),
                    client: OriginClient::with_ca(&pem).map_err(ca_error)?,
                })
            }
        };
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
            last_failure: Mutex::new(None),
            private_ca,
        })
    }

    /// Remembers why this replica last failed.
    pub fn note_failure(&self, reason: &str) {
        *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((SystemTime::now(), reason.to_string()));
    }

    /// The last failure and when, if any.
    pub fn last_failure(&self) -> Option<(SystemTime, String)> {
        self.last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
    /// The route's per-request metric series, resolved on first use.
    pub handles: std::sync::OnceLock<crate::metrics::RouteHandles>,
}

impl Route {
    /// The route's per-request metric series: looked up in `m` once per
    /// loaded config, then plain atomics for every request.
    pub fn metrics(&self, m: &crate::metrics::Metrics) -> &crate::metrics::RouteHandles {
        self.handles.get_or_init(|| {
            m.route_handles(
                &self.config.name,
                self.origins.iter().map(|o| o.name.as_str()),
            )
        })
    }
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
            tls_ca_file: None,
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
}
