//! The fleet config: what a tandem-proxy serves and how. Every default is
//! a named constant with the reason for its value. Unknown fields are
//! refused, so a typo is an error instead of a silently ignored setting.

use serde::{Deserialize, Serialize};

use crate::units::{Bytes, Dur};

/// Data listener: all interfaces on the port our manifests expose.
pub const DEFAULT_DATA_LISTEN: &str = "0.0.0.0:8080";
/// Admin listener, separate so probes and scrapes never queue behind
/// object downloads.
pub const DEFAULT_ADMIN_LISTEN: &str = "0.0.0.0:9090";
/// In-memory cache: a few thousand hot objects of tens of KiB, while the
/// pod the manifests size from it (1.25 x cache + fill budget + 96 MiB,
/// 480 MiB) fits in half a GiB.
pub const DEFAULT_CACHE_MAX_BYTES: Bytes = Bytes(256 << 20);
/// Objects above this bypass the memory cache: a few large objects would
/// otherwise evict thousands of small hot ones.
pub const DEFAULT_CACHE_MAX_OBJECT_BYTES: Bytes = Bytes(8 << 20);
/// How long a cached object is served without revalidation; short enough
/// that an overwritten object is seen within minutes.
pub const DEFAULT_CACHE_TTL: Dur = Dur::secs(300);
/// Per-replica connect + first-byte timeout: a healthy S3 answers the first
/// byte of a GET in tens of milliseconds; two seconds only trips on trouble.
pub const DEFAULT_REPLICA_TIMEOUT: Dur = Dur::secs(2);
/// Consecutive failures that open a replica's breaker: enough to ignore a
/// single reset, few enough that a dead region costs only a handful of
/// slow requests.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
/// Consecutive successes in half-open state that close the breaker again.
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 2;
/// How long an open breaker waits before probing the replica again.
pub const DEFAULT_OPEN_TIMEOUT: Dur = Dur::secs(10);
/// Concurrent trial requests allowed through a half-open breaker; one keeps
/// a still-broken replica from taking a burst of real traffic.
pub const DEFAULT_HALF_OPEN_PROBES: u32 = 1;
/// Request header limit; S3 requests with SigV4 fit comfortably in 16 KiB
/// and larger ones are almost always abuse.
pub const DEFAULT_MAX_HEADER_BYTES: Bytes = Bytes(16 << 10);
/// Longest time one response body may take to stream, so stalled clients
/// cannot hold connections forever (1 GiB at ~4 MB/s).
pub const DEFAULT_BODY_TIMEOUT: Dur = Dur::secs(300);
/// A client must finish its request head this long after the connection
/// opens, or after the first byte of a later request: an honest client
/// sends a head in one round trip, so ten seconds covers the slowest mobile
/// link with retransmits and frees a slow-loris socket six times sooner
/// than nginx's 60 s `client_header_timeout`.
pub const DEFAULT_HEADER_TIMEOUT: Dur = Dur::secs(10);
/// A JWKS fetched from `jwks_url` is fetched again this often. Identity
/// providers publish a new key well before they sign with it, so this only
/// bounds how long a key they removed (a revocation) is still believed;
/// ten minutes keeps that short at six requests an hour per proxy.
pub const DEFAULT_JWKS_REFRESH: Dur = Dur::secs(600);
/// An idle keep-alive connection is closed after this long without a new
/// request. Longer than the 60 s idle timeout of AWS load balancers (and
/// nginx's own 75 s default), so the proxy never closes a connection a
/// load balancer is about to reuse, which would turn into a 502.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Dur = Dur::secs(75);
/// A response whose client takes no bytes for this long is dropped, as
/// nginx's `send_timeout` (the same 60 s) does.
pub const DEFAULT_SEND_TIMEOUT: Dur = Dur::secs(60);
/// Once a response has run for `send_timeout`, its client must have taken
/// at least this many bytes per second on average, or it is dropped: far
/// below any real network path (2G moves 4x this), so only broken or
/// hostile readers trip it, and a trickle of one byte a minute cannot hold
/// a connection for the whole `body_timeout`.
pub const DEFAULT_MIN_SEND_RATE: Bytes = Bytes(1 << 10);
/// Open connections per data listener; past it new ones are closed at
/// once. An idle connection costs about 10 KiB (buffers and task), so the
/// cap holds them to about 40 MiB, and it stays well under the descriptor
/// limit the proxy raises itself to at start.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4096;
/// Open connections to the admin listener: probes and scrapes need a
/// handful, and a budget of its own keeps /ready and /metrics answering
/// while the data listener is flooded.
pub const DEFAULT_ADMIN_MAX_CONNECTIONS: u32 = 64;
/// How long a request waits for another request's fetch of the same object
/// before fetching for itself, uncached: nginx's
/// `proxy_cache_lock_timeout` default, long enough for a healthy fill of a
/// few MiB and short enough that a stalled fill does not stall its waiters.
pub const DEFAULT_LOCK_TIMEOUT: Dur = Dur::secs(5);
/// How long /ready reports 503 before the listener closes on SIGTERM:
/// long enough for load balancers to notice.
pub const DEFAULT_DRAIN_DELAY: Dur = Dur::secs(5);
/// How long in-flight requests get to finish after accepting stops.
pub const DEFAULT_DRAIN_GRACE: Dur = Dur::secs(30);
/// Replica priority when none is given: replicas are tried lowest first.
pub const DEFAULT_PRIORITY: u32 = 100;
/// Config source polling: a rollout reaches the fleet within seconds while
/// costing one conditional GET per proxy per interval.
pub const DEFAULT_POLL_INTERVAL: Dur = Dur::secs(5);
/// Redis calls time out fast: a slow shared tier must not slow the
/// proxy, which can always fall back to memory and origin.
pub const DEFAULT_REDIS_TIMEOUT: Dur = Dur::millis(50);
/// Only objects up to this size go to Redis; large values block its single
/// thread for everyone.
pub const DEFAULT_REDIS_MAX_OBJECT_BYTES: Bytes = Bytes(1 << 20);
/// Connections per proxy to Redis.
pub const DEFAULT_REDIS_POOL_SIZE: u32 = 16;

