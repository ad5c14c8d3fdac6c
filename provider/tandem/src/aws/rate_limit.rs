//! One request rate for every Route 53 call of the provider process.
//!
//! Route 53 allows about five requests per second per account, shared by
//! every caller. Terraform runs ten operations at once, so without a limit
//! of our own a plan of a few hundred records turns straight into
//! `Throttling` errors and SDK retries. Every Route 53 request (the first
//! attempt, each SDK retry and each INSYNC poll) first takes a token from
//! the bucket of its account, so throttling becomes queueing.
//!
//! The bucket is paced as a GCRA ("virtual scheduling"): each request
//! reserves the next free slot and sleeps until it, so waiters are served in
//! the order they arrived and nothing is held while sleeping. When Route 53
//! throttles anyway (another process uses the same account), the whole
//! bucket pauses for a second, which is how long Route 53's own bucket
//! takes to refill; the SDK's bounded retry then resends the request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
// tokio's clock, so tests can run on paused time.
use tokio::time::Instant;

/// Route 53's documented quota: five API requests per second per account
/// ("Quotas", "Maximums on API requests"). Going faster only buys
/// `Throttling` errors.
pub const DEFAULT_ROUTE53_REQUESTS_PER_SECOND: f64 = 5.0;

/// How long the whole bucket pauses after Route 53 throttles a request
/// anyway: the time Route 53's own bucket takes to refill completely, so
/// the retry that follows finds room.
pub const THROTTLE_PAUSE: Duration = Duration::from_secs(1);

/// Most the bucket slows down while Route 53 keeps throttling (another
/// process on the account): an eighth of the rate, enough to share the
/// account's quota with seven others.
pub const MAX_SLOWDOWN: u32 = 8;

/// How long the bucket must go without a throttle before it doubles its
/// rate again (up to the configured one): a few of Route 53's one-second
/// refills, so a neighbour that is still busy is met rarely, not at once.
pub const RECOVERY: Duration = Duration::from_secs(5);

/// Tokens of Route 53's own burst the bucket leaves unused, so that network
/// jitter between our clock and Route 53's (two requests sent 200 ms apart
/// arriving 150 ms apart) never finds its bucket empty.
pub const BURST_HEADROOM: u32 = 1;

/// Error codes with which Route 53 refuses a request for its rate, as the
/// SDK's retry classifier knows them.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "PriorRequestNotComplete",
];

/// A token bucket of `rate` requests per second with a burst of `rate`
/// less [`BURST_HEADROOM`] (at least one), empty when the process starts:
/// a new process cannot know what the account spent in the last second,
/// and its usual neighbour is the Terraform command that just ended (a
/// plan right after an apply in CI). Starting full, back-to-back plans on
/// the strict lane were throttled every other run, each throttle costing
/// 3 s of backoff; starting empty costs at most 0.8 s. Throttling by
/// Route 53 halves the rate (down to 1/[`MAX_SLOWDOWN`]); each
/// [`RECOVERY`] without one doubles it back: additive pauses,
/// multiplicative decrease, as TCP does when a link is shared.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    burst: u32,
    pace: Mutex<Pace>,
}

#[derive(Debug)]
struct Pace {
    /// Theoretical arrival time of the next request: the bucket is full
    /// whenever this is in the past.
    next: Instant,
    /// The interval is `interval * slowdown` (1, 2, 4 or 8).
    slowdown: u32,
    /// The last throttle, or the last change of `slowdown`.
    since: Instant,
}

