//! A loaded config turned into something that serves: routes with their
//! replicas, breakers and the cache. Built fresh on every reload, keeping
//! breaker state and cached objects where the config did not change them.

use std::collections::HashMap;
use std::sync::Arc;

use tandem_fleet_config::FleetConfig;

use crate::breaker::CircuitBreaker;
use crate::cache::Cache;
use crate::origin::{Origin, Route};

/// Everything one config version serves with.
pub struct Runtime {
    /// The config.
    pub config: FleetConfig,
    /// Its `config_version`.
    pub version: String,
    /// Routes in config order.
    pub routes: Vec<Route>,
    /// The memory cache.
    pub cache: Arc<Cache>,
    /// Per-client rate limiting, when configured.
    pub limiter: Option<crate::ratelimit::Limiter>,
    /// The shared Redis/Valkey tier, when `redis` is configured.
    pub tier: Option<Arc<crate::tier::Tier>>,
    /// Bearer token of the purge API, read from `admin.purge_token_env`;
    /// purge is disabled without it.
    pub purge_token: Option<String>,
    /// `listen.trusted_proxies`, parsed.
    pub trusted: Vec<tandem_fleet_config::Cidr>,
    /// Clients whose bearer tokens failed verification, by address: an
    /// empty bucket refuses the address before any signature check, so a
    /// flood of bad tokens cannot buy signature checks (with
    /// `limits.rate_limit`).
    pub auth_failures: Option<crate::ratelimit::Limiter>,
    /// TLS of the data listener, with `listen.tls_cert_file`.
    pub tls: Option<Arc<crate::tls::ListenerTls>>,
}

