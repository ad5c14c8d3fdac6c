//! Mid-stream resume: when the replica streaming a response dies or stalls
//! after bytes have reached the client, the body continues from the next
//! replica with a Range request for the remaining bytes and `If-Match` on
//! the ETag being sent, so the client sees one complete, consistent body.
//! The client is only cut off (connection aborted, never a short body
//! passed off as complete) when no replica can continue.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::{BoxError, ProxyBody};
use crate::error::Attempt;
use crate::origin;
use crate::range;
use crate::runtime::Runtime;
use crate::state::State;

/// What is needed to continue a body from another replica.
pub struct Resume {
    /// Shared state (client, metrics).
    pub state: Arc<State>,
    /// The config the request started with.
    pub rt: Arc<Runtime>,
    /// Route index.
    pub route: usize,
    /// Object key.
    pub key: String,
    /// `?versionId=`.
    pub version_id: Option<String>,
    /// ETag of the representation being sent; without one a resume cannot
    /// be verified and is not attempted.
    pub etag: Option<String>,
    /// Absolute offset of the first body byte sent.
    pub start: u64,
    /// Absolute offset of the last byte to send, inclusive, when known.
    pub end: Option<u64>,
    /// Replica currently streaming.
    pub replica: usize,
    /// Replicas already used by this request.
    pub tried: Vec<bool>,
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
    let idle = r.rt.routes[r.route].origins[r.replica].timeout;
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
        let rt = r.rt.clone();
        origin::record_late_failure(&rt.routes[r.route], r.replica, &r.state.metrics, &failure);
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
                        let rt = r.rt.clone();
                        let route = &rt.routes[r.route];
                        r.state.metrics.resumes.inc(&[&route.config.name, "ok"]);
                        tracing::warn!(route = %route.config.name, key = %r.key, offset = r.start + this.sent, replica = %route.origins[r.replica].name, "body resumed from another replica");
                        this.idle = route.origins[r.replica].timeout;
                        let at = tokio::time::Instant::now() + this.idle;
                        this.idle_timer.as_mut().reset(at);
                        this.r = Some(r);
                        this.st = St::Streaming(next);
                    }
                    Poll::Ready((r, Err(reason))) => {
                        let route = &r.rt.routes[r.route];
                        r.state.metrics.resumes.inc(&[&route.config.name, "failed"]);
                        tracing::error!(route = %route.config.name, key = %r.key, sent = this.sent, reason = %reason, "body cut off: no replica could continue it");
                        return this.cut(reason);
                    }
                },
            }
        }
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
    let mut fwd = HeaderMap::new();
    let range = match r.end {
        Some(e) => format!("bytes={offset}-{e}"),
        None => format!("bytes={offset}-"),
    };
    fwd.insert(
        header::RANGE,
        HeaderValue::from_str(&range).map_err(|e| e.to_string())?,
    );
    fwd.insert(
        header::IF_MATCH,
        HeaderValue::from_str(&etag).map_err(|e| e.to_string())?,
    );
    let rt = r.rt.clone();
    let route = &rt.routes[r.route];
    let mut attempts: Vec<Attempt> = Vec::new();
    loop {
        let served = origin::fetch(
            &r.state.client,
            route,
            &Method::GET,
            &r.key,
            r.version_id.as_deref(),
            &fwd,
            &r.state.metrics,
            &mut r.tried,
            &mut attempts,
        )
        .await
        .map_err(|e| e.to_string())?;
        let resp = served.response;
        let name = &route.origins[served.replica].name;
        let same_etag = resp
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            == Some(etag.as_str());
        let starts_at = resp
            .headers()
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(range::parse_content_range)
            .map(|(s, _, _)| s);
        if resp.status() == StatusCode::PARTIAL_CONTENT && same_etag && starts_at == Some(offset) {
            r.replica = served.replica;
            return Ok(resp.into_body());
        }
        // Another version (412), or an answer that does not continue the
        // body: this replica cannot help; try the next.
        attempts.push(Attempt {
            replica: name.clone(),
            reason: format!(
                "answered {} (ETag match: {same_etag}) to {range}",
                resp.status().as_u16()
            ),
        });
    }
}
