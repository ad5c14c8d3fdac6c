//! Validation that reports every problem at once, each with the path of
//! the setting it is about (`buckets[1].replicas[0].timeout`). The proxy
//! prints these from `tandem-proxy check`; the Terraform provider turns
//! each into a diagnostic on the same attribute path.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::types::{BucketRoute, FleetConfig, JwtAlgorithm, RateKey, Replica};
use crate::units::Bytes;

/// One step of a path into the config.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    /// A field name.
    Field(&'static str),
    /// A list index.
    Index(usize),
}

/// Where in the config a problem is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigPath(pub Vec<Seg>);

impl ConfigPath {
    /// This path extended by a field.
    pub fn field(&self, f: &'static str) -> ConfigPath {
        let mut p = self.clone();
        p.0.push(Seg::Field(f));
        p
    }

    /// This path extended by an index.
    pub fn index(&self, i: usize) -> ConfigPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl fmt::Display for ConfigPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(config)");
        }
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Field(n) if i == 0 => f.write_str(n)?,
                Seg::Field(n) => write!(f, ".{n}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A problem found by [`FleetConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The setting it is about.
    pub path: ConfigPath,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Upper bound for a replica timeout: beyond it failover is too slow to
/// matter, so a larger value is almost certainly a unit mistake.
const MAX_REPLICA_TIMEOUT: Duration = Duration::from_secs(60);

struct Collector(Vec<Problem>);

impl Collector {
    fn add(&mut self, path: ConfigPath, message: impl Into<String>) {
        self.0.push(Problem {
            path,
            message: message.into(),
        });
    }
}

fn env_name_ok(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// S3 bucket naming rules that matter for addressing.
pub fn bucket_name_problem(b: &str) -> Option<String> {
    if !(3..=63).contains(&b.len()) {
        return Some(format!("bucket name {b:?} must be 3 to 63 characters long"));
    }
    if !b
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
    {
        return Some(format!(
            "bucket name {b:?} may only contain lowercase letters, digits, '.' and '-'"
        ));
    }
    if !b.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !b.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Some(format!(
            "bucket name {b:?} must start and end with a letter or digit"
        ));
    }
    if b.contains("..") {
        return Some(format!(
            "bucket name {b:?} must not contain two adjacent periods"
        ));
    }
    if b.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some(format!(
            "bucket name {b:?} must not look like an IP address"
        ));
    }
    None
}

fn url_problem(u: &str) -> Option<String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    match rest {
        None => Some(format!("{u:?} must start with http:// or https://")),
        Some(r) if r.is_empty() || r.starts_with('/') => Some(format!("{u:?} has no host")),
        _ => None,
    }
}

