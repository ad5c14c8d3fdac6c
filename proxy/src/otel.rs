//! OpenTelemetry traces, off unless the config has a `tracing` section:
//! each sampled request becomes a `request` span with children for its
//! cache lookup, its Redis lookup and each origin attempt, posted as
//! OTLP/HTTP JSON to a collector.
//!
//! A request carries its spans in its [`crate::access::Trail`] (the same
//! per-request context as the access log), so nothing is global but the
//! exporter. The exporter is one thread behind a bounded queue, like the
//! access log: a slow or dead collector drops traces (counted), never
//! requests. It speaks plain HTTP/1.1 to an `http://` endpoint, which is
//! how a collector next to the proxy (a sidecar or node agent) is reached;
//! that keeps a second HTTP client stack out of the binary. A client's
//! `traceparent` is honoured (its trace ID, parent and sampling decision)
//! and each origin attempt is sent one of its own (S3 ignores it; a
//! tracing-aware hop in front of a replica continues the trace).

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue};
use ring::rand::SecureRandom;
use serde_json::{json, Value};
use tandem_fleet_config::Tracing;

/// Finished traces waiting for the exporter before new ones are dropped:
/// at the default 1% sampling this is minutes of traffic, so only a
/// collector that is down for long loses traces.
pub const QUEUE_TRACES: usize = 4096;
/// Spans per POST: the collector's default receive limit (4 MiB) holds
/// this many spans of ours (well under 1 KiB each) with room to spare.
pub const BATCH_SPANS: usize = 512;
/// Connect, send and answer deadline of one export: a collector that does
/// not answer in this long is down, and the queue keeps filling meanwhile.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an export failed (logged at debug, counted by result).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The endpoint is not `http://host[:port]/path`.
    #[error("OTLP endpoint {0:?} is not http://host[:port]/path")]
    Endpoint(String),
    /// Connecting, writing or reading failed.
    #[error("posting spans to {endpoint}: {source}")]
    Io {
        /// The endpoint.
        endpoint: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The collector answered with an error status.
    #[error("posting spans to {endpoint}: HTTP {status}")]
    Status {
        /// The endpoint.
        endpoint: String,
        /// Its status line's code.
        status: u16,
    },
}

