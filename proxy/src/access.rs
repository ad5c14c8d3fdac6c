//! The access log and request IDs: one JSON line on stdout per request,
//! written when the response's last byte has gone to the connection (or
//! when the body is dropped early: a client that left, a cut-off origin
//! body; the line says so with `"completed":false`).
//!
//! A request's ID, the replicas it tried and the origin's own request ID
//! travel in its [`Trail`], which the failover context carries next to its
//! tried set (the same per-request context, not a global). The line is
//! formatted on the request's worker and handed to one writer thread
//! through a bounded queue with `try_send`: a slow stdout (a blocked pipe,
//! a stalled log shipper) drops lines, counted in
//! `tandem_access_log_dropped_total`, and never stalls a request.

use std::io::Write as _;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use serde::Serialize;

use crate::body::{BoxError, ProxyBody};

/// Lines waiting for the writer before new ones are dropped: about a
/// second of lines at 16k requests/s, so a writer that stalls for less
/// than that loses nothing, and at about 400 bytes a line the queue holds
/// at most ~6.5 MiB.
pub const QUEUE_LINES: usize = 16 * 1024;

/// Longest `x-request-id` a client may set, in bytes. 128 holds a UUID,
/// a W3C trace-id pair or an AWS request ID with room to spare, and keeps
/// what a client can put into every log line (and the origin request)
/// small.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// The header that carries a request's ID in and out, and to the origin.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Hex digits of the SHA-256 of a key logged with `hash_keys`: 64 bits
/// tell a bucket's objects apart, and a prefix is shorter to read.
const KEY_HASH_HEX: usize = 16;

/// Why the access log could not write.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// The writer thread could not be started.
    #[error("starting the access log writer thread: {0}")]
    Thread(std::io::Error),
}

static SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// The request's ID: the client's `x-request-id` when it is one we can
/// pass on safely (1 to [`MAX_REQUEST_ID_BYTES`] of letters, digits and
/// `-_.:+=/`), else a new one unique within the fleet's logs (the process
/// start time, then a counter).
pub fn request_id(h: &HeaderMap) -> Arc<str> {
    if let Some(v) = h.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()) {
        if valid_request_id(v) {
            return v.into();
        }
    }
    static EPOCH: OnceLock<u64> = OnceLock::new();
    let e = *EPOCH.get_or_init(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    generated_id(e, SEQUENCE.fetch_add(1, Ordering::Relaxed))
}

/// `{epoch:X}{seq:08X}` (the sequence at least 8 digits), written by hand:
/// `format!` and its string cost a hit about 1 % of its CPU (perf, 4 KiB
/// hits), and this runs for every request.
fn generated_id(epoch: u64, seq: u64) -> Arc<str> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let digits = |v: u64, min: u32| (64 - v.leading_zeros()).div_ceil(4).max(min) as usize;
    let (ed, sd) = (digits(epoch, 1), digits(seq, 8));
    let mut buf = [0u8; 32];
    for (i, b) in buf[..ed].iter_mut().enumerate() {
        *b = HEX[(epoch >> (4 * (ed - 1 - i)) & 0xF) as usize];
    }
    for (i, b) in buf[ed..ed + sd].iter_mut().enumerate() {
        *b = HEX[(seq >> (4 * (sd - 1 - i)) & 0xF) as usize];
    }
    // Only ASCII hex digits were written.
    Arc::from(std::str::from_utf8(&buf[..ed + sd]).unwrap_or_default())
}

/// A client-chosen ID is echoed in headers, XML bodies and JSON logs, so
/// only characters that need no escaping in any of them pass.
pub fn valid_request_id(v: &str) -> bool {
    (1..=MAX_REQUEST_ID_BYTES).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+=/".contains(&b))
}

/// What the origin side of one request did, filled in by the failover
/// loop and read when the line is written.
#[derive(Debug, Default, Clone)]
pub struct OriginTrail {
    /// Requests sent to replicas.
    pub attempts: u32,
    /// The replica whose answer was used.
    pub replica: Option<String>,
    /// That replica's `x-amz-request-id`.
    pub origin_request_id: Option<String>,
}

/// One request's ID, origin trail and trace. The locks are per request
/// (the request and its fill task), never shared between requests.
#[derive(Debug)]
pub struct Trail {
    /// Our request ID.
    pub id: Arc<str>,
    origin: Mutex<OriginTrail>,
    /// The request's spans, when tracing is on and it is sampled.
    pub trace: Option<crate::otel::Trace>,
}

impl Trail {
    /// A trail for the request with this ID, traced when `trace` is set.
    pub fn new(id: Arc<str>, trace: Option<crate::otel::Trace>) -> Arc<Trail> {
        Arc::new(Trail {
            id,
            origin: Mutex::new(OriginTrail::default()),
            trace,
        })
    }

