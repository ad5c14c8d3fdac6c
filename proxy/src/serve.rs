//! The data path: one request in, one S3-shaped response out. It reads
//! top-down: check the request, route it, authenticate and rate-limit it;
//! then answer a hit from memory, or join (or start) the fill for a miss,
//! falling back to a stale copy when every replica fails; routes that do
//! not cache pass straight through.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{header, HeaderMap, HeaderValue, Method, Request, Response};
use hyper::body::Incoming;
use tokio::sync::oneshot;

use crate::access::{self, Trail};
use crate::auth::AuthError;
use crate::body::ProxyBody;
use crate::cache::{self, CachedObject, Filled, Flight, FlightResult, Waited};
use crate::error::ProxyError;
use crate::failover::Failover;
use crate::fill::{self, Fill, Handoff};
use crate::forwarded;
use crate::origin::Route;
use crate::policy::worth_filling;
use crate::relay::{passthrough, whole};
use crate::request::{self, ObjectRequest};
use crate::response::{self, from_answer, from_object};
use crate::runtime::Runtime;
use crate::state::State;
use tandem_fleet_config::RateKey;

/// Serves one data-plane request. Never fails: every error becomes an
/// S3-style response. Every response carries the request's ID (the
/// client's valid `x-request-id`, or ours) as `x-request-id` and
/// `x-amz-request-id`, and its body is wrapped so the access log line and
/// the last-byte metrics are written when it ends.
pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    peer: IpAddr,
) -> Response<ProxyBody> {
    let rt = state.runtime.load_full();
    let trail = Trail::new(
        access::request_id(req.headers()),
        crate::otel::Trace::start(req.headers(), rt.config.tracing.as_ref()),
    );
    let id = trail.id.clone();
    let head = req.method() == Method::HEAD;
    let client = forwarded::client_ip(peer, req.headers(), &rt.trusted);
    let mut guard = InFlight::new(
        &state,
        &rt,
        Pending {
            arrived: SystemTime::now(),
            client,
            method: req.method().clone(),
            trail: trail.clone(),
            key: None,
        },
    );
    let result = serve(&state, &rt, &req, client, &mut guard, &trail).await;
    let route = guard.route_idx;
    let route_name = guard.route_name();
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, ProxyError::Internal(_) | ProxyError::Unavailable { .. }) {
                tracing::error!(request_id = %id, route = %route_name, path = req.uri().path(), error = %e, "request failed");
            }
            e.into_response(req.uri().path(), &id, head)
        }
    };
    if let Some(r) = route.map(|r| &rt.routes[r]) {
        if let Some(cors) = &r.config.cors {
            crate::cors::decorate(cors, req.headers(), resp.headers_mut());
        }
        if r.auth.is_some() {
            private(resp.headers_mut());
        }
    }
    if let Some(v) = trail.header() {
        resp.headers_mut()
            .insert(response::X_AMZ_REQUEST_ID, v.clone());
        resp.headers_mut().insert(access::REQUEST_ID_HEADER, v);
    }
    let status = resp.status().as_u16();
    let elapsed = guard.finish(status);
    tracing::debug!(request_id = %id, method = %req.method(), path = req.uri().path(), status, route = %route_name, elapsed_us = elapsed.as_micros() as u64, "served");
    let started = guard.started;
    let p = guard.pending.take();
    drop(guard);
    let Some(p) = p else {
        return resp;
    };
    let done = access::Finish {
        state: state.clone(),
        route,
        arrived: p.arrived,
        started,
        ttfb: elapsed,
        client: p.client,
        method: p.method,
        key: p.key,
        status,
        cache: resp.headers().get(response::X_TANDEM_CACHE).cloned(),
        replica: resp.headers().get(response::X_TANDEM_REPLICA).cloned(),
        trail: p.trail,
        rt,
    };
    resp.map(|b| access::Logged::wrap(b, done))
}

/// What the access log needs of a request before its answer exists.
struct Pending {
    arrived: SystemTime,
    client: IpAddr,
    method: Method,
    trail: Arc<Trail>,
    /// The object key as logged, once parsed.
    key: Option<String>,
}

