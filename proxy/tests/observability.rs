//! What an operator sees on day one, against real origins (SeaweedFS,
//! which checks signatures, and Redis): the access log line of a hit, a
//! miss, a failover, an origin 404, a proxy error and a download cut off;
//! request IDs kept, generated, returned and sent to the origin; and a
//! real `/metrics` that exports every metric the Grafana dashboard and the
//! alert rules query.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use reqwest::blocking::Client;
use serde_json::Value;

/// An origin that answers every request with a 503 and remembers each
/// request head: the replica a failover moves on from, and the witness of
/// what the proxy sent.
struct Flaky {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Flaky {
    fn start() -> Flaky {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).to_lowercase());
                let _ = s.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nx-amz-request-id: FLAKY503\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Flaky { port, heads }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Two routes over one SeaweedFS bucket: `cached` (memory and Redis) and
/// `fo` (no cache), whose first replica always fails.
fn config(w: &Seaweed, flaky: &Flaky, redis: &Redis, access_log: &str) -> String {
    format!(
        "{access_log}redis:\n  urls: [{}]\nbuckets:\n  - name: cached\n    path_prefix: /c/\n    replicas:\n{}  - name: fo\n    path_prefix: /f/\n    cache: {{enabled: false}}\n    breaker: {{failure_threshold: 1000}}\n    replicas:\n{}{}",
        redis.url(),
        replica("sw", w, "site", 1, "2s"),
        replica_at("flaky", &flaky.endpoint(), "site", 1, "2s"),
        replica("sw", w, "site", 2, "2s"),
    )
}

/// The line of the request with this ID, once the writer has written it.
fn line_of(p: &Proxy, id: &str) -> Value {
    poll(
        &format!("the access log line of {id}"),
        Duration::from_secs(10),
        || p.access_log().into_iter().find(|v| v["request_id"] == id),
    )
}

fn get(http: &Client, url: &str, id: Option<&str>) -> reqwest::blocking::Response {
    let mut r = http.get(url);
    if let Some(id) = id {
        r = r.header("x-request-id", id);
    }
    r.send().unwrap()
}

/// The response's request ID: the same in both headers.
fn id_of(r: &reqwest::blocking::Response) -> String {
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(r.headers()["x-amz-request-id"], id.as_str());
    id
}

fn common_fields(l: &Value, method: &str, route: &str, status: u64) {
    assert_eq!(l["method"], method, "{l}");
    assert_eq!(l["route"], route, "{l}");
    assert_eq!(l["status"], status, "{l}");
    assert_eq!(l["client"], "127.0.0.1", "{l}");
    let t = l["time"].as_str().unwrap();
    assert!(
        t.len() == 24 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
        "RFC 3339 UTC: {t}"
    );
    let (ttfb, total) = (
        l["ttfb_s"].as_f64().unwrap(),
        l["total_s"].as_f64().unwrap(),
    );
    assert!(ttfb > 0.0 && ttfb <= total && total < 30.0, "{l}");
}

#[test]
fn access_log_request_ids_and_metrics_after_a_hit_a_miss_a_failover_and_errors() {
    let w = Seaweed::start();
    w.bucket("site");
    let body = bytes(1000, 7);
    w.put("site", "a.txt", body.clone());
    w.put("site", "big.bin", bytes(24 << 20, 9));
    let flaky = Flaky::start();
    let redis = Redis::start();
    let p = Proxy::start(&config(&w, &flaky, &redis, ""));
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // A miss, with the client's own request ID kept and returned.
    let r = get(&http, &format!("{}/c/a.txt", p.data), Some("client-req-1"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-tandem-cache"], "MISS");
    assert_eq!(id_of(&r), "client-req-1");
    assert_eq!(r.bytes().unwrap().len(), 1000);
    let miss = line_of(&p, "client-req-1");
    common_fields(&miss, "GET", "cached", 200);
    assert_eq!(miss["key"], "a.txt");
    assert_eq!(miss["bytes"], 1000);
    assert_eq!(miss["cache"], "MISS");
    assert_eq!(miss["replica"], "sw");
    assert_eq!(miss["attempts"], 1);
    assert_eq!(miss["completed"], true);
    let origin_id = miss["origin_request_id"].as_str().unwrap_or_default();
    assert!(
        !origin_id.is_empty() && origin_id != "client-req-1",
        "the origin's own x-amz-request-id: {miss}"
    );

    // A hit: no origin request; a generated ID replaces an unsafe one.
    let r = get(&http, &format!("{}/c/a.txt", p.data), Some("<script>"));
    assert_eq!(r.headers()["x-tandem-cache"], "HIT");
    let hit_id = id_of(&r);
    assert_ne!(hit_id, "<script>");
    assert!(hit_id.len() >= 8 && hit_id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(r.bytes().unwrap().len(), 1000);
    let hit = line_of(&p, &hit_id);
    common_fields(&hit, "GET", "cached", 200);
    assert_eq!(hit["cache"], "HIT");
    assert_eq!(hit["bytes"], 1000);
    assert_eq!(hit["attempts"], 0);
    assert_eq!(hit["origin_request_id"], Value::Null);

    // A failover: the flaky replica first (it sees our ID), then SeaweedFS,
    // which verifies the signature of a request carrying the extra header.
    let r = get(&http, &format!("{}/f/a.txt", p.data), Some("fo-1"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-tandem-replica"], "sw");
    assert_eq!(r.bytes().unwrap(), body);
    let heads = flaky.heads.lock().unwrap().clone();
    assert!(
        heads
            .iter()
            .any(|h| h.contains("\r\nx-request-id: fo-1\r\n")),
        "the origin request carries x-request-id: {heads:?}"
    );
    let fo = line_of(&p, "fo-1");
    common_fields(&fo, "GET", "fo", 200);
    assert_eq!(fo["cache"], "BYPASS");
    assert_eq!(fo["replica"], "sw");
    assert_eq!(fo["attempts"], 2);
    let fo_origin = fo["origin_request_id"].as_str().unwrap();
    assert!(!fo_origin.is_empty() && fo_origin != "FLAKY503", "{fo}");

    // An origin 404 and a proxy error (405), both with the ID in the body.
    let r = get(&http, &format!("{}/c/missing.txt", p.data), Some("nf-1"));
    assert_eq!(r.status(), 404);
    let nf = line_of(&p, "nf-1");
    common_fields(&nf, "GET", "cached", 404);
    assert_eq!(nf["key"], "missing.txt");
    assert_eq!(nf["attempts"], 1);
    let r = http
        .post(format!("{}/c/a.txt", p.data))
        .header("x-request-id", "post-1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(id_of(&r), "post-1");
    assert!(r.text().unwrap().contains("<RequestId>post-1</RequestId>"));
    let post = line_of(&p, "post-1");
    common_fields(&post, "POST", "-", 405);
    assert_eq!(post["key"], Value::Null);
    assert_eq!(post["attempts"], 0);
    assert!(post["bytes"].as_u64().unwrap() > 0, "the XML error body");

    // A download the client abandons: logged with what was sent.
    {
        let addr = p.data.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /f/big.bin HTTP/1.1\r\nHost: {addr}\r\nx-request-id: cut-1\r\n\r\n"
        )
        .unwrap();
        let mut first = [0u8; 4096];
        let n = s.read(&mut first).unwrap();
        assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    }
    let cut = line_of(&p, "cut-1");
    common_fields(&cut, "GET", "fo", 200);
    assert_eq!(cut["completed"], false, "{cut}");
    assert!(cut["bytes"].as_u64().unwrap() < 24 << 20, "{cut}");

    // /metrics: the new families, with the traffic above in them.
    let text = p.metrics();
    assert_eq!(
        p.metric(
            "tandem_response_bytes_total",
            &["route=\"cached\"", "cache=\"HIT\""]
        ),
        1000.0
    );
    assert!(
        p.metric(
            "tandem_origin_first_byte_seconds_count",
            &["route=\"fo\"", "replica=\"flaky\""]
        ) >= 1.0
    );
    assert!(
        p.metric(
            "tandem_response_duration_seconds_count",
            &["route=\"cached\""]
        ) >= 3.0
    );
    assert_eq!(
        p.metric(
            "tandem_replica_breaker_state",
            &["replica=\"sw\"", "route=\"cached\"", "state=\"closed\""]
        ),
        1.0
    );
    assert_eq!(
        p.metric(
            "tandem_replica_breaker_state",
            &["replica=\"sw\"", "route=\"cached\"", "state=\"open\""]
        ),
        0.0
    );
    let build = text
        .lines()
        .find(|l| l.starts_with("tandem_build_info{"))
        .unwrap();
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && !build.contains("revision=\"\""),
        "{build}"
    );
    assert!(p.metric("process_resident_memory_bytes", &[]) > 1e6);
    assert!(p.metric("process_open_fds", &[]) >= 3.0);
    assert!(p.metric("tandem_failovers_total", &["from=\"flaky\""]) >= 2.0);

    // Every metric the dashboard and the alert rules query is exported.
    let root = repo_root();
    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/tandem-proxy.json")).unwrap();
    let dash: Value = serde_json::from_str(&dashboard).unwrap();
    let mut queries: Vec<String> = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            queries.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(queries.len() >= 15, "{} dashboard queries", queries.len());
    queries.push(
        std::fs::read_to_string(root.join("deploy/prometheus/tandem-proxy.rules.yml")).unwrap(),
    );
    let mut names = BTreeSet::new();
    for q in &queries {
        names.extend(metric_names(q));
    }
    assert!(names.len() >= 25, "{names:?}");
    let declared: BTreeSet<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let exported = |n: &str| {
        declared.iter().any(|(d, kind)| {
            *d == n
                || (*kind == "histogram"
                    && ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| n.strip_suffix(s) == Some(*d)))
        })
    };
    let missing: Vec<&String> = names.iter().filter(|n| !exported(n)).collect();
    assert!(
        missing.is_empty(),
        "queried but not exported: {missing:?}\n{text}"
    );
    // ... and every exported family is documented.
    let doc = std::fs::read_to_string(root.join("docs/proxy/metrics.md")).unwrap();
    let undocumented: Vec<&str> = declared
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !doc.contains(&format!("| `{n}` |")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "exported but not in docs/proxy/metrics.md: {undocumented:?}"
    );

    // Sampling and hashed keys: successes sampled out, errors kept, and
    // keys hashed.
    p.rewrite(&config(
        &w,
        &flaky,
        &redis,
        "access_log: {sample: 0.0, hash_keys: true}\n",
    ));
    poll("the reload", Duration::from_secs(10), || {
        (p.metric("tandem_config_reloads_total", &["result=\"ok\""]) >= 1.0).then_some(())
    });
    assert_eq!(
        get(&http, &format!("{}/c/a.txt", p.data), Some("quiet-1")).status(),
        200
    );
    assert_eq!(
        get(
            &http,
            &format!("{}/c/users/alice.txt", p.data),
            Some("loud-1")
        )
        .status(),
        404
    );
    let loud = line_of(&p, "loud-1");
    let key = loud["key"].as_str().unwrap();
    assert!(
        key.starts_with("sha256:") && !key.contains("alice"),
        "{loud}"
    );
    assert!(
        !p.access_log().iter().any(|l| l["request_id"] == "quiet-1"),
        "a success was logged at sample 0.0"
    );
}

/// Metric names in a PromQL expression (or a rules file): identifiers of
/// our families and the standard process ones.
fn metric_names(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = q.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &q[i..];
        let starts_word = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if starts_word && (rest.starts_with("tandem_") || rest.starts_with("process_")) {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            // `process_*` in a comment names no metric.
            if !rest[..end].ends_with('_') {
                out.push(rest[..end].to_string());
            }
            i += end;
        } else {
            i += 1;
        }
    }
    out
}

/// An OTLP/HTTP receiver: keeps every posted JSON body, answers 200.
struct Receiver {
    port: u16,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let got = bodies.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                if head.starts_with("post /v1/traces ")
                    && head.contains("content-type: application/json")
                {
                    if let Ok(v) = serde_json::from_slice::<Value>(&buf[head_end..]) {
                        got.lock().unwrap().push(v);
                    }
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
            }
        });
        Receiver { port, bodies }
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for b in self.bodies.lock().unwrap().iter() {
            for rs in b["resourceSpans"].as_array().into_iter().flatten() {
                assert_eq!(
                    rs["resource"]["attributes"][0]["value"]["stringValue"],
                    "edge-proxy"
                );
                for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                    out.extend(ss["spans"].as_array().into_iter().flatten().cloned());
                }
            }
        }
        out
    }
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .map_or(&Value::Null, |a| &a["value"])
}

