//! Failover, in one place: the per-request context that remembers which
//! replicas were tried and why each failed, and the one loop that asks the
//! next replica. Every path that talks to origins goes through it: a fill,
//! a pass-through, and a resume after a replica died mid-body (which keeps
//! the same context, so a replica that failed before the headers is not
//! asked again for the rest of the body). pingora's per-request `CTX` and
//! single retry loop are the model.
//!
//! A replica is tried at most once per request, skipped while its breaker
//! is open, and given its own timeout for connect and first byte. What a
//! caller does with an answer (read a body to cache it, check that it
//! continues a resumed body) is an [`Accept`] step, which can still turn
//! the answer down and let the loop move on.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, Method, Response, StatusCode};
use hyper::body::Incoming;

use crate::breaker::{CircuitBreaker, Permit, State as BreakerState};
use crate::client::OriginClient;
use crate::error::{Attempt, ProxyError};
use crate::metrics::Metrics;
use crate::origin::Route;
use crate::request::ObjectRequest;
use crate::runtime::Runtime;
use crate::state::State;

/// The answer from the replica that served, and its index.
pub struct Served {
    /// The response (headers received; body not yet read).
    pub response: Response<Incoming>,
    /// Index of the replica in `route.origins`.
    pub replica: usize,
}

/// What an [`Accept`] step made of an answer.
pub enum Step<T> {
    /// Done: the loop returns this.
    Done(T),
    /// The replica failed after its headers (a body that stalled or broke):
    /// its breaker records a failure and the next replica is asked.
    Failed(String),
    /// The answer is sound but of no use here (another version of the
    /// object, a range that does not continue the body): the next replica
    /// is asked, and the breaker is left alone.
    PassedOver(String),
}

/// A caller's use of one answer, inside [`Failover::run`].
pub trait Accept {
    /// What the loop returns.
    type Output;
    /// Takes `served`, or turns it down.
    fn accept(
        &mut self,
        route: &Route,
        served: Served,
    ) -> impl Future<Output = Step<Self::Output>> + Send;
}

/// Takes the first answer as it is.
pub struct First;

impl Accept for First {
    type Output = Served;
    async fn accept(&mut self, _route: &Route, served: Served) -> Step<Served> {
        Step::Done(served)
    }
}

/// The failover state of one request: owned, so it can move from the
/// request into a fill task or a resuming body.
pub struct Failover {
    /// Shared state (the origin client and metrics).
    pub state: Arc<State>,
    /// The config the request started with.
    pub rt: Arc<Runtime>,
    /// Index of the route in `rt.routes`.
    pub route: usize,
    /// Object key.
    pub key: String,
    /// `?versionId=`.
    pub version_id: Option<String>,
    tried: Vec<bool>,
    attempts: Vec<Attempt>,
}

impl Failover {
    /// A fresh context for one object request.
    pub fn new(state: Arc<State>, rt: Arc<Runtime>, or: &ObjectRequest) -> Failover {
        let n = rt.routes[or.route].origins.len();
        Failover {
            state,
            rt,
            route: or.route,
            key: or.key.clone(),
            version_id: or.version_id.clone(),
            tried: vec![false; n],
            attempts: Vec::new(),
        }
    }

    /// The route being served.
    pub fn route(&self) -> &Route {
        &self.rt.routes[self.route]
    }

    /// Asks replicas in priority order until `accept` takes an answer.
    /// Fails with every attempt's reason once no replica is left.
    pub async fn run<A: Accept>(
        &mut self,
        method: &Method,
        forward: &HeaderMap,
        accept: &mut A,
    ) -> Result<A::Output, ProxyError> {
        let rt = self.rt.clone();
        let route = &rt.routes[self.route];
        loop {
            let served = self.next(route, method, forward).await?;
            let replica = served.replica;
            match accept.accept(route, served).await {
                Step::Done(t) => return Ok(t),
                Step::Failed(reason) => self.failed_late(route, replica, reason),
                Step::PassedOver(reason) => self.attempts.push(Attempt {
                    replica: route.origins[replica].name.clone(),
                    reason,
                }),
            }
        }
    }

