//! JWT authentication per bucket route: HS256 with a shared secret, or
//! RS256/ES256 with a PEM public key or a JWKS file. `exp` is required;
//! `nbf`, `iss` and `aud` are checked when present or configured; claim
//! rules can limit each claim value to a key prefix.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::HeaderMap;
use jsonwebtoken::{decode, decode_header, jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tandem_fleet_config::{JwtAlgorithm, JwtAuth};

/// Clock skew tolerated on `exp` and `nbf`: enough for unsynchronised
/// clients, short enough that an expired token is refused within a minute.
pub const LEEWAY_SECS: u64 = 30;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No bearer token (401).
    #[error("this route requires a bearer token (Authorization: Bearer <JWT>)")]
    Missing,
    /// Bad signature, expired, wrong issuer or audience... (401).
    #[error("invalid token: {0}")]
    Invalid(String),
    /// A valid token whose claims do not allow this key (403).
    #[error("the token's claims do not allow key {0:?}")]
    Forbidden(String),
}

/// Keys of a JWKS, by `kid`.
type KeySet = Vec<(Option<String>, DecodingKey)>;

enum Keys {
    One(DecodingKey),
    /// From a JWKS file: the token's `kid` picks one; without a `kid` the
    /// only key is tried.
    Set(KeySet),
    /// From `jwks_url`, fetched in the background.
    Remote(Arc<RemoteJwks>),
}

/// A JWKS published by an identity provider at a URL. One per URL and
/// refresh interval, handed from config to config on reload (as breakers
/// are), so a reload neither loses the keys nor fetches them again.
pub struct RemoteJwks {
    /// Where the set is published.
    pub url: String,
    /// How often it is fetched again.
    pub refresh: Duration,
    keys: ArcSwap<KeySet>,
    state: Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    /// When the set last came back good.
    fetched: Option<Instant>,
    /// When a fetch was last tried, good or not.
    tried: Option<Instant>,
    /// A token named a key the set does not hold.
    early: bool,
    /// When the last early fetch was made.
    early_at: Option<Instant>,
    /// Why the last fetch failed, for /status.
    last_error: Option<String>,
}

/// A token naming an unknown key asks for the set again, but not more
/// often than this: a flood of made-up `kid`s must not become a flood of
/// requests to the identity provider.
pub const JWKS_EARLY_REFRESH_EVERY: Duration = Duration::from_secs(30);

/// A failed fetch is tried again after this long, rather than at the next
/// `jwks_refresh`, while the last good set keeps serving.
pub const JWKS_RETRY: Duration = Duration::from_secs(10);

/// A JWKS fetch gets this long, connecting and body included: an identity
/// provider answers in well under a second, and the last good set serves
/// meanwhile.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest JWKS accepted: real ones hold a handful of keys (a few KiB).
pub const MAX_JWKS_BYTES: usize = 1 << 20;

/// Wakes the refresher when a token names an unknown key.
pub static JWKS_WANTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

