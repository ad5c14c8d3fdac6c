//! The data path: one request in, one S3-shaped response out. Hits are
//! answered from memory; misses are coalesced per key and fetched with
//! failover; everything not cacheable streams straight through.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::auth::AuthError;
use crate::body::{self, ProxyBody};
use crate::cache::{self, Answer, CachedObject, Flight, FlightResult, Leader};
use crate::conditional::{evaluate, if_range_holds, Precondition, Validators};
use crate::error::{Attempt, ProxyError};
use crate::origin::{self, object_headers, Route};
use crate::range::{self, Resolved};
use crate::request::{self, ObjectRequest};
use crate::resume::{self, Resume};
use crate::runtime::Runtime;
use crate::state::State;
use tandem_fleet_config::RateKey;

/// Error bodies from an origin are small XML documents; anything larger is
/// not an S3 error and is cut off rather than buffered.
const MAX_ANSWER_BODY: usize = 64 << 10;

/// Pass-through bodies up to this size are read whole before the response
/// starts, so they can fail over mid-body (see `passthrough`).
const SMALL_BODY: usize = 64 << 10;

/// Request headers forwarded to the origin on pass-through.
const FORWARDED: [header::HeaderName; 6] = [
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
];

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// A request id unique within this process, prefixed by the start time so
/// ids from restarted proxies do not collide in logs.
fn request_id() -> String {
    static EPOCH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let e = *EPOCH.get_or_init(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    format!("{e:X}{:08X}", REQUEST_IDS.fetch_add(1, Ordering::Relaxed))
}

/// Serves one data-plane request. Never fails: every error becomes an
/// S3-style response.
pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    peer: std::net::IpAddr,
) -> Response<ProxyBody> {
    let mut guard = InFlight::new(&state.metrics);
    let rt = state.runtime.load_full();
    let id = request_id();
    let head = req.method() == Method::HEAD;
    let result = serve(&state, &rt, &req, head, peer, &mut guard.route).await;
    let route_name = guard.route.clone();
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, ProxyError::Internal(_) | ProxyError::Unavailable { .. }) {
                tracing::error!(request_id = %id, route = %route_name, path = req.uri().path(), error = %e, "request failed");
            }
            e.into_response(req.uri().path(), &id, head)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    let elapsed = guard.finish(resp.status().as_u16());
    tracing::debug!(request_id = %id, method = %req.method(), path = req.uri().path(), status = resp.status().as_u16(), route = %route_name, elapsed_us = elapsed.as_micros() as u64, "served");
    resp
}

/// Counts a request in flight until it is answered, or until hyper drops
/// it because the client went away first; that case is recorded as 499
/// (nginx's "client closed request"), so the gauge never leaks.
struct InFlight<'a> {
    metrics: &'a crate::metrics::Metrics,
    started: Instant,
    route: String,
    done: bool,
}

impl<'a> InFlight<'a> {
    fn new(metrics: &'a crate::metrics::Metrics) -> InFlight<'a> {
        metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            metrics,
            started: Instant::now(),
            route: "-".to_string(),
            done: false,
        }
    }

