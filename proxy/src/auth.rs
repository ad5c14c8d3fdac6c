//! JWT authentication per bucket route: HS256 with a shared secret, or
//! RS256/ES256 with a PEM public key or a JWKS file. `exp` is required;
//! `nbf`, `iss` and `aud` are checked when present or configured; claim
//! rules can limit each claim value to a key prefix.

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

enum Keys {
    One(DecodingKey),
    /// From a JWKS: the token's `kid` picks one; without a `kid` each is tried.
    Set(Vec<(Option<String>, DecodingKey)>),
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
    ) -> Result<Verifier, String> {
        let path = |f: &str| format!("buckets[{route}].auth.{f}");
        let alg = match a.algorithm {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::ES256 => Algorithm::ES256,
        };
        let mut material = String::new();
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
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("{}: reading {file}: {e}", path("jwks_file")))?;
                material = tandem_fleet_config::version_of(text.as_bytes());
                let set: JwkSet = serde_json::from_str(&text)
                    .map_err(|e| format!("{}: {file} is not a JWKS: {e}", path("jwks_file")))?;
                let mut keys = Vec::new();
                for k in &set.keys {
                    let dk = DecodingKey::from_jwk(k).map_err(|e| {
                        format!(
                            "{}: key {:?} in {file}: {e}",
                            path("jwks_file"),
                            k.common.key_id
                        )
                    })?;
                    keys.push((k.common.key_id.clone(), dk));
                }
                if keys.is_empty() {
                    return Err(format!("{}: {file} holds no keys", path("jwks_file")));
                }
                Keys::Set(keys)
            }
            _ => return Err(format!("{}: no key source for {alg:?}", path("algorithm"))),
        };
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
        Ok(Verifier {
            keys,
            validation,
            rules,
            material,
        })
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
        match &self.keys {
            Keys::One(k) => decode_with(k).map_err(invalid),
            Keys::Set(keys) => {
                let kid = decode_header(token).map_err(invalid)?.kid;
                // Trying every key would let a token signed by any key of
                // the set pass as whichever it matches, and costs one
                // signature check per key: with several, the token names
                // its key.
                if kid.is_none() && keys.len() > 1 {
                    return Err(AuthError::Invalid(
                        "the token has no kid and the JWKS holds several keys".into(),
                    ));
                }
                let mut last =
                    AuthError::Invalid("no key in the JWKS matches the token's kid".into());
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
            issuer: Some("https://id.example".into()),
            audience: Some("assets".into()),
            claim_rules: rules,
        };
        Verifier::new(0, &a, &|_| Some("sekret".into())).unwrap()
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
}