#[test]
fn otlp_traces_have_the_request_its_lookups_and_each_origin_attempt() {
    let w = Seaweed::start();
    w.bucket("site");
    w.put("site", "a.txt", bytes(1000, 7));
    let flaky = Flaky::start();
    let redis = Redis::start();
    let rx = Receiver::start();
    let tracing = format!(
        "tracing: {{otlp_endpoint: \"http://127.0.0.1:{}/v1/traces\", sample: 1.0, service_name: edge-proxy}}\n",
        rx.port
    );
    let p = Proxy::start(&config(&w, &flaky, &redis, &tracing));
    let http = Client::new();

    // A miss under the client's trace: memory, Redis, then the origin.
    let tid = "0af7651916cd43dd8448eb211c80319c";
    let r = http
        .get(format!("{}/c/a.txt", p.data))
        .header("traceparent", format!("00-{tid}-b7ad6b7169203331-01"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let spans = poll("the miss's four spans", Duration::from_secs(15), || {
        let s: Vec<Value> = rx
            .spans()
            .into_iter()
            .filter(|s| s["traceId"] == tid)
            .collect();
        (s.len() >= 4).then_some(s)
    });
    let named = |n: &str| -> Vec<&Value> { spans.iter().filter(|s| s["name"] == n).collect() };
    let root = named("request")[0];
    assert_eq!(root["parentSpanId"], "b7ad6b7169203331", "{root}");
    assert_eq!(root["kind"], 2);
    assert_eq!(attr(root, "http.route")["stringValue"], "cached");
    assert_eq!(attr(root, "http.response.status_code")["intValue"], "200");
    assert_eq!(attr(root, "tandem.cache")["stringValue"], "MISS");
    for child in ["cache.lookup", "redis.lookup", "origin.attempt"] {
        let c = named(child);
        assert_eq!(c.len(), 1, "{child}: {spans:?}");
        assert_eq!(c[0]["parentSpanId"], root["spanId"], "{child}");
        let (start, end) = (
            c[0]["startTimeUnixNano"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
            c[0]["endTimeUnixNano"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
        let root_start: u64 = root["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert!(
            root_start <= start && start <= end,
            "{child} inside the request"
        );
    }
    assert_eq!(
        attr(named("cache.lookup")[0], "tandem.hit")["boolValue"],
        false
    );
    assert_eq!(
        attr(named("origin.attempt")[0], "tandem.replica")["stringValue"],
        "sw"
    );

    // A failover, sampled by the proxy: one attempt failed, one served,
    // and the failing origin was sent the trace.
    let r = http
        .get(format!("{}/f/a.txt", p.data))
        .header("x-request-id", "traced-fo")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let spans = poll("the failover's trace", Duration::from_secs(15), || {
        let all = rx.spans();
        let root = all
            .iter()
            .find(|s| attr(s, "tandem.request_id")["stringValue"] == "traced-fo")?
            .clone();
        let kids: Vec<Value> = all
            .into_iter()
            .filter(|s| s["parentSpanId"] == root["spanId"])
            .collect();
        (kids.len() == 2).then_some((root, kids))
    });
    let (root, kids) = spans;
    assert_eq!(attr(&root, "tandem.attempts")["intValue"], "2");
    let failed = kids
        .iter()
        .find(|k| attr(k, "tandem.replica")["stringValue"] == "flaky")
        .unwrap();
    assert_eq!(failed["status"]["code"], 2, "{failed}");
    assert_eq!(failed["kind"], 3);
    let tid = root["traceId"].as_str().unwrap();
    let heads = flaky.heads.lock().unwrap().clone();
    assert!(
        heads.iter().any(|h| h.contains(&format!(
            "traceparent: 00-{tid}-{}-01",
            failed["spanId"].as_str().unwrap()
        ))),
        "the origin attempt carries its traceparent: {heads:?}"
    );

    // A client that says "not sampled" is not traced.
    let r = http
        .get(format!("{}/c/a.txt", p.data))
        .header(
            "traceparent",
            "00-11111111111111111111111111111111-2222222222222222-00",
        )
        .header("x-request-id", "unsampled")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    line_of(&p, "unsampled");
    assert!(p.metric("tandem_otlp_exports_total", &["result=\"ok\""]) >= 1.0);
    assert_eq!(p.metric("tandem_otlp_traces_dropped_total", &[]), 0.0);
    assert!(!rx
        .spans()
        .iter()
        .any(|s| s["traceId"] == "11111111111111111111111111111111"));
}
