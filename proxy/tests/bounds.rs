//! Every connection, byte and wait a client controls is bounded: hostile
//! and careless clients against a real proxy and real SeaweedFS origins
//! (slowed, where a test needs a slow fill, by a relay in front of them).
//! Each test fails on a proxy without the bound it checks.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

fn route(replicas: &str) -> String {
    format!("buckets:\n  - name: assets\n    path_prefix: /assets/\n    replicas:\n{replicas}")
}

fn addr(p: &Proxy) -> String {
    p.data.trim_start_matches("http://").to_string()
}

/// A connection with a small receive buffer, so a client that stops
/// reading makes the proxy's writes block soon.
fn small_window(addr: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let a: std::net::SocketAddr = addr.parse().unwrap();
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(16 << 10).unwrap();
    s.connect(&a.into()).unwrap();
    s.into()
}

fn send_get(s: &mut TcpStream, path: &str, keep_alive: bool) {
    let conn = if keep_alive { "keep-alive" } else { "close" };
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: {conn}\r\n\r\n"
    )
    .unwrap();
}

/// Reads one response with a Content-Length body; returns status and body.
fn read_response(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before the headers");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = buf[end + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed inside the body");
        body.extend_from_slice(&chunk[..n]);
    }
    (status, body)
}

/// Whether the proxy closed `s` (EOF or reset) within `limit`; anything
/// it sent first (an error response) is read and ignored.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn silent_half_sent_and_truncated_preface_connections_are_closed_by_the_header_deadline() {
    let w = Seaweed::start();
    w.bucket("assets");
    w.put("assets", "a", bytes(1000, 1));
    let p = Proxy::start(&format!(
        "limits:\n  header_timeout: 2s\n  keepalive_timeout: 4s\n{}",
        route(&replica("a", &w, "assets", 1, "2s"))
    ));
    let a = addr(&p);
    let started = Instant::now();
    let mut held: Vec<TcpStream> = (0..30)
        .map(|i| {
            let mut s = TcpStream::connect(&a).unwrap();
            match i % 3 {
                0 => {}
                1 => s
                    .write_all(b"GET /assets/a HTTP/1.1\r\nHost: t\r\n")
                    .unwrap(),
                // An HTTP/2 preface cut short: the listener speaks HTTP/1.1
                // only, and this is not even a complete HTTP/1 head.
                _ => s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM").unwrap(),
            }
            s
        })
        .collect();
    // Other clients are served meanwhile.
    while started.elapsed() < Duration::from_millis(1500) {
        let r = reqwest::blocking::get(format!("{}/assets/a", p.data)).unwrap();
        assert_eq!(r.status(), 200);
    }
    for (i, s) in held.iter_mut().enumerate() {
        let left = Duration::from_secs(5).saturating_sub(started.elapsed());
        assert!(
            closed_within(s, left),
            "connection {i} still open {:?} after accept",
            started.elapsed()
        );
    }
    assert!(p.metric("tandem_connections_closed_total", &["header_timeout"]) >= 20.0);

    // A whole HTTP/2 preface (h2c with prior knowledge) and a SETTINGS
    // frame: no HTTP/2 answer, and the connection ends at once.
    let mut h2 = TcpStream::connect(&a).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    h2.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut answer = Vec::new();
    let _ = h2.read_to_end(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "an HTTP/2 answer: {answer:?}"
    );

    // A keep-alive connection after its response: it outlives the header
    // deadline (it is idle, not sending a head) and closes at the
    // keep-alive one.
    let mut s = TcpStream::connect(&a).unwrap();
    send_get(&mut s, "/assets/a", true);
    assert_eq!(read_response(&mut s).0, 200);
    let idle = Instant::now();
    assert!(
        !closed_within(&mut s, Duration::from_millis(2800)),
        "closed before keepalive_timeout"
    );
    assert!(closed_within(&mut s, Duration::from_secs(4)));
    assert!(idle.elapsed() >= Duration::from_secs(4));
    assert_eq!(
        p.metric("tandem_connections_closed_total", &["keepalive_timeout"]),
        1.0
    );
}