    /// The ID as a header value (always valid: see [`request_id`]).
    pub fn header(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.id).ok()
    }

    /// Notes a request sent to a replica.
    pub fn attempted(&self) {
        self.with(|o| o.attempts += 1);
    }

    /// Notes the replica whose answer is used, and its request ID.
    pub fn served_by(&self, replica: &str, headers: &HeaderMap) {
        let rid = headers
            .get("x-amz-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.with(|o| {
            o.replica = Some(replica.to_string());
            o.origin_request_id = rid;
        });
    }

    /// What the origin side did so far.
    pub fn origin(&self) -> OriginTrail {
        self.origin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn with(&self, f: impl FnOnce(&mut OriginTrail)) {
        f(&mut self.origin.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// One access log line.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    /// Always `access`: tells these lines from the diagnostic log when
    /// both go to one collector.
    pub log: &'static str,
    /// When the request arrived, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// The client: the TCP peer, or the address a trusted proxy forwarded.
    pub client: IpAddr,
    /// HTTP method.
    pub method: &'a str,
    /// Route name, `-` when none matched.
    pub route: &'a str,
    /// Object key (or its hash with `hash_keys`), absent when none parsed.
    pub key: Option<String>,
    /// Status sent.
    pub status: u16,
    /// Body bytes handed to the connection.
    pub bytes: u64,
    /// Seconds until the response headers were ready.
    pub ttfb_s: f64,
    /// Seconds until the last body byte (or the body was dropped).
    pub total_s: f64,
    /// False when the body was dropped before its end.
    pub completed: bool,
    /// `x-tandem-cache`: HIT, HIT-REDIS, MISS, STALE, REVALIDATED, BYPASS;
    /// absent for answers that are not objects (errors, preflights).
    pub cache: Option<&'a str>,
    /// The replica that served.
    pub replica: Option<String>,
    /// Requests this request sent to replicas (a coalesced wait and a hit
    /// send none).
    pub attempts: u32,
    /// Our request ID.
    pub request_id: &'a str,
    /// The serving replica's `x-amz-request-id`, for an S3 support case.
    pub origin_request_id: Option<String>,
}

impl Line<'_> {
    /// Whether this line is written at this sample rate: errors and
    /// cut-off bodies always are; otherwise a hash of a sequence number
    /// (`seq`, asked for only when a draw is needed, so the shared counter
    /// is not touched per request at the default rate) picks a uniform
    /// share without a random number generator.
    pub fn sampled(&self, sample: f64, seq: impl FnOnce() -> u64) -> bool {
        if self.status >= 400 || !self.completed || sample >= 1.0 {
            return true;
        }
        sample > 0.0 && (splitmix(seq()) >> 11) as f64 / (1u64 << 53) as f64 <= sample
    }
}

/// A well-mixed 64-bit hash of a sequence number (SplitMix64), for
/// sampling decisions without a random number generator.
pub(crate) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The key as logged: itself, or a SHA-256 prefix.
pub fn logged_key(key: &str, hash: bool) -> String {
    if !hash {
        return key.to_string();
    }
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut s = String::from("sha256:");
    for b in d.as_ref().iter().take(KEY_HASH_HEX / 2) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-30T21:05:00.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = crate::sigv4::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// What is known of a request once its headers are sent; [`Logged`]
/// completes it with the body's bytes and end.
pub struct Finish {
    /// For the sink and the metrics.
    pub state: Arc<crate::state::State>,
    /// The config the request started with: its access log settings
    /// and the route's metric handles.
    pub rt: Arc<crate::runtime::Runtime>,
    /// Index of the route in `rt.routes`, once one matched.
    pub route: Option<usize>,
    /// Wall-clock arrival, for the line's `time`.
    pub arrived: SystemTime,
    /// Monotonic arrival, for durations.
    pub started: Instant,
    /// Time to response headers.
    pub ttfb: Duration,
    /// The client address.
    pub client: IpAddr,
    /// HTTP method.
    pub method: http::Method,
    /// The key as logged.
    pub key: Option<String>,
    /// Status sent.
    pub status: u16,
    /// `x-tandem-cache`, when the answer is an object.
    pub cache: Option<HeaderValue>,
    /// `x-tandem-replica`.
    pub replica: Option<HeaderValue>,
    /// ID and origin trail.
    pub trail: Arc<Trail>,
}

impl Finish {
    /// The client left before the response headers were ready (status
    /// 499): logged as a body that never started.
    pub fn gave_up(self) {
        self.done(0, false);
    }

    fn done(self, bytes: u64, completed: bool) {
        let total = self.started.elapsed();
        let m = &self.state.metrics;
        let cache = self.cache.as_ref().and_then(|v| v.to_str().ok());
        let route = self.route.map(|i| &self.rt.routes[i]);
        let name = route.map_or("-", |r| r.config.name.as_str());
        m.observe_response(
            name,
            route.map(|r| r.metrics(m)),
            cache.unwrap_or("-"),
            bytes,
            total,
        );
        let log = &self.rt.config.access_log;
        let traced = self.trail.trace.is_some() && self.rt.config.tracing.is_some();
        if !log.enabled && !traced {
            return;
        }
        let origin = self.trail.origin();
        if let (Some(t), Some(cfg)) = (&self.trail.trace, &self.rt.config.tracing) {
            use crate::otel::Attr;
            let mut attrs = vec![
                ("http.request.method", Attr::Str(self.method.to_string())),
                ("http.route", Attr::Str(name.to_string())),
                (
                    "http.response.status_code",
                    Attr::Int(i64::from(self.status)),
                ),
                ("tandem.request_id", Attr::Str(self.trail.id.to_string())),
                ("tandem.attempts", Attr::Int(i64::from(origin.attempts))),
                ("tandem.bytes", Attr::Int(bytes as i64)),
                ("tandem.completed", Attr::Bool(completed)),
            ];
            if let Some(c) = cache {
                attrs.push(("tandem.cache", Attr::Str(c.to_string())));
            }
            if let Some(k) = &self.key {
                attrs.push(("tandem.key", Attr::Str(k.clone())));
            }
            let error = self.status >= 500 || !completed;
            t.finish(&self.state.tracer, cfg, self.arrived, attrs, error);
        }
        if !log.enabled {
            return;
        }
        let line = Line {
            log: "access",
            time: rfc3339(self.arrived),
            client: self.client,
            method: self.method.as_str(),
            route: name,
            key: self.key,
            status: self.status,
            bytes,
            ttfb_s: self.ttfb.as_secs_f64(),
            total_s: total.as_secs_f64(),
            completed,
            cache,
            replica: self
                .replica
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or(origin.replica),
            attempts: origin.attempts,
            request_id: &self.trail.id,
            origin_request_id: origin.origin_request_id,
        };
        self.state.access_log.write(&line, log.sample);
    }
}

pin_project_lite::pin_project! {
    /// A response body that counts the bytes it yields and writes the
    /// request's line at its end, or when it is dropped before it.
    pub struct Logged {
        #[pin]
        inner: ProxyBody,
        bytes: u64,
        finish: Option<Finish>,
    }

    impl PinnedDrop for Logged {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(f) = this.finish.take() {
                // hyper need not poll a body that says it is empty.
                let completed = this.inner.is_end_stream();
                f.done(*this.bytes, completed);
            }
        }
    }
}

impl Logged {
    /// Wraps `inner`.
    pub fn wrap(inner: ProxyBody, finish: Finish) -> ProxyBody {
        Logged {
            inner,
            bytes: 0,
            finish: Some(finish),
        }
        .boxed_unsync()
    }
}

impl Body for Logged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let r = this.inner.poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    *this.bytes += d.len() as u64;
                }
            }
            Poll::Ready(None) => {
                if let Some(f) = this.finish.take() {
                    f.done(*this.bytes, true);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(f) = this.finish.take() {
                    f.done(*this.bytes, false);
                }
            }
            Poll::Pending => {}
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

/// The writer: a bounded queue into one thread that owns stdout writes.
#[derive(Default)]
pub struct Sink {
    tx: OnceLock<Option<SyncSender<Vec<u8>>>>,
    seq: AtomicU64,
    /// Lines dropped because the queue was full or the writer is gone.
    pub dropped: AtomicU64,
}

impl Sink {
    /// Formats and queues `line` if it is sampled; never blocks.
    pub fn write(&self, line: &Line<'_>, sample: f64) {
        if !line.sampled(sample, || self.seq.fetch_add(1, Ordering::Relaxed)) {
            return;
        }
        let Some(tx) = self.tx.get_or_init(start).as_ref() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut buf = Vec::with_capacity(384);
        if serde_json::to_writer(&mut buf, line).is_err() {
            return;
        }
        buf.push(b'\n');
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(buf) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn start() -> Option<SyncSender<Vec<u8>>> {
    let (tx, rx) = sync_channel(QUEUE_LINES);
    match std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || writer(rx))
        .map_err(AccessLogError::Thread)
    {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::error!(error = %e, "the access log is off: its lines are counted as dropped");
            None
        }
    }
}

/// Writes whatever is queued in one `write` per batch: each line whole, so
/// lines never interleave with the diagnostic log sharing the file.
fn writer(rx: Receiver<Vec<u8>>) {
    let mut batch = Vec::with_capacity(64 << 10);
    while let Ok(first) = rx.recv() {
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < (64 << 10) {
            match rx.try_recv() {
                Ok(l) => batch.extend_from_slice(&l),
                Err(_) => break,
            }
        }
        let mut out = std::io::stdout().lock();
        // A closed stdout loses the log, not the proxy.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_read_as_format_would_write_them() {
        for (e, seq) in [
            (0, 0),
            (0x6A2F_1C3B, 1),
            (0x6A2F_1C3B, 0xFFFF_FFFF),
            (0x6A2F_1C3B, 0x1_0000_0000),
            (u64::MAX, u64::MAX),
            (1, 0xABC),
        ] {
            assert_eq!(
                &*generated_id(e, seq),
                format!("{e:X}{seq:08X}"),
                "{e} {seq}"
            );
        }
    }

    #[test]
    fn client_ids_pass_only_when_short_and_plain() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123_X.y:z"));
        assert_eq!(&*request_id(&h), "abc-123_X.y:z");
        for bad in ["a b", "<x>", "a\"b", ""] {
            assert!(!valid_request_id(bad), "{bad:?}");
        }
        assert!(valid_request_id(&"a".repeat(MAX_REQUEST_ID_BYTES)));
        assert!(!valid_request_id(&"a".repeat(MAX_REQUEST_ID_BYTES + 1)));
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("<script>"));
        let ours = request_id(&h);
        assert_ne!(&*ours, "<script>");
        assert!(valid_request_id(&ours), "{ours}");
        assert_ne!(request_id(&h), ours, "generated IDs differ");
    }

    proptest::proptest! {
        /// Whatever a client sends, the ID that comes back is safe to
        /// echo in a header, XML and JSON, and a safe one is kept as is.
        #[test]
        fn any_client_id_becomes_a_safe_one(raw in proptest::collection::vec(0x20u8..0x7f, 0..200)) {
            let v = String::from_utf8(raw).unwrap();
            let mut h = HeaderMap::new();
            if let Ok(hv) = HeaderValue::from_str(&v) {
                h.insert(REQUEST_ID_HEADER, hv);
            }
            let id = request_id(&h);
            proptest::prop_assert!(valid_request_id(&id));
            proptest::prop_assert!(!id.contains(['<', '>', '&', '"', '\'', '\\', ' ']));
            if valid_request_id(&v) && h.contains_key(REQUEST_ID_HEADER) {
                proptest::prop_assert_eq!(&*id, v.as_str());
            }
        }

        /// Any instant formats as 24 characters of RFC 3339 UTC.
        #[test]
        fn any_time_formats_alike(ms in 0u64..253_402_300_799_999) {
            let t = rfc3339(SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
            proptest::prop_assert_eq!(t.len(), 24, "{}", t);
            proptest::prop_assert_eq!(&t[10..11], "T");
            proptest::prop_assert!(t.ends_with('Z'));
        }
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_072_700_123);
        assert_eq!(rfc3339(t), "2026-11-30T21:05:00.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn hashed_keys_hide_the_key_and_stay_stable() {
        let h = logged_key("users/alice/passport.pdf", true);
        assert_eq!(h.len(), "sha256:".len() + KEY_HASH_HEX);
        assert!(!h.contains("alice"));
        assert_eq!(h, logged_key("users/alice/passport.pdf", true));
        assert_ne!(h, logged_key("users/bob/passport.pdf", true));
        assert_eq!(logged_key("k", false), "k");
    }

    fn line(status: u16, completed: bool) -> Line<'static> {
        Line {
            log: "access",
            time: String::new(),
            client: IpAddr::from([127, 0, 0, 1]),
            method: "GET",
            route: "r",
            key: None,
            status,
            bytes: 0,
            ttfb_s: 0.0,
            total_s: 0.0,
            completed,
            cache: None,
            replica: None,
            attempts: 0,
            request_id: "x",
            origin_request_id: None,
        }
    }

    #[test]
    fn sampling_keeps_its_share_and_every_error() {
        let ok = line(200, true);
        let kept = (0..10_000).filter(|&s| ok.sampled(0.1, || s)).count();
        assert!((800..1200).contains(&kept), "{kept}");
        assert_eq!((0..1000).filter(|&s| ok.sampled(0.0, || s)).count(), 0);
        assert_eq!((0..1000).filter(|&s| ok.sampled(1.0, || s)).count(), 1000);
        assert!((0..1000).all(|s| line(503, true).sampled(0.0, || s)));
        assert!((0..1000).all(|s| line(404, true).sampled(0.0, || s)));
        assert!((0..1000).all(|s| line(200, false).sampled(0.0, || s)));
    }
}
