//! The response body type: either bytes already in memory (cache hits,
//! small bodies, errors) or an origin body streamed through without
//! buffering, under a deadline so a stalled origin cannot hold a
//! connection forever. (A stalled client is the connection's business:
//! see [`crate::conn`].)

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty};

use crate::cache::Reservation;
use crate::chunks::Chunks;

/// Errors a streamed body can end with; hyper then aborts the connection,
/// which is how HTTP/1.1 tells a client the body is incomplete.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response the proxy writes.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// An empty body.
pub fn empty() -> ProxyBody {
    Empty::new().map_err(|e| match e {}).boxed_unsync()
}

/// A body from bytes in memory; cloning `Bytes` shares, never copies.
pub fn full(b: Bytes) -> ProxyBody {
    memory(Chunks::one(b), None)
}

/// A body from chunks in memory, holding `hold` (its bytes' share of the
/// fill budget, for a body read whole before answering) until it is sent
/// or dropped.
pub fn memory(c: Chunks, hold: Option<Reservation>) -> ProxyBody {
    Memory {
        left: c.len() as u64,
        parts: c.parts().iter().cloned().collect(),
        _hold: hold,
    }
    .boxed_unsync()
}

struct Memory {
    parts: VecDeque<Bytes>,
    left: u64,
    _hold: Option<Reservation>,
}

impl Body for Memory {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let next = self.parts.pop_front();
        if let Some(b) = &next {
            self.left -= b.len() as u64;
        }
        Poll::Ready(next.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// An origin body streamed through with an overall deadline.
pub fn streamed(inner: hyper::body::Incoming, limit: Duration) -> ProxyBody {
    Deadline {
        inner,
        sleep: Box::pin(tokio::time::sleep(limit)),
        limit,
    }
    .boxed_unsync()
}

/// The body ran past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("response body not finished within {0:?} (limits.body_timeout)")]
pub struct BodyTimeout(pub Duration);

struct Deadline {
    inner: hyper::body::Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl Body for Deadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit)))));
        }
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map(|o| o.map(|r| r.map_err(|e| Box::new(e) as BoxError)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

use std::future::Future;