/// Parses `s3://bucket/key`.
pub fn parse_s3_url(u: &str) -> Option<(&str, &str)> {
    let (bucket, key) = u.strip_prefix("s3://")?.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

impl FleetConfig {
    /// Every problem in the config; empty when it can be served.
    pub fn validate(&self) -> Vec<Problem> {
        let mut c = Collector(Vec::new());
        let root = ConfigPath::default();

        let data = self.listen.data.parse::<SocketAddr>();
        let admin = self.listen.admin.parse::<SocketAddr>();
        if data.is_err() {
            c.add(
                root.field("listen").field("data"),
                format!("{:?} is not an address like 0.0.0.0:8080", self.listen.data),
            );
        }
        if admin.is_err() {
            c.add(
                root.field("listen").field("admin"),
                format!(
                    "{:?} is not an address like 0.0.0.0:9090",
                    self.listen.admin
                ),
            );
        }
        if let (Ok(d), Ok(a)) = (data, admin) {
            if d.port() == a.port() && d.port() != 0 {
                c.add(
                    root.field("listen").field("admin"),
                    "must use a different port from listen.data",
                );
            }
        }

        for (i, cidr) in self.listen.trusted_proxies.iter().enumerate() {
            if let Err(e) = crate::types::Cidr::parse(cidr) {
                c.add(root.field("listen").field("trusted_proxies").index(i), e);
            }
        }

        let l = &self.listen;
        match (&l.tls_cert_file, &l.tls_key_file) {
            (Some(_), None) => c.add(
                root.field("listen").field("tls_key_file"),
                "is required with tls_cert_file",
            ),
            (None, Some(_)) => c.add(
                root.field("listen").field("tls_cert_file"),
                "is required with tls_key_file",
            ),
            _ => {}
        }
        for (field, f) in [
            ("tls_cert_file", &l.tls_cert_file),
            ("tls_key_file", &l.tls_key_file),
        ] {
            // The files live on the proxies' hosts: only the shape is
            // checked here; the proxy reads them when it loads.
            if let Some(f) = f.as_ref().filter(|f| !f.starts_with('/')) {
                c.add(
                    root.field("listen").field(field),
                    format!("{f:?} is not an absolute path"),
                );
            }
        }

        let cache = root.field("cache");
        if self.cache.max_bytes.0 < 1 << 20 {
            c.add(
                cache.field("max_bytes"),
                format!("{} is too small; use at least 1MiB", self.cache.max_bytes),
            );
        }
        if self.cache.max_object_bytes > self.cache.max_bytes {
            c.add(
                cache.field("max_object_bytes"),
                format!(
                    "{} exceeds cache.max_bytes ({})",
                    self.cache.max_object_bytes, self.cache.max_bytes
                ),
            );
        }
        if self.cache.max_object_bytes.0 > self.cache.max_fill_bytes() {
            // Such objects could never be buffered, so never cached.
            c.add(
                cache.field("max_fill_bytes"),
                format!(
                    "{} (a quarter of max_bytes unless set) is below cache.max_object_bytes ({}): raise it or lower max_object_bytes",
                    Bytes(self.cache.max_fill_bytes()),
                    self.cache.max_object_bytes
                ),
            );
        }
        if self.cache.lock_timeout.is_some_and(|d| d.0.is_zero()) {
            c.add(cache.field("lock_timeout"), "must be more than 0s");
        }
        if self.cache.ttl.0.is_zero() {
            c.add(cache.field("ttl"), "must be more than 0s; disable caching per route with cache.enabled = false instead");
        }

        let limits = root.field("limits");
        if self.limits.max_header_bytes.0 < 1024 {
            c.add(
                limits.field("max_header_bytes"),
                "must be at least 1KiB for SigV4-signed requests",
            );
        }
        if self.limits.body_timeout.0.is_zero() {
            c.add(limits.field("body_timeout"), "must be more than 0s");
        }
        for (name, d) in [
            ("header_timeout", self.limits.header_timeout),
            ("keepalive_timeout", self.limits.keepalive_timeout),
            ("send_timeout", self.limits.send_timeout),
        ] {
            if d.is_some_and(|d| d.0.is_zero()) {
                c.add(limits.field(name), "must be more than 0s");
            }
        }
        if self.limits.min_send_rate.is_some_and(|r| r.0 == 0) {
            c.add(
                limits.field("min_send_rate"),
                "must be at least 1 byte per second",
            );
        }
        for (name, n) in [
            ("max_connections", self.limits.max_connections),
            ("admin_max_connections", self.limits.admin_max_connections),
        ] {
            if n == Some(0) {
                c.add(limits.field(name), "must be at least 1");
            }
        }
        if let Some(rl) = &self.limits.rate_limit {
            let p = limits.field("rate_limit");
            if !(rl.requests_per_second.is_finite() && rl.requests_per_second > 0.0) {
                c.add(p.field("requests_per_second"), "must be a positive number");
            }
            if rl.burst == 0 {
                c.add(p.field("burst"), "must be at least 1");
            }
            if rl.global && self.redis.is_none() {
                c.add(
                    p.field("global"),
                    "a global rate limit needs the redis section",
                );
            }
            if rl.key == RateKey::Subject && self.buckets.iter().all(|b| b.auth.is_none()) {
                c.add(
                    p.field("key"),
                    "key = subject needs auth on at least one bucket route",
                );
            }
        }

        if self.drain.delay.0 > Duration::from_secs(300) {
            c.add(
                root.field("drain").field("delay"),
                "more than 5m keeps a terminating proxy out of rotation for too long",
            );
        }

        if let Some(r) = &self.redis {
            let p = root.field("redis");
            if r.urls.is_empty() {
                c.add(
                    p.field("urls"),
                    "list at least one redis:// or rediss:// URL",
                );
            }
            for (i, u) in r.urls.iter().enumerate() {
                if !(u.starts_with("redis://") || u.starts_with("rediss://")) {
                    c.add(
                        p.field("urls").index(i),
                        "must start with redis:// or rediss://",
                    );
                }
                // The document is published to S3 and kept in Terraform
                // state; a password in it would be readable by everyone
                // who can read either.
                let authority = u
                    .split_once("://")
                    .map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
                if authority
                    .rsplit_once('@')
                    .is_some_and(|(userinfo, _)| userinfo.contains(':'))
                {
                    c.add(
                        p.field("urls").index(i),
                        "holds a password: name an environment variable in password_env instead",
                    );
                }
            }
            if !r.cluster && r.urls.len() > 1 {
                c.add(
                    p.field("urls"),
                    "several URLs seed a Redis Cluster: set cluster = true, or list one node",
                );
            }
            for (field, var) in [
                ("password_env", &r.password_env),
                ("signing_key_env", &r.signing_key_env),
                ("previous_signing_key_env", &r.previous_signing_key_env),
            ] {
                if let Some(e) = var.as_ref().filter(|e| !env_name_ok(e)) {
                    c.add(
                        p.field(field),
                        format!("{e:?} is not an environment variable name"),
                    );
                }
            }
            if r.previous_signing_key_env.is_some() && r.signing_key_env.is_none() {
                c.add(
                    p.field("previous_signing_key_env"),
                    "a previous key only makes sense beside signing_key_env",
                );
            }
            if let Some(f) = &r.tls_ca_file {
                // The file lives on the proxies' hosts, so only its shape
                // can be checked here; the proxy reads it when it loads.
                if !f.starts_with('/') {
                    c.add(
                        p.field("tls_ca_file"),
                        format!("{f:?} is not an absolute path"),
                    );
                }
                // One trust setting for the whole pool: a cluster cannot
                // mix TLS and plain nodes.
                if let Some(i) = r.urls.iter().position(|u| !u.starts_with("rediss://")) {
                    c.add(
                        p.field("tls_ca_file"),
                        format!("applies to rediss:// URLs, but urls[{i}] is not one"),
                    );
                }
            }
            if r.timeout.0.is_zero() {
                c.add(p.field("timeout"), "must be more than 0s");
            }
            if r.pool_size == 0 {
                c.add(p.field("pool_size"), "must be at least 1");
            }
        }

        if let Some(e) = &self.admin.purge_token_env {
            if !env_name_ok(e) {
                c.add(
                    root.field("admin").field("purge_token_env"),
                    format!("{e:?} is not an environment variable name"),
                );
            }
        }

        let sample = self.access_log.sample;
        if !(0.0..=1.0).contains(&sample) {
            c.add(
                root.field("access_log").field("sample"),
                format!("{sample} must be between 0.0 (errors only) and 1.0 (every request)"),
            );
        }

        if let Some(t) = &self.tracing {
            let p = root.field("tracing");
            if !t.otlp_endpoint.starts_with("http://") {
                c.add(
                    p.field("otlp_endpoint"),
                    format!(
                        "{:?} must be an http:// URL of an OTLP/HTTP receiver (a collector next to the proxy; https is not supported)",
                        t.otlp_endpoint
                    ),
                );
            } else if let Some(why) = url_problem(&t.otlp_endpoint) {
                c.add(p.field("otlp_endpoint"), why);
            }
            if !(0.0..=1.0).contains(&t.sample) {
                c.add(
                    p.field("sample"),
                    format!("{} must be between 0.0 and 1.0", t.sample),
                );
            }
            if t.service_name.trim().is_empty() {
                c.add(p.field("service_name"), "must not be empty");
            }
        }

        if let Some(s) = &self.source {
            let p = root.field("source");
            if parse_s3_url(&s.url).is_none() {
                c.add(
                    p.field("url"),
                    format!("{:?} must look like s3://bucket/key", s.url),
                );
            }
            if s.region.trim().is_empty() {
                c.add(p.field("region"), "must name the config bucket's region");
            }
            if let Some(m) = s.endpoint.as_deref().and_then(url_problem) {
                c.add(p.field("endpoint"), m);
            }
            if s.poll_interval.0 < Duration::from_secs(1) {
                c.add(p.field("poll_interval"), "must be at least 1s");
            }
        }

        let buckets = root.field("buckets");
        if self.buckets.is_empty() {
            c.add(buckets.clone(), "declare at least one bucket route");
        }
        let mut names = BTreeMap::new();
        let mut prefixes = BTreeMap::new();
        for (i, b) in self.buckets.iter().enumerate() {
            let p = buckets.index(i);
            if let Some(first) = names.insert(b.name.as_str(), i) {
                c.add(
                    p.field("name"),
                    format!("route name {:?} is also used by buckets[{first}]", b.name),
                );
            }
            if let Some(first) = prefixes.insert(b.path_prefix.as_str(), i) {
                c.add(
                    p.field("path_prefix"),
                    format!("{:?} is also the prefix of buckets[{first}]", b.path_prefix),
                );
            }
            validate_route(&mut c, &p, b);
        }
        c.0
    }

    /// `Ok` when valid, else every problem.
    pub fn check(&self) -> Result<(), Vec<Problem>> {
        let p = self.validate();
        if p.is_empty() {
            Ok(())
        } else {
            Err(p)
        }
    }
}

fn validate_route(c: &mut Collector, p: &ConfigPath, b: &BucketRoute) {
    if b.name.is_empty()
        || !b
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        c.add(
            p.field("name"),
            format!(
                "{:?} must be letters, digits, '-' or '_' (it labels metrics)",
                b.name
            ),
        );
    }
    if !b.path_prefix.starts_with('/') || !b.path_prefix.ends_with('/') {
        c.add(
            p.field("path_prefix"),
            format!(
                "{:?} must start and end with '/', e.g. \"/assets/\"",
                b.path_prefix
            ),
        );
    } else if b.path_prefix.split('/').any(|s| s == ".." || s == ".") {
        c.add(
            p.field("path_prefix"),
            format!("{:?} must not contain '.' or '..' segments", b.path_prefix),
        );
    }
    if b.replicas.is_empty() {
        c.add(p.field("replicas"), "list at least one replica");
    }
    let mut names = BTreeMap::new();
    let mut priorities = BTreeMap::new();
    for (j, r) in b.replicas.iter().enumerate() {
        let rp = p.field("replicas").index(j);
        if let Some(first) = names.insert(r.name.as_str(), j) {
            c.add(
                rp.field("name"),
                format!(
                    "replica name {:?} is also used by replicas[{first}]",
                    r.name
                ),
            );
        }
        if let Some(first) = priorities.insert(r.priority, j) {
            c.add(rp.field("priority"), format!("priority {} is also used by replicas[{first}]; failover order must be unambiguous", r.priority));
        }
        validate_replica(c, &rp, r);
    }
    if let Some(cors) = &b.cors {
        validate_cors(c, &p.field("cors"), cors);
    }
    let br = p.field("breaker");
    if b.breaker.failure_threshold == 0 {
        c.add(br.field("failure_threshold"), "must be at least 1");
    }
    if b.breaker.success_threshold == 0 {
        c.add(br.field("success_threshold"), "must be at least 1");
    }
    if b.breaker.open_timeout.0.is_zero() {
        c.add(br.field("open_timeout"), "must be more than 0s");
    }
    if b.breaker.half_open_probes == 0 {
        c.add(br.field("half_open_probes"), "must be at least 1");
    }
    if let Some(t) = b.cache.ttl {
        if t.0.is_zero() {
            c.add(
                p.field("cache").field("ttl"),
                "must be more than 0s; set enabled = false to disable caching",
            );
        }
    }
    if b.fallback_on_404 && b.replicas.len() < 2 {
        c.add(
            p.field("fallback_on_404"),
            "needs at least two replicas to fall back to",
        );
    }
    if let Some(a) = &b.auth {
        let ap = p.field("auth");
        match a.algorithm {
            JwtAlgorithm::HS256 => {
                if a.secret_env.is_none() {
                    c.add(
                        ap.field("secret_env"),
                        "HS256 needs the environment variable holding the shared secret",
                    );
                }
                if a.public_key_file.is_some() || a.jwks_file.is_some() || a.jwks_url.is_some() {
                    c.add(
                        ap.field("algorithm"),
                        "HS256 uses secret_env, not public_key_file, jwks_file or jwks_url",
                    );
                }
            }
            JwtAlgorithm::RS256 | JwtAlgorithm::ES256 => {
                let sources = [&a.public_key_file, &a.jwks_file, &a.jwks_url]
                    .iter()
                    .filter(|s| s.is_some())
                    .count();
                if sources != 1 {
                    c.add(
                        ap.field("public_key_file"),
                        "RS256/ES256 need exactly one of public_key_file, jwks_file or jwks_url",
                    );
                }
                if let Some(u) = &a.jwks_url {
                    if let Some(m) = jwks_url_problem(u) {
                        c.add(ap.field("jwks_url"), m);
                    }
                }
                if let Some(r) = a.jwks_refresh {
                    if r.0 < MIN_JWKS_REFRESH {
                        c.add(
                            ap.field("jwks_refresh"),
                            format!(
                                "{r} is shorter than {}s: every proxy would fetch the identity provider's keys that often",
                                MIN_JWKS_REFRESH.as_secs()
                            ),
                        );
                    }
                }
                if a.secret_env.is_some() {
                    c.add(ap.field("secret_env"), "only HS256 uses a shared secret");
                }
                // A JWKS is an identity provider's, which signs tokens for
                // every application it serves: without an audience, a
                // token issued for another application would open this one.
                if (a.jwks_file.is_some() || a.jwks_url.is_some())
                    && a.audience.as_deref().is_none_or(str::is_empty)
                {
                    c.add(
                        ap.field("audience"),
                        "is required with a JWKS: an identity provider's keys sign tokens for all its applications, so the audience says which are for this route",
                    );
                }
            }
        }
        if let Some(e) = &a.secret_env {
            if !env_name_ok(e) {
                c.add(
                    ap.field("secret_env"),
                    format!("{e:?} is not an environment variable name"),
                );
            }
        }
        let mut seen = BTreeSet::new();
        for (k, rule) in a.claim_rules.iter().enumerate() {
            let rp = ap.field("claim_rules").index(k);
            if rule.claim.is_empty() {
                c.add(rp.field("claim"), "must name a claim");
            }
            if rule.prefix.starts_with('/') {
                c.add(
                    rp.field("prefix"),
                    "is relative to the route: drop the leading '/'",
                );
            }
            if !seen.insert((&rule.claim, &rule.value, &rule.prefix)) {
                c.add(rp.clone(), "duplicates an earlier rule");
            }
        }
    }
}

