//! Prometheus text exposition, hand-written rather than through the
//! `prometheus-client` crate: our families are a few dozen counters and
//! three histograms with labels known as strings, the text format is a
//! page of code, and the crate would add its own registry and encoder
//! types without making the hot path cheaper than what is here.
//!
//! The hot path takes no lock for writing: each series is an atomic. The
//! per-request series of a route and its replicas are resolved once per
//! loaded config into [`RouteHandles`], so a request's cache, latency,
//! status, bytes and origin figures are plain atomic adds. Other series
//! are found under a shared read lock (readers never wait for each other;
//! the write lock is taken only the first time a label set is seen).
//! Histograms keep one atomic per bucket, so an observation is two atomic
//! adds.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

/// Latency histogram bounds in seconds: sub-millisecond hits up to
/// multi-second large downloads.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One histogram series: a count per bucket (not cumulative; summed when
/// rendered), the last slot for values above every bound.
pub struct Histogram {
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

type Labels = Box<[Box<str>]>;

/// Series of one family, keyed by label values; each shared, so a
/// resolved handle and the family see the same atomics.
struct Series<T>(RwLock<Vec<(Labels, Arc<T>)>>);

impl<T> Default for Series<T> {
    fn default() -> Self {
        Series(RwLock::new(Vec::new()))
    }
}

fn same(k: &Labels, labels: &[&str]) -> bool {
    k.len() == labels.len() && k.iter().zip(labels).all(|(a, b)| &**a == *b)
}

impl<T> Series<T> {
    /// Runs `f` on the series with these label values, making it with
    /// `new` the first time.
    fn with<R>(&self, labels: &[&str], new: impl FnOnce() -> T, f: impl Fn(&Arc<T>) -> R) -> R {
        {
            let v = self.0.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, t)) = v.iter().find(|(k, _)| same(k, labels)) {
                return f(t);
            }
        }
        let mut v = self.0.write().unwrap_or_else(|p| p.into_inner());
        if let Some((_, t)) = v.iter().find(|(k, _)| same(k, labels)) {
            return f(t);
        }
        v.push((
            labels.iter().map(|s| Box::from(*s)).collect(),
            Arc::new(new()),
        ));
        f(&v[v.len() - 1].1)
    }

    /// Every series, ordered by label values (stable output).
    fn sorted<R>(&self, f: impl Fn(&T) -> R) -> Vec<(Labels, R)> {
        let v = self.0.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(Labels, R)> = v.iter().map(|(k, t)| (k.clone(), f(t))).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// A counter family keyed by label values.
#[derive(Default)]
pub struct CounterVec(Series<AtomicU64>);

impl CounterVec {
    /// Adds `n` to the series with these label values.
    pub fn add(&self, labels: &[&str], n: u64) {
        self.0.with(labels, AtomicU64::default, |c| {
            c.fetch_add(n, Ordering::Relaxed)
        });
    }

    /// Adds one.
    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1);
    }

    /// The series with these label values, to add to without a lookup.
    pub fn handle(&self, labels: &[&str]) -> Arc<AtomicU64> {
        self.0.with(labels, AtomicU64::default, Arc::clone)
    }

    /// The value of one series (tests and /status).
    pub fn get(&self, labels: &[&str]) -> u64 {
        let v = self.0 .0.read().unwrap_or_else(|p| p.into_inner());
        v.iter()
            .find(|(k, _)| same(k, labels))
            .map_or(0, |(_, c)| c.load(Ordering::Relaxed))
    }

    /// Sum over every series.
    pub fn sum_all(&self) -> u64 {
        let v = self.0 .0.read().unwrap_or_else(|p| p.into_inner());
        v.iter().map(|(_, c)| c.load(Ordering::Relaxed)).sum()
    }

    /// Sum over series whose first label is `first`.
    pub fn sum_first(&self, first: &str) -> u64 {
        let v = self.0 .0.read().unwrap_or_else(|p| p.into_inner());
        v.iter()
            .filter(|(k, _)| k.first().is_some_and(|k| &**k == first))
            .map(|(_, c)| c.load(Ordering::Relaxed))
            .sum()
    }

    fn render(&self, out: &mut String, name: &str, help: &str, labels: &[&str]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (vals, v) in self.0.sorted(|c| c.load(Ordering::Relaxed)) {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {v}");
            } else {
                let _ = writeln!(out, "{name}{{{}}} {v}", label_set(labels, &vals));
            }
        }
    }
}