    fn finish(&mut self, status: u16) -> std::time::Duration {
        let elapsed = self.started.elapsed();
        if !self.done {
            self.done = true;
            self.metrics.observe(&self.route, status, elapsed);
            self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        elapsed
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.finish(499);
    }
}

async fn serve(
    state: &Arc<State>,
    rt: &Arc<Runtime>,
    req: &Request<Incoming>,
    head: bool,
    peer: std::net::IpAddr,
    route_name: &mut String,
) -> Result<Response<ProxyBody>, ProxyError> {
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
    let route = &rt.routes[or.route];
    route_name.clone_from(&route.config.name);
    let m = &state.metrics;
    let rname = route.config.name.as_str();
    // Auth before anything touches the cache, so a cached object is as
    // protected as the bucket.
    let claims = match &route.auth {
        Some(v) => Some(v.check(req.headers(), &or.key).map_err(|e| {
            m.auth_refused.inc(&[rname]);
            match e {
                AuthError::Forbidden(_) => ProxyError::Forbidden(e.to_string()),
                other => ProxyError::Unauthorized(other.to_string()),
            }
        })?),
        None => None,
    };
    if let (Some(l), Some(rl)) = (&rt.limiter, &rt.config.limits.rate_limit) {
        let ip = peer.to_string();
        let client = match rl.key {
            RateKey::Subject => claims.as_ref().and_then(|c| c.subject()).unwrap_or(&ip),
            RateKey::Ip => &ip,
        };
        if let Err(wait) = take_token(state, rt, l, rl, client).await {
            m.rate_limited.inc(&[]);
            return Err(ProxyError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
    }
    if !route.config.cache.enabled {
        return passthrough(state, rt, route, &or, req.headers(), req.method(), "BYPASS").await;
    }
    let ck = cache::key(&route.generation, &or.key, or.version_id.as_deref());
    let mut cached = rt.cache.get(&ck).await;
    if !cached.as_ref().is_some_and(|o| o.is_fresh()) {
        if let Some(o) = from_tier(state, rt, rname, &ck).await {
            if o.is_fresh() {
                rt.cache.insert(ck.clone(), o.clone()).await;
                m.cache_hits.inc(&[rname]);
                return from_object(&o, req.headers(), head, "HIT-REDIS");
            }
            // A stale shared copy still serves revalidation and
            // stale-if-error when memory has nothing.
            cached.get_or_insert(o);
        }
    }
    if let Some(obj) = cached.as_ref().filter(|o| o.is_fresh()) {
        m.cache_hits.inc(&[rname]);
        let r = from_object(obj, req.headers(), head, "HIT")?;
        if !head {
            m.cache_hit_bytes.add(
                &[rname],
                http_body::Body::size_hint(r.body()).exact().unwrap_or(0),
            );
        }
        return Ok(r);
    }
    m.cache_misses.inc(&[rname]);
    let result = miss(state, rt, route, &or, req, head, ck, cached.clone()).await;
    match (result, cached) {
        // stale-if-error: every replica failed, but a copy within
        // ttl + cache.stale_if_error is better than a 503.
        (Err(ProxyError::Unavailable { route: r, attempts }), Some(stale)) => {
            let window = rt.config.cache.stale_if_error.map(|d| d.0);
            match window.filter(|w| stale.stored.elapsed() <= stale.ttl + *w) {
                Some(_) => {
                    m.stale_served.inc(&[rname]);
                    tracing::warn!(route = rname, key = %or.key, age_s = stale.stored.elapsed().as_secs(), "every replica failed; serving a stale copy");
                    let mut resp = from_object(&stale, req.headers(), head, "STALE")?;
                    resp.headers_mut().insert(
                        header::WARNING,
                        HeaderValue::from_static("110 - \"Response is Stale\""),
                    );
                    Ok(resp)
                }
                None => Err(ProxyError::Unavailable { route: r, attempts }),
            }
        }
        (other, _) => other,
    }
}

/// Takes a rate-limit token: from the fleet-wide bucket in Redis when
/// `global` is set and Redis is up, otherwise from this proxy's own.
async fn take_token(
    state: &Arc<State>,
    rt: &Arc<Runtime>,
    local: &crate::ratelimit::Limiter,
    rl: &tandem_fleet_config::RateLimit,
    client: &str,
) -> Result<(), Duration> {
    if let Some(t) = rt.tier.as_ref().filter(|_| rl.global) {
        match t.take(client, rl.requests_per_second, rl.burst).await {
            Ok(r) => return r,
            Err(e) => crate::tier::count_error(&state.metrics, "ratelimit", &e),
        }
    }
    local.check(client, Instant::now())
}

/// The Redis tier's copy after a memory miss, if the tier is configured,
/// up and holds one. Failures are counted and answered as misses.
async fn from_tier(
    state: &Arc<State>,
    rt: &Arc<Runtime>,
    rname: &str,
    ck: &str,
) -> Option<Arc<CachedObject>> {
    let t = rt.tier.as_ref()?;
    match t.get(ck).await {
        Ok(Some(o)) => {
            state.metrics.tier_hits.inc(&[rname]);
            Some(o)
        }
        Ok(None) => {
            state.metrics.tier_misses.inc(&[rname]);
            None
        }
        Err(e) => {
            crate::tier::count_error(&state.metrics, "get", &e);
            None
        }
    }
}

/// Writes a fetched object to the Redis tier in the background: the
/// client's answer never waits for Redis.
fn spawn_tier_put(
    state: &Arc<State>,
    rt: &Arc<Runtime>,
    rname: &str,
    ck: &str,
    obj: &Arc<CachedObject>,
) {
    let Some(t) = rt.tier.clone() else { return };
    // `put` itself skips objects over `redis.max_object_bytes`.
    if !t.is_up() {
        return;
    }
    let (state, rname, ck, obj) = (
        state.clone(),
        rname.to_string(),
        ck.to_string(),
        obj.clone(),
    );
    tokio::spawn(async move {
        match t.put(&ck, &obj).await {
            Ok(true) => state.metrics.tier_writes.inc(&[&rname]),
            Ok(false) => {}
            Err(e) => crate::tier::count_error(&state.metrics, "put", &e),
        }
    });
}

/// A cache miss, or a stale copy to revalidate.
#[allow(clippy::too_many_arguments)]
async fn miss(
    state: &Arc<State>,
    rt: &Arc<Runtime>,
    route: &Route,
    or: &ObjectRequest,
    req: &Request<Incoming>,
    head: bool,
    ck: Arc<str>,
    stale: Option<Arc<CachedObject>>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let m = &state.metrics;
    let rname = route.config.name.as_str();
    // HEAD and Range requests join a fetch in progress but never start a
    // whole-object fetch themselves. A Range miss on an object small enough
    // to cache fills the cache in the background, so the next range is a
    // hit; the size comes from the range answer, so a large object (a
    // video) never costs a whole-object fetch per range.
    if head || req.headers().contains_key(header::RANGE) {
        if let Some(rx) = rt.cache.existing_flight(&ck) {
            m.coalesced.inc(&[rname]);
            if let Some(r) = cache::wait(rx).await {
                return from_result(state, rt, route, or, req, head, r).await;
            }
        }
        let resp = passthrough(state, rt, route, or, req.headers(), req.method(), "MISS").await?;
        if !head && worth_filling(&resp, rt.cache.max_object_bytes) {
            spawn_fill(state.clone(), rt.clone(), or.clone(), ck, stale);
        }
        return Ok(resp);
    }
    match rt.cache.flight(ck) {
        Flight::Leader(l) => lead(state, rt, route, or, req.headers(), false, stale, l).await,
        Flight::Follower(rx) => {
            m.coalesced.inc(&[rname]);
            match cache::wait(rx).await {
                Some(r) => from_result(state, rt, route, or, req, head, r).await,
                None => {
                    passthrough(state, rt, route, or, req.headers(), req.method(), "MISS").await
                }
            }
        }
    }
}

/// Answers a waiter from the leader's result.
async fn from_result(
    state: &Arc<State>,
    rt: &Arc<Runtime>,
    route: &Route,
    or: &ObjectRequest,
    req: &Request<Incoming>,
    head: bool,
    r: FlightResult,
) -> Result<Response<ProxyBody>, ProxyError> {
    match r {
        FlightResult::Object(o) => from_object(&o, req.headers(), head, "MISS"),
        FlightResult::Answer(a) => Ok(from_answer(&a, head)),
        FlightResult::Uncacheable => {
            passthrough(state, rt, route, or, req.headers(), req.method(), "MISS").await
        }
        FlightResult::Failed(e) => Err(e),
    }
}

/// Fills the cache for a key in the background (after a Range miss).
fn spawn_fill(
    state: Arc<State>,
    rt: Arc<Runtime>,
    or: ObjectRequest,
    ck: Arc<str>,
    stale: Option<Arc<CachedObject>>,
) {
    tokio::spawn(async move {
        let route = &rt.routes[or.route];
        if let Flight::Leader(l) = rt.cache.flight(ck) {
            let _ = lead(&state, &rt, route, &or, &HeaderMap::new(), true, stale, l).await;
        }
    });
}

/// The one origin fetch for a key: whole object, no preconditions, so the
/// result can answer any waiter. Cacheable objects are read fully before
/// anyone is answered, which is what lets a stalled or reset replica fail
/// over even mid-body; others stream through to this request only.
#[allow(clippy::too_many_arguments)]
async fn lead(
    state: &Arc<State>,
    rt: &Arc<Runtime>,
    route: &Route,
    or: &ObjectRequest,
    client_headers: &HeaderMap,
    head: bool,
    stale: Option<Arc<CachedObject>>,
    leader: Leader<'_>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let m = &state.metrics;
    let rname = route.config.name.as_str();
    let mut tried = Vec::new();
    let mut attempts: Vec<Attempt> = Vec::new();
    // A stale copy is revalidated rather than fetched again: a 304 costs
    // the origin no body.
    let mut revalidate = HeaderMap::new();
    if let Some(e) = stale
        .as_ref()
        .and_then(|s| s.etag.as_deref())
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        revalidate.insert(header::IF_NONE_MATCH, e);
    }
    loop {
        let served = match origin::fetch(
            &state.client,
            route,
            &Method::GET,
            &or.key,
            or.version_id.as_deref(),
            &revalidate,
            m,
            &mut tried,
            &mut attempts,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                leader.finish(FlightResult::Failed(e.clone())).await;
                return Err(e);
            }
        };
        let replica = &route.origins[served.replica];
        let resp = served.response;
        let status = resp.status();
        if let (StatusCode::NOT_MODIFIED, Some(s)) = (status, stale.as_ref()) {
            let obj = Arc::new(s.refreshed());
            m.revalidated.inc(&[rname]);
            spawn_tier_put(state, rt, rname, leader.key(), &obj);
            leader.finish(FlightResult::Object(obj.clone())).await;
            return from_object(&obj, client_headers, head, "REVALIDATED");
        }
        if status != StatusCode::OK {
            let (parts, b) = resp.into_parts();
            let body = match read_limited(b, MAX_ANSWER_BODY, replica.timeout).await {
                Ok(b) => b,
                Err(reason) => {
                    origin::record_late_failure(route, served.replica, m, &reason);
                    attempts.push(Attempt {
                        replica: replica.name.clone(),
                        reason,
                    });
                    continue;
                }
            };
            let mut headers = object_headers(&parts.headers);
            headers.remove(header::ACCEPT_RANGES);
            let a = Arc::new(Answer {
                status,
                headers,
                body,
                replica: replica.name.clone(),
            });
            leader.finish(FlightResult::Answer(a.clone())).await;
            return Ok(from_answer(&a, head));
        }
        let len = content_length(resp.headers());
        let cacheable =
            len.is_some_and(|l| l <= rt.cache.max_object_bytes) && storable(resp.headers());
        if !cacheable {
            leader.finish(FlightResult::Uncacheable).await;
            return streamed(
                state,
                rt,
                or,
                served.replica,
                tried,
                resp,
                client_headers,
                head,
                "MISS",
            );
        }
        let (parts, b) = resp.into_parts();
        let len = len.unwrap_or(0) as usize;
        let ttl = route.config.cache.ttl.unwrap_or(rt.config.cache.ttl).0;
        match read_exact(b, len, replica.timeout, rt.config.limits.body_timeout.0).await {
            Ok(body) => {
                let headers = object_headers(&parts.headers);
                let obj = Arc::new(CachedObject {
                    etag: validators(&headers).etag.map(str::to_string),
                    last_modified: validators(&headers).last_modified,
                    headers,
                    body,
                    replica: replica.name.clone(),
                    ttl,
                    keep: rt.config.cache.stale_if_error.map_or(ttl, |d| d.0.max(ttl)),
                    stored: Instant::now(),
                });
                spawn_tier_put(state, rt, rname, leader.key(), &obj);
                leader.finish(FlightResult::Object(obj.clone())).await;
                return from_object(&obj, client_headers, head, "MISS");
            }
            Err(reason) => {
                origin::record_late_failure(route, served.replica, m, &reason);
                attempts.push(Attempt {
                    replica: replica.name.clone(),
                    reason,
                });
            }
        }
    }
}

/// `Content-Length` as a number.
fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The ETag and Last-Modified of an origin response, for preconditions.
pub(crate) fn validators(h: &HeaderMap) -> Validators<'_> {
    Validators {
        etag: h.get(header::ETAG).and_then(|v| v.to_str().ok()),
        last_modified: h
            .get(header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok()),
    }
}