    /// The next untried replica's answer. A 5xx, a 429, a timeout or a
    /// connection failure is the replica's trouble and moves on; anything
    /// else (200, 206, 304, 403, 404, 412, 416) is an answer about the
    /// object. With `fallback_on_404`, a 404 moves on too, and is the
    /// answer only if no replica has the object.
    async fn next(
        &mut self,
        route: &Route,
        method: &Method,
        forward: &HeaderMap,
    ) -> Result<Served, ProxyError> {
        let client: &OriginClient = &self.state.client;
        let metrics = &self.state.metrics;
        let rname = route.config.name.as_str();
        let mut not_found: Option<Served> = None;
        for (i, o) in route.origins.iter().enumerate() {
            if self.tried[i] {
                continue;
            }
            self.tried[i] = true;
            let Some(permit) = o.breaker.try_acquire(Instant::now()) else {
                self.attempts.push(Attempt {
                    replica: o.name.clone(),
                    reason: "breaker open".into(),
                });
                continue;
            };
            let guard = PermitGuard {
                breaker: &o.breaker,
                permit: Some(permit),
            };
            let outcome = match o
                .signed_request(method, &self.key, self.version_id.as_deref(), forward)
                .await
            {
                Err(e) => Err((e, "signing")),
                Ok(req) => match tokio::time::timeout(o.timeout, client.request(req)).await {
                    Err(_) => Err((
                        format!("no response within {:?} (replica timeout)", o.timeout),
                        "timeout",
                    )),
                    Ok(Err(e)) => Err((crate::client::error_chain(&e), e.kind())),
                    Ok(Ok(resp)) => classify(resp),
                },
            };
            match outcome {
                Ok(resp) => {
                    guard.finish(true, metrics, rname, &o.name);
                    let nf = resp.status() == StatusCode::NOT_FOUND;
                    metrics.origin_requests.inc(&[
                        rname,
                        &o.name,
                        if nf { "not_found" } else { "ok" },
                    ]);
                    let served = Served {
                        response: resp,
                        replica: i,
                    };
                    if nf && route.config.fallback_on_404 {
                        // Keep the first 404 as the answer if nobody has it.
                        not_found.get_or_insert(served);
                        continue;
                    }
                    return Ok(served);
                }
                Err((reason, kind)) => {
                    guard.finish(false, metrics, rname, &o.name);
                    metrics.origin_requests.inc(&[rname, &o.name, kind]);
                    metrics.failovers.inc(&[rname, &o.name]);
                    tracing::warn!(route = rname, replica = %o.name, reason = %reason, "replica failed; trying the next");
                    self.attempts.push(Attempt {
                        replica: o.name.clone(),
                        reason,
                    });
                }
            }
        }
        if let Some(nf) = not_found {
            return Ok(nf);
        }
        Err(ProxyError::Unavailable {
            route: rname.to_string(),
            attempts: std::mem::take(&mut self.attempts),
        })
    }

    /// Records a failure against a replica whose answer turned out unusable
    /// after the headers (its body stalled or broke).
    pub fn failed_late(&mut self, route: &Route, replica: usize, reason: String) {
        let o = &route.origins[replica];
        let metrics = &self.state.metrics;
        if let Some(to) = o.breaker.record(Permit::Normal, false, Instant::now()) {
            metrics
                .breaker_transitions
                .inc(&[&route.config.name, &o.name, to.as_str()]);
        }
        metrics
            .origin_requests
            .inc(&[&route.config.name, &o.name, "io"]);
        metrics.failovers.inc(&[&route.config.name, &o.name]);
        tracing::warn!(route = %route.config.name, replica = %o.name, reason, "replica failed mid-body; trying the next");
        self.attempts.push(Attempt {
            replica: o.name.clone(),
            reason,
        });
    }
}

/// Splits a replica's response into an answer or the replica's trouble.
fn classify(resp: Response<Incoming>) -> Result<Response<Incoming>, (String, &'static str)> {
    let s = resp.status();
    if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS {
        Err((format!("HTTP {}", s.as_u16()), "error_status"))
    } else {
        Ok(resp)
    }
}

/// Gives a probe permit back if the request is dropped before finishing.
struct PermitGuard<'a> {
    breaker: &'a CircuitBreaker,
    permit: Option<Permit>,
}

impl PermitGuard<'_> {
    fn finish(mut self, ok: bool, metrics: &Metrics, route: &str, replica: &str) {
        if let Some(p) = self.permit.take() {
            if let Some(to) = self.breaker.record(p, ok, Instant::now()) {
                metrics
                    .breaker_transitions
                    .inc(&[route, replica, to.as_str()]);
                if to == BreakerState::Open {
                    tracing::warn!(route, replica, "circuit breaker opened");
                } else {
                    tracing::info!(
                        route,
                        replica,
                        state = to.as_str(),
                        "circuit breaker changed state"
                    );
                }
            }
        }
    }
}

impl Drop for PermitGuard<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            self.breaker.release(p);
        }
    }
}

/// Probes every replica whose open breaker is due, with a signed HEAD of
/// the bucket, so a route recovers even when no client traffic arrives
/// (otherwise /ready would stay 503 and a load balancer would never send
/// the traffic that closes the breaker). Any HTTP answer below 500 means
/// the replica is reachable; 403 included, since read-only credentials may
/// not allow HeadBucket.
pub async fn probe_due(client: &OriginClient, route: &Route, metrics: &Metrics) {
    for o in &route.origins {
        if !o.breaker.probe_due(Instant::now()) {
            continue;
        }
        let Some(permit) = o.breaker.try_acquire(Instant::now()) else {
            continue;
        };
        let guard = PermitGuard {
            breaker: &o.breaker,
            permit: Some(permit),
        };
        let ok = match o
            .signed_request(&Method::HEAD, "", None, &HeaderMap::new())
            .await
        {
            Ok(req) => matches!(
                tokio::time::timeout(o.timeout, client.request(req)).await,
                Ok(Ok(r)) if !r.status().is_server_error()
            ),
            Err(_) => false,
        };
        metrics.origin_requests.inc(&[
            &route.config.name,
            &o.name,
            if ok { "probe_ok" } else { "probe_failed" },
        ]);
        guard.finish(ok, metrics, &route.config.name, &o.name);
    }
}