#[test]
fn the_connection_cap_closes_what_is_over_it_and_the_admin_port_still_answers() {
    let w = Seaweed::start();
    w.bucket("assets");
    w.put("assets", "a", bytes(100, 2));
    let p = Proxy::start(&format!(
        "limits:\n  header_timeout: 30s\n  max_connections: 20\n  admin_max_connections: 4\n{}",
        route(&replica("a", &w, "assets", 1, "2s"))
    ));
    let a = addr(&p);
    let mut held: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(&a).unwrap()).collect();
    poll("20 open data connections", Duration::from_secs(10), || {
        (p.metric("tandem_connections_open", &["listener=\"data\""]) == 20.0).then_some(())
    });
    // One more is closed at once, without a response.
    let t = Instant::now();
    let mut over = TcpStream::connect(&a).unwrap();
    assert!(closed_within(&mut over, Duration::from_secs(2)));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // The admin listener has its own budget: probes and scrapes answer.
    for _ in 0..5 {
        let r = reqwest::blocking::get(format!("{}/ready", p.admin)).unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(
        p.metric(
            "tandem_connections_closed_total",
            &["listener=\"data\"", "over_capacity"]
        ),
        1.0
    );
    // A place freed is a place taken: the next client is served.
    held.pop();
    poll(
        "a request served after one client left",
        Duration::from_secs(10),
        || {
            reqwest::blocking::get(format!("{}/assets/a", p.data))
                .ok()
                .filter(|r| r.status() == 200)
        },
    );
    // The admin budget is a cap too: with four held, a fifth is refused
    // (once the scrapes above have closed their own connections).
    let admin = p.admin.trim_start_matches("http://").to_string();
    let _admin_held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&admin).unwrap())
        .collect();
    poll(
        "an admin connection over the cap refused",
        Duration::from_secs(10),
        || {
            let mut s = TcpStream::connect(&admin).unwrap();
            closed_within(&mut s, Duration::from_millis(300)).then_some(())
        },
    );
}

#[test]
fn slow_readers_are_dropped_by_send_timeout_and_min_send_rate() {
    let w = Seaweed::start();
    w.bucket("assets");
    // Larger than loopback's socket buffers, so a client that does not
    // read blocks the proxy's writes.
    let big = bytes(24 << 20, 3);
    w.put("assets", "big", big.clone());
    let start = |limits: &str| {
        let p = Proxy::start(&format!(
            "cache:\n  max_bytes: 128MiB\n  max_object_bytes: 32MiB\nlimits:\n{limits}{}",
            route(&replica("a", &w, "assets", 1, "5s"))
        ));
        for tag in ["MISS", "HIT"] {
            let r = reqwest::blocking::get(format!("{}/assets/big", p.data)).unwrap();
            assert_eq!(r.headers()["x-tandem-cache"], tag);
            assert_eq!(r.bytes().unwrap().len(), big.len());
        }
        p
    };
    let stalled = start("  send_timeout: 1s\n");
    let trickled = start("  send_timeout: 4s\n  min_send_rate: 1MiB\n");

    // A client that asks and never reads: a memory hit, dropped once no
    // byte has moved for send_timeout, and reset, so the kernel does not
    // go on sending the proxy's queue either.
    let mut s = small_window(&addr(&stalled));
    send_get(&mut s, "/assets/big", false);
    let t = Instant::now();
    poll(
        "the stalled reader dropped",
        Duration::from_secs(15),
        || {
            (stalled.metric("tandem_connections_closed_total", &["send_timeout"]) == 1.0)
                .then_some(())
        },
    );
    assert!(t.elapsed() >= Duration::from_secs(1));
    let mut got = Vec::new();
    assert!(s.read_to_end(&mut got).is_err(), "closed, not reset");
    assert!(got.len() < big.len());

    // A trickle: 16 KiB every 100 ms keeps bytes moving, far below
    // min_send_rate.
    let mut s = small_window(&addr(&trickled));
    send_get(&mut s, "/assets/big", false);
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let t = Instant::now();
    let mut buf = vec![0u8; 16 << 10];
    let mut total = 0;
    while t.elapsed() < Duration::from_secs(20) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(total < big.len());
    assert_eq!(
        trickled.metric("tandem_connections_closed_total", &["min_send_rate"]),
        1.0,
        "trickle ended after {:?} and {total} bytes",
        t.elapsed()
    );
    // Readers that keep up are untouched.
    for p in [&stalled, &trickled] {
        let r = reqwest::blocking::get(format!("{}/assets/big", p.data)).unwrap();
        assert!(r.bytes().unwrap() == big);
    }
}