/// Whether a pass-through answer shows an object the cache would keep.
fn worth_filling(resp: &Response<ProxyBody>, max_object_bytes: u64) -> bool {
    let h = resp.headers();
    let total = match resp.status() {
        StatusCode::PARTIAL_CONTENT => h
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(range::parse_content_range)
            .and_then(|(_, _, len)| len),
        StatusCode::OK => content_length(h),
        _ => None,
    };
    total.is_some_and(|t| t <= max_object_bytes) && storable(h)
}

/// Whether the origin allows a shared cache to store this response.
fn storable(h: &HeaderMap) -> bool {
    if h.contains_key(header::SET_COOKIE) {
        return false;
    }
    h.get_all(header::CACHE_CONTROL).iter().all(|v| {
        let v = v.to_str().unwrap_or("").to_ascii_lowercase();
        !v.split(',')
            .any(|d| matches!(d.trim(), "no-store" | "private" | "no-cache"))
    })
}

/// Reads a body of known length, failing on a stall longer than `idle`
/// between chunks, on the overall limit, or on a short body.
async fn read_exact(
    mut b: Incoming,
    len: usize,
    idle: Duration,
    total: Duration,
) -> Result<Bytes, String> {
    let deadline = tokio::time::Instant::now() + total;
    let mut buf = BytesMut::with_capacity(len);
    loop {
        // A small body usually arrived with the headers: take what is
        // already there without arming two timers for it.
        let next = match b.frame().now_or_never() {
            Some(f) => Ok(Ok(f)),
            None => tokio::time::timeout_at(deadline, tokio::time::timeout(idle, b.frame())).await,
        };
        let frame = match next {
            Err(_) => return Err(format!("body not received within {total:?}")),
            Ok(Err(_)) => {
                return Err(format!(
                    "body stalled for {idle:?} after {} of {len} bytes",
                    buf.len()
                ))
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(Err(e)))) => {
                return Err(format!(
                    "body failed after {} of {len} bytes: {e}",
                    buf.len()
                ))
            }
            Ok(Ok(Some(Ok(f)))) => f,
        };
        if let Ok(d) = frame.into_data() {
            if buf.len() + d.len() > len {
                return Err(format!("body longer than its Content-Length {len}"));
            }
            buf.extend_from_slice(&d);
        }
    }
    if buf.len() != len {
        return Err(format!("body ended after {} of {len} bytes", buf.len()));
    }
    Ok(buf.freeze())
}