/// Counts a request in flight until it is answered, or until hyper drops
/// it because the client went away first; that case is recorded as 499
/// (nginx's "client closed request") in the metrics and the access log,
/// so the gauge never leaks and the wait the client gave up on is seen.
struct InFlight<'a> {
    state: &'a Arc<State>,
    rt: &'a Arc<Runtime>,
    started: Instant,
    /// The route, once known: its name labels the metrics (a 499 too).
    route_idx: Option<usize>,
    /// For the access log line; taken when the answer is sent.
    pending: Option<Pending>,
    done: bool,
}

impl<'a> InFlight<'a> {
    fn new(state: &'a Arc<State>, rt: &'a Arc<Runtime>, pending: Pending) -> InFlight<'a> {
        state.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            state,
            rt,
            started: Instant::now(),
            route_idx: None,
            pending: Some(pending),
            done: false,
        }
    }

    fn finish(&mut self, status: u16) -> Duration {
        let elapsed = self.started.elapsed();
        if !self.done {
            self.done = true;
            let m = &self.state.metrics;
            let route = self.route_idx.map(|i| &self.rt.routes[i]);
            m.observe(
                self.route_name(),
                route.map(|r| r.metrics(m)),
                status,
                elapsed,
            );
            m.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        elapsed
    }

    /// The route's name, `-` before one matched.
    fn route_name(&self) -> &'a str {
        let rt: &'a Runtime = self.rt;
        self.route_idx
            .map_or("-", |i| rt.routes[i].config.name.as_str())
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let elapsed = self.finish(499);
        if let Some(p) = self.pending.take() {
            access::Finish {
                state: self.state.clone(),
                rt: self.rt.clone(),
                route: self.route_idx,
                arrived: p.arrived,
                started: self.started,
                ttfb: elapsed,
                client: p.client,
                method: p.method,
                key: p.key,
                status: 499,
                cache: None,
                replica: None,
                trail: p.trail,
            }
            .gave_up();
        }
    }
}

/// One object request, as every step of the data path sees it.
struct Ctx<'a> {
    state: &'a Arc<State>,
    rt: &'a Arc<Runtime>,
    /// The request's ID and origin trail, handed to every failover.
    trail: &'a Arc<Trail>,
    or: ObjectRequest,
    headers: &'a HeaderMap,
    method: &'a Method,
    head: bool,
}

impl Ctx<'_> {
    fn route(&self) -> &Route {
        &self.rt.routes[self.or.route]
    }

    fn rname(&self) -> &str {
        &self.route().config.name
    }

    /// A fresh failover context for a fetch of this object.
    fn failover(&self) -> Failover {
        Failover::new(
            self.state.clone(),
            self.rt.clone(),
            &self.or,
            self.trail.clone(),
        )
    }

    /// Relays the origin's answer to this request's own Range and
    /// preconditions.
    async fn passthrough(
        &self,
        cache_status: &'static str,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        passthrough(self.failover(), self.headers, self.method, cache_status).await
    }

    /// Answers from a fill's result.
    async fn answer(&self, r: FlightResult) -> Result<Response<ProxyBody>, ProxyError> {
        match r {
            FlightResult::Object(o, filled) => {
                from_object(&o, self.headers, self.head, filled.cache_status())
            }
            FlightResult::Answer(a) => Ok(from_answer(&a, self.head)),
            FlightResult::Uncacheable => self.passthrough("MISS").await,
            FlightResult::Failed(e, stale) => match stale {
                Some(s) if matches!(e, ProxyError::Unavailable { .. }) => {
                    stale_if_error(self, e, &s)
                }
                _ => Err(e),
            },
        }
    }
}

/// A response of an authenticated route must not be shared by a cache in
/// front (a CDN), whatever the object's own `Cache-Control` says.
fn private(h: &mut HeaderMap) {
    let cur = h
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let lower = cur.to_ascii_lowercase();
    if lower.contains("private") || lower.contains("no-store") {
        return;
    }
    let kept: Vec<&str> = cur
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.eq_ignore_ascii_case("public"))
        .collect();
    let v = if kept.is_empty() {
        "private".to_string()
    } else {
        format!("private, {}", kept.join(", "))
    };
    if let Ok(v) = HeaderValue::from_str(&v) {
        h.insert(header::CACHE_CONTROL, v);
    }
}