/// An attribute value.
#[derive(Debug, Clone)]
pub enum Attr {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

/// One finished span.
#[derive(Debug, Clone)]
struct SpanData {
    name: &'static str,
    id: [u8; 8],
    parent: Option<[u8; 8]>,
    start: SystemTime,
    end: SystemTime,
    attrs: Vec<(&'static str, Attr)>,
    error: bool,
}

/// A sampled request's trace: its IDs and the child spans finished so far.
#[derive(Debug)]
pub struct Trace {
    trace_id: [u8; 16],
    /// The request span's ID, parent of every other span.
    root: [u8; 8],
    /// The client's span, when it sent a `traceparent`.
    remote_parent: Option<[u8; 8]>,
    spans: Mutex<Vec<SpanData>>,
}

/// A span being timed; [`Trace::end`] records it.
#[derive(Debug)]
pub struct Started {
    name: &'static str,
    id: [u8; 8],
    start: SystemTime,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The system RNG only fails where the proxy could not run at all;
    // IDs from the clock and a counter are still unique enough then.
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let x = crate::access::splitmix(t ^ SEQUENCE.fetch_add(1, Ordering::Relaxed));
        for (i, v) in b.iter_mut().enumerate() {
            *v = (x >> ((i % 8) * 8)) as u8;
        }
    }
    b
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A W3C `traceparent`: trace ID, parent span ID and whether it is
/// sampled; `None` when malformed (then the proxy decides itself).
fn parse_traceparent(h: &HeaderMap) -> Option<([u8; 16], [u8; 8], bool)> {
    let v = h.get("traceparent")?.to_str().ok()?;
    let mut parts = v.trim().split('-');
    let (ver, tid, pid, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if ver != "00" || parts.next().is_some() {
        return None;
    }
    let (tid, pid, flags) = (unhex::<16>(tid)?, unhex::<8>(pid)?, unhex::<1>(flags)?);
    if tid == [0; 16] || pid == [0; 8] {
        return None;
    }
    Some((tid, pid, flags[0] & 1 == 1))
}

impl Trace {
    /// A trace for this request when tracing is on and it is sampled: the
    /// client's decision when it sent a valid `traceparent`, else `sample`.
    pub fn start(h: &HeaderMap, cfg: Option<&Tracing>) -> Option<Trace> {
        let cfg = cfg?;
        let (trace_id, remote_parent) = match parse_traceparent(h) {
            Some((tid, pid, true)) => (tid, Some(pid)),
            Some((_, _, false)) => return None,
            None => {
                let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
                let draw = (crate::access::splitmix(seq) >> 11) as f64 / (1u64 << 53) as f64;
                if cfg.sample <= 0.0 || draw > cfg.sample {
                    return None;
                }
                (random::<16>(), None)
            }
        };
        Some(Trace {
            trace_id,
            root: random::<8>(),
            remote_parent,
            spans: Mutex::new(Vec::new()),
        })
    }

    /// Starts timing a child span of the request.
    pub fn span(&self, name: &'static str) -> Started {
        Started {
            name,
            id: random::<8>(),
            start: SystemTime::now(),
        }
    }

    /// Records a child span that ends now.
    pub fn end(&self, s: Started, attrs: Vec<(&'static str, Attr)>, error: bool) {
        let d = SpanData {
            name: s.name,
            id: s.id,
            parent: Some(self.root),
            start: s.start,
            end: SystemTime::now(),
            attrs,
            error,
        };
        self.spans.lock().unwrap_or_else(|p| p.into_inner()).push(d);
    }

    /// The `traceparent` an origin attempt is sent: this trace, the
    /// attempt's span.
    pub fn traceparent(&self, s: &Started) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!("00-{}-{}-01", hex(&self.trace_id), hex(&s.id))).ok()
    }

    /// Ends the request span and hands the whole trace to the exporter.
    pub fn finish(
        &self,
        exporter: &Exporter,
        cfg: &Tracing,
        start: SystemTime,
        attrs: Vec<(&'static str, Attr)>,
        error: bool,
    ) {
        let mut spans = std::mem::take(&mut *self.spans.lock().unwrap_or_else(|p| p.into_inner()));
        spans.push(SpanData {
            name: "request",
            id: self.root,
            parent: self.remote_parent,
            start,
            end: SystemTime::now(),
            attrs,
            error,
        });
        let spans: Vec<Value> = spans.iter().map(|s| self.span_json(s)).collect();
        exporter.send(Batch {
            endpoint: cfg.otlp_endpoint.clone(),
            service: cfg.service_name.clone(),
            spans,
        });
    }

    fn span_json(&self, s: &SpanData) -> Value {
        let nanos = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
                .to_string()
        };
        let attrs: Vec<Value> = s
            .attrs
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Attr::Str(x) => json!({"stringValue": x}),
                    // OTLP/JSON encodes 64-bit integers as strings.
                    Attr::Int(x) => json!({"intValue": x.to_string()}),
                    Attr::Bool(x) => json!({"boolValue": x}),
                };
                json!({"key": k, "value": value})
            })
            .collect();
        let mut span = json!({
            "traceId": hex(&self.trace_id),
            "spanId": hex(&s.id),
            "name": s.name,
            // SERVER for the request, INTERNAL for lookups, CLIENT for
            // origin attempts.
            "kind": match s.name { "request" => 2, "origin.attempt" => 3, _ => 1 },
            "startTimeUnixNano": nanos(s.start),
            "endTimeUnixNano": nanos(s.end),
            "attributes": attrs,
            "status": {"code": if s.error { 2 } else { 0 }},
        });
        if let Some(p) = s.parent {
            span["parentSpanId"] = Value::String(hex(&p));
        }
        span
    }
}

/// One request's spans on their way to a collector.
struct Batch {
    endpoint: String,
    service: String,
    spans: Vec<Value>,
}

/// The exporter: a bounded queue into one thread that posts to the
/// collector; started on the first sampled request.
#[derive(Default)]
pub struct Exporter {
    tx: OnceLock<Option<SyncSender<Batch>>>,
    /// Traces dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Exports that succeeded.
    pub exported: Arc<AtomicU64>,
    /// Exports that failed (the collector down, refusing, or too slow).
    pub failed: Arc<AtomicU64>,
}

