//! Prometheus text exposition, hand-written: a handful of labelled counters
//! and one histogram do not justify a metrics framework, and the hot path
//! stays at one uncontended lock per request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Latency histogram bounds in seconds: sub-millisecond hits up to
/// multi-second large downloads.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// A counter family keyed by label values.
#[derive(Default)]
pub struct CounterVec(Mutex<BTreeMap<Vec<String>, u64>>);

impl CounterVec {
    /// Adds `n` to the series with these label values.
    pub fn add(&self, labels: &[&str], n: u64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Look up without allocating; allocate only for a new series.
        if let Some((_, v)) = m
            .iter_mut()
            .find(|(k, _)| k.iter().map(String::as_str).eq(labels.iter().copied()))
        {
            *v += n;
        } else {
            m.insert(labels.iter().map(|s| s.to_string()).collect(), n);
        }
    }

    /// Adds one.
    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1);
    }

    /// The value of one series (tests and /status).
    pub fn get(&self, labels: &[&str]) -> u64 {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .find(|(k, _)| k.iter().map(String::as_str).eq(labels.iter().copied()))
            .map_or(0, |(_, v)| *v)
    }

    /// Sum over every series.
    pub fn sum_all(&self) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// Sum over series whose first label is `first`.
    pub fn sum_first(&self, first: &str) -> u64 {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .filter(|(k, _)| k[0] == first)
            .map(|(_, v)| v)
            .sum()
    }

    fn render(&self, out: &mut String, name: &str, help: &str, labels: &[&str]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (vals, v) in m.iter() {
            let _ = writeln!(out, "{name}{{{}}} {v}", label_set(labels, vals));
        }
    }
}

/// Escapes a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_set(names: &[&str], vals: &[String]) -> String {
    names
        .iter()
        .zip(vals)
        .map(|(n, v)| format!("{n}=\"{}\"", esc(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Every counter the proxy keeps; gauges are computed at scrape time.
#[derive(Default)]
pub struct Metrics {
    /// Requests by route and status.
    pub requests: CounterVec,
    latency: Mutex<BTreeMap<String, Histogram>>,
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
    /// Records one finished request.
    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        self.requests.inc(&[route, &status.to_string()]);
        let secs = elapsed.as_secs_f64();
        let mut l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = match l.get_mut(route) {
            Some(h) => h,
            None => l.entry(route.to_string()).or_default(),
        };
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
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
        {
            let _ = writeln!(o, "# HELP tandem_request_duration_seconds Time from request to response headers, by route.\n# TYPE tandem_request_duration_seconds histogram");
            let l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
            for (route, h) in l.iter() {
                let r = esc(route);
                for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        o,
                        "tandem_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    o,
                    "tandem_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    o,
                    "tandem_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    o,
                    "tandem_request_duration_seconds_count{{route=\"{r}\"}} {}",
                    h.count
                );
            }
        }
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
        m.observe("a\"b", 200, Duration::from_millis(3));
        m.observe("a\"b", 200, Duration::from_millis(3));
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
    }
}
