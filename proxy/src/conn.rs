//! Connection bounds: how long a client may take to send a request head,
//! to start its next request, and to take a response; and how many
//! connections each listener holds. nginx's `client_header_timeout`,
//! `keepalive_timeout`, `send_timeout` and `limit_conn` are the checklist.
//!
//! Every deadline is enforced on the socket itself, by [`Guarded`], which
//! sits between hyper and the TCP stream: a read it would wait on while the
//! connection waits for a request head, or a write it would wait on
//! because the client is not taking bytes, arms a timer, and when the timer
//! fires the socket fails and hyper drops the connection. So the deadlines
//! hold from the moment of accept, whatever the client sends (nothing, half
//! a head, a truncated HTTP/2 preface), and for every response body,
//! whether it is streamed from an origin or already in memory. The fast
//! path pays no timer: one is armed only when the socket would block.
//!
//! The listeners speak HTTP/1.1 only. No S3 client or load balancer sends
//! cleartext HTTP/2 (h2c) to an S3 endpoint, and serving it would mean a
//! second set of bounds (streams per connection, the Rapid Reset budget of
//! CVE-2023-44487) for no user; HTTP/2 belongs with TLS and ALPN.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::body::{BoxError, ProxyBody};
use crate::metrics::Metrics;

/// The deadlines of one listener's connections, from `limits`.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// `limits.header_timeout`.
    pub header: Duration,
    /// `limits.keepalive_timeout`.
    pub keepalive: Duration,
    /// `limits.send_timeout`.
    pub send: Duration,
    /// `limits.min_send_rate`, bytes per second.
    pub min_rate: u64,
    /// `limits.body_timeout`.
    pub body: Duration,
}

impl ConnLimits {
    /// The deadlines `limits` sets.
    pub fn of(l: &tandem_fleet_config::Limits) -> ConnLimits {
        ConnLimits {
            header: l.header_timeout(),
            keepalive: l.keepalive_timeout(),
            send: l.send_timeout(),
            min_rate: l.min_send_rate().max(1),
            body: l.body_timeout.0,
        }
    }
}

/// One listener's open connections against its cap.
#[derive(Debug)]
pub struct Budget {
    /// `data` or `admin`, for metrics and logs.
    pub listener: &'static str,
    open: AtomicU64,
    max: AtomicU64,
}

impl Budget {
    /// A budget of `max` connections.
    pub fn new(listener: &'static str, max: u32) -> Arc<Budget> {
        Arc::new(Budget {
            listener,
            open: AtomicU64::new(0),
            max: AtomicU64::new(u64::from(max)),
        })
    }

    /// Changes the cap (a reload); connections over a lowered cap stay
    /// until they close.
    pub fn set_max(&self, max: u32) {
        self.max.store(u64::from(max), Ordering::Relaxed);
    }

    /// A place for one more connection, if the listener has one; the
    /// caller closes the connection otherwise.
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let max = self.max.load(Ordering::Relaxed);
        let mut cur = self.open.load(Ordering::Relaxed);
        loop {
            if cur >= max {
                return None;
            }
            match self
                .open
                .compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some(Admitted(self.clone())),
                Err(now) => cur = now,
            }
        }
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }
}

/// A connection's place in its listener's budget, given back on drop.
#[derive(Debug)]
pub struct Admitted(Arc<Budget>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The instant the atomics below count from.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Now, as nanoseconds since [`base`]: a number an atomic can hold.
fn now_ns() -> u64 {
    u64::try_from(Instant::now().duration_since(base()).as_nanos()).unwrap_or(u64::MAX)
}

fn from_ns(ns: u64) -> Instant {
    base() + Duration::from_nanos(ns)
}

/// What a connection's requests tell its socket: how many are being
/// answered (its reads are then not timed), how many have started, and
/// when the last response ended.
#[derive(Debug, Default)]
pub struct Activity {
    /// Responses in progress: one at most over HTTP/1.1, one per open
    /// stream over h2.
    open: AtomicU64,
    /// h2: frames that are not request heads (PING, WINDOW_UPDATE) arrive
    /// while idle, so a read does not start a head's deadline; the
    /// keep-alive clock alone bounds an idle connection.
    multiplexed: AtomicBool,
    requests: AtomicU64,
    idle_since: AtomicU64,
    /// The connection's task, when it read while a request was being
    /// answered: hyper may not read again before the client sends more,
    /// so the end of the response wakes it to start the keep-alive clock.
    reader: futures::task::AtomicWaker,
}

impl Activity {
    /// A request head arrived: the connection answers it now.
    pub fn start(&self) {
        self.open.fetch_add(1, Ordering::AcqRel);
        self.requests.fetch_add(1, Ordering::AcqRel);
    }

    fn end(&self) {
        self.idle_since.store(now_ns(), Ordering::Release);
        if self.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.reader.wake();
        }
    }

    fn busy(&self) -> bool {
        self.open.load(Ordering::Acquire) > 0
    }

    /// The connection speaks h2 (see [`Activity::multiplexed`]'s field).
    pub fn set_multiplexed(&self) {
        self.multiplexed.store(true, Ordering::Release);
    }
}