async fn serve(
    state: &Arc<State>,
    rt: &Arc<Runtime>,
    req: &Request<Incoming>,
    client: IpAddr,
    guard: &mut InFlight<'_>,
    trail: &Arc<Trail>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let mut found_route = |r: usize| guard.route_idx = Some(r);
    if req.method() == Method::OPTIONS {
        // A CORS preflight: answered here, before auth (browsers send no
        // credentials with it) and without asking a replica.
        let prefixes = rt.routes.iter().map(|r| r.config.path_prefix.as_str());
        let found = request::route_for(req.uri().path(), prefixes).map(|(r, _)| r);
        if let Some(r) = found {
            found_route(r);
        }
        return match found.and_then(|r| rt.routes[r].config.cors.as_ref()) {
            Some(cors) => crate::cors::preflight(cors, req.headers()),
            None => Err(ProxyError::MethodNotAllowed("OPTIONS".into())),
        };
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ProxyError::MethodNotAllowed(req.method().to_string()));
    }
    // hyper bounds its read buffer, not the header block itself (a reused
    // connection's buffer may already be larger), so the limit is checked
    // here too.
    let limit = rt.config.limits.max_header_bytes.0;
    let size: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if size as u64 > limit {
        return Err(ProxyError::HeadersTooLarge { size, limit });
    }
    let or = request::parse(
        req.uri().path(),
        req.uri().query(),
        rt.routes.iter().map(|r| r.config.path_prefix.as_str()),
    )?;
    // Only the access log and traces show the key: no copy otherwise.
    let shown = rt.config.access_log.enabled || rt.config.tracing.is_some();
    if let Some(p) = guard.pending.as_mut().filter(|_| shown) {
        p.key = Some(access::logged_key(&or.key, rt.config.access_log.hash_keys));
    }
    let cx = Ctx {
        state,
        rt,
        trail,
        or,
        headers: req.headers(),
        method: req.method(),
        head: req.method() == Method::HEAD,
    };
    found_route(cx.or.route);
    admit(&cx, client).await?;
    if !cx.route().config.cache.enabled {
        return cx.passthrough("BYPASS").await;
    }
    let m = &state.metrics;
    let ck = cache::key(
        &cx.route().generation,
        &cx.or.key,
        cx.or.version_id.as_deref(),
    );
    let span = trail.trace.as_ref().map(|t| t.span("cache.lookup"));
    let cached = rt.cache.get(&ck).await;
    if let (Some(t), Some(s)) = (&trail.trace, span) {
        let hit = cached.as_ref().is_some_and(|o| o.is_fresh());
        t.end(s, vec![("tandem.hit", crate::otel::Attr::Bool(hit))], false);
    }
    if let Some(obj) = cached.as_ref().filter(|o| o.is_fresh()) {
        let handles = cx.route().metrics(m);
        handles.hits.fetch_add(1, Ordering::Relaxed);
        let r = from_object(obj, cx.headers, cx.head, "HIT")?;
        if !cx.head {
            let n = http_body::Body::size_hint(r.body()).exact().unwrap_or(0);
            handles.hit_bytes.fetch_add(n, Ordering::Relaxed);
        }
        return Ok(r);
    }
    cx.route().metrics(m).misses.fetch_add(1, Ordering::Relaxed);
    match (miss(&cx, ck, cached.clone()).await, cached) {
        (Err(e @ ProxyError::Unavailable { .. }), Some(stale)) => stale_if_error(&cx, e, &stale),
        (other, _) => other,
    }
}