async fn read_limited(mut b: Incoming, max: usize, idle: Duration) -> Result<Bytes, String> {
    let mut buf = BytesMut::new();
    loop {
        match tokio::time::timeout(idle, b.frame()).await {
            Err(_) => return Err(format!("error body stalled for {idle:?}")),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => return Err(format!("error body failed: {e}")),
            Ok(Some(Ok(f))) => {
                if let Ok(d) = f.into_data() {
                    let room = max.saturating_sub(buf.len());
                    buf.extend_from_slice(&d[..d.len().min(room)]);
                }
            }
        }
    }
}

/// Sends the request's own Range and preconditions to the origin and relays
/// its answer, streaming the body.
async fn passthrough(
    state: &Arc<State>,
    rt: &Arc<Runtime>,
    route: &Route,
    or: &ObjectRequest,
    h: &HeaderMap,
    method: &Method,
    cache_status: &'static str,
) -> Result<Response<ProxyBody>, ProxyError> {
    let mut fwd = HeaderMap::new();
    for n in &FORWARDED {
        for v in h.get_all(n) {
            fwd.append(n.clone(), v.clone());
        }
    }
    let mut tried = Vec::new();
    let mut attempts = Vec::new();
    let (parts, replica_idx, small, stream) = loop {
        let served = origin::fetch(
            &state.client,
            route,
            method,
            &or.key,
            or.version_id.as_deref(),
            &fwd,
            &state.metrics,
            &mut tried,
            &mut attempts,
        )
        .await?;
        let len = content_length(served.response.headers()).and_then(|l| usize::try_from(l).ok());
        let small_ok = *method == Method::GET
            && served.response.status().is_success()
            && len.is_some_and(|l| l <= SMALL_BODY);
        if !small_ok {
            let (parts, b) = served.response.into_parts();
            break (parts, served.replica, None, Some(b));
        }
        // Small bodies are read whole before answering: it costs nothing
        // (they arrive in a read or two) and a replica that dies before the
        // last byte then fails over instead of truncating the response.
        let (parts, b) = served.response.into_parts();
        let replica = &route.origins[served.replica];
        match read_exact(
            b,
            len.unwrap_or(0),
            replica.timeout,
            rt.config.limits.body_timeout.0,
        )
        .await
        {
            Ok(bytes) => break (parts, served.replica, Some(bytes), None),
            Err(reason) => {
                origin::record_late_failure(route, served.replica, &state.metrics, &reason);
                attempts.push(Attempt {
                    replica: replica.name.clone(),
                    reason,
                });
            }
        }
    };
    let status = parts.status;
    let mut headers = object_headers(&parts.headers);
    for n in [header::CONTENT_LENGTH, header::CONTENT_RANGE] {
        if let Some(v) = parts.headers.get(&n) {
            headers.insert(n, v.clone());
        }
    }
    if !status.is_success()
        && status != StatusCode::NOT_MODIFIED
        && status != StatusCode::PARTIAL_CONTENT
    {
        headers.remove(header::ACCEPT_RANGES);
    }
    tag(&mut headers, cache_status, &route.origins[replica_idx].name);
    let body = match (small, stream) {
        (Some(b), _) => body::full(b),
        (None, Some(b)) if *method != Method::HEAD => {
            stream_body(state, rt, or, replica_idx, tried, status, &parts.headers, b)
        }
        _ => body::empty(),
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// Relays a whole-object origin response to the leader's client after
/// evaluating its preconditions locally (the leader fetched without them).
#[allow(clippy::too_many_arguments)]
fn streamed(
    state: &Arc<State>,
    rt: &Arc<Runtime>,
    or: &ObjectRequest,
    replica_idx: usize,
    tried: Vec<bool>,
    resp: Response<Incoming>,
    h: &HeaderMap,
    head: bool,
    cache_status: &'static str,
) -> Result<Response<ProxyBody>, ProxyError> {
    let replica = rt.routes[or.route].origins[replica_idx].name.as_str();
    let mut headers = object_headers(resp.headers());
    match evaluate(h, validators(&headers)) {
        Precondition::Failed => return Err(ProxyError::PreconditionFailed),
        Precondition::NotModified => return Ok(not_modified(&headers)),
        Precondition::Proceed => {}
    }
    if let Some(l) = resp.headers().get(header::CONTENT_LENGTH) {
        headers.insert(header::CONTENT_LENGTH, l.clone());
    }
    tag(&mut headers, cache_status, replica);
    let (parts, b) = resp.into_parts();
    let body = if head {
        body::empty()
    } else {
        stream_body(
            state,
            rt,
            or,
            replica_idx,
            tried,
            parts.status,
            &parts.headers,
            b,
        )
    };
    let mut out = Response::new(body);
    *out.headers_mut() = headers;
    Ok(out)
}

/// A streamed origin body: object bodies (200, 206) resume from another
/// replica if this one fails mid-stream; anything else streams plainly.
#[allow(clippy::too_many_arguments)]
fn stream_body(
    state: &Arc<State>,
    rt: &Arc<Runtime>,
    or: &ObjectRequest,
    replica: usize,
    tried: Vec<bool>,
    status: StatusCode,
    h: &HeaderMap,
    b: Incoming,
) -> ProxyBody {
    let limit = rt.config.limits.body_timeout.0;
    let text = |n: header::HeaderName| h.get(n).and_then(|v| v.to_str().ok());
    let span = match status {
        StatusCode::OK => text(header::CONTENT_LENGTH)
            .and_then(|l| l.parse::<u64>().ok())
            .map(|l| (0, l.checked_sub(1))),
        StatusCode::PARTIAL_CONTENT => text(header::CONTENT_RANGE)
            .and_then(range::parse_content_range)
            .map(|(s, e, _)| (s, Some(e))),
        _ => None,
    };
    match span {
        Some((start, end)) => resume::body(
            b,
            Resume {
                state: state.clone(),
                rt: rt.clone(),
                route: or.route,
                key: or.key.clone(),
                version_id: or.version_id.clone(),
                etag: text(header::ETAG).map(str::to_string),
                start,
                end,
                replica,
                tried,
            },
            limit,
        ),
        None => body::streamed(b, limit),
    }
}

/// Answers from a whole object in memory: preconditions, then Range, with
/// the object's own headers, identical on hits and misses.
pub fn from_object(
    o: &CachedObject,
    h: &HeaderMap,
    head: bool,
    cache_status: &'static str,
) -> Result<Response<ProxyBody>, ProxyError> {
    let v = Validators {
        etag: o.etag.as_deref(),
        last_modified: o.last_modified,
    };
    match evaluate(h, v) {
        Precondition::Failed => return Err(ProxyError::PreconditionFailed),
        Precondition::NotModified => return Ok(not_modified(&o.headers)),
        Precondition::Proceed => {}
    }
    let len = o.body.len() as u64;
    let spec = if if_range_holds(h, v) {
        h.get(header::RANGE)
            .and_then(|r| r.to_str().ok())
            .and_then(range::parse)
    } else {
        None
    };
    let mut headers = o.headers.clone();
    let (status, body) = match range::resolve(spec, len) {
        Resolved::Full => (StatusCode::OK, o.body.clone()),
        Resolved::Partial { start, end } => {
            headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&range::content_range(start, end, len))
                    .map_err(|e| ProxyError::Internal(e.to_string()))?,
            );
            (
                StatusCode::PARTIAL_CONTENT,
                o.body.slice(start as usize..=end as usize),
            )
        }
        Resolved::Unsatisfiable => return Err(ProxyError::RangeNotSatisfiable { len }),
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(header::AGE, HeaderValue::from(o.stored.elapsed().as_secs()));
    tag(&mut headers, cache_status, &o.replica);
    let mut out = Response::new(if head {
        body::empty()
    } else {
        body::full(body)
    });
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// Tells the client where its answer came from: the cache state and the
/// replica (operators debugging a failover ask exactly this).
fn tag(headers: &mut HeaderMap, cache_status: &'static str, replica: &str) {
    headers.insert("x-tandem-cache", HeaderValue::from_static(cache_status));
    if let Ok(v) = HeaderValue::from_str(replica) {
        headers.insert("x-tandem-replica", v);
    }
}

/// A 304 carries the validators and caching headers, no body (RFC 9110
/// §15.4.5).
fn not_modified(h: &HeaderMap) -> Response<ProxyBody> {
    let mut out = Response::new(body::empty());
    *out.status_mut() = StatusCode::NOT_MODIFIED;
    for n in [
        header::ETAG,
        header::LAST_MODIFIED,
        header::CACHE_CONTROL,
        header::EXPIRES,
        header::VARY,
        header::CONTENT_LOCATION,
    ] {
        if let Some(v) = h.get(&n) {
            out.headers_mut().insert(n, v.clone());
        }
    }
    out
}

fn from_answer(a: &Answer, head: bool) -> Response<ProxyBody> {
    let mut headers = a.headers.clone();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(a.body.len()));
    if let Ok(v) = HeaderValue::from_str(&a.replica) {
        headers.insert("x-tandem-replica", v);
    }
    let mut out = Response::new(if head {
        body::empty()
    } else {
        body::full(a.body.clone())
    });
    *out.status_mut() = a.status;
    *out.headers_mut() = headers;
    out
}
