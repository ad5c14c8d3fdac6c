//! A fill: the one fetch of an object that every concurrent miss of it
//! shares (request coalescing). It runs as a task of its own, so the
//! request that started it can go away and its waiters are still answered
//! from one origin GET, and the object is still cached.
//!
//! Before a fill starts, its leader asks the Redis tier (so N memory misses
//! make one Redis GET, and a shared hit needs no task). A fill then
//! revalidates a stale copy with `If-None-Match` rather than fetching it
//! again; else fetches the whole object, reserving its length in the
//! fill budget and reading it a chunk at a time; stores it in memory and,
//! in the background, in Redis. A purge that overtakes the fill keeps it
//! from storing anything (see [`crate::cache`]).
//!
//! An answer that cannot be shared (too large, `no-store`, or over the fill
//! budget) is handed, still streaming, to the request that started the
//! fill; its waiters fetch for themselves.

use std::sync::Arc;
use std::time::Instant;

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use tokio::sync::oneshot;

use crate::cache::{Answer, CachedObject, Filled, FlightResult, Leader, Reservation};
use crate::collect;
use crate::conditional::Validators;
use crate::error::ProxyError;
use crate::failover::{Accept, Failover, OriginBody, Served, Step};
use crate::origin::Route;
use crate::policy::{content_length, storable};
use crate::response::{object_headers, stored_headers};
use crate::runtime::Runtime;
use crate::state::State;
use crate::tier::Lookup;

/// Error bodies from an origin are small XML documents; anything larger is
/// not an S3 error and is cut off rather than buffered.
const MAX_ANSWER_BODY: usize = 64 << 10;

/// What the request that started a fill gets.
pub enum Handoff {
    /// The result every waiter gets.
    Shared(FlightResult),
    /// A whole-object answer that cannot be shared, still streaming: the
    /// starting request relays it, with the failover context that fetched
    /// it (for a mid-body resume).
    Stream(Box<(Failover, Served)>),
}

/// One fill, ready to run.
pub struct Fill {
    /// Failover context of the fetch.
    pub fo: Failover,
    /// The flight it leads.
    pub leader: Leader,
    /// Memory's expired copy, revalidated rather than fetched again.
    pub stale: Option<Arc<CachedObject>>,
    /// The starting request, if it waits for the result.
    pub handoff: Option<oneshot::Sender<Handoff>>,
}

/// How the origin answered the fill.
enum Fetched {
    /// The stale copy is still current (304).
    Unchanged,
    /// The object, read whole, with its share of the fill budget.
    Object(Arc<CachedObject>, Reservation),
    /// A non-200 answer about the object.
    Answer(Arc<Answer>),
    /// A 200 that will not be buffered, and why.
    Unshared(Served, &'static str),
}

/// The fill's use of an answer.
struct Take<'a> {
    rt: &'a Runtime,
    stale: bool,
}

impl Accept for Take<'_> {
    type Output = Fetched;

    async fn accept(&mut self, route: &Route, served: Served) -> Step<Fetched> {
        let replica = &route.origins[served.replica];
        let status = served.parts.status;
        if status == StatusCode::NOT_MODIFIED && self.stale {
            return Step::Done(Fetched::Unchanged);
        }
        if status != StatusCode::OK {
            let parts = served.parts;
            return match served.body.read(MAX_ANSWER_BODY, replica.timeout).await {
                Ok(body) => {
                    let mut headers = object_headers(&parts.headers);
                    headers.remove(header::ACCEPT_RANGES);
                    Step::Done(Fetched::Answer(Arc::new(Answer {
                        status,
                        headers,
                        body,
                        replica: replica.name.clone(),
                    })))
                }
                Err(reason) => Step::Failed(reason),
            };
        }
        let h = &served.parts.headers;
        let len = content_length(h).filter(|&l| l <= self.rt.cache.max_object_bytes);
        let Some(len) = len.filter(|_| storable(h)) else {
            return Step::Done(Fetched::Unshared(served, "not_cacheable"));
        };
        let Some(hold) = self.rt.cache.fill.reserve(len) else {
            return Step::Done(Fetched::Unshared(served, "budget"));
        };
        // A 200 is never read ahead (only error documents are).
        let (parts, OriginBody::Stream(b)) = (served.parts, served.body) else {
            return Step::Failed("a 200 whose body was already read".into());
        };
        let body_timeout = self.rt.config.limits.body_timeout.0;
        // `len` is at most max_object_bytes, so it fits a usize.
        match collect::exact(b, len as usize, replica.timeout, body_timeout).await {
            Ok(body) => {
                let headers = stored_headers(&parts.headers);
                let v = Validators::of(&headers);
                let (etag, last_modified) = (v.etag.map(str::to_string), v.last_modified);
                let route_ttl = route.config.cache.ttl.unwrap_or(self.rt.config.cache.ttl).0;
                let obj = CachedObject {
                    etag,
                    last_modified,
                    headers,
                    body,
                    replica: replica.name.clone(),
                    ttl: route_ttl,
                    keep: self
                        .rt
                        .config
                        .cache
                        .stale_if_error
                        .map_or(route_ttl, |d| d.0.max(route_ttl)),
                    stored: Instant::now(),
                };
                Step::Done(Fetched::Object(Arc::new(obj), hold))
            }
            Err(reason) => Step::Failed(reason),
        }
    }
}

impl Fill {
    /// Runs the fill on a task of its own.
    pub fn spawn(self) {
        tokio::spawn(self.run());
    }