/// A latency histogram family keyed by label values.
#[derive(Default)]
pub struct HistogramVec(Series<Histogram>);

impl HistogramVec {
    /// Records one duration.
    pub fn observe(&self, labels: &[&str], d: Duration) {
        self.0.with(labels, Histogram::new, |h| h.observe(d));
    }

    /// The series with these label values, to observe without a lookup.
    pub fn handle(&self, labels: &[&str]) -> Arc<Histogram> {
        self.0.with(labels, Histogram::new, Arc::clone)
    }

    /// Observations recorded in one series (tests).
    pub fn count(&self, labels: &[&str]) -> u64 {
        let v = self.0 .0.read().unwrap_or_else(|p| p.into_inner());
        v.iter()
            .find(|(k, _)| same(k, labels))
            .map_or(0, |(_, h)| h.count())
    }

    fn render(&self, o: &mut String, name: &str, help: &str, labels: &[&str]) {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} histogram");
        let all = self.0.sorted(|h| {
            let counts: Vec<u64> = h.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            (counts, h.sum_ns.load(Ordering::Relaxed))
        });
        for (vals, (counts, sum_ns)) in all {
            let l = label_set(labels, &vals);
            let sep = if l.is_empty() { "" } else { "," };
            let mut cum = 0;
            for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
                cum += counts[i];
                let _ = writeln!(o, "{name}_bucket{{{l}{sep}le=\"{b}\"}} {cum}");
            }
            cum += counts[LATENCY_BUCKETS.len()];
            let _ = writeln!(o, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {cum}");
            let sum = sum_ns as f64 / 1e9;
            if l.is_empty() {
                let _ = writeln!(o, "{name}_sum {sum}\n{name}_count {cum}");
            } else {
                let _ = writeln!(o, "{name}_sum{{{l}}} {sum}\n{name}_count{{{l}}} {cum}");
            }
        }
    }
}