impl Runtime {
    /// Validates `config` and builds it. `prev` lends breakers (same route,
    /// replica and settings) and the cache (same size limits); `env`
    /// resolves credential variables. Returns every problem found.
    pub fn build(
        config: FleetConfig,
        prev: Option<&Runtime>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Runtime, Vec<String>> {
        let mut problems: Vec<String> = config.validate().iter().map(ToString::to_string).collect();
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut old_breakers: HashMap<
            (&str, &str),
            (&Arc<CircuitBreaker>, &tandem_fleet_config::Breaker),
        > = HashMap::new();
        if let Some(p) = prev {
            for r in &p.routes {
                for o in &r.origins {
                    old_breakers.insert((&r.config.name, &o.name), (&o.breaker, &r.config.breaker));
                }
            }
        }
        let old_cas: HashMap<&str, &crate::client::OriginClient> = prev
            .iter()
            .flat_map(|p| &p.routes)
            .flat_map(|r| &r.origins)
            .filter_map(|o| o.private_ca.as_ref())
            .map(|c| (c.digest.as_str(), &c.client))
            .collect();
        // Keys fetched from a jwks_url outlive the config that asked for
        // them while the URL stays.
        let old_jwks: Vec<&Arc<crate::auth::RemoteJwks>> = prev
            .iter()
            .flat_map(|p| &p.routes)
            .filter_map(|r| r.auth.as_ref()?.remote())
            .collect();
        let mut routes = Vec::with_capacity(config.buckets.len());
        for (ri, b) in config.buckets.iter().enumerate() {
            let mut order: Vec<usize> = (0..b.replicas.len()).collect();
            // Stable: equal priorities keep config order.
            order.sort_by_key(|&i| b.replicas[i].priority);
            let mut origins = Vec::with_capacity(order.len());
            for pi in order {
                let r = &b.replicas[pi];
                let breaker = match old_breakers.get(&(b.name.as_str(), r.name.as_str())) {
                    Some((br, settings)) if **settings == b.breaker => Arc::clone(br),
                    _ => Arc::new(CircuitBreaker::new(&b.breaker)),
                };
                match Origin::new((ri, pi), r, breaker, env) {
                    Ok(mut o) => {
                        // The same CA file as before: keep its client and
                        // the connections it pools.
                        if let Some(ca) = o.private_ca.as_mut() {
                            if let Some(c) = old_cas.get(ca.digest.as_str()) {
                                ca.client = (*c).clone();
                            }
                        }
                        origins.push(o)
                    }
                    Err(e) => problems.push(e.to_string()),
                }
            }
            let identity: String = b
                .replicas
                .iter()
                .map(|r| {
                    format!(
                        "{}|{}|{}|{}|{};",
                        r.bucket,
                        r.region,
                        r.endpoint.as_deref().unwrap_or(""),
                        r.path_style,
                        r.name
                    )
                })
                .collect();
            let generation = format!(
                "{}:{}",
                b.name,
                tandem_fleet_config::version_of(identity.as_bytes())
            );
            let auth = match &b.auth {
                Some(a) => match crate::auth::Verifier::new(ri, a, env, &|url, refresh| {
                    old_jwks
                        .iter()
                        .find(|j| j.url == url && j.refresh == refresh)
                        .map(|j| Arc::clone(j))
                }) {
                    Ok(v) => Some(v),
                    Err(p) => {
                        problems.push(p);
                        None
                    }
                },
                None => None,
            };
            routes.push(Route {
                config: b.clone(),
                origins,
                generation,
                auth,
                handles: std::sync::OnceLock::new(),
            });
        }
        let tls = match (&config.listen.tls_cert_file, &config.listen.tls_key_file) {
            (Some(cert), Some(key)) => match crate::tls::ListenerTls::load(cert, key) {
                Ok(t) => Some(Arc::new(t)),
                Err(p) => {
                    problems.push(p);
                    None
                }
            },
            _ => None,
        };
        let purge_token = config
            .admin
            .purge_token_env
            .as_deref()
            .and_then(|var| secret(env, "admin.purge_token_env", var, &mut problems));
        let tier = match &config.redis {
            None => None,
            // Same section: keep the connections (and their up/down state).
            Some(r) => match prev.and_then(|p| p.tier.as_ref()).filter(|t| t.reusable(r)) {
                Some(t) => Some(Arc::clone(t)),
                None => {
                    let password = r
                        .password_env
                        .as_deref()
                        .and_then(|var| secret(env, "redis.password_env", var, &mut problems));
                    let signing = r
                        .signing_key_env
                        .as_deref()
                        .and_then(|var| secret(env, "redis.signing_key_env", var, &mut problems));
                    let previous = r.previous_signing_key_env.as_deref().and_then(|var| {
                        secret(env, "redis.previous_signing_key_env", var, &mut problems)
                    });
                    for (field, key) in [
                        ("redis.signing_key_env", &signing),
                        ("redis.previous_signing_key_env", &previous),
                    ] {
                        if key
                            .as_ref()
                            .is_some_and(|k| k.len() < MIN_SIGNING_KEY_BYTES)
                        {
                            problems.push(format!(
                                "{field}: the key must be at least {MIN_SIGNING_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`)"
                            ));
                        }
                    }
                    let keys = signing.map(|k| crate::tier::Keys::new(&k, previous.as_deref()));
                    match crate::tier::Tier::new(r, password, keys) {
                        Ok(t) => Some(Arc::new(t)),
                        Err(p) => {
                            problems.push(p);
                            None
                        }
                    }
                }
            },
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let cache = match prev {
            Some(p)
                if p.cache.max_bytes == config.cache.max_bytes.0
                    && p.cache.max_object_bytes == config.cache.max_object_bytes.0
                    && p.cache.fill.usage().1 == config.cache.max_fill_bytes() =>
            {
                Arc::clone(&p.cache)
            }
            _ => Arc::new(Cache::new(
                config.cache.max_bytes.0,
                config.cache.max_object_bytes.0,
                config.cache.max_fill_bytes(),
            )),
        };
        let limiter = config
            .limits
            .rate_limit
            .as_ref()
            .map(|r| crate::ratelimit::Limiter::new(r.requests_per_second, r.burst));
        let auth_failures = config
            .limits
            .rate_limit
            .as_ref()
            .map(|r| crate::ratelimit::Limiter::new(r.requests_per_second, r.burst));
        // validate() refused any entry that does not parse.
        let trusted = config
            .listen
            .trusted_proxies
            .iter()
            .filter_map(|c| tandem_fleet_config::Cidr::parse(c).ok())
            .collect();
        Ok(Runtime {
            limiter,
            auth_failures,
            tls,
            trusted,
            tier,
            version: config.config_version(),
            config,
            routes,
            cache,
            purge_token,
        })
    }

    /// Whether swapping this in for `prev` (which it was built from)
    /// changes anything: a new document, or the same document with files
    /// it names replaced (a rotated public key or JWKS, or a Redis CA file,
    /// which rebuilt the tier).
    pub fn differs_from(&self, prev: &Runtime) -> bool {
        // What the files named by the config held: keys and CAs.
        let keys = |rt: &Runtime| -> Vec<String> {
            rt.routes
                .iter()
                .flat_map(|r| {
                    let ca = r.origins.iter().map(|o| {
                        o.private_ca
                            .as_ref()
                            .map_or(String::new(), |c| c.digest.clone())
                    });
                    std::iter::once(
                        r.auth
                            .as_ref()
                            .map_or(String::new(), |a| a.material.clone()),
                    )
                    .chain(ca)
                })
                .collect()
        };
        let tls = |rt: &Runtime| rt.tls.as_ref().map(|t| t.digest.clone());
        self.version != prev.version
            || keys(self) != keys(prev)
            || tls(self) != tls(prev)
            || match (&self.tier, &prev.tier) {
                (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
                (a, b) => a.is_some() != b.is_some(),
            }
    }
}

/// A secret named by `field` in the config: the value of `var`. Unset or
/// empty is a problem, never "no secret": an empty purge token would open
/// the purge API, and an empty password is always a mistake.
/// Shortest signing key accepted: an HMAC-SHA256 key shorter than the
/// hash (32 bytes) can be guessed faster than the MAC can be forged.
const MIN_SIGNING_KEY_BYTES: usize = 32;

fn secret(
    env: &dyn Fn(&str) -> Option<String>,
    field: &str,
    var: &str,
    problems: &mut Vec<String>,
) -> Option<String> {
    match env(var) {
        Some(v) if !v.is_empty() => Some(v),
        _ => {
            problems.push(format!(
                "{field}: environment variable {var} is not set (or is empty)"
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_fleet_config::Format;

    const CONFIG: &str = r#"
listen: {data: "127.0.0.1:8080", admin: "127.0.0.1:9090"}
admin: {purge_token_env: PURGE}
redis: {urls: ["redis://127.0.0.1:6379"], password_env: REDIS_PW}
buckets:
  - name: site
    path_prefix: /site/
    replicas:
      - {name: a, bucket: site, region: eu-west-1, credentials: {access_key_id_env: K, secret_access_key_env: S}}
"#;

    fn build(vars: &[(&str, &str)]) -> Result<Runtime, Vec<String>> {
        let config = FleetConfig::parse(CONFIG, Format::Yaml).unwrap();
        let env = |v: &str| {
            ["K", "S"]
                .contains(&v)
                .then(|| "x".to_string())
                .or_else(|| {
                    vars.iter()
                        .find(|(k, _)| *k == v)
                        .map(|(_, x)| x.to_string())
                })
        };
        Runtime::build(config, None, &env)
    }

    #[test]
    fn secrets_that_are_unset_or_empty_are_all_reported() {
        let want = [
            "admin.purge_token_env: environment variable PURGE is not set (or is empty)",
            "redis.password_env: environment variable REDIS_PW is not set (or is empty)",
        ];
        for vars in [&[][..], &[("PURGE", ""), ("REDIS_PW", "")][..]] {
            let problems = build(vars).err().expect("refused");
            assert_eq!(problems, want, "{vars:?}");
        }
        let rt = build(&[("PURGE", "token"), ("REDIS_PW", "pw")]).unwrap();
        assert_eq!(rt.purge_token.as_deref(), Some("token"));
    }
}