#[test]
fn peak_memory_stays_under_its_bound_with_cold_misses_and_idle_connections() {
    const MIB: u64 = 1 << 20;
    // What the release build's RSS is at start (`make bench`: 8.6 to 9.5 MiB).
    const RELEASE_START_RSS: u64 = 10 * MIB;
    const OBJECTS: usize = 32;
    let (max, fill) = (64 * MIB, 16 * MIB);
    let w = Seaweed::start();
    w.bucket("assets");
    let objects: Vec<Vec<u8>> = (0..OBJECTS)
        .map(|i| bytes(4 << 20, 100 + i as u64))
        .collect();
    for (i, o) in objects.iter().enumerate() {
        w.put("assets", &format!("o{i}"), o.clone());
    }
    let p = Proxy::start_env(&format!(
        "cache:\n  max_bytes: 64MiB\n  max_object_bytes: 4MiB\n  max_fill_bytes: 16MiB\nlimits:\n  header_timeout: 5m\n{}",
        route(&replica("a", &w, "assets", 1, "5s"))
    ), &[]);
    let a = addr(&p);
    // The tests run a debug build, whose own code pages make it start at
    // about twice the RSS of the release build users run: the bound is
    // checked for a process that started where the release build does.
    let start = proc_status_kib(p.pid(), "VmRSS") * 1024;
    let idle: Vec<TcpStream> = (0..1000).map(|_| TcpStream::connect(&a).unwrap()).collect();
    poll("1000 idle connections", Duration::from_secs(20), || {
        (p.metric("tandem_connections_open", &["listener=\"data\""]) >= 1000.0).then_some(())
    });
    // Two rounds of every object at once: cold misses, then a cache that
    // must evict to take them.
    for round in 0..4 {
        let handles: Vec<_> = (0..OBJECTS)
            .map(|i| {
                let url = format!("{}/assets/o{i}", p.data);
                std::thread::spawn(move || reqwest::blocking::get(url).unwrap().bytes().unwrap())
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert!(h.join().unwrap() == objects[i], "round {round}, o{i}");
        }
    }
    let hwm = proc_status_kib(p.pid(), "VmHWM") * 1024 - start + RELEASE_START_RSS;
    // docs/proxy/operations.md: beyond the fixed bound, each miss streaming
    // past the fill budget to a client slower than its origin (the test's
    // readers are, on a loaded machine) holds up to two of hyper's read
    // buffers: the one filling from the origin, and the chunk split from
    // the last one, queued for the client. Without this term the test
    // measured 117 to 136 MiB against 128 with helpers compiling.
    const HYPER_READ_BUFFER: u64 = 8192 + 4096 * 100;
    let streamed = OBJECTS as u64 - fill / (4 * MIB);
    let bound = max + max / 4 + fill + 32 * MIB + streamed * 2 * HYPER_READ_BUFFER;
    eprintln!("peak RSS {} MiB, bound {} MiB", hwm / MIB, bound / MIB);
    assert!(
        hwm <= bound,
        "peak RSS {} MiB over the bound of {} MiB",
        hwm / MIB,
        bound / MIB
    );
    assert!(p.metric("tandem_cache_fills_unshared_total", &["budget"]) > 0.0);
    drop(idle);
}

#[test]
fn a_fill_survives_the_disconnect_of_the_client_that_started_it() {
    let w = Seaweed::start();
    w.bucket("assets");
    let body = bytes(512 << 10, 4);
    w.put("assets", "k", body.clone());
    let relay = Relay::start(w.s3_port);
    let p = Proxy::start(&route(&replica_at(
        "a",
        &relay.endpoint(),
        "assets",
        1,
        "5s",
    )));
    // About two seconds for the one origin fetch.
    relay.slow_next(1, 256 << 10);
    let before = w.gets("assets");
    let mut first = TcpStream::connect(addr(&p)).unwrap();
    send_get(&mut first, "/assets/k", false);
    std::thread::sleep(Duration::from_millis(300));
    drop(first);
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let url = format!("{}/assets/k", p.data);
            std::thread::spawn(move || {
                let r = reqwest::blocking::get(url).unwrap();
                let tag = r.headers()["x-tandem-cache"].to_str().unwrap().to_string();
                (tag, r.bytes().unwrap())
            })
        })
        .collect();
    for h in waiters {
        let (tag, got) = h.join().unwrap();
        assert_eq!(tag, "MISS");
        assert!(got == body);
    }
    assert_eq!(w.gets("assets") - before, 1, "one origin GET for all three");
    let r = reqwest::blocking::get(format!("{}/assets/k", p.data)).unwrap();
    assert_eq!(r.headers()["x-tandem-cache"], "HIT");
}

