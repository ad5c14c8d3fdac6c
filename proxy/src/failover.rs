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
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use hyper::body::Incoming;

use crate::access::Trail;
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
    /// Status and headers.
    pub parts: http::response::Parts,
    /// The body: still streaming, or an error document already read (to
    /// learn its S3 error code).
    pub body: OriginBody,
    /// Index of the replica in `route.origins`.
    pub replica: usize,
}

/// A replica's response body.
pub enum OriginBody {
    /// Not read yet.
    Stream(Incoming),
    /// Read whole: an S3 error document (small).
    Read(Bytes),
}

impl OriginBody {
    /// The body, read whole if it was not yet, up to `max` bytes (the rest
    /// is dropped), failing on a stall longer than `idle`.
    pub async fn read(self, max: usize, idle: Duration) -> Result<Bytes, String> {
        match self {
            OriginBody::Read(b) => Ok(b),
            OriginBody::Stream(b) => crate::collect::limited(b, max, idle).await,
        }
    }
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
    /// The permit each replica's answer came with: a late failure of a
    /// half-open trial must count against the trial.
    permits: Vec<Option<Permit>>,
    attempts: Vec<Attempt>,
    /// The first replica-specific refusal (AccessDenied, a redirect...),
    /// and whether every replica asked so far refused that way: then the
    /// refusal is the answer, not a 503.
    refused: Option<Served>,
    all_refused: bool,
    /// The request's ID (sent to each replica) and what the access log
    /// reports of the origin side: attempts, the serving replica and its
    /// request ID.
    pub trail: Arc<Trail>,
}