/// A response body that tells its connection when the response is over,
/// so the keep-alive deadline for the next request starts then.
pub struct Tracked {
    inner: ProxyBody,
    act: Option<Arc<Activity>>,
}

impl Tracked {
    /// `inner`, reporting its end to `act`.
    pub fn new(inner: ProxyBody, act: Arc<Activity>) -> Tracked {
        Tracked {
            inner,
            act: Some(act),
        }
    }

    fn done(&mut self) {
        if let Some(a) = self.act.take() {
            a.end();
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.done();
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(r, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.done();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Why a connection was closed by a deadline, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// No complete request head within `header_timeout`.
    HeaderTimeout,
    /// No next request within `keepalive_timeout`.
    KeepaliveTimeout,
    /// The client took no bytes for `send_timeout`.
    SendTimeout,
    /// The client took bytes slower than `min_send_rate`.
    MinSendRate,
    /// The response ran past `body_timeout`.
    BodyTimeout,
}

impl Closed {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::KeepaliveTimeout => "keepalive_timeout",
            Closed::SendTimeout => "send_timeout",
            Closed::MinSendRate => "min_send_rate",
            Closed::BodyTimeout => "body_timeout",
        }
    }
}

/// A socket under its connection's deadlines.
pub struct Guarded {
    io: TcpStream,
    /// The client: the TCP peer, or a PROXY header's source.
    peer: IpAddr,
    act: Arc<Activity>,
    limits: ConnLimits,
    state: Arc<crate::state::State>,
    listener: &'static str,
    accepted: Instant,
    /// Requests seen so far; a change resets the per-request fields.
    seen: u64,
    /// First byte of a later request's head.
    first_byte: Option<Instant>,
    /// First write of the current response, bytes written since, and the
    /// last write that made progress.
    resp_start: Option<Instant>,
    resp_bytes: u64,
    last_write: Instant,
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl Guarded {
    /// Waits for a just-accepted socket's first byte, within the header
    /// deadline, and wraps it; `None` once the deadline passed (counted,
    /// and the socket reset) or the client left.
    pub async fn first_byte(
        io: TcpStream,
        peer: IpAddr,
        proxy_protocol: bool,
        limits: ConnLimits,
        state: Arc<crate::state::State>,
        listener: &'static str,
    ) -> Option<Guarded> {
        let accepted = Instant::now();
        let mut g = Guarded {
            io,
            peer,
            act: Arc::new(Activity::default()),
            limits,
            state,
            listener,
            accepted,
            seen: 0,
            first_byte: None,
            resp_start: None,
            resp_bytes: 0,
            last_write: accepted,
            read_timer: None,
            write_timer: None,
        };
        if proxy_protocol {
            match crate::forwarded::read_proxy_header(&mut g.io, limits.header).await {
                Ok(Some(client)) => g.peer = client,
                // A balancer's own health check (LOCAL): no client behind it.
                Ok(None) => {}
                Err(why) => {
                    tracing::debug!(
                        listener,
                        reason = why,
                        "closing a connection without a valid PROXY header"
                    );
                    g.state
                        .metrics
                        .connections_closed
                        .inc(&[listener, "proxy_protocol"]);
                    return None;
                }
            }
        }
        // A peek, not `readable()`: tokio reports a fresh socket readable
        // before any byte has arrived.
        let mut probe = [0u8; 1];
        match tokio::time::timeout(limits.header, g.io.peek(&mut probe)).await {
            Ok(Ok(n)) if n > 0 => Some(g),
            Ok(_) => None,
            Err(_) => {
                g.closed(Closed::HeaderTimeout);
                None
            }
        }
    }

    /// `data` or `admin`.
    pub fn listener(&self) -> &'static str {
        self.listener
    }

    /// The client address: the TCP peer, or the PROXY header's source.
    pub fn peer(&self) -> IpAddr {
        self.peer
    }

    /// What this connection's requests report to it.
    pub fn activity(&self) -> Arc<Activity> {
        self.act.clone()
    }

    fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// Notices a new request: its head and response are timed afresh.
    fn sync(&mut self) {
        let n = self.act.requests.load(Ordering::Acquire);
        if n != self.seen {
            self.seen = n;
            self.first_byte = None;
            self.resp_start = None;
            self.resp_bytes = 0;
        }
    }

    /// When the wait for a request head ends, and why.
    fn read_deadline(&self) -> (Instant, Closed) {
        if self.seen == 0 {
            (self.accepted + self.limits.header, Closed::HeaderTimeout)
        } else if let Some(t) = self.first_byte {
            (t + self.limits.header, Closed::HeaderTimeout)
        } else {
            let idle = from_ns(self.act.idle_since.load(Ordering::Acquire));
            (idle + self.limits.keepalive, Closed::KeepaliveTimeout)
        }
    }

    /// When a blocked write gives up, and why: no progress for
    /// `send_timeout`, an average below `min_send_rate` once the response
    /// has run that long, or the whole response past `body_timeout`.
    fn write_deadline(&mut self, now: Instant) -> (Instant, Closed) {
        let start = *self.resp_start.get_or_insert_with(|| {
            self.last_write = now;
            now
        });
        let l = &self.limits;
        let rate_secs = self.resp_bytes as f64 / l.min_rate as f64;
        let rate = start + l.send.max(Duration::from_secs_f64(rate_secs.min(1e9)));
        [
            (self.last_write + l.send, Closed::SendTimeout),
            (rate, Closed::MinSendRate),
            (start + l.body, Closed::BodyTimeout),
        ]
        .into_iter()
        .min_by_key(|(t, _)| *t)
        .unwrap_or((now, Closed::SendTimeout))
    }

    /// Gives up on the connection: counted, and reset rather than closed,
    /// so the kernel drops what the client never took instead of still
    /// trickling it out (a closed socket keeps sending its queue).
    fn closed(&self, why: Closed) -> io::Error {
        let _ = self.io.set_zero_linger();
        self.metrics()
            .connections_closed
            .inc(&[self.listener, why.as_str()]);
        tracing::debug!(
            listener = self.listener,
            reason = why.as_str(),
            "closing a connection"
        );
        io::Error::new(io::ErrorKind::TimedOut, why.as_str())
    }

    fn wrote(&mut self, n: usize) {
        self.sync();
        if n > 0 {
            let now = Instant::now();
            self.resp_start.get_or_insert(now);
            self.resp_bytes += n as u64;
            self.last_write = now;
        }
    }

    /// The socket would block on a write: time it.
    fn write_blocked(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        self.sync();
        let (at, why) = self.write_deadline(Instant::now());
        if fired(&mut self.write_timer, at, cx) {
            return Poll::Ready(self.closed(why));
        }
        Poll::Pending
    }
}

/// Arms `timer` for `at` (making or moving it) and polls it.
fn fired(timer: &mut Option<Pin<Box<Sleep>>>, at: Instant, cx: &mut Context<'_>) -> bool {
    let t = match timer {
        Some(t) => {
            if t.deadline() != at {
                t.as_mut().reset(at);
            }
            t
        }
        None => timer.insert(Box::pin(tokio::time::sleep_until(at))),
    };
    t.as_mut().poll(cx).is_ready()
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && this.first_byte.is_none() {
                    this.sync();
                    if !this.act.busy() && !this.act.multiplexed.load(Ordering::Acquire) {
                        this.first_byte = Some(Instant::now());
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                this.sync();
                // While a request is being answered, hyper only reads to
                // notice the client leaving; that wait is not a head's.
                if this.act.busy() {
                    this.act.reader.register(cx.waker());
                    // The response may have ended in between.
                    if this.act.busy() {
                        return Poll::Pending;
                    }
                }
                let (at, why) = this.read_deadline();
                if fired(&mut this.read_timer, at, cx) {
                    return Poll::Ready(Err(this.closed(why)));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                this.wrote(n);
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this.write_blocked(cx).map(Err),
            other => other,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                this.wrote(n);
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this.write_blocked(cx).map(Err),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

use std::future::Future;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_admits_up_to_its_cap_and_frees_on_drop() {
        let b = Budget::new("data", 2);
        let a1 = b.admit().unwrap();
        let _a2 = b.admit().unwrap();
        assert!(b.admit().is_none());
        assert_eq!(b.open(), 2);
        drop(a1);
        assert!(b.admit().is_some());
    }

    #[test]
    fn instants_survive_the_atomic_round_trip() {
        let a = now_ns();
        let t = from_ns(a);
        let back = Instant::now();
        assert!(back >= t && back.duration_since(t) < Duration::from_secs(1));
    }
}