fn default_data_listen() -> String {
    DEFAULT_DATA_LISTEN.into()
}
fn default_admin_listen() -> String {
    DEFAULT_ADMIN_LISTEN.into()
}
fn default_priority() -> u32 {
    DEFAULT_PRIORITY
}
fn default_replica_timeout() -> Dur {
    DEFAULT_REPLICA_TIMEOUT
}
fn default_true() -> bool {
    true
}

/// The whole fleet config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// Listen addresses.
    #[serde(default)]
    pub listen: Listen,
    /// The shared in-memory cache.
    #[serde(default)]
    pub cache: Cache,
    /// Request limits.
    #[serde(default)]
    pub limits: Limits,
    /// Shutdown behaviour on SIGTERM.
    #[serde(default)]
    pub drain: Drain,
    /// Optional Redis/Valkey second cache tier shared by the fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<Redis>,
    /// Admin API settings.
    #[serde(default)]
    pub admin: Admin,
    /// The per-request access log (JSON lines on stdout). Left out of a
    /// serialized document while it is the default, so a document
    /// published for a fleet still running proxies older than the section
    /// (which refuse unknown fields) stays readable to them.
    #[serde(default, skip_serializing_if = "AccessLog::is_default")]
    pub access_log: AccessLog,
    /// OpenTelemetry traces over OTLP/HTTP; off without this section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
    /// Where the proxy reloads this config from, when not a local file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Bucket routes, matched by longest path prefix.
    pub buckets: Vec<BucketRoute>,
}