impl Failover {
    /// A fresh context for one object request.
    pub fn new(
        state: Arc<State>,
        rt: Arc<Runtime>,
        or: &ObjectRequest,
        trail: Arc<Trail>,
    ) -> Failover {
        let n = rt.routes[or.route].origins.len();
        Failover {
            state,
            rt,
            route: or.route,
            key: or.key.clone(),
            version_id: or.version_id.clone(),
            tried: vec![false; n],
            permits: vec![None; n],
            attempts: Vec::new(),
            refused: None,
            all_refused: true,
            trail,
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

    /// The next untried replica's answer. A 5xx, a 429, a timeout, a
    /// connection failure, a redirect to another region and an error that
    /// belongs to the replica itself (its credentials, clock or KMS key:
    /// see [`replica_fault`]) are the replica's trouble and move on;
    /// anything else (200, 206, 304, 404, 412, 416...) is an answer about
    /// the object. With `fallback_on_404`, a 404 moves on too, and is the
    /// answer only if no replica has the object. A refusal that every
    /// replica gives is the answer too.
    async fn next(
        &mut self,
        route: &Route,
        method: &Method,
        forward: &HeaderMap,
    ) -> Result<Served, ProxyError> {
        let state = self.state.clone();
        let client: &OriginClient = &state.client;
        let metrics = &state.metrics;
        let rname = route.config.name.as_str();
        let mut not_found: Option<Served> = None;
        for (i, o) in route.origins.iter().enumerate() {
            if self.tried[i] {
                continue;
            }
            self.tried[i] = true;
            let Some(permit) = o.breaker.try_acquire(Instant::now()) else {
                self.all_refused = false;
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
            let span = self.trail.trace.as_ref().map(|t| t.span("origin.attempt"));
            let outcome = match o
                .signed_request(method, &self.key, self.version_id.as_deref(), forward)
                .await
            {
                Err(e) => Err(Trouble::Failed(e, "signing")),
                Ok(mut req) => {
                    // Added after signing, so unsigned: SigV4 requires
                    // only `host` and `x-amz-*` headers to be signed, and
                    // S3 ignores a header it does not know.
                    if let Some(v) = self.trail.header() {
                        req.headers_mut()
                            .insert(crate::access::REQUEST_ID_HEADER, v);
                    }
                    let tp = self.trail.trace.as_ref().zip(span.as_ref());
                    if let Some(v) = tp.and_then(|(t, s)| t.traceparent(s)) {
                        req.headers_mut().insert("traceparent", v);
                    }
                    self.trail.attempted();
                    let sent = Instant::now();
                    match tokio::time::timeout(o.timeout, o.client(client).request(req)).await {
                        Err(_) => Err(Trouble::Failed(
                            format!("no response within {:?} (replica timeout)", o.timeout),
                            "timeout",
                        )),
                        Ok(Err(e)) => {
                            Err(Trouble::Failed(crate::client::error_chain(&e), e.kind()))
                        }
                        Ok(Ok(resp)) => {
                            route.metrics(metrics).first_byte[i].observe(sent.elapsed());
                            classify(resp, o.timeout).await
                        }
                    }
                }
            };
            if let (Some(t), Some(s)) = (&self.trail.trace, span) {
                trace_attempt(t, s, &o.name, &outcome);
            }
            match outcome {
                Ok(served) => {
                    guard.finish(true, metrics, rname, &o.name);
                    self.permits[i] = Some(permit);
                    let served = Served {
                        replica: i,
                        ..served
                    };
                    self.trail.served_by(&o.name, &served.parts.headers);
                    let nf = served.parts.status == StatusCode::NOT_FOUND;
                    metrics.origin_requests.inc(&[
                        rname,
                        &o.name,
                        if nf { "not_found" } else { "ok" },
                    ]);
                    if nf && route.config.fallback_on_404 {
                        // Keep the first 404 as the answer if nobody has it.
                        not_found.get_or_insert(served);
                        self.all_refused = false;
                        continue;
                    }
                    return Ok(served);
                }
                Err(Trouble::Refused(served, reason)) => {
                    guard.finish(false, metrics, rname, &o.name);
                    metrics.origin_requests.inc(&[rname, &o.name, "refused"]);
                    metrics.failovers.inc(&[rname, &o.name]);
                    self.fault(o, reason);
                    self.refused.get_or_insert(Served {
                        replica: i,
                        ..served
                    });
                }
                Err(Trouble::Failed(reason, kind)) => {
                    guard.finish(false, metrics, rname, &o.name);
                    metrics.origin_requests.inc(&[rname, &o.name, kind]);
                    metrics.failovers.inc(&[rname, &o.name]);
                    self.all_refused = false;
                    self.fault(o, reason);
                }
            }
        }
        if let Some(nf) = not_found {
            return Ok(nf);
        }
        if self.all_refused {
            if let Some(r) = self.refused.take() {
                return Ok(r);
            }
        }
        Err(ProxyError::Unavailable {
            route: rname.to_string(),
            attempts: std::mem::take(&mut self.attempts),
        })
    }

    /// Notes a replica's failure: logged and kept (with its cause, which
    /// may name endpoints or credentials) for the log and `/status`, never
    /// for the client.
    fn fault(&mut self, o: &crate::origin::Origin, reason: String) {
        tracing::warn!(route = %self.rt.routes[self.route].config.name, replica = %o.name, key = %self.key, reason = %reason, "replica failed; trying the next");
        o.note_failure(&reason);
        self.attempts.push(Attempt {
            replica: o.name.clone(),
            reason,
        });
    }

    /// Records a failure against a replica whose answer turned out unusable
    /// after the headers (its body stalled or broke).
    pub fn failed_late(&mut self, route: &Route, replica: usize, reason: String) {
        let o = &route.origins[replica];
        let metrics = &self.state.metrics;
        // A half-open trial whose headers came back fine but whose body
        // then broke is a failed trial.
        let permit = self.permits[replica].take().unwrap_or(Permit::Normal);
        if let Some(to) = o.breaker.record(permit, false, Instant::now()) {
            metrics
                .breaker_transitions
                .inc(&[&route.config.name, &o.name, to.as_str()]);
        }
        metrics
            .origin_requests
            .inc(&[&route.config.name, &o.name, "io"]);
        metrics.failovers.inc(&[&route.config.name, &o.name]);
        tracing::warn!(route = %route.config.name, replica = %o.name, key = %self.key, reason, "replica failed mid-body; trying the next");
        o.note_failure(&reason);
        self.all_refused = false;
        self.attempts.push(Attempt {
            replica: o.name.clone(),
            reason,
        });
    }
}

/// Records an origin attempt's span: the replica, and its status or why
/// it failed.
fn trace_attempt(
    t: &crate::otel::Trace,
    s: crate::otel::Started,
    replica: &str,
    outcome: &Result<Served, Trouble>,
) {
    use crate::otel::Attr;
    let mut attrs = vec![("tandem.replica", Attr::Str(replica.to_string()))];
    let error = match outcome {
        Ok(served) => {
            let code = i64::from(served.parts.status.as_u16());
            attrs.push(("http.response.status_code", Attr::Int(code)));
            false
        }
        Err(Trouble::Failed(reason, kind)) => {
            attrs.push(("tandem.outcome", Attr::Str((*kind).to_string())));
            attrs.push(("error.message", Attr::Str(reason.clone())));
            true
        }
        Err(Trouble::Refused(served, reason)) => {
            let code = i64::from(served.parts.status.as_u16());
            attrs.push(("http.response.status_code", Attr::Int(code)));
            attrs.push(("error.message", Attr::Str(reason.clone())));
            true
        }
    };
    t.end(s, attrs, error);
}

/// Error documents are small; anything longer is not one and is cut.
const MAX_ERROR_BODY: usize = 64 << 10;

/// A replica's trouble: a failure (with the metrics' outcome label), or a
/// refusal that belongs to the replica (kept, in case every replica
/// refuses alike).
enum Trouble {
    Failed(String, &'static str),
    Refused(Served, String),
}

/// Splits a replica's response into an answer or the replica's trouble.
/// Redirects and 400/403 error documents are read to learn their S3 code.
async fn classify(resp: Response<Incoming>, idle: Duration) -> Result<Served, Trouble> {
    let s = resp.status();
    if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS {
        return Err(Trouble::Failed(
            format!("HTTP {}", s.as_u16()),
            "error_status",
        ));
    }
    let (parts, b) = resp.into_parts();
    if !matches!(s.as_u16(), 301 | 307 | 400 | 403) {
        return Ok(Served {
            parts,
            body: OriginBody::Stream(b),
            replica: 0,
        });
    }
    let body = crate::collect::limited(b, MAX_ERROR_BODY, idle)
        .await
        .map_err(|e| Trouble::Failed(e, "io"))?;
    let code = s3_error_code(&body);
    let served = Served {
        parts,
        body: OriginBody::Read(body),
        replica: 0,
    };
    if replica_fault(s, code.as_deref()) {
        let reason = format!(
            "HTTP {} {}",
            s.as_u16(),
            code.as_deref().unwrap_or("(no error code)")
        );
        return Err(Trouble::Refused(served, reason));
    }
    Ok(served)
}

/// Whether an S3 error answer is this replica's own trouble (its
/// credentials, its clock, its region or its KMS key) rather than an
/// answer about the object, so another replica may well serve it: expired
/// STS credentials, RequestTimeTooSkewed, a KMS deny and a region redirect
/// all are. An error without a code (S3 sends none to HEAD) counts too;
/// if every replica refuses, the refusal is the answer anyway.
pub fn replica_fault(status: StatusCode, code: Option<&str>) -> bool {
    match status.as_u16() {
        301 | 307 => true,
        400 | 403 => match code {
            None => true,
            Some(c) => {
                c.starts_with("KMS.")
                    || matches!(
                        c,
                        "AccessDenied"
                            | "AccountProblem"
                            | "AllAccessDisabled"
                            | "AuthorizationHeaderMalformed"
                            | "ExpiredToken"
                            | "IllegalLocationConstraintException"
                            | "InvalidAccessKeyId"
                            | "InvalidToken"
                            | "PermanentRedirect"
                            | "RequestTimeTooSkewed"
                            | "SignatureDoesNotMatch"
                            | "TemporaryRedirect"
                            | "TokenRefreshRequired"
                    )
            }
        },
        _ => false,
    }
}

/// The `<Code>` of an S3 error document.
fn s3_error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(text[start..end].trim().to_string()).filter(|c| !c.is_empty())
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
                tokio::time::timeout(o.timeout, o.client(client).request(req)).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replicas_own_refusals_move_on_and_answers_about_the_object_do_not() {
        let s = |n| StatusCode::from_u16(n).unwrap();
        for (status, code) in [
            (403, "AccessDenied"),
            (403, "InvalidAccessKeyId"),
            (400, "ExpiredToken"),
            (403, "SignatureDoesNotMatch"),
            (403, "RequestTimeTooSkewed"),
            (403, "KMS.DisabledException"),
            (400, "AuthorizationHeaderMalformed"),
        ] {
            assert!(replica_fault(s(status), Some(code)), "{status} {code}");
        }
        assert!(replica_fault(s(301), None) && replica_fault(s(307), None));
        assert!(replica_fault(s(403), None), "a HEAD's 403 has no code");
        for (status, code) in [
            (403, Some("InvalidObjectState")),
            (400, Some("InvalidArgument")),
            (404, Some("NoSuchKey")),
            (412, None),
            (416, None),
        ] {
            assert!(!replica_fault(s(status), code), "{status} {code:?}");
        }
    }

    #[test]
    fn error_codes_are_read_from_the_document() {
        let doc =
            b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>";
        assert_eq!(s3_error_code(doc).as_deref(), Some("AccessDenied"));
        assert_eq!(s3_error_code(b"<Error></Error>"), None);
        assert_eq!(s3_error_code(b"\xff\xfe"), None);
    }
}