impl Exporter {
    fn send(&self, b: Batch) {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = sync_channel(QUEUE_TRACES);
            let (ok, failed) = (self.exported.clone(), self.failed.clone());
            std::thread::Builder::new()
                .name("otlp-export".into())
                .spawn(move || export_loop(rx, &ok, &failed))
                .map_err(|e| tracing::error!(error = %e, "tracing is off: the exporter thread did not start"))
                .ok()
                .map(|_| tx)
        });
        if tx.as_ref().is_none_or(|tx| tx.try_send(b).is_err()) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn export_loop(rx: Receiver<Batch>, ok: &AtomicU64, failed: &AtomicU64) {
    while let Ok(first) = rx.recv() {
        let (endpoint, service) = (first.endpoint, first.service);
        let mut spans = first.spans;
        // More traces for the same collector, up to a batch.
        let mut next = None;
        while spans.len() < BATCH_SPANS {
            match rx.try_recv() {
                Ok(b) if b.endpoint == endpoint && b.service == service => spans.extend(b.spans),
                Ok(b) => {
                    next = Some(b);
                    break;
                }
                Err(_) => break,
            }
        }
        for (endpoint, service, spans) in std::iter::once((endpoint, service, spans))
            .chain(next.map(|b| (b.endpoint, b.service, b.spans)))
        {
            match post(&endpoint, &body(&service, spans)) {
                Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    tracing::debug!(error = %e, "OTLP export failed; those spans are lost");
                    failed.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
    }
}

/// An OTLP/HTTP JSON `ExportTraceServiceRequest`.
fn body(service: &str, spans: Vec<Value>) -> Vec<u8> {
    let req = json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": service}},
            {"key": "service.version", "value": {"stringValue": env!("CARGO_PKG_VERSION")}},
        ]},
        "scopeSpans": [{"scope": {"name": "tandem-proxy"}, "spans": spans}],
    }]});
    serde_json::to_vec(&req).unwrap_or_default()
}

/// POSTs `body` to an `http://` endpoint, one connection per batch (a
/// batch is at most a few per second).
fn post(endpoint: &str, body: &[u8]) -> Result<(), ExportError> {
    let bad = || ExportError::Endpoint(endpoint.to_string());
    let rest = endpoint.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let io = |source| ExportError::Io {
        endpoint: endpoint.to_string(),
        source,
    };
    let sock = addr.to_socket_addrs().map_err(io)?.next().ok_or_else(bad)?;
    let mut s = TcpStream::connect_timeout(&sock, EXPORT_TIMEOUT).map_err(io)?;
    s.set_read_timeout(Some(EXPORT_TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(EXPORT_TIMEOUT)).map_err(io)?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).map_err(io)?;
    s.write_all(body).map_err(io)?;
    let mut status = [0u8; 12];
    s.read_exact(&mut status).map_err(io)?;
    let code = std::str::from_utf8(&status[9..12])
        .ok()
        .and_then(|c| c.parse::<u16>().ok())
        .unwrap_or(0);
    if (200..300).contains(&code) {
        Ok(())
    } else {
        Err(ExportError::Status {
            endpoint: endpoint.to_string(),
            status: code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(sample: f64) -> Tracing {
        Tracing {
            otlp_endpoint: "http://127.0.0.1:1/v1/traces".into(),
            sample,
            service_name: "t".into(),
        }
    }

    #[test]
    fn a_clients_traceparent_decides_and_names_the_parent() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        );
        let t = Trace::start(&h, Some(&cfg(0.0))).expect("sampled by the client");
        assert_eq!(hex(&t.trace_id), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(
            t.remote_parent.map(|p| hex(&p)).as_deref(),
            Some("b7ad6b7169203331")
        );
        let s = t.span("origin.attempt");
        let tp = t.traceparent(&s).unwrap();
        assert!(tp
            .to_str()
            .unwrap()
            .starts_with("00-0af7651916cd43dd8448eb211c80319c-"));
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"),
        );
        assert!(
            Trace::start(&h, Some(&cfg(1.0))).is_none(),
            "the client said no"
        );
        h.insert("traceparent", HeaderValue::from_static("garbage"));
        assert!(
            Trace::start(&h, Some(&cfg(1.0))).is_some(),
            "malformed: ours"
        );
        assert!(Trace::start(&h, None).is_none(), "tracing off");
    }

    proptest::proptest! {
        /// A traceparent we format is one we read back, and no header
        /// value makes the parser panic.
        #[test]
        fn traceparents_round_trip(tid in proptest::array::uniform16(1u8..), pid in proptest::array::uniform8(1u8..), junk in "[ -~]{0,80}") {
            let mut h = HeaderMap::new();
            let v = format!("00-{}-{}-01", hex(&tid), hex(&pid));
            h.insert("traceparent", HeaderValue::from_str(&v).unwrap());
            proptest::prop_assert_eq!(parse_traceparent(&h), Some((tid, pid, true)));
            if let Ok(j) = HeaderValue::from_str(&junk) {
                h.insert("traceparent", j);
                let _ = parse_traceparent(&h);
            }
        }
    }

    #[test]
    fn sampling_keeps_about_its_share() {
        let h = HeaderMap::new();
        let n = (0..4000)
            .filter(|_| Trace::start(&h, Some(&cfg(0.25))).is_some())
            .count();
        assert!((800..1200).contains(&n), "{n}");
        assert!((0..100).all(|_| Trace::start(&h, Some(&cfg(0.0))).is_none()));
    }
}