/// Listen addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// S3 data listener, `host:port`.
    #[serde(default = "default_data_listen")]
    pub data: String,
    /// Admin listener for /health, /ready, /metrics, /status and purge.
    #[serde(default = "default_admin_listen")]
    pub admin: String,
    /// Peers (CIDRs, e.g. `10.0.0.0/8`) whose `X-Forwarded-For` and
    /// `Forwarded` headers are believed: a load balancer in front. The
    /// client is the right-most address that is not one of them. Empty:
    /// the TCP peer is the client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// Every data connection starts with a PROXY protocol header (v1 or
    /// v2), as network load balancers send it; the client is its source
    /// address. Only for a listener reachable through that balancer alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub proxy_protocol: bool,
    /// PEM certificate chain (absolute path on the proxies' hosts) the data
    /// listener serves TLS with; with `tls_key_file`. Both are read again
    /// on every reload (SIGHUP), so a renewed certificate needs no restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<String>,
    /// PEM private key of `tls_cert_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<String>,
}

impl Default for Listen {
    fn default() -> Listen {
        Listen {
            data: default_data_listen(),
            admin: default_admin_listen(),
            trusted_proxies: Vec::new(),
            proxy_protocol: false,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// A CIDR block (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub addr: std::net::IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `addr/len` or a bare address (a /32 or /128).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a CIDR like 10.0.0.0/8 or 2001:db8::/32"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside the block (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The in-memory cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// Total bytes of cached bodies.
    #[serde(default = "Cache::default_max_bytes")]
    pub max_bytes: Bytes,
    /// Largest object cached.
    #[serde(default = "Cache::default_max_object_bytes")]
    pub max_object_bytes: Bytes,
    /// Freshness lifetime.
    #[serde(default = "Cache::default_ttl")]
    pub ttl: Dur,
    /// Serve a stale copy for up to this long past its TTL when every
    /// replica fails; absent disables it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_if_error: Option<Dur>,
    /// Bytes all fills in flight may hold before they are stored; past it a
    /// miss streams through uncached. Absent: a quarter of `max_bytes`
    /// ([`Cache::max_fill_bytes`]). Optional, like every setting added
    /// after the first release, so a document published by an older
    /// provider keeps its `config_version` on a newer proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fill_bytes: Option<Bytes>,
    /// How long a request waits for another request's fetch of the same
    /// object before fetching for itself, uncached. Absent:
    /// [`DEFAULT_LOCK_TIMEOUT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_timeout: Option<Dur>,
}

impl Cache {
    fn default_max_bytes() -> Bytes {
        DEFAULT_CACHE_MAX_BYTES
    }
    fn default_max_object_bytes() -> Bytes {
        DEFAULT_CACHE_MAX_OBJECT_BYTES
    }
    fn default_ttl() -> Dur {
        DEFAULT_CACHE_TTL
    }

    /// The fill budget: `max_fill_bytes`, else a quarter of `max_bytes`
    /// (in-flight fills then add at most 25 % to the cache's memory).
    pub fn max_fill_bytes(&self) -> u64 {
        self.max_fill_bytes.map_or(self.max_bytes.0 / 4, |b| b.0)
    }

    /// `lock_timeout`, or its default.
    pub fn lock_timeout(&self) -> std::time::Duration {
        self.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT).0
    }
}

impl Default for Cache {
    fn default() -> Cache {
        Cache {
            max_bytes: DEFAULT_CACHE_MAX_BYTES,
            max_object_bytes: DEFAULT_CACHE_MAX_OBJECT_BYTES,
            ttl: DEFAULT_CACHE_TTL,
            stale_if_error: None,
            max_fill_bytes: None,
            lock_timeout: None,
        }
    }
}

/// Request limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request header block.
    #[serde(default = "Limits::default_max_header_bytes")]
    pub max_header_bytes: Bytes,
    /// Longest time to stream one response body.
    #[serde(default = "Limits::default_body_timeout")]
    pub body_timeout: Dur,
    /// Per-client rate limit; absent means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Time to receive a request head: from accept for the first request,
    /// from its first byte for later ones. Absent: [`DEFAULT_HEADER_TIMEOUT`].
    /// (The settings below are optional for the reason given on
    /// [`Cache::max_fill_bytes`].)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_timeout: Option<Dur>,
    /// Idle time allowed between requests on a keep-alive connection.
    /// Absent: [`DEFAULT_KEEPALIVE_TIMEOUT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_timeout: Option<Dur>,
    /// Time a client may take no response bytes at all. Absent:
    /// [`DEFAULT_SEND_TIMEOUT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_timeout: Option<Dur>,
    /// Average rate, in bytes per second, a client must take a response at
    /// once it has run for `send_timeout`. Absent: [`DEFAULT_MIN_SEND_RATE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_send_rate: Option<Bytes>,
    /// Open connections on the data listener. Absent:
    /// [`DEFAULT_MAX_CONNECTIONS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Open connections on the admin listener. Absent:
    /// [`DEFAULT_ADMIN_MAX_CONNECTIONS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_max_connections: Option<u32>,
}