#[test]
fn a_waiter_fetches_for_itself_after_the_lock_timeout() {
    let w = Seaweed::start();
    w.bucket("assets");
    let body = bytes(512 << 10, 5);
    w.put("assets", "k", body.clone());
    let relay = Relay::start(w.s3_port);
    let p = Proxy::start(&format!(
        "cache:\n  lock_timeout: 500ms\n{}",
        route(&replica_at("a", &relay.endpoint(), "assets", 1, "5s"))
    ));
    // The fill takes about four seconds.
    relay.slow_next(1, 128 << 10);
    let url = format!("{}/assets/k", p.data);
    let leader = {
        let url = url.clone();
        std::thread::spawn(move || reqwest::blocking::get(url).unwrap().bytes().unwrap())
    };
    poll("the fill under way", Duration::from_secs(10), || {
        (p.metric("tandem_origin_requests_total", &["outcome=\"ok\""]) >= 1.0).then_some(())
    });
    let t = Instant::now();
    let r = reqwest::blocking::get(&url).unwrap();
    assert_eq!(r.headers()["x-tandem-cache"], "MISS");
    assert!(r.bytes().unwrap() == body);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "waited {:?} for a slow fill",
        t.elapsed()
    );
    assert_eq!(p.metric("tandem_cache_lock_timeouts_total", &[]), 1.0);
    assert!(leader.join().unwrap() == body);
    let r = reqwest::blocking::get(&url).unwrap();
    assert_eq!(r.headers()["x-tandem-cache"], "HIT");
}