impl RateLimiter {
    /// A bucket of `per_second` requests per second (a positive number).
    pub fn new(per_second: f64) -> RateLimiter {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            DEFAULT_ROUTE53_REQUESTS_PER_SECOND
        };
        let interval = Duration::from_secs_f64(1.0 / per_second);
        // Truncation is intended: a burst is a whole number of requests.
        let burst = (per_second as u32).saturating_sub(BURST_HEADROOM).max(1);
        RateLimiter {
            interval,
            burst,
            pace: Mutex::new(Pace {
                // The burst spent: the first request goes at once, the
                // next ones a slot apart until the bucket has refilled.
                next: Instant::now() + interval * (burst - 1),
                slowdown: 1,
                since: Instant::now(),
            }),
        }
    }

    /// Waits for a slot. A caller dropped while waiting (cancelled) gives up
    /// its slot only in the sense that nobody uses it: the bucket stays
    /// conservative.
    pub async fn acquire(&self) {
        let at = self.reserve(Instant::now());
        tokio::time::sleep_until(at).await;
    }

    /// Reserves the next slot at or after `now`; returns when it starts.
    fn reserve(&self, now: Instant) -> Instant {
        let mut pace = self.pace.lock().unwrap_or_else(|p| p.into_inner());
        if pace.slowdown > 1 && now.duration_since(pace.since) >= RECOVERY {
            pace.slowdown /= 2;
            pace.since = now;
        }
        let tat = pace.next.max(now);
        let allowance = self.interval * (self.burst - 1);
        let at = tat.checked_sub(allowance).unwrap_or(now).max(now);
        pace.next = tat + self.interval * pace.slowdown;
        at
    }

    /// Route 53 throttled a request despite the bucket: another process
    /// shares the account. Nobody sends for [`THROTTLE_PAUSE`], and the
    /// rate halves, once per pause however many requests in flight were
    /// throttled together.
    pub fn throttled(&self) {
        let now = Instant::now();
        let mut pace = self.pace.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(pace.since) >= THROTTLE_PAUSE || pace.slowdown == 1 {
            pace.slowdown = (pace.slowdown * 2).min(MAX_SLOWDOWN);
        }
        pace.since = now;
        let allowance = self.interval * (self.burst - 1);
        pace.next = pace.next.max(now + THROTTLE_PAUSE + allowance);
    }
}

/// The bucket for `key` (an account, or a provider configuration when the
/// account is unknown), shared by every client of the process that names
/// the same key. The first configuration to name a key sets its rate.
pub fn limiter_for(key: &str, per_second: f64) -> Arc<RateLimiter> {
    static BUCKETS: OnceLock<Mutex<HashMap<String, Arc<RateLimiter>>>> = OnceLock::new();
    let mut all = BUCKETS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    Arc::clone(
        all.entry(key.to_string())
            .or_insert_with(|| Arc::new(RateLimiter::new(per_second))),
    )
}

/// An HTTP client whose every request first takes a token.
#[derive(Debug, Clone)]
pub struct PacedHttpClient {
    inner: SharedHttpClient,
    limiter: Arc<RateLimiter>,
}

impl PacedHttpClient {
    /// Paces `inner` with `limiter`.
    pub fn new(inner: SharedHttpClient, limiter: Arc<RateLimiter>) -> PacedHttpClient {
        PacedHttpClient { inner, limiter }
    }
}

impl HttpClient for PacedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(PacedConnector {
            inner: self.inner.http_connector(settings, components),
            limiter: Arc::clone(&self.limiter),
        })
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    limiter: Arc<RateLimiter>,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let limiter = Arc::clone(&self.limiter);
        HttpConnectorFuture::new(async move {
            limiter.acquire().await;
            inner.call(request).await
        })
    }
}

/// Tells the bucket when Route 53 throttled an attempt, so the whole
/// process pauses instead of every task retrying into the same wall.
#[derive(Debug)]
pub struct ThrottleFeedback {
    limiter: Arc<RateLimiter>,
}

impl ThrottleFeedback {
    /// Feedback into `limiter`.
    pub fn new(limiter: Arc<RateLimiter>) -> ThrottleFeedback {
        ThrottleFeedback { limiter }
    }
}

impl Intercept for ThrottleFeedback {
    fn name(&self) -> &'static str {
        "TandemThrottleFeedback"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(response) = context.response() else {
            return Ok(());
        };
        let status = response.status().as_u16();
        // Route 53 answers throttling with 400 (REST-XML error document);
        // a 429 or 503 would mean the same.
        if !matches!(status, 400 | 429 | 503) {
            return Ok(());
        }
        let code = response.body().bytes().and_then(error_code);
        if status != 400 || code.is_some_and(|c| THROTTLING_CODES.contains(&c)) {
            tracing::debug!(
                status,
                code,
                "Route 53 throttled a request; pausing the bucket"
            );
            self.limiter.throttled();
        }
        Ok(())
    }
}

