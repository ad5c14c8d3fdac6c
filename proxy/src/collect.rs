//! Reading origin bodies into memory, each under its deadlines: an object
//! being cached (or a small body read whole so it can still fail over),
//! and the short error documents S3 answers with.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::chunks::{Chunks, CHUNK};

/// Reads a body of known length, failing on a stall longer than `idle`
/// between frames, on the overall `total`, or on a body shorter or longer
/// than `len`. Memory is allocated a chunk at a time as bytes arrive,
/// never for the whole length up front.
pub async fn exact(
    mut b: Incoming,
    len: usize,
    idle: Duration,
    total: Duration,
) -> Result<Chunks, String> {
    let deadline = tokio::time::Instant::now() + total;
    let mut out = Chunks::default();
    let mut cur = BytesMut::new();
    loop {
        // A small body usually arrived with the headers: take what is
        // already there without arming two timers for it.
        let next = match b.frame().now_or_never() {
            Some(f) => Ok(Ok(f)),
            None => tokio::time::timeout_at(deadline, tokio::time::timeout(idle, b.frame())).await,
        };
        let got = out.len() + cur.len();
        let frame = match next {
            Err(_) => return Err(format!("body not received within {total:?}")),
            Ok(Err(_)) => {
                return Err(format!(
                    "body stalled for {idle:?} after {got} of {len} bytes"
                ))
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(Err(e)))) => {
                return Err(format!("body failed after {got} of {len} bytes: {e}"))
            }
            Ok(Ok(Some(Ok(f)))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if got + data.len() > len {
            return Err(format!("body longer than its Content-Length {len}"));
        }
        let mut d: &[u8] = &data;
        while !d.is_empty() {
            if cur.len() == cur.capacity() {
                if !cur.is_empty() {
                    out.push(cur.split().freeze());
                }
                let left = len - out.len();
                cur = BytesMut::with_capacity(left.min(CHUNK));
            }
            let take = d.len().min(cur.capacity() - cur.len());
            cur.extend_from_slice(&d[..take]);
            d = &d[take..];
        }
    }
    out.push(cur.freeze());
    if out.len() != len {
        return Err(format!("body ended after {} of {len} bytes", out.len()));
    }
    Ok(out)
}

/// Reads up to `max` bytes of a body (an S3 error document), dropping the
/// rest, failing on a stall longer than `idle`.
pub async fn limited(mut b: Incoming, max: usize, idle: Duration) -> Result<Bytes, String> {
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