/// Rate limits and JWT, before anything touches the cache (a cached
/// object is as protected as the bucket). A per-address limit comes
/// first, and an address whose tokens keep failing verification is
/// refused before its next signature check: a flood of bad tokens buys no
/// crypto. A per-subject limit needs the verified subject, so it comes
/// after.
async fn admit(cx: &Ctx<'_>, client: IpAddr) -> Result<(), ProxyError> {
    let m = &cx.state.metrics;
    let limit = cx
        .rt
        .limiter
        .as_ref()
        .zip(cx.rt.config.limits.rate_limit.as_ref());
    if limit.is_none() && cx.route().auth.is_none() {
        return Ok(());
    }
    // Only now: formatting the address cost a hit almost 1 % of its CPU.
    let key = forwarded::rate_key(client);
    if let Some((local, rl)) = limit.filter(|(_, rl)| rl.key == RateKey::Ip) {
        take_token(cx, local, rl, &key).await?;
    }
    let Some(verifier) = &cx.route().auth else {
        if let Some((local, rl)) = limit.filter(|(_, rl)| rl.key == RateKey::Subject) {
            take_token(cx, local, rl, &key).await?;
        }
        return Ok(());
    };
    if let Some(failures) = &cx.rt.auth_failures {
        if let Err(wait) = failures.peek(&key, Instant::now()) {
            m.rate_limited.inc(&[]);
            return Err(rate_limited(wait));
        }
    }
    let claims = verifier.check(cx.headers, &cx.or.key).map_err(|e| {
        m.auth_refused.inc(&[cx.rname()]);
        if let Some(failures) = &cx.rt.auth_failures {
            let _ = failures.check(&key, Instant::now());
        }
        match e {
            AuthError::Forbidden(_) => ProxyError::Forbidden(e.to_string()),
            other => ProxyError::Unauthorized(other.to_string()),
        }
    })?;
    if let Some((local, rl)) = limit.filter(|(_, rl)| rl.key == RateKey::Subject) {
        let subject = claims.subject().map(|s| format!("sub:{s}"));
        take_token(cx, local, rl, subject.as_deref().unwrap_or(&key)).await?;
    }
    Ok(())
}

/// Takes a token of `client`'s bucket: the fleet-wide one in Redis when
/// `global` is set and Redis is up, otherwise this proxy's own.
async fn take_token(
    cx: &Ctx<'_>,
    local: &crate::ratelimit::Limiter,
    rl: &tandem_fleet_config::RateLimit,
    client: &str,
) -> Result<(), ProxyError> {
    let m = &cx.state.metrics;
    let mut verdict = None;
    if let Some(t) = cx.rt.tier.as_ref().filter(|_| rl.global) {
        match t.take(client, rl.requests_per_second, rl.burst).await {
            Ok(r) => verdict = Some(r),
            Err(e) => crate::tier::count_error(m, "ratelimit", &e),
        }
    }
    verdict
        .unwrap_or_else(|| local.check(client, Instant::now()))
        .map_err(|wait| {
            m.rate_limited.inc(&[]);
            rate_limited(wait)
        })
}