/// The `<Code>` of a REST-XML error document.
fn error_code(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(text[start..start + len].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_new_bucket_starts_empty_and_a_quiet_second_refills_its_burst() {
        let l = RateLimiter::new(5.0);
        let t0 = Instant::now();
        let mut at = Vec::new();
        for _ in 0..5 {
            l.acquire().await;
            at.push(Instant::now() - t0);
        }
        assert_eq!(
            at,
            [0, 200, 400, 600, 800].map(Duration::from_millis),
            "spaced from the first: another process may just have spent the account's burst"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let t1 = Instant::now();
        for _ in 0..4 {
            l.acquire().await;
        }
        assert_eq!(Instant::now(), t1, "after a quiet second, four go at once");
        for _ in 0..10 {
            l.acquire().await;
        }
        assert_eq!(
            Instant::now() - t1,
            Duration::from_secs(2),
            "ten more at 5/s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_rate() {
        let l = Arc::new(RateLimiter::new(5.0));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let l = Arc::clone(&l);
                tokio::spawn(async move {
                    l.acquire().await;
                    Instant::now()
                })
            })
            .collect();
        let mut ends = Vec::new();
        for t in tasks {
            ends.push(t.await.unwrap() - t0);
        }
        ends.sort();
        // One every 200 ms from the first (a new bucket is empty).
        assert_eq!(ends[0], Duration::ZERO);
        assert_eq!(ends[1], Duration::from_millis(200));
        assert_eq!(*ends.last().unwrap(), Duration::from_millis(3800));
        // Route 53's bucket (5 tokens, 5 per second) never runs dry.
        let mut tokens = 5.0_f64;
        let mut last = Duration::ZERO;
        for e in &ends {
            tokens = (tokens + (*e - last).as_secs_f64() * 5.0).min(5.0);
            last = *e;
            tokens -= 1.0;
            assert!(tokens >= 1.0 - 1e-9, "at {e:?}: {tokens}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_pauses_the_bucket() {
        let l = RateLimiter::new(5.0);
        let t0 = Instant::now();
        l.throttled();
        l.acquire().await;
        assert_eq!(Instant::now() - t0, THROTTLE_PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_halves_the_rate_and_calm_restores_it() {
        let l = RateLimiter::new(5.0);
        // Three requests throttled together: one halving.
        l.throttled();
        l.throttled();
        l.throttled();
        tokio::time::advance(THROTTLE_PAUSE).await;
        // The gap between two requests once the burst is spent.
        let spacing = |l: &RateLimiter| {
            let slots: Vec<Instant> = (0..6).map(|_| l.reserve(Instant::now())).collect();
            slots[5] - slots[4]
        };
        assert_eq!(spacing(&l), Duration::from_millis(400), "2.5 per second");
        // Throttled again a pause later: halved again, to the floor at most.
        tokio::time::advance(THROTTLE_PAUSE * 3).await;
        for _ in 0..5 {
            l.throttled();
            tokio::time::advance(THROTTLE_PAUSE).await;
        }
        assert_eq!(l.pace.lock().unwrap().slowdown, MAX_SLOWDOWN);
        // Calm: each RECOVERY doubles the rate back.
        for want in [4, 2, 1, 1] {
            tokio::time::advance(RECOVERY).await;
            l.reserve(Instant::now());
            assert_eq!(l.pace.lock().unwrap().slowdown, want);
        }
    }

    #[test]
    fn a_silly_rate_falls_back_to_the_default() {
        let l = RateLimiter::new(0.0);
        assert_eq!(l.interval, Duration::from_millis(200));
        assert_eq!(l.burst, 4);
        assert_eq!(RateLimiter::new(0.5).burst, 1);
    }

    #[test]
    fn one_bucket_per_key() {
        let a = limiter_for("account:111111111111", 5.0);
        let b = limiter_for("account:111111111111", 50.0);
        let c = limiter_for("account:222222222222", 5.0);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[test]
    fn the_error_code_is_read_from_the_document() {
        let doc = b"<?xml version=\"1.0\"?><ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert_eq!(error_code(doc), Some("Throttling"));
        assert_eq!(error_code(b"<html/>"), None);
    }
}
