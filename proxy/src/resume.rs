//! Mid-stream resume: when the replica streaming a response dies or stalls
//! after bytes have reached the client, the body continues from the next
//! replica with a Range request for the remaining bytes and `If-Match` on
//! the ETag being sent, so the client sees one complete, consistent body.
//! The client is only cut off (connection aborted, never a short body
//! passed off as complete) when no replica can continue.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Incoming;
use tokio::sync::mpsc;

use crate::body::{BoxError, ProxyBody};
use crate::error::Attempt;
use crate::origin;
use crate::range;
use crate::runtime::Runtime;
use crate::state::State;

/// Frames buffered between the origin reader and the client writer: enough
/// to keep both busy, small enough that backpressure reaches the origin.
const CHANNEL_FRAMES: usize = 8;

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

/// A streamed body that resumes from other replicas on failure.
pub fn body(inner: Incoming, r: Resume, limit: Duration) -> ProxyBody {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, BoxError>>(CHANNEL_FRAMES);
    tokio::spawn(pump(inner, r, limit, tx));
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    StreamBody::new(stream.boxed()).boxed_unsync()
}

async fn pump(
    mut body: Incoming,
    mut r: Resume,
    limit: Duration,
    tx: mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut sent: u64 = 0;
    loop {
        let idle = r.rt.routes[r.route].origins[r.replica].timeout;
        let next = tokio::time::timeout(idle, body.frame());
        let failure = match tokio::time::timeout_at(deadline, next).await {
            Err(_) => {
                let cut = Cut {
                    sent,
                    reason: format!("not finished within {limit:?} (limits.body_timeout)"),
                };
                let _ = tx.send(Err(Box::new(cut))).await;
                return;
            }
            Ok(Err(_)) => format!("no data for {idle:?}"),
            Ok(Ok(None)) => return,
            Ok(Ok(Some(Err(e)))) => e.to_string(),
            Ok(Ok(Some(Ok(frame)))) => {
                if let Some(d) = frame.data_ref() {
                    sent += d.len() as u64;
                }
                if tx.send(Ok(frame)).await.is_err() {
                    return; // the client went away
                }
                continue;
            }
        };
        let rt = r.rt.clone();
        let route = &rt.routes[r.route];
        origin::record_late_failure(route, r.replica, &r.state.metrics, &failure);
        match resume(&mut r, sent).await {
            Ok(next) => {
                r.state.metrics.resumes.inc(&[&route.config.name, "ok"]);
                tracing::warn!(route = %route.config.name, key = %r.key, offset = r.start + sent, replica = %route.origins[r.replica].name, "body resumed from another replica");
                body = next;
            }
            Err(reason) => {
                r.state.metrics.resumes.inc(&[&route.config.name, "failed"]);
                tracing::error!(route = %route.config.name, key = %r.key, sent, reason = %reason, "body cut off: no replica could continue it");
                let _ = tx.send(Err(Box::new(Cut { sent, reason }))).await;
                return;
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
            &origin::thread_client(&r.state.client),
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