#[test]
fn revalidation_renews_the_copy_and_stale_if_error_counts_from_the_last_one() {
    let mut w = Seaweed::start();
    w.bucket("assets");
    w.put("assets", "k", bytes(1000, 6));
    let cfg = |extra: &str| {
        format!(
            "cache:\n  ttl: 2s\n{extra}{}",
            route(&replica("a", &w, "assets", 1, "500ms"))
        )
    };
    let with = Proxy::start(&cfg("  stale_if_error: 3s\n"));
    let without = Proxy::start(&cfg(""));
    let get = |p: &Proxy| {
        let r = reqwest::blocking::get(format!("{}/assets/k", p.data)).unwrap();
        let tag = r
            .headers()
            .get("x-tandem-cache")
            .map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), tag)
    };
    for p in [&with, &without] {
        assert_eq!(get(p), (200, Some("MISS".into())));
    }
    // Each copy is kept ttl + keep past its last confirmation (keep: ttl,
    // or stale_if_error if longer). Three cycles, three seconds apart,
    // outlive the first deadline by far.
    let mut last = Instant::now();
    for cycle in 0..3 {
        std::thread::sleep(Duration::from_secs(3).saturating_sub(last.elapsed()));
        last = Instant::now();
        for p in [&with, &without] {
            assert_eq!(get(p), (200, Some("REVALIDATED".into())), "cycle {cycle}");
        }
    }
    // Every replica down: the copy confirmed last is served stale, for
    // ttl + stale_if_error from that confirmation.
    w.kill();
    std::thread::sleep(Duration::from_secs(4).saturating_sub(last.elapsed()));
    assert_eq!(get(&with), (200, Some("STALE".into())));
    assert_eq!(get(&without).0, 503);
}

#[test]
fn a_purge_racing_a_fill_leaves_no_old_copy_in_memory_or_redis() {
    let redis = Redis::start();
    let w = Seaweed::start();
    w.bucket("assets");
    let (v1, v2) = (bytes(512 << 10, 7), bytes(512 << 10, 8));
    w.put("assets", "k", v1.clone());
    let relay = Relay::start(w.s3_port);
    let cfg = format!(
        "admin:\n  purge_token_env: PURGE\nredis:\n  urls: [\"{}\"]\n  timeout: 500ms\n{}",
        redis.url(),
        route(&replica_at("a", &relay.endpoint(), "assets", 1, "5s"))
    );
    let p = Proxy::start_env(&cfg, &[("PURGE", "t0ken")]);
    let other = Proxy::start_env(&cfg, &[("PURGE", "t0ken")]);
    relay.slow_next(1, 256 << 10);
    let url = format!("{}/assets/k", p.data);
    let first = {
        let url = url.clone();
        std::thread::spawn(move || reqwest::blocking::get(url).unwrap().bytes().unwrap())
    };
    poll("the fill under way", Duration::from_secs(10), || {
        (p.metric("tandem_origin_requests_total", &["outcome=\"ok\""]) >= 1.0).then_some(())
    });
    w.put("assets", "k", v2.clone());
    redis.cli(&["CONFIG", "RESETSTAT"]);
    let purge = reqwest::blocking::Client::new()
        .post(format!("{}/purge?route=assets&key=k", p.admin))
        .bearer_auth("t0ken")
        .send()
        .unwrap();
    assert_eq!(purge.status(), 200);
    // After the 200, nobody gets the old copy: not a request that would
    // have joined the fill in flight, not a later hit, not another proxy
    // reading Redis.
    let after = reqwest::blocking::get(&url).unwrap();
    assert!(after.bytes().unwrap() == v2, "got the purged version");
    assert!(
        first.join().unwrap() == v1,
        "the request in flight keeps its own"
    );
    for _ in 0..3 {
        let r = reqwest::blocking::get(&url).unwrap();
        assert!(r.bytes().unwrap() == v2);
        let r = reqwest::blocking::get(format!("{}/assets/k", other.data)).unwrap();
        assert!(r.bytes().unwrap() == v2);
    }
    // A purge of one key reads an index, never the whole keyspace.
    let stats = redis.cli(&["INFO", "commandstats"]);
    assert!(!stats.contains("cmdstat_scan:"), "{stats}");
}