impl Limits {
    fn default_max_header_bytes() -> Bytes {
        DEFAULT_MAX_HEADER_BYTES
    }
    fn default_body_timeout() -> Dur {
        DEFAULT_BODY_TIMEOUT
    }

    /// `header_timeout`, or its default.
    pub fn header_timeout(&self) -> std::time::Duration {
        self.header_timeout.unwrap_or(DEFAULT_HEADER_TIMEOUT).0
    }

    /// `keepalive_timeout`, or its default.
    pub fn keepalive_timeout(&self) -> std::time::Duration {
        self.keepalive_timeout
            .unwrap_or(DEFAULT_KEEPALIVE_TIMEOUT)
            .0
    }

    /// `send_timeout`, or its default.
    pub fn send_timeout(&self) -> std::time::Duration {
        self.send_timeout.unwrap_or(DEFAULT_SEND_TIMEOUT).0
    }

    /// `min_send_rate` in bytes per second, or its default.
    pub fn min_send_rate(&self) -> u64 {
        self.min_send_rate.unwrap_or(DEFAULT_MIN_SEND_RATE).0
    }

    /// `max_connections`, or its default.
    pub fn max_connections(&self) -> u32 {
        self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS)
    }

    /// `admin_max_connections`, or its default.
    pub fn admin_max_connections(&self) -> u32 {
        self.admin_max_connections
            .unwrap_or(DEFAULT_ADMIN_MAX_CONNECTIONS)
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            rate_limit: None,
            header_timeout: None,
            keepalive_timeout: None,
            send_timeout: None,
            min_send_rate: None,
            max_connections: None,
            admin_max_connections: None,
        }
    }
}

/// What identifies a client for rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateKey {
    /// The client IP address.
    Ip,
    /// The JWT `sub` claim (needs `auth` on the bucket).
    Subject,
}

/// A token bucket per client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub requests_per_second: f64,
    /// Burst above the sustained rate.
    pub burst: u32,
    /// What identifies a client.
    pub key: RateKey,
    /// Share the bucket across the fleet through Redis.
    #[serde(default)]
    pub global: bool,
}

/// SIGTERM behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drain {
    /// Time /ready reports 503 before accepting stops.
    #[serde(default = "Drain::default_delay")]
    pub delay: Dur,
    /// Time in-flight requests get after accepting stops.
    #[serde(default = "Drain::default_grace")]
    pub grace: Dur,
}

impl Drain {
    fn default_delay() -> Dur {
        DEFAULT_DRAIN_DELAY
    }
    fn default_grace() -> Dur {
        DEFAULT_DRAIN_GRACE
    }
}