impl RemoteJwks {
    fn new(url: &str, refresh: Duration) -> RemoteJwks {
        RemoteJwks {
            url: url.to_string(),
            refresh,
            keys: ArcSwap::from_pointee(Vec::new()),
            state: Mutex::new(FetchState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FetchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a fetch is due at `now`: never fetched, past the refresh
    /// interval, retrying after a failure, or asked for early.
    pub fn due(&self, now: Instant) -> bool {
        let s = self.lock();
        let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
        match (since(s.fetched), since(s.tried)) {
            (_, None) => true,
            _ if s.early && since(s.early_at).is_none_or(|e| e >= JWKS_EARLY_REFRESH_EVERY) => true,
            (None, Some(t)) => t >= JWKS_RETRY,
            (Some(f), Some(t)) => f >= self.refresh && t >= JWKS_RETRY.min(self.refresh),
        }
    }

    /// Takes the body of a fetch (or why it failed) in: a good set
    /// replaces the keys; anything else keeps the last good set.
    pub fn update(&self, now: Instant, fetched: Result<Vec<u8>, String>) -> Result<usize, String> {
        let parsed = fetched.and_then(|body| parse_jwks(&body));
        let mut s = self.lock();
        s.tried = Some(now);
        if std::mem::take(&mut s.early) {
            s.early_at = Some(now);
        }
        match parsed {
            Ok(keys) => {
                let n = keys.len();
                self.keys.store(Arc::new(keys));
                s.fetched = Some(now);
                s.last_error = None;
                Ok(n)
            }
            Err(e) => {
                s.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Keys held, seconds since the last good fetch, and the last error.
    pub fn status(&self) -> (usize, Option<u64>, Option<String>) {
        let s = self.lock();
        (
            self.keys.load().len(),
            s.fetched.map(|t| t.elapsed().as_secs()),
            s.last_error.clone(),
        )
    }

    /// GETs the set, bounded in time and size.
    pub async fn fetch(&self, client: &crate::client::OriginClient) -> Result<Vec<u8>, String> {
        use http_body_util::BodyExt;
        let uri: http::Uri = self.url.parse().map_err(|e| format!("bad URL: {e}"))?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or("the URL has no host")?;
        let req = http::Request::get(uri)
            .header(http::header::HOST, host)
            .header(http::header::ACCEPT, "application/json")
            .body(http_body_util::Empty::new())
            .map_err(|e| e.to_string())?;
        let got = async {
            let resp = client
                .request(req)
                .await
                .map_err(|e| crate::client::error_chain(&e))?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(|e| format!("reading the body: {e}"))?
                .to_bytes();
            if !status.is_success() {
                return Err(format!("HTTP {}", status.as_u16()));
            }
            Ok(body.to_vec())
        };
        tokio::time::timeout(JWKS_FETCH_TIMEOUT, got)
            .await
            .map_err(|_| format!("no answer within {JWKS_FETCH_TIMEOUT:?}"))?
    }

    fn want_early(&self) {
        self.lock().early = true;
        JWKS_WANTED.notify_one();
    }
}

/// The keys of a JWKS document.
fn parse_jwks(body: &[u8]) -> Result<KeySet, String> {
    let set: JwkSet = serde_json::from_slice(body).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for k in &set.keys {
        let dk = DecodingKey::from_jwk(k).map_err(|e| format!("key {:?}: {e}", k.common.key_id))?;
        keys.push((k.common.key_id.clone(), dk));
    }
    if keys.is_empty() {
        return Err("holds no keys".into());
    }
    Ok(keys)
}

/// A route's verifier, built once per config (and again on every reload,
/// since the key files are read each time).
pub struct Verifier {
    keys: Keys,
    validation: Validation,
    rules: Vec<(String, String, String)>,
    /// Digest of the key file read (public key or JWKS), so a reload can
    /// tell a rotated key from an unchanged one when the document is the
    /// same; empty for a shared secret, which comes from the environment.
    pub material: String,
}

/// The remote JWKS of earlier configs, by URL and refresh interval.
pub type RemoteSets<'a> = &'a dyn Fn(&str, Duration) -> Option<Arc<RemoteJwks>>;

/// The claims a request was admitted with.
#[derive(Debug, Clone)]
pub struct Claims(pub serde_json::Map<String, Value>);

impl Claims {
    /// The `sub` claim, for per-subject rate limits.
    pub fn subject(&self) -> Option<&str> {
        self.0.get("sub").and_then(Value::as_str)
    }
}

impl Verifier {
    /// Builds a verifier; errors name the config field (`buckets[i].auth.…`).
    pub fn new(
        route: usize,
        a: &JwtAuth,
        env: &dyn Fn(&str) -> Option<String>,
        earlier: RemoteSets<'_>,
    ) -> Result<Verifier, String> {
        let path = |f: &str| format!("buckets[{route}].auth.{f}");
        let alg = match a.algorithm {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::ES256 => Algorithm::ES256,
        };
        let mut material = String::new();
        if let Some(url) = &a.jwks_url {
            let refresh = a.jwks_refresh();
            let remote =
                earlier(url, refresh).unwrap_or_else(|| Arc::new(RemoteJwks::new(url, refresh)));
            return Ok(Verifier::with_keys(
                Keys::Remote(remote),
                alg,
                a,
                String::new(),
            ));
        }
        let keys = match (a.algorithm, &a.secret_env, &a.public_key_file, &a.jwks_file) {
            (JwtAlgorithm::HS256, Some(var), _, _) => {
                let secret = env(var).filter(|s| !s.is_empty()).ok_or_else(|| {
                    format!(
                        "{}: environment variable {var} is not set",
                        path("secret_env")
                    )
                })?;
                Keys::One(DecodingKey::from_secret(secret.as_bytes()))
            }
            (_, _, Some(file), _) => {
                let pem = std::fs::read(file)
                    .map_err(|e| format!("{}: reading {file}: {e}", path("public_key_file")))?;
                material = tandem_fleet_config::version_of(&pem);
                let k = match alg {
                    Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem),
                    _ => DecodingKey::from_ec_pem(&pem),
                }
                .map_err(|e| {
                    format!(
                        "{}: {file} is not a {alg:?} public key: {e}",
                        path("public_key_file")
                    )
                })?;
                Keys::One(k)
            }
            (_, _, _, Some(file)) => {
                let text = std::fs::read(file)
                    .map_err(|e| format!("{}: reading {file}: {e}", path("jwks_file")))?;
                material = tandem_fleet_config::version_of(&text);
                Keys::Set(
                    parse_jwks(&text).map_err(|e| format!("{}: {file}: {e}", path("jwks_file")))?,
                )
            }
            _ => return Err(format!("{}: no key source for {alg:?}", path("algorithm"))),
        };
        Ok(Verifier::with_keys(keys, alg, a, material))
    }

    fn with_keys(keys: Keys, alg: Algorithm, a: &JwtAuth, material: String) -> Verifier {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        match &a.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &a.issuer {
            validation.set_issuer(&[iss]);
        }
        let rules = a
            .claim_rules
            .iter()
            .map(|r| {
                (
                    r.claim.clone(),
                    r.value.clone(),
                    r.prefix.trim_start_matches('/').to_string(),
                )
            })
            .collect();
        Verifier {
            keys,
            validation,
            rules,
            material,
        }
    }

    /// The remote JWKS this verifier reads, if any.
    pub fn remote(&self) -> Option<&Arc<RemoteJwks>> {
        match &self.keys {
            Keys::Remote(r) => Some(r),
            _ => None,
        }
    }

    /// Checks the request's bearer token for object `key` (relative to the
    /// route).
    pub fn check(&self, h: &HeaderMap, key: &str) -> Result<Claims, AuthError> {
        let token = h
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let claims = self.verify(token)?;
        if !self.rules.is_empty() {
            let allowed = self.rules.iter().any(|(claim, value, prefix)| {
                let v = match claims.0.get(claim) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(a)) => {
                        return a.iter().any(|x| x.as_str() == Some(value))
                            && key.starts_with(prefix.as_str())
                    }
                    Some(other) => other.to_string(),
                    None => return false,
                };
                v == *value && key.starts_with(prefix.as_str())
            });
            if !allowed {
                return Err(AuthError::Forbidden(key.to_string()));
            }
        }
        Ok(claims)
    }

    fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let invalid = |e: jsonwebtoken::errors::Error| AuthError::Invalid(describe(&e));
        let decode_with = |k: &DecodingKey| {
            decode::<serde_json::Map<String, Value>>(token, k, &self.validation)
                .map(|d| Claims(d.claims))
        };
        let remote;
        let keys: &KeySet = match &self.keys {
            Keys::One(k) => return decode_with(k).map_err(invalid),
            Keys::Set(keys) => keys,
            Keys::Remote(r) => {
                remote = r.keys.load();
                if remote.is_empty() {
                    r.want_early();
                    return Err(AuthError::Invalid(
                        "the identity provider's keys have not been fetched yet".into(),
                    ));
                }
                &remote
            }
        };
        let kid = decode_header(token).map_err(invalid)?.kid;
        if let Keys::Remote(r) = &self.keys {
            if kid.is_some() && !keys.iter().any(|(id, _)| *id == kid) {
                // Perhaps a key published since the last fetch.
                r.want_early();
            }
        }
        // Trying every key would let a token signed by any key of the set
        // pass as whichever it matches, and costs one signature check per
        // key: with several, the token names its key.
        if kid.is_none() && keys.len() > 1 {
            return Err(AuthError::Invalid(
                "the token has no kid and the JWKS holds several keys".into(),
            ));
        }
        let mut last = AuthError::Invalid("no key in the JWKS matches the token's kid".into());
        for (id, k) in keys {
            if kid.is_some() && *id != kid {
                continue;
            }
            match decode_with(k) {
                Ok(c) => return Ok(c),
                Err(e) => last = invalid(e),
            }
        }
        Err(last)
    }
}

/// Short reasons without echoing the token.
fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind::*;
    match e.kind() {
        ExpiredSignature => "expired".into(),
        ImmatureSignature => "not valid yet (nbf)".into(),
        InvalidSignature => "bad signature".into(),
        InvalidAudience => "wrong audience".into(),
        InvalidIssuer => "wrong issuer".into(),
        InvalidAlgorithm => "unexpected algorithm".into(),
        MissingRequiredClaim(c) => format!("missing claim {c}"),
        InvalidToken | Base64(_) | Json(_) | Utf8(_) => "malformed".into(),
        _ => "rejected".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;
    use tandem_fleet_config::ClaimRule;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn hs(rules: Vec<ClaimRule>) -> Verifier {
        let a = JwtAuth {
            algorithm: JwtAlgorithm::HS256,
            secret_env: Some("S".into()),
            public_key_file: None,
            jwks_file: None,
            jwks_url: None,
            jwks_refresh: None,
            issuer: Some("https://id.example".into()),
            audience: Some("assets".into()),
            claim_rules: rules,
        };
        Verifier::new(0, &a, &|_| Some("sekret".into()), &|_, _| None).unwrap()
    }

    fn bearer(claims: serde_json::Value, secret: &str) -> HeaderMap {
        let t = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn accepts_good_tokens_and_says_why_it_refuses() {
        let v = hs(vec![]);
        let good =
            json!({"sub": "u1", "exp": now() + 60, "iss": "https://id.example", "aud": "assets"});
        assert_eq!(
            v.check(&bearer(good.clone(), "sekret"), "k")
                .unwrap()
                .subject(),
            Some("u1")
        );
        assert_eq!(
            v.check(&HeaderMap::new(), "k").unwrap_err(),
            AuthError::Missing
        );
        let cases = [
            (
                json!({"exp": now() - 120, "iss": "https://id.example", "aud": "assets"}),
                "sekret",
                "expired",
            ),
            (
                json!({"exp": now() + 60, "nbf": now() + 600, "iss": "https://id.example", "aud": "assets"}),
                "sekret",
                "not valid yet (nbf)",
            ),
            (
                json!({"exp": now() + 60, "iss": "https://id.example", "aud": "other"}),
                "sekret",
                "wrong audience",
            ),
            (
                json!({"exp": now() + 60, "iss": "https://evil", "aud": "assets"}),
                "sekret",
                "wrong issuer",
            ),
            (good, "not-the-secret", "bad signature"),
            (
                json!({"iss": "https://id.example", "aud": "assets"}),
                "sekret",
                "missing claim exp",
            ),
        ];
        for (claims, secret, why) in cases {
            assert_eq!(
                v.check(&bearer(claims, secret), "k").unwrap_err(),
                AuthError::Invalid(why.into())
            );
        }
    }

    #[test]
    fn claim_rules_limit_prefixes() {
        let v = hs(vec![ClaimRule {
            claim: "tenant".into(),
            value: "acme".into(),
            prefix: "/acme/".into(),
        }]);
        let t = bearer(
            json!({"exp": now() + 60, "iss": "https://id.example", "aud": "assets", "tenant": "acme"}),
            "sekret",
        );
        assert!(v.check(&t, "acme/logo.png").is_ok());
        assert_eq!(
            v.check(&t, "globex/logo.png").unwrap_err(),
            AuthError::Forbidden("globex/logo.png".into())
        );
    }

    #[test]
    fn a_remote_set_is_due_at_start_on_schedule_early_once_per_window_and_kept_on_failure() {
        let j = RemoteJwks::new("https://id.example/jwks", Duration::from_secs(600));
        let t0 = Instant::now();
        assert!(j.due(t0), "never fetched");
        let jwk = r#"{"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0"}]}"#;
        assert_eq!(j.update(t0, Ok(jwk.as_bytes().to_vec())), Ok(1));
        assert!(!j.due(t0 + Duration::from_secs(599)));
        assert!(j.due(t0 + Duration::from_secs(600)), "on schedule");
        // An unknown kid: at once, then not again within the window.
        j.want_early();
        let t1 = t0 + Duration::from_secs(5);
        assert!(j.due(t1));
        assert_eq!(j.update(t1, Ok(jwk.as_bytes().to_vec())), Ok(1));
        j.want_early();
        assert!(!j.due(t1 + Duration::from_secs(29)));
        assert!(j.due(t1 + JWKS_EARLY_REFRESH_EVERY));
        // A failed fetch keeps the keys and says why.
        let t2 = t1 + JWKS_EARLY_REFRESH_EVERY;
        assert!(j.update(t2, Err("HTTP 503".into())).is_err());
        assert!(j.update(t2, Ok(b"{}".to_vec())).is_err(), "not a JWKS");
        let (keys, _, error) = j.status();
        assert_eq!(keys, 1);
        assert!(error.unwrap().contains("not a JWKS"));
    }
}