#[test]
fn concurrent_memory_misses_make_one_redis_get() {
    let redis = Redis::start();
    let w = Seaweed::start();
    w.bucket("assets");
    let body = bytes(64 << 10, 9);
    w.put("assets", "k", body.clone());
    let cfg = format!(
        "redis:\n  urls: [\"{}\"]\n  timeout: 3s\n{}",
        redis.url(),
        route(&replica("a", &w, "assets", 1, "5s"))
    );
    let warm = Proxy::start(&cfg);
    let cold = Proxy::start(&cfg);
    reqwest::blocking::get(format!("{}/assets/k", warm.data)).unwrap();
    poll("the object in Redis", Duration::from_secs(10), || {
        (warm.metric("tandem_redis_writes_total", &[]) == 1.0).then_some(())
    });
    redis.cli(&["CONFIG", "RESETSTAT"]);
    // Redis answers nobody for a moment, so every miss below is in
    // flight at once.
    redis.cli(&["CLIENT", "PAUSE", "800", "ALL"]);
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let url = format!("{}/assets/k", cold.data);
            std::thread::spawn(move || reqwest::blocking::get(url).unwrap().bytes().unwrap())
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap() == body);
    }
    let stats = redis.cli(&["INFO", "commandstats"]);
    let gets = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|v| v.split(',').next())
        .unwrap_or("0");
    assert_eq!(gets, "1", "{stats}");
    assert_eq!(w.gets("assets"), 1);
}

#[test]
fn a_full_cache_of_small_objects_holds_what_it_is_charged() {
    // Over twice what fits, read once, through the release build: the
    // RSS that went uncharged was the heap that evicting small entries
    // leaves free, and it shows only at this scale and in the optimised
    // build (1.22x to 1.25x the charge before the fix, 0.87x for the debug
    // build; 1,500 objects through 8 MiB showed nothing in either).
    const OBJECTS: usize = 20000;
    let w = Seaweed::start();
    w.bucket("assets");
    let objects: Vec<Vec<u8>> = (0..OBJECTS).map(|i| bytes(4096, 1000 + i as u64)).collect();
    std::thread::scope(|s| {
        for (t, part) in objects.chunks(OBJECTS / 8).enumerate() {
            let w = &w;
            s.spawn(move || {
                for (j, o) in part.iter().enumerate() {
                    w.put("assets", &format!("s{}", t * (OBJECTS / 8) + j), o.clone());
                }
            });
        }
    });
    let p = Proxy::start_release(&format!(
        "cache:\n  max_bytes: 64MiB\n  max_object_bytes: 1MiB\n{}",
        route(&replica("a", &w, "assets", 1, "5s"))
    ));
    let read = |range: std::ops::Range<usize>| {
        std::thread::scope(|s| {
            for t in 0..4 {
                let (p, objects, range) = (&p, &objects, range.clone());
                s.spawn(move || {
                    let http = reqwest::blocking::Client::new();
                    for i in range.skip(t).step_by(4) {
                        let r = http.get(format!("{}/assets/s{i}", p.data)).send().unwrap();
                        assert!(r.bytes().unwrap() == objects[i]);
                    }
                });
            }
        });
    };
    // What the first requests cost (worker pools, buffers) is not the
    // cache's: measure from after a few.
    read(0..100);
    let rss = || proc_status_kib(p.pid(), "VmRSS") * 1024;
    let charged = || p.metric("tandem_cache_bytes", &[]) as u64;
    let (rss0, charged0) = (rss(), charged());
    read(100..OBJECTS);
    let entries = p.metric("tandem_cache_entries", &[]);
    assert!(
        entries < OBJECTS as f64,
        "{entries} entries: the cache is not full"
    );
    // Within 15 %, not the 25 % the pod's memory formula allows: the
    // charge is meant to be the real size (1.00x measured here), and the
    // old charge, at 1.25x, sat right on the formula's edge.
    let (grown, added) = (rss().saturating_sub(rss0), charged() - charged0);
    assert!(
        grown <= added * 23 / 20,
        "{} KiB of RSS for {} KiB charged ({entries} small objects)",
        grown / 1024,
        added / 1024
    );
}