impl Default for Drain {
    fn default() -> Drain {
        Drain {
            delay: DEFAULT_DRAIN_DELAY,
            grace: DEFAULT_DRAIN_GRACE,
        }
    }
}

/// The Redis/Valkey second tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redis {
    /// `redis://host:port` or `rediss://...`; several for a cluster's seeds.
    pub urls: Vec<String>,
    /// Speak Redis Cluster (hash-slot aware) rather than a single node.
    #[serde(default)]
    pub cluster: bool,
    /// Environment variable holding the password, never the password itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Environment variable holding the fleet's signing key: every value
    /// and purge notice carries an HMAC-SHA256 under it, and one that does
    /// not verify is ignored. Without it anyone who can write to Redis can
    /// serve any body to the fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_env: Option<String>,
    /// Environment variable holding the previous signing key during a
    /// rotation: still accepted, never used to sign, so rolling the key
    /// does not empty the fleet's cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_signing_key_env: Option<String>,
    /// PEM file of the CA certificates that `rediss://` servers must chain
    /// to, for a Redis with a private CA. Without it the Mozilla roots
    /// compiled into the proxy are used (enough for managed services such
    /// as ElastiCache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<String>,
    /// Per-call timeout.
    #[serde(default = "Redis::default_timeout")]
    pub timeout: Dur,
    /// Connections per proxy.
    #[serde(default = "Redis::default_pool_size")]
    pub pool_size: u32,
    /// Largest object stored in Redis.
    #[serde(default = "Redis::default_max_object_bytes")]
    pub max_object_bytes: Bytes,
}

impl Redis {
    fn default_timeout() -> Dur {
        DEFAULT_REDIS_TIMEOUT
    }
    fn default_pool_size() -> u32 {
        DEFAULT_REDIS_POOL_SIZE
    }
    fn default_max_object_bytes() -> Bytes {
        DEFAULT_REDIS_MAX_OBJECT_BYTES
    }
}

/// Admin API settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Environment variable holding the bearer token for purge; purge is
    /// disabled without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_token_env: Option<String>,
}

/// Access log: on by default, because an operator's first question after
/// an incident ("what did client X get at 14:02?") needs it, and a line
/// per request costs little next to the request.
pub const DEFAULT_ACCESS_LOG_ENABLED: bool = true;
/// Every request is logged by default; lower it only when the log volume
/// itself is the problem (errors are logged whatever the rate).
pub const DEFAULT_ACCESS_LOG_SAMPLE: f64 = 1.0;

/// The per-request access log: one JSON object per line on stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    /// Writes the log.
    #[serde(default = "AccessLog::default_enabled")]
    pub enabled: bool,
    /// Share of successful requests logged, 0.0 to 1.0. Errors (status
    /// 400 and above) and bodies cut off are always logged.
    #[serde(default = "AccessLog::default_sample")]
    pub sample: f64,
    /// Logs a SHA-256 prefix of the object key instead of the key, for
    /// buckets whose key names are personal data. The same key always
    /// gives the same hash, so one object's requests can still be found.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hash_keys: bool,
}

impl AccessLog {
    fn is_default(&self) -> bool {
        *self == AccessLog::default()
    }
    fn default_enabled() -> bool {
        DEFAULT_ACCESS_LOG_ENABLED
    }
    fn default_sample() -> f64 {
        DEFAULT_ACCESS_LOG_SAMPLE
    }
}

impl Default for AccessLog {
    fn default() -> AccessLog {
        AccessLog {
            enabled: DEFAULT_ACCESS_LOG_ENABLED,
            sample: DEFAULT_ACCESS_LOG_SAMPLE,
            hash_keys: false,
        }
    }
}

/// Share of requests traced when the client sent no sampling decision
/// (`traceparent`): 1% of a proxy serving 10k requests/s is 100 traces/s,
/// which one collector takes without planning; a request with a sampled
/// `traceparent` is always traced, so a client can ask for its trace.
pub const DEFAULT_TRACING_SAMPLE: f64 = 0.01;
/// `service.name` of the spans: what trace UIs list the proxy as.
pub const DEFAULT_TRACING_SERVICE_NAME: &str = "tandem-proxy";