/// Escapes a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_set(names: &[&str], vals: &[Box<str>]) -> String {
    names
        .iter()
        .zip(vals)
        .map(|(n, v)| format!("{n}=\"{}\"", esc(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// One route's per-request series and its replicas', resolved once (see
/// [`Metrics::route_handles`]) and kept with the route.
pub struct RouteHandles {
    /// `tandem_cache_hits_total{route}`.
    pub hits: Arc<AtomicU64>,
    /// `tandem_cache_misses_total{route}`.
    pub misses: Arc<AtomicU64>,
    /// `tandem_cache_hit_bytes_total{route}`.
    pub hit_bytes: Arc<AtomicU64>,
    /// `tandem_request_duration_seconds{route}`.
    pub latency: Arc<Histogram>,
    /// `tandem_response_duration_seconds{route}`.
    pub response_duration: Arc<Histogram>,
    /// `tandem_origin_first_byte_seconds{route,replica}`, by replica index.
    pub first_byte: Vec<Arc<Histogram>>,
    /// `tandem_requests_total{route,status}`, for the usual statuses.
    pub requests: ByLabel,
    /// `tandem_response_bytes_total{route,cache}`, by cache state.
    pub response_bytes: ByLabel,
}

/// Statuses whose `tandem_requests_total` series a route resolves once;
/// any other status is counted through the family's lookup.
const USUAL_STATUSES: &[&str] = &[
    "200", "206", "304", "400", "403", "404", "412", "416", "429", "499", "500", "502", "503",
    "504",
];

/// Every `cache` label of `tandem_response_bytes_total`: the
/// `x-tandem-cache` values, and `-` for answers that are not objects.
const CACHE_STATES: &[&str] = &[
    "HIT",
    "MISS",
    "HIT-REDIS",
    "REVALIDATED",
    "STALE",
    "BYPASS",
    "-",
];

/// A route's series of a counter family whose second label takes one of a
/// few known values (a status, a cache state). Each is resolved the first
/// time it is used, so a request adds to an atomic without the family's
/// lock (a shared read lock is still one contended atomic per request
/// between workers) and never-seen values export no zero series.
pub struct ByLabel {
    known: &'static [&'static str],
    slots: Box<[OnceLock<Arc<AtomicU64>>]>,
}

impl ByLabel {
    fn new(known: &'static [&'static str]) -> ByLabel {
        ByLabel {
            known,
            slots: known.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    /// Adds `n` to `family{route, label}`.
    pub fn add(&self, family: &CounterVec, route: &str, label: &str, n: u64) {
        match self.known.iter().position(|k| *k == label) {
            Some(i) => {
                self.slots[i]
                    .get_or_init(|| family.handle(&[route, label]))
                    .fetch_add(n, Ordering::Relaxed);
            }
            None => family.add(&[route, label], n),
        }
    }
}

/// Every counter the proxy keeps; gauges are computed at scrape time.
#[derive(Default)]
pub struct Metrics {
    /// Requests by route and status.
    pub requests: CounterVec,
    /// Time to response headers, by route.
    latency: HistogramVec,
    /// Time to the last body byte (or the body's early end), by route.
    pub response_duration: HistogramVec,
    /// Body bytes handed to client connections, by route and cache state.
    pub response_bytes: CounterVec,
    /// Time from sending a request to a replica to its response headers,
    /// by route and replica.
    pub origin_first_byte: HistogramVec,
    /// Cache hits by route.
    pub cache_hits: CounterVec,
    /// Cache misses by route.
    pub cache_misses: CounterVec,
    /// Requests that waited for another request's origin fetch, by route.
    pub coalesced: CounterVec,
    /// Bytes of response bodies served from the cache, by route.
    pub cache_hit_bytes: CounterVec,
    /// Origin requests by route, replica and outcome.
    pub origin_requests: CounterVec,
    /// Moves to the next replica, by route and the replica that failed.
    pub failovers: CounterVec,
    /// Breaker transitions by route, replica and new state.
    pub breaker_transitions: CounterVec,
    /// Stale copies served because every replica failed, by route.
    pub stale_served: CounterVec,
    /// Stale copies confirmed unchanged by the origin (304), by route.
    pub revalidated: CounterVec,
    /// Mid-stream resumes by route and result (ok, failed).
    pub resumes: CounterVec,
    /// Requests refused by JWT auth, by route.
    pub auth_refused: CounterVec,
    /// Requests refused by the rate limit.
    pub rate_limited: CounterVec,
    /// Memory misses answered by the Redis tier, by route.
    pub tier_hits: CounterVec,
    /// Memory misses the Redis tier did not hold either, by route.
    pub tier_misses: CounterVec,
    /// Objects written to the Redis tier, by route.
    pub tier_writes: CounterVec,
    /// Redis calls that failed or were skipped while it was down, by
    /// operation (get, put, purge, ratelimit) and reason (error, down).
    pub tier_errors: CounterVec,
    /// Purge notices received from the fleet through Redis.
    pub tier_purges_received: CounterVec,
    /// Purge requests by result (ok, unauthorized, disabled, bad_request).
    pub purges: CounterVec,
    /// Config reloads by result.
    pub reloads: CounterVec,
    /// Connections closed by the proxy, by listener and reason (a
    /// deadline, or the listener being full).
    pub connections_closed: CounterVec,
    /// Waits for another request's fill that ran past `cache.lock_timeout`,
    /// by route.
    pub lock_timeouts: CounterVec,
    /// Fills whose object was streamed to one client instead of shared, by
    /// route and reason (budget, not_cacheable).
    pub fills_unshared: CounterVec,
    /// Redis writes skipped, by reason (budget).
    pub tier_writes_skipped: CounterVec,
    /// Redis values and purge notices not believed, by what and why
    /// (unsigned, bad_signature, stale, malformed).
    pub tier_rejected: CounterVec,
    /// Fetches of a route's `jwks_url`, by route and result (ok, error).
    pub jwks_fetches: CounterVec,
    /// Requests currently being served.
    pub in_flight: AtomicU64,
}

impl Metrics {
    /// Records one answered request (its headers sent); `handles` are
    /// the route's, when one matched.
    pub fn observe(
        &self,
        route: &str,
        handles: Option<&RouteHandles>,
        status: u16,
        elapsed: Duration,
    ) {
        let status = status_str(status);
        match handles {
            Some(h) => {
                h.requests.add(&self.requests, route, status, 1);
                h.latency.observe(elapsed);
            }
            None => {
                self.requests.inc(&[route, status]);
                self.latency.observe(&[route], elapsed);
            }
        }
    }

    /// Records a response's end: its duration to the last byte and the
    /// body bytes sent, by cache state; `handles` are the route's, when
    /// one matched.
    pub fn observe_response(
        &self,
        route: &str,
        handles: Option<&RouteHandles>,
        cache: &str,
        bytes: u64,
        total: Duration,
    ) {
        match handles {
            Some(h) => {
                h.response_duration.observe(total);
                if bytes > 0 {
                    h.response_bytes
                        .add(&self.response_bytes, route, cache, bytes);
                }
            }
            None => {
                self.response_duration.observe(&[route], total);
                if bytes > 0 {
                    self.response_bytes.add(&[route, cache], bytes);
                }
            }
        }
    }

    /// The per-request series of `route` and its `replicas` (in the
    /// route's order).
    pub fn route_handles<'a>(
        &self,
        route: &str,
        replicas: impl Iterator<Item = &'a str>,
    ) -> RouteHandles {
        RouteHandles {
            hits: self.cache_hits.handle(&[route]),
            misses: self.cache_misses.handle(&[route]),
            hit_bytes: self.cache_hit_bytes.handle(&[route]),
            latency: self.latency.handle(&[route]),
            response_duration: self.response_duration.handle(&[route]),
            first_byte: replicas
                .map(|r| self.origin_first_byte.handle(&[route, r]))
                .collect(),
            requests: ByLabel::new(USUAL_STATUSES),
            response_bytes: ByLabel::new(CACHE_STATES),
        }
    }

    /// Renders the counters and histogram; `gauges` appends scrape-time
    /// gauges.
    pub fn render(&self, gauges: &str) -> String {
        let mut o = String::with_capacity(4096);
        self.requests.render(
            &mut o,
            "tandem_requests_total",
            "Requests served, by route and HTTP status.",
            &["route", "status"],
        );
        self.latency.render(
            &mut o,
            "tandem_request_duration_seconds",
            "Time from request to response headers, by route.",
            &["route"],
        );
        self.response_duration.render(
            &mut o,
            "tandem_response_duration_seconds",
            "Time from request to the last body byte handed to the connection (or the body's early end), by route.",
            &["route"],
        );
        self.response_bytes.render(
            &mut o,
            "tandem_response_bytes_total",
            "Body bytes sent to clients, by route and cache state (HIT, HIT-REDIS, MISS, STALE, REVALIDATED, BYPASS; - for errors).",
            &["route", "cache"],
        );
        self.origin_first_byte.render(
            &mut o,
            "tandem_origin_first_byte_seconds",
            "Time from sending a request to a replica to its response headers, by route and replica.",
            &["route", "replica"],
        );
        self.cache_hits.render(
            &mut o,
            "tandem_cache_hits_total",
            "Requests answered from the memory cache.",
            &["route"],
        );
        self.cache_misses.render(
            &mut o,
            "tandem_cache_misses_total",
            "Cacheable requests not in the memory cache.",
            &["route"],
        );
        self.coalesced.render(
            &mut o,
            "tandem_cache_coalesced_total",
            "Misses that waited for another request's origin fetch instead of making their own.",
            &["route"],
        );
        self.cache_hit_bytes.render(
            &mut o,
            "tandem_cache_hit_bytes_total",
            "Body bytes served from the memory cache.",
            &["route"],
        );
        self.origin_requests.render(&mut o, "tandem_origin_requests_total", "Requests sent to replicas, by outcome (ok, not_found, error_status, timeout, connect, io).", &["route", "replica", "outcome"]);
        self.failovers.render(
            &mut o,
            "tandem_failovers_total",
            "Times a request moved on from a failed replica to the next.",
            &["route", "from"],
        );
        self.breaker_transitions.render(
            &mut o,
            "tandem_breaker_transitions_total",
            "Circuit breaker state changes.",
            &["route", "replica", "to"],
        );
        self.stale_served.render(
            &mut o,
            "tandem_cache_stale_served_total",
            "Stale copies served because every replica failed (stale-if-error).",
            &["route"],
        );
        self.revalidated.render(
            &mut o,
            "tandem_cache_revalidated_total",
            "Expired copies the origin confirmed unchanged (304 to If-None-Match).",
            &["route"],
        );
        self.resumes.render(&mut o, "tandem_body_resumes_total", "Bodies continued from another replica after the streaming one failed (ok), or cut off (failed).", &["route", "result"]);
        self.auth_refused.render(
            &mut o,
            "tandem_auth_refused_total",
            "Requests refused by JWT authentication (401 or 403).",
            &["route"],
        );
        self.rate_limited.render(
            &mut o,
            "tandem_rate_limited_total",
            "Requests refused with 429 by limits.rate_limit.",
            &[],
        );
        self.tier_hits.render(
            &mut o,
            "tandem_redis_hits_total",
            "Memory-cache misses answered by the Redis tier.",
            &["route"],
        );
        self.tier_misses.render(
            &mut o,
            "tandem_redis_misses_total",
            "Memory-cache misses the Redis tier did not hold either.",
            &["route"],
        );
        self.tier_writes.render(
            &mut o,
            "tandem_redis_writes_total",
            "Objects written to the Redis tier.",
            &["route"],
        );
        self.tier_errors.render(
            &mut o,
            "tandem_redis_errors_total",
            "Redis calls that failed (error) or were skipped because the tier was down (down), by operation.",
            &["op", "reason"],
        );
        self.tier_purges_received.render(
            &mut o,
            "tandem_redis_purge_notices_total",
            "Purges announced by a proxy through Redis and applied to this proxy's memory.",
            &[],
        );
        self.purges.render(
            &mut o,
            "tandem_purge_requests_total",
            "Purge API requests by result.",
            &["result"],
        );
        self.reloads.render(
            &mut o,
            "tandem_config_reloads_total",
            "Config reload attempts by result (ok, invalid, unchanged).",
            &["result"],
        );
        self.connections_closed.render(
            &mut o,
            "tandem_connections_closed_total",
            "Connections the proxy closed, by listener and reason: header_timeout, keepalive_timeout, send_timeout, min_send_rate, body_timeout, over_capacity.",
            &["listener", "reason"],
        );
        self.lock_timeouts.render(
            &mut o,
            "tandem_cache_lock_timeouts_total",
            "Requests that stopped waiting for another request's fill after cache.lock_timeout and fetched for themselves, uncached.",
            &["route"],
        );
        self.fills_unshared.render(
            &mut o,
            "tandem_cache_fills_unshared_total",
            "Fills streamed to one client instead of cached and shared, by reason (budget: cache.max_fill_bytes was in use; not_cacheable: too large or no-store).",
            &["route", "reason"],
        );
        self.jwks_fetches.render(
            &mut o,
            "tandem_jwks_fetches_total",
            "Fetches of a route's jwks_url by result (ok, error); after an error the last good keys keep serving.",
            &["route", "result"],
        );
        self.tier_rejected.render(
            &mut o,
            "tandem_redis_rejected_total",
            "Redis values and purge notices ignored because they are not the fleet's: unsigned, bad_signature, stale (a replayed notice), malformed, signed_without_key.",
            &["what", "reason"],
        );
        self.tier_writes_skipped.render(
            &mut o,
            "tandem_redis_writes_skipped_total",
            "Objects not written to Redis, by reason (budget: the write would not fit in cache.max_fill_bytes).",
            &["reason"],
        );
        let _ = writeln!(o, "# HELP tandem_in_flight_requests Requests being served now.\n# TYPE tandem_in_flight_requests gauge\ntandem_in_flight_requests {}", self.in_flight.load(Ordering::Relaxed));
        o.push_str(gauges);
        o
    }
}

/// A status code as a label value without an allocation per request:
/// HTTP status codes are three digits, so all of them are made once.
fn status_str(s: u16) -> &'static str {
    static TABLE: OnceLock<Box<[String]>> = OnceLock::new();
    let t = TABLE.get_or_init(|| (0..1000).map(|i: u16| i.to_string()).collect());
    &t[usize::from(s) % t.len()]
}

/// `tandem_build_info{version,revision}`: always 1, so a dashboard can
/// join a version onto any series and an alert can see a mixed fleet.
pub fn build_info(out: &mut String) {
    gauge(
        out,
        "tandem_build_info",
        "Always 1; the proxy's version and the source revision it was built from.",
        &[(
            labels(&[
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", env!("TANDEM_REVISION")),
            ]),
            1.0,
        )],
    );
}

/// Clock ticks per second of `/proc/self/stat` CPU times: `USER_HZ`, which
/// the kernel fixes at 100 on every Linux architecture we build for
/// (reading `sysconf` would need unsafe libc).
const USER_HZ: f64 = 100.0;

/// The standard `process_*` metrics (the names every Prometheus client
/// library uses, so existing dashboards work), read from `/proc/self`.
/// Absent where there is no `/proc` (not Linux), rather than reported as
/// zeros.
pub fn process(out: &mut String, started: std::time::SystemTime) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name, which may itself hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, r)| r.split_whitespace().collect());
    let field = |n: usize| fields.get(n).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of stat(5); 3 is fields[0].
    if let (Some(u), Some(s)) = (field(11), field(12)) {
        let _ = writeln!(out, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}", (u + s) / USER_HZ);
    }
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| {
            st.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        });
    if let Some(kib) = rss {
        gauge(
            out,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            &[(String::new(), kib * 1024.0)],
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge(
            out,
            "process_open_fds",
            "Number of open file descriptors.",
            &[(String::new(), fds.count() as f64)],
        );
    }
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<f64>().ok())
        });
    if let Some(max) = max {
        gauge(
            out,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            &[(String::new(), max)],
        );
    }
    let start = started
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    gauge(
        out,
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        &[(String::new(), start)],
    );
}