/// Shortest `jwks_refresh`: a second keeps tests quick; anything shorter
/// is a load on the identity provider, not a freshness gain.
const MIN_JWKS_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Why `u` cannot be a JWKS URL: keys decide who gets in, so they come
/// over TLS, or from a sidecar on this host.
fn jwks_url_problem(u: &str) -> Option<String> {
    if let Some(rest) = u.strip_prefix("http://") {
        let host = rest.split(['/', '?']).next().unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let loopback = matches!(host, "localhost" | "[::1]")
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| a.is_loopback());
        if !loopback {
            return Some(format!(
                "{u:?} is plain http to another host: the keys that decide who gets in must come over https"
            ));
        }
    } else if !u.starts_with("https://") {
        return Some(format!("{u:?} is not an https:// URL"));
    }
    url_problem(u)
}

fn validate_replica(c: &mut Collector, p: &ConfigPath, r: &Replica) {
    if r.name.is_empty() {
        c.add(p.field("name"), "must not be empty");
    }
    if let Some(m) = bucket_name_problem(&r.bucket) {
        c.add(p.field("bucket"), m);
    }
    let region_ok = !r.region.is_empty()
        && r.region.split('-').count() >= 3
        && r.region
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
    if !region_ok {
        c.add(
            p.field("region"),
            format!("{:?} is not a region like eu-west-1", r.region),
        );
    }
    if let Some(m) = r.endpoint.as_deref().and_then(url_problem) {
        c.add(p.field("endpoint"), m);
    }
    if let Some(f) = &r.tls_ca_file {
        // The file lives on the proxies' hosts: only its shape is checked
        // here; the proxy reads it when it loads.
        if !f.starts_with('/') {
            c.add(
                p.field("tls_ca_file"),
                format!("{f:?} is not an absolute path"),
            );
        }
        if !r
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("https://"))
        {
            c.add(
                p.field("tls_ca_file"),
                "applies to an https:// endpoint (AWS's own endpoints chain to public roots)",
            );
        }
    }
    if r.timeout.0.is_zero() {
        c.add(p.field("timeout"), "must be more than 0s");
    } else if r.timeout.0 > MAX_REPLICA_TIMEOUT {
        c.add(
            p.field("timeout"),
            format!(
                "{} is longer than {}s; failover would come too late to help",
                r.timeout,
                MAX_REPLICA_TIMEOUT.as_secs()
            ),
        );
    }
    if let Some(cr) = &r.credentials {
        let cp = p.field("credentials");
        for (f, v) in [
            ("access_key_id_env", Some(&cr.access_key_id_env)),
            ("secret_access_key_env", Some(&cr.secret_access_key_env)),
            ("session_token_env", cr.session_token_env.as_ref()),
        ] {
            if let Some(v) = v {
                if !env_name_ok(v) {
                    c.add(cp.field(f), format!("{v:?} is not an environment variable name (the value itself never belongs in the config)"));
                }
            }
        }
    }
}