/// OpenTelemetry tracing: spans of each sampled request (the request,
/// its cache lookup, its Redis lookup, each origin attempt) posted as
/// OTLP/HTTP JSON to a collector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tracing {
    /// `http://host:port/v1/traces` of an OTLP/HTTP receiver, usually a
    /// collector next to the proxy (plain HTTP only).
    pub otlp_endpoint: String,
    /// Share of requests traced, 0.0 to 1.0, unless the client decided.
    #[serde(default = "Tracing::default_sample")]
    pub sample: f64,
    /// `service.name` resource attribute.
    #[serde(default = "Tracing::default_service_name")]
    pub service_name: String,
}

impl Tracing {
    fn default_sample() -> f64 {
        DEFAULT_TRACING_SAMPLE
    }
    fn default_service_name() -> String {
        DEFAULT_TRACING_SERVICE_NAME.to_string()
    }
}

/// Where the proxy polls for this config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// `s3://bucket/key` of the published document.
    pub url: String,
    /// Region of the config bucket.
    pub region: String,
    /// Custom S3 endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Conditional GET interval.
    #[serde(default = "Source::default_poll_interval")]
    pub poll_interval: Dur,
}

impl Source {
    fn default_poll_interval() -> Dur {
        DEFAULT_POLL_INTERVAL
    }
}

/// One bucket route: requests under `path_prefix` are served from its
/// replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketRoute {
    /// Route name, used in metrics and /status.
    pub name: String,
    /// URL path prefix, starting and ending with `/`, e.g. `/assets/`.
    pub path_prefix: String,
    /// Replica buckets, tried by ascending priority.
    pub replicas: Vec<Replica>,
    /// Circuit breaker settings for each replica.
    #[serde(default)]
    pub breaker: Breaker,
    /// Caching of this route's objects.
    #[serde(default)]
    pub cache: CachePolicy,
    /// On a 404, also try lower-priority replicas (for bucket migrations).
    #[serde(default)]
    pub fallback_on_404: bool,
    /// JWT authentication; absent means public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<JwtAuth>,
    /// CORS for browser clients; absent means no CORS headers (browsers
    /// then refuse cross-origin reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
}

/// How long browsers may cache a preflight answer when `max_age` is not
/// given: ten minutes, Chrome's own cap on `Access-Control-Max-Age`.
pub const DEFAULT_CORS_MAX_AGE: Dur = Dur::secs(600);

/// Cross-origin resource sharing of a route, answered by the proxy itself
/// (a preflight never reaches a replica).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// Origins allowed to read, e.g. `https://app.example.com`, or `*`.
    pub allowed_origins: Vec<String>,
    /// Methods allowed: `GET` and `HEAD` (all this proxy serves) when
    /// empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_methods: Vec<String>,
    /// Request headers a browser may send (e.g. `Authorization`, `Range`),
    /// or `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
    /// Response headers scripts may read beyond the CORS-safelisted ones
    /// (e.g. `ETag`, `x-amz-meta-owner`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// How long a browser may cache a preflight answer. Absent:
    /// [`DEFAULT_CORS_MAX_AGE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Dur>,
    /// Allow credentials (cookies, `Authorization`) on cross-origin
    /// requests; not with `*` origins.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_credentials: bool,
}

/// One replica bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replica {
    /// Replica name, unique within the route.
    pub name: String,
    /// S3 bucket name.
    pub bucket: String,
    /// AWS region of the bucket (also used for signing).
    pub region: String,
    /// Custom S3 endpoint; real AWS when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`).
    #[serde(default)]
    pub path_style: bool,
    /// Lower is tried first.
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// Connect + first-byte timeout.
    #[serde(default = "default_replica_timeout")]
    pub timeout: Dur,
    /// Credentials, by environment variable name; the standard AWS chain
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// PEM file (absolute path on the proxies' hosts) of the CA
    /// certificates an https `endpoint` must chain to, for an origin with
    /// a private CA (MinIO, Ceph RGW). It replaces the Mozilla roots for
    /// this replica only; re-read on every reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<String>,
}

