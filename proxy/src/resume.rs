//! Mid-stream resume: when the replica streaming a response dies or stalls
//! after bytes have reached the client, the body continues from the next
//! replica with a Range request for the remaining bytes and `If-Match` on
//! the ETag being sent, so the client sees one complete, consistent body.
//! The client is only cut off (connection aborted, never a short body
//! passed off as complete) when no replica can continue.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::{BoxError, ProxyBody};
use crate::failover::{Accept, Failover, OriginBody, Served, Step};
use crate::origin::Route;
use crate::range;

/// What is needed to continue a body from another replica.
pub struct Resume {
    /// The request's failover context: a replica it already gave up on is
    /// not asked again.
    pub fo: Failover,
    /// ETag of the representation being sent; without one a resume cannot
    /// be verified and is not attempted.
    pub etag: Option<String>,
    /// Absolute offset of the first body byte sent.
    pub start: u64,
    /// Absolute offset of the last byte to send, inclusive, when known.
    pub end: Option<u64>,
    /// Replica currently streaming.
    pub replica: usize,
}

/// The body is cut off for good.
#[derive(Debug, thiserror::Error)]
#[error("response body cut off after {sent} bytes: {reason}")]
pub struct Cut {
    /// Bytes sent.
    pub sent: u64,
    /// Why no replica could continue.
    pub reason: String,
}

/// A streamed body that resumes from other replicas on failure. It polls
/// the origin body directly from the response body (no task or channel in
/// between, so no extra wake-up per frame); only a resume runs as a future.
pub fn body(inner: Incoming, r: Resume, limit: Duration) -> ProxyBody {
    let idle = r.fo.route().origins[r.replica].timeout;
    ResumeBody {
        st: St::Streaming(inner),
        r: Some(r),
        sent: 0,
        limit,
        deadline: Box::pin(tokio::time::sleep(limit)),
        idle,
        idle_timer: Box::pin(tokio::time::sleep(idle)),
    }
    .boxed_unsync()
}

type Resuming = Pin<Box<dyn Future<Output = (Resume, Result<Incoming, String>)> + Send>>;

enum St {
    Streaming(Incoming),
    Resuming(Resuming),
    Done,
}

struct ResumeBody {
    st: St,
    r: Option<Resume>,
    sent: u64,
    limit: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    idle: Duration,
    idle_timer: Pin<Box<tokio::time::Sleep>>,
}

impl ResumeBody {
    /// The streaming replica failed: record it and start asking the next.
    fn start_resume(&mut self, failure: String) {
        let Some(mut r) = self.r.take() else {
            self.st = St::Done;
            return;
        };
        let rt = r.fo.rt.clone();
        r.fo.failed_late(&rt.routes[r.fo.route], r.replica, failure);
        let sent = self.sent;
        self.st = St::Resuming(Box::pin(async move {
            let res = resume(&mut r, sent).await;
            (r, res)
        }));
    }

    fn cut(&mut self, reason: String) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.st = St::Done;
        Poll::Ready(Some(Err(Box::new(Cut {
            sent: self.sent,
            reason,
        }))))
    }
}

impl Body for ResumeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if !matches!(this.st, St::Done) && this.deadline.as_mut().poll(cx).is_ready() {
                let limit = this.limit;
                return this.cut(format!(
                    "not finished within {limit:?} (limits.body_timeout)"
                ));
            }
            match &mut this.st {
                St::Done => return Poll::Ready(None),
                St::Streaming(b) => match Pin::new(b).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(d) = frame.data_ref() {
                            this.sent += d.len() as u64;
                        }
                        let next = tokio::time::Instant::now() + this.idle;
                        this.idle_timer.as_mut().reset(next);
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Poll::Ready(None) => {
                        this.st = St::Done;
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Some(Err(e))) => this.start_resume(e.to_string()),
                    Poll::Pending => {
                        if this.idle_timer.as_mut().poll(cx).is_ready() {
                            let idle = this.idle;
                            this.start_resume(format!("no data for {idle:?}"));
                        } else {
                            return Poll::Pending;
                        }
                    }
                },
                St::Resuming(f) => match f.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready((r, Ok(next))) => {
                        let rt = r.fo.rt.clone();
                        let route = &rt.routes[r.fo.route];
                        r.fo.state.metrics.resumes.inc(&[&route.config.name, "ok"]);
                        tracing::warn!(route = %route.config.name, key = %r.fo.key, offset = r.start + this.sent, replica = %route.origins[r.replica].name, "body resumed from another replica");
                        this.idle = route.origins[r.replica].timeout;
                        let at = tokio::time::Instant::now() + this.idle;
                        this.idle_timer.as_mut().reset(at);
                        this.r = Some(r);
                        this.st = St::Streaming(next);
                    }
                    Poll::Ready((r, Err(reason))) => {
                        let route = r.fo.route();
                        r.fo.state
                            .metrics
                            .resumes
                            .inc(&[&route.config.name, "failed"]);
                        tracing::error!(route = %route.config.name, key = %r.fo.key, sent = this.sent, reason = %reason, "body cut off: no replica could continue it");
                        return this.cut(reason);
                    }
                },
            }
        }
    }
}

/// An answer continues the body only as a 206 of the same representation
/// starting exactly where the client's copy stopped.
struct Continues<'a> {
    etag: &'a str,
    offset: u64,
    range: &'a str,
}

impl Accept for Continues<'_> {
    type Output = (usize, Incoming);

    async fn accept(&mut self, _route: &Route, served: Served) -> Step<(usize, Incoming)> {
        let h = &served.parts.headers;
        let same_etag = h.get(header::ETAG).and_then(|v| v.to_str().ok()) == Some(self.etag);
        let starts_at = h
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(range::parse_content_range)
            .map(|(s, _, _)| s);
        let status = served.parts.status;
        if let (StatusCode::PARTIAL_CONTENT, true, true, OriginBody::Stream(b)) = (
            status,
            same_etag,
            starts_at == Some(self.offset),
            served.body,
        ) {
            return Step::Done((served.replica, b));
        }
        // Another version (412), or an answer that does not continue the
        // body: this replica cannot help, through no fault of its own.
        Step::PassedOver(format!(
            "answered {} (ETag match: {same_etag}) to {}",
            status.as_u16(),
            self.range
        ))
    }
}

/// Asks the next replicas for the rest of the body.
async fn resume(r: &mut Resume, sent: u64) -> Result<Incoming, String> {
    let Some(etag) = r.etag.clone() else {
        return Err("the object has no ETag to verify a resume against".into());
    };
    let offset = r.start + sent;
    if r.end.is_some_and(|e| offset > e) {
        return Err("all bytes were sent but the body did not end cleanly".into());
    }
    let range = match r.end {
        Some(e) => format!("bytes={offset}-{e}"),
        None => format!("bytes={offset}-"),
    };
    let mut fwd = HeaderMap::new();
    fwd.insert(
        header::RANGE,
        HeaderValue::from_str(&range).map_err(|e| e.to_string())?,
    );
    fwd.insert(
        header::IF_MATCH,
        HeaderValue::from_str(&etag).map_err(|e| e.to_string())?,
    );
    let mut accept = Continues {
        etag: &etag,
        offset,
        range: &range,
    };
    let (replica, body) =
        r.fo.run(&Method::GET, &fwd, &mut accept)
            .await
            .map_err(|e| e.to_string())?;
    r.replica = replica;
    Ok(body)
}