fn rate_limited(wait: Duration) -> ProxyError {
    ProxyError::RateLimited {
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// A memory miss (or a stale copy to revalidate). A GET joins the key's
/// fill or starts one. HEAD and Range requests join a fill in progress but
/// never start a whole-object fetch themselves: they pass through, and an
/// object small enough to cache is then filled in the background, so the
/// next range is a hit while a large one (a video) never costs a
/// whole-object fetch per range.
async fn miss(
    cx: &Ctx<'_>,
    ck: Arc<str>,
    stale: Option<Arc<CachedObject>>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let m = &cx.state.metrics;
    let lock_timeout = cx.rt.config.cache.lock_timeout();
    if cx.head || cx.headers.contains_key(header::RANGE) {
        if let Some(rx) = cx.rt.cache.existing_flight(&ck) {
            m.coalesced.inc(&[cx.rname()]);
            match cache::wait(rx, lock_timeout).await {
                Waited::Done(r) => return cx.answer(r).await,
                Waited::TimedOut => m.lock_timeouts.inc(&[cx.rname()]),
                Waited::Abandoned => {}
            }
        }
        if let Some(o) = tier_lookup(cx, &ck).await {
            if o.is_fresh() {
                cx.rt.cache.insert(ck, o.clone()).await;
                return from_object(&o, cx.headers, cx.head, "HIT-REDIS");
            }
        }
        let resp = cx.passthrough("MISS").await?;
        if !cx.head && worth_filling(resp.status(), resp.headers(), cx.rt.cache.max_object_bytes) {
            if let Flight::Leader(leader) = cx.rt.cache.flight(ck) {
                Fill {
                    fo: cx.failover(),
                    leader,
                    stale,
                    handoff: None,
                }
                .spawn();
            }
        }
        return Ok(resp);
    }
    // A fill abandoned by its leader (its client left during the Redis
    // lookup) is joined or started afresh, once.
    let mut stale = stale;
    for retry in [true, false] {
        match cx.rt.cache.flight(ck.clone()) {
            Flight::Leader(leader) => return lead(cx, leader, stale.take()).await,
            Flight::Follower(rx) => {
                m.coalesced.inc(&[cx.rname()]);
                match cache::wait(rx, lock_timeout).await {
                    Waited::Done(r) => return cx.answer(r).await,
                    Waited::Abandoned if retry => continue,
                    Waited::TimedOut => m.lock_timeouts.inc(&[cx.rname()]),
                    Waited::Abandoned => {}
                }
                break;
            }
        }
    }
    cx.passthrough("MISS").await
}

/// Leads the fill of a GET miss: Redis first, on this request's own task
/// (a shared hit needs no fill task, and the flight is registered, so
/// concurrent misses wait for this one GET); then the origin, on a fill
/// task of its own that outlives this request.
async fn lead(
    cx: &Ctx<'_>,
    leader: cache::Leader,
    mut stale: Option<Arc<CachedObject>>,
) -> Result<Response<ProxyBody>, ProxyError> {
    if let Some(o) = tier_lookup(cx, leader.key()).await {
        if o.is_fresh() {
            leader
                .finish(FlightResult::Object(o.clone(), Filled::Redis))
                .await;
            return from_object(&o, cx.headers, cx.head, Filled::Redis.cache_status());
        }
        // A stale shared copy still serves revalidation and
        // stale-if-error when memory has nothing.
        stale.get_or_insert(o);
    }
    let (tx, rx) = oneshot::channel();
    Fill {
        fo: cx.failover(),
        leader,
        stale,
        handoff: Some(tx),
    }
    .spawn();
    // No lock timeout: this is the request's own fetch, bounded by the
    // replica and body timeouts.
    match rx.await {
        Ok(Handoff::Shared(r)) => cx.answer(r).await,
        Ok(Handoff::Stream(s)) => {
            let (fo, served) = *s;
            whole(fo, served, cx.headers, cx.head, "MISS")
        }
        // The fill task is gone (shutdown): fetch directly.
        Err(_) => cx.passthrough("MISS").await,
    }
}

/// The Redis tier's copy of `ck`, as a traced span when the request is
/// traced and there is a tier.
async fn tier_lookup(cx: &Ctx<'_>, ck: &str) -> Option<Arc<CachedObject>> {
    let span = cx
        .trail
        .trace
        .as_ref()
        .filter(|_| cx.rt.tier.is_some())
        .map(|t| (t, t.span("redis.lookup")));
    let got = fill::from_tier(cx.state, cx.rt, cx.route(), ck).await;
    if let Some((t, s)) = span {
        let hit = got.is_some();
        t.end(s, vec![("tandem.hit", crate::otel::Attr::Bool(hit))], false);
    }
    got
}

/// Every replica failed, but a copy within `ttl + cache.stale_if_error` of
/// its last confirmation is better than a 503.
fn stale_if_error(
    cx: &Ctx<'_>,
    e: ProxyError,
    stale: &CachedObject,
) -> Result<Response<ProxyBody>, ProxyError> {
    let window = cx.rt.config.cache.stale_if_error.map(|d| d.0);
    if window.is_none_or(|w| stale.stored.elapsed() > stale.ttl + w) {
        return Err(e);
    }
    cx.state.metrics.stale_served.inc(&[cx.rname()]);
    tracing::warn!(route = cx.rname(), key = %cx.or.key, age_s = stale.stored.elapsed().as_secs(), "every replica failed; serving a stale copy");
    let mut resp = from_object(stale, cx.headers, cx.head, "STALE")?;
    resp.headers_mut().insert(
        header::WARNING,
        HeaderValue::from_static("110 - \"Response is Stale\""),
    );
    Ok(resp)
}