/// Credentials referenced by environment variable names, so the published
/// document never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Variable holding the access key ID.
    pub access_key_id_env: String,
    /// Variable holding the secret access key.
    pub secret_access_key_env: String,
    /// Variable holding a session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_env: Option<String>,
}

/// Circuit breaker settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Breaker {
    /// Consecutive failures that open it.
    #[serde(default = "Breaker::default_failure_threshold")]
    pub failure_threshold: u32,
    /// Consecutive half-open successes that close it.
    #[serde(default = "Breaker::default_success_threshold")]
    pub success_threshold: u32,
    /// Time open before probing.
    #[serde(default = "Breaker::default_open_timeout")]
    pub open_timeout: Dur,
    /// Concurrent probes when half-open.
    #[serde(default = "Breaker::default_half_open_probes")]
    pub half_open_probes: u32,
}

impl Breaker {
    fn default_failure_threshold() -> u32 {
        DEFAULT_FAILURE_THRESHOLD
    }
    fn default_success_threshold() -> u32 {
        DEFAULT_SUCCESS_THRESHOLD
    }
    fn default_open_timeout() -> Dur {
        DEFAULT_OPEN_TIMEOUT
    }
    fn default_half_open_probes() -> u32 {
        DEFAULT_HALF_OPEN_PROBES
    }
}

impl Default for Breaker {
    fn default() -> Breaker {
        Breaker {
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            success_threshold: DEFAULT_SUCCESS_THRESHOLD,
            open_timeout: DEFAULT_OPEN_TIMEOUT,
            half_open_probes: DEFAULT_HALF_OPEN_PROBES,
        }
    }
}

/// Per-route caching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachePolicy {
    /// Cache this route's objects.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Override of the global TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Dur>,
}

impl Default for CachePolicy {
    fn default() -> CachePolicy {
        CachePolicy {
            enabled: true,
            ttl: None,
        }
    }
}

/// JWT signature algorithms accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    HS256,
    /// RSA PKCS#1 v1.5 with SHA-256.
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

/// JWT authentication of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtAuth {
    /// Accepted algorithm.
    pub algorithm: JwtAlgorithm,
    /// Environment variable holding the HS256 secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Path of a PEM public key (RS256/ES256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_file: Option<String>,
    /// Path of a JWKS document (RS256/ES256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<String>,
    /// URL of the identity provider's JWKS (RS256/ES256): `https://`, or
    /// `http://` to a loopback address (a local sidecar). Fetched at start,
    /// every `jwks_refresh`, and early when a token names a key the proxy
    /// does not know; the last good set is kept when a fetch fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// How often `jwks_url` is fetched again. Absent:
    /// [`DEFAULT_JWKS_REFRESH`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_refresh: Option<Dur>,
    /// Required `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Required `aud`. Required itself with a JWKS (file or URL): an identity
    /// provider's keys sign tokens for all its applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Key prefixes allowed per claim value; none means any key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claim_rules: Vec<ClaimRule>,
}

impl JwtAuth {
    /// `jwks_refresh`, or its default.
    pub fn jwks_refresh(&self) -> std::time::Duration {
        self.jwks_refresh.unwrap_or(DEFAULT_JWKS_REFRESH).0
    }
}

/// Allows keys under `prefix` to tokens whose `claim` equals `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRule {
    /// Claim name, e.g. `tenant`.
    pub claim: String,
    /// Required value.
    pub value: String,
    /// Allowed key prefix within the route.
    pub prefix: String,
}