    async fn run(mut self) {
        // `_hold` keeps the object's bytes in the fill budget until the
        // cache has them.
        let (result, stream, _hold) = self.fetch().await;
        let Fill {
            fo,
            leader,
            handoff,
            ..
        } = self;
        match stream {
            Some(served) => {
                leader.finish(FlightResult::Uncacheable).await;
                if let Some(h) = handoff {
                    // Dropped (with the origin connection) if the request
                    // has gone away.
                    let _ = h.send(Handoff::Stream(Box::new((fo, served))));
                }
            }
            None => {
                if let Some(h) = handoff {
                    let _ = h.send(Handoff::Shared(result.clone()));
                }
                leader.finish(result).await;
            }
        }
    }

    /// The fill's result; for an answer that is not shared, the answer
    /// itself (its waiters are told to fetch for themselves); and the
    /// fill-budget reservation of a fetched object.
    async fn fetch(&mut self) -> (FlightResult, Option<Served>, Option<Reservation>) {
        let state = self.fo.state.clone();
        let rt = self.fo.rt.clone();
        let m = &state.metrics;
        let rname = self.fo.route().config.name.clone();
        let mut revalidate = HeaderMap::new();
        if let Some(e) = self
            .stale
            .as_ref()
            .and_then(|s| s.etag.as_deref())
            .and_then(|e| HeaderValue::from_str(e).ok())
        {
            revalidate.insert(header::IF_NONE_MATCH, e);
        }
        let mut take = Take {
            rt: &rt,
            stale: self.stale.is_some(),
        };
        let fetched = match self.fo.run(&Method::GET, &revalidate, &mut take).await {
            Ok(f) => f,
            Err(e) => return (FlightResult::Failed(e, self.stale.clone()), None, None),
        };
        let (obj, filled, hold) = match fetched {
            Fetched::Unchanged => {
                let Some(s) = self.stale.as_ref() else {
                    let e = ProxyError::Internal("a 304 to a fill without a copy".into());
                    return (FlightResult::Failed(e, None), None, None);
                };
                m.revalidated.inc(&[&rname]);
                (Arc::new(s.refreshed()), Filled::Revalidated, None)
            }
            Fetched::Object(o, hold) => (o, Filled::Origin, Some(hold)),
            Fetched::Answer(a) => return (FlightResult::Answer(a), None, None),
            Fetched::Unshared(served, why) => {
                m.fills_unshared.inc(&[&rname, why]);
                return (FlightResult::Uncacheable, Some(served), None);
            }
        };
        to_tier(&state, &rt, &rname, &self.leader, &obj);
        (FlightResult::Object(obj, filled), None, hold)
    }
}

/// The Redis tier's copy, if the tier is configured, up and holds a copy
/// it believes, with a lifetime no longer than `route`'s. Failures and
/// copies not believed are counted and answered as misses.
pub async fn from_tier(
    state: &State,
    rt: &Runtime,
    route: &Route,
    ck: &str,
) -> Option<Arc<CachedObject>> {
    let t = rt.tier.as_ref()?;
    let rname = route.config.name.as_str();
    let ttl = route.config.cache.ttl.unwrap_or(rt.config.cache.ttl).0;
    let clamp = crate::tier::Clamp {
        ttl,
        keep: rt.config.cache.stale_if_error.map_or(ttl, |d| d.0.max(ttl)),
    };
    match t.get(ck, clamp).await {
        Ok(Lookup::Hit(o)) => {
            state.metrics.tier_hits.inc(&[rname]);
            Some(o)
        }
        Ok(Lookup::Miss) => {
            state.metrics.tier_misses.inc(&[rname]);
            None
        }
        Ok(Lookup::Rejected(why)) => {
            state.metrics.tier_rejected.inc(&["value", why]);
            tracing::warn!(
                route = rname,
                reason = why,
                "ignoring a Redis value that is not the fleet's"
            );
            None
        }
        Err(e) => {
            crate::tier::count_error(&state.metrics, "get", &e);
            None
        }
    }
}

/// Writes a fetched object to the Redis tier in the background: the
/// fill's waiters never wait for Redis. A purge that overtakes the fill
/// before the write goes out stops it (see [`crate::tier::Tier::put`]).
fn to_tier(
    state: &Arc<State>,
    rt: &Arc<Runtime>,
    rname: &str,
    leader: &Leader,
    obj: &Arc<CachedObject>,
) {
    let Some(t) = rt.tier.clone() else { return };
    if !t.is_up() || obj.body.len() as u64 > t.max_object_bytes {
        return;
    }
    // The Redis client copies the value into its command and then into
    // its write buffer: both count against the fill budget while the
    // write is in flight, so a burst of fills cannot double memory.
    let Some(hold) = rt.cache.fill.reserve(2 * obj.weight() as u64) else {
        state.metrics.tier_writes_skipped.inc(&["budget"]);
        return;
    };
    let (state, cache, rname, ck, epoch, obj) = (
        state.clone(),
        rt.cache.clone(),
        rname.to_string(),
        leader.key().to_string(),
        leader.epoch(),
        obj.clone(),
    );
    tokio::spawn(async move {
        let _hold = hold;
        match t.put(&ck, &obj, || !cache.purged_since(epoch, &ck)).await {
            Ok(true) => state.metrics.tier_writes.inc(&[&rname]),
            Ok(false) => {}
            Err(e) => crate::tier::count_error(&state.metrics, "put", &e),
        }
    });
}