fn validate_cors(c: &mut Collector, p: &ConfigPath, cors: &crate::types::Cors) {
    if cors.allowed_origins.is_empty() {
        c.add(
            p.field("allowed_origins"),
            "list at least one origin, or \"*\"",
        );
    }
    for (i, o) in cors.allowed_origins.iter().enumerate() {
        let ok = o == "*"
            || o.strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"))
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
        if !ok {
            c.add(
                p.field("allowed_origins").index(i),
                format!("{o:?} is not an origin like https://app.example.com (scheme and host, no path) or \"*\""),
            );
        }
    }
    for (i, m) in cors.allowed_methods.iter().enumerate() {
        if !matches!(m.as_str(), "GET" | "HEAD") {
            c.add(
                p.field("allowed_methods").index(i),
                format!("{m:?}: this proxy serves GET and HEAD only"),
            );
        }
    }
    if cors.allow_credentials && cors.allowed_origins.iter().any(|o| o == "*") {
        c.add(
            p.field("allow_credentials"),
            "browsers refuse credentials with a \"*\" origin: list the origins",
        );
    }
    if cors
        .max_age
        .is_some_and(|d| d.0 > Duration::from_secs(86_400))
    {
        c.add(
            p.field("max_age"),
            "more than 24h: browsers cap a preflight's lifetime well below that",
        );
    }
}
