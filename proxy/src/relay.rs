//! Relaying origin answers that are not served from memory: a pass-through
//! with the client's own Range and preconditions, and a fill's whole-object
//! answer that turned out not to be cacheable. Bodies stream through (with
//! mid-stream resume from another replica); a small pass-through body is
//! read whole first, within the fill budget, so a replica that dies before
//! its last byte fails over instead of truncating the response.

use http::{header, HeaderMap, Method, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::{self, ProxyBody};
use crate::cache::{FillBudget, Reservation};
use crate::chunks::Chunks;
use crate::collect;
use crate::conditional::{evaluate, Precondition, Validators};
use crate::error::ProxyError;
use crate::failover::{Accept, Failover, OriginBody, Served, Step};
use crate::origin::Route;
use crate::policy::content_length;
use crate::range;
use crate::response::{not_modified, object_headers, tag};
use crate::resume::{self, Resume};

/// Pass-through bodies up to this size are read whole before the response
/// starts, so they can fail over mid-body. They arrive in a read or two;
/// larger ones stream.
pub const SMALL_BODY: usize = 64 << 10;

/// Request headers forwarded to the origin on pass-through.
const FORWARDED: [header::HeaderName; 6] = [
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
];

/// An origin answer, its body either read whole or still streaming.
struct Relayed {
    parts: http::response::Parts,
    replica: usize,
    body: RelayedBody,
}

enum RelayedBody {
    /// Read whole: a small body (holding its share of the fill budget), or
    /// an error document the failover loop read for its code.
    Read(Chunks, Option<Reservation>),
    Streaming(Incoming),
}

/// The pass-through's use of an answer: a small successful GET body is
/// read whole, if the fill budget has room for it.
struct ReadSmall<'a> {
    method: &'a Method,
    budget: &'a std::sync::Arc<FillBudget>,
    body_timeout: std::time::Duration,
}

impl Accept for ReadSmall<'_> {
    type Output = Relayed;

    async fn accept(&mut self, route: &Route, served: Served) -> Step<Relayed> {
        let (parts, b) = match served.body {
            OriginBody::Read(b) => {
                return Step::Done(Relayed {
                    parts: served.parts,
                    replica: served.replica,
                    body: RelayedBody::Read(Chunks::one(b), None),
                })
            }
            OriginBody::Stream(b) => (served.parts, b),
        };
        let small = content_length(&parts.headers)
            .and_then(|l| usize::try_from(l).ok())
            .filter(|&l| l <= SMALL_BODY);
        let hold = small
            .filter(|_| *self.method == Method::GET && parts.status.is_success())
            .and_then(|l| Some((l, self.budget.reserve(l as u64)?)));
        let Some((len, hold)) = hold else {
            return Step::Done(Relayed {
                parts,
                replica: served.replica,
                body: RelayedBody::Streaming(b),
            });
        };
        let idle = route.origins[served.replica].timeout;
        match collect::exact(b, len, idle, self.body_timeout).await {
            Ok(c) => Step::Done(Relayed {
                parts,
                replica: served.replica,
                body: RelayedBody::Read(c, Some(hold)),
            }),
            Err(reason) => Step::Failed(reason),
        }
    }
}

/// Sends the request's own Range and preconditions to the origin and relays
/// its answer.
pub async fn passthrough(
    mut fo: Failover,
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
    let rt = fo.rt.clone();
    let mut accept = ReadSmall {
        method,
        budget: &rt.cache.fill,
        body_timeout: rt.config.limits.body_timeout.0,
    };
    let r = fo.run(method, &fwd, &mut accept).await?;
    let status = r.parts.status;
    let mut headers = object_headers(&r.parts.headers);
    for n in [header::CONTENT_LENGTH, header::CONTENT_RANGE] {
        if let Some(v) = r.parts.headers.get(&n) {
            headers.insert(n, v.clone());
        }
    }
    if !status.is_success()
        && status != StatusCode::NOT_MODIFIED
        && status != StatusCode::PARTIAL_CONTENT
    {
        headers.remove(header::ACCEPT_RANGES);
    }
    tag(
        &mut headers,
        cache_status,
        &fo.route().origins[r.replica].name,
    );
    let body = match r.body {
        RelayedBody::Read(c, hold) => body::memory(c, hold),
        RelayedBody::Streaming(b) if *method != Method::HEAD => {
            stream(fo, r.replica, status, &r.parts.headers, b)
        }
        RelayedBody::Streaming(_) => body::empty(),
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// Relays a whole-object origin answer to one client after evaluating its
/// preconditions locally (a fill fetches without them).
pub fn whole(
    fo: Failover,
    served: Served,
    h: &HeaderMap,
    head: bool,
    cache_status: &'static str,
) -> Result<Response<ProxyBody>, ProxyError> {
    let mut headers = object_headers(&served.parts.headers);
    match evaluate(h, Validators::of(&headers)) {
        Precondition::Failed => return Err(ProxyError::PreconditionFailed),
        Precondition::NotModified => return Ok(not_modified(&headers)),
        Precondition::Proceed => {}
    }
    if let Some(l) = served.parts.headers.get(header::CONTENT_LENGTH) {
        headers.insert(header::CONTENT_LENGTH, l.clone());
    }
    tag(
        &mut headers,
        cache_status,
        &fo.route().origins[served.replica].name,
    );
    let parts = served.parts;
    let body = match served.body {
        _ if head => body::empty(),
        OriginBody::Stream(b) => stream(fo, served.replica, parts.status, &parts.headers, b),
        OriginBody::Read(b) => body::full(b),
    };
    let mut out = Response::new(body);
    *out.headers_mut() = headers;
    Ok(out)
}

/// A streamed origin body: object bodies (200, 206) resume from another
/// replica if this one fails mid-stream; anything else streams plainly.
fn stream(
    fo: Failover,
    replica: usize,
    status: StatusCode,
    h: &HeaderMap,
    b: Incoming,
) -> ProxyBody {
    let limit = fo.rt.config.limits.body_timeout.0;
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
                fo,
                etag: text(header::ETAG).map(str::to_string),
                start,
                end,
                replica,
            },
            limit,
        ),
        None => body::streamed(b, limit),
    }
}