/// Appends a gauge family.
pub fn gauge(out: &mut String, name: &str, help: &str, series: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, v) in series {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// `name="value",...` for gauges.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(n, v)| format!("{n}=\"{}\"", esc(v)))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        let m = Metrics::default();
        m.observe("a\"b", None, 200, Duration::from_millis(3));
        let h = m.route_handles("a\"b", ["eu"].into_iter());
        m.observe("a\"b", Some(&h), 200, Duration::from_millis(3));
        h.hits.fetch_add(1, Ordering::Relaxed);
        assert_eq!(
            m.cache_hits.get(&["a\"b"]),
            1,
            "a handle is the family's series"
        );
        m.failovers.inc(&["a", "eu"]);
        let t = m.render("");
        assert!(
            t.contains("tandem_requests_total{route=\"a\\\"b\",status=\"200\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("tandem_request_duration_seconds_bucket{route=\"a\\\"b\",le=\"0.005\"} 2")
        );
        assert!(
            t.contains("tandem_request_duration_seconds_bucket{route=\"a\\\"b\",le=\"0.0025\"} 0")
        );
        assert!(t.contains("tandem_failovers_total{route=\"a\",from=\"eu\"} 1"));
        assert_eq!(m.failovers.get(&["a", "eu"]), 1);
        assert!(t.contains("tandem_request_duration_seconds_count{route=\"a\\\"b\"} 2"));
        assert!(
            t.contains("tandem_request_duration_seconds_bucket{route=\"a\\\"b\",le=\"+Inf\"} 2")
        );
    }

    #[test]
    fn route_handles_count_statuses_and_bytes_into_the_families() {
        let m = Metrics::default();
        let h = m.route_handles("r", std::iter::empty());
        for status in [200, 200, 404, 418] {
            m.observe("r", Some(&h), status, Duration::from_millis(1));
        }
        // Without handles (no route matched) the same family counts.
        m.observe("r", None, 200, Duration::from_millis(1));
        assert_eq!(m.requests.get(&["r", "200"]), 3);
        assert_eq!(m.requests.get(&["r", "404"]), 1);
        assert_eq!(m.requests.get(&["r", "418"]), 1, "an unusual status");
        h.response_bytes.add(&m.response_bytes, "r", "HIT", 10);
        h.response_bytes.add(&m.response_bytes, "r", "HIT", 5);
        h.response_bytes
            .add(&m.response_bytes, "r", "SOMETHING-NEW", 7);
        assert_eq!(m.response_bytes.get(&["r", "HIT"]), 15);
        assert_eq!(m.response_bytes.get(&["r", "SOMETHING-NEW"]), 7);
        let t = m.render("");
        assert!(
            t.contains("tandem_response_bytes_total{route=\"r\",cache=\"HIT\"} 15"),
            "{t}"
        );
        assert!(
            !t.contains("cache=\"MISS\""),
            "a state never seen exports no series: {t}"
        );
    }

    #[test]
    fn histograms_are_cumulative_and_count_the_overflow() {
        let h = HistogramVec::default();
        h.observe(&["r"], Duration::from_micros(100));
        h.observe(&["r"], Duration::from_millis(20));
        h.observe(&["r"], Duration::from_secs(60));
        let mut t = String::new();
        h.render(&mut t, "x_seconds", "x", &["route"]);
        for (le, n) in [("0.0005", 1), ("0.025", 2), ("10", 2), ("+Inf", 3)] {
            let want = format!("x_seconds_bucket{{route=\"r\",le=\"{le}\"}} {n}\n");
            assert!(t.contains(&want), "{want} in\n{t}");
        }
        assert!(t.contains("x_seconds_count{route=\"r\"} 3"), "{t}");
        assert!(t.contains("x_seconds_sum{route=\"r\"} 60.0201"), "{t}");
        assert_eq!(h.count(&["r"]), 3);
    }

    #[test]
    fn counters_are_shared_between_threads_without_losing_adds() {
        let c = std::sync::Arc::new(CounterVec::default());
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        c.inc(&["r", if i % 2 == 0 { "a" } else { "b" }]);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(&["r", "a"]), 20_000);
        assert_eq!(c.sum_first("r"), 40_000);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_metrics_come_from_proc() {
        let mut t = String::new();
        process(&mut t, std::time::SystemTime::now());
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(t.contains(name), "{name} missing:\n{t}");
        }
        let rss: f64 = t
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(rss > 1e6, "{rss}");
    }
}
