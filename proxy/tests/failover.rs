//! Failover between two real SeaweedFS replicas: the primary killed
//! (connections refused) or hung (SIGSTOP), the breaker going open, then
//! half-open, then closed again, all visible in /status and /metrics; and a
//! drill that SIGKILLs the primary under steady load.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use reqwest::blocking::Client;

fn pair() -> (Seaweed, Seaweed) {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(Seaweed::start);
        let b = s.spawn(Seaweed::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    for w in [&a, &b] {
        w.bucket("site");
    }
    (a, b)
}

/// A route over both replicas with the cache off, so every request reaches
/// an origin and failover is what is being measured.
fn config(a: &Seaweed, b: &Seaweed, timeout: &str, breaker: &str) -> String {
    format!(
        "buckets:\n  - name: site\n    path_prefix: /site/\n    cache: {{enabled: false}}\n    breaker: {breaker}\n    replicas:\n{}{}",
        replica("primary", a, "site", 1, timeout),
        replica("backup", b, "site", 2, timeout),
    )
}

fn breaker_of(p: &Proxy, replica: &str) -> String {
    p.status()["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == replica)
        .unwrap()["breaker"]
        .as_str()
        .unwrap()
        .to_string()
}

fn ready(p: &Proxy) -> u16 {
    reqwest::blocking::get(format!("{}/ready", p.admin))
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn killed_primary_fails_over_at_once_and_the_breaker_opens() {
    let (mut a, b) = pair();
    for w in [&a, &b] {
        w.put("site", "index.html", b"<h1>hi</h1>".to_vec());
    }
    let p = Proxy::start(&config(
        &a,
        &b,
        "1s",
        "{failure_threshold: 3, open_timeout: 30s}",
    ));
    let http = Client::new();
    let r = http
        .get(format!("{}/site/index.html", p.data))
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-tandem-replica"], "primary");
    a.kill();
    for i in 0..10 {
        let r = http
            .get(format!("{}/site/index.html", p.data))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "request {i} after the primary died");
        assert_eq!(r.headers()["x-tandem-replica"], "backup");
        assert_eq!(r.text().unwrap(), "<h1>hi</h1>");
    }
    assert_eq!(breaker_of(&p, "primary"), "open");
    assert_eq!(ready(&p), 200, "the backup still serves: ready, degraded");
    assert_eq!(p.status()["status"], "degraded");
    assert_eq!(
        p.metric("tandem_failovers_total", &["from=\"primary\""]),
        3.0,
        "breaker opened after 3"
    );
    assert_eq!(
        p.metric("tandem_breaker_state", &["replica=\"primary\""]),
        2.0
    );
    assert_eq!(p.metric("tandem_replica_up", &["replica=\"backup\""]), 1.0);
    // A 404 from the healthy backup is an answer, not a failure.
    let r = http.get(format!("{}/site/nope", p.data)).send().unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(breaker_of(&p, "backup"), "closed");
}

#[test]
fn hung_primary_times_out_then_recovers_through_half_open() {
    let (a, b) = pair();
    for w in [&a, &b] {
        w.put("site", "app.js", b"console.log(1)".to_vec());
    }
    let p = Proxy::start(&config(
        &a,
        &b,
        "300ms",
        "{failure_threshold: 2, success_threshold: 3, open_timeout: 1s}",
    ));
    let http = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let get = || http.get(format!("{}/site/app.js", p.data)).send().unwrap();
    assert_eq!(get().headers()["x-tandem-replica"], "primary");
    signal(a.pid(), "STOP");
    for _ in 0..2 {
        let t = Instant::now();
        let r = get();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-tandem-replica"], "backup");
        assert!(
            t.elapsed() >= Duration::from_millis(290),
            "waited the replica timeout"
        );
    }
    assert_eq!(breaker_of(&p, "primary"), "open");
    // With the breaker open the hung replica costs nothing.
    let t = Instant::now();
    assert_eq!(get().headers()["x-tandem-replica"], "backup");
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );

    // Every replica of a route open → not ready. Hang the backup too.
    signal(b.pid(), "STOP");
    for _ in 0..2 {
        let r = get();
        assert_eq!(r.status(), 503);
        assert!(r
            .text()
            .unwrap()
            .contains("<Code>ServiceUnavailable</Code>"));
    }
    poll("/ready to turn 503", Duration::from_secs(5), || {
        (ready(&p) == 503).then_some(())
    });
    assert_eq!(p.status()["status"], "unavailable");
    signal(b.pid(), "CONT");

    // Resume the primary: the background prober moves it to half-open and
    // then closed with no client traffic at all.
    signal(a.pid(), "CONT");
    let seen = Mutex::new(Vec::<String>::new());
    poll("primary breaker to close", Duration::from_secs(15), || {
        let s = breaker_of(&p, "primary");
        let mut v = seen.lock().unwrap();
        if v.last() != Some(&s) {
            v.push(s.clone());
        }
        (s == "closed").then_some(())
    });
    let seen = seen.into_inner().unwrap();
    assert!(
        seen.contains(&"half_open".to_string()),
        "states seen: {seen:?}"
    );
    assert_eq!(get().headers()["x-tandem-replica"], "primary");
    poll("/ready to recover", Duration::from_secs(15), || {
        (ready(&p) == 200).then_some(())
    });
    assert!(
        p.metric(
            "tandem_breaker_transitions_total",
            &["replica=\"primary\"", "to=\"closed\""]
        ) >= 1.0
    );
}

/// Steady load from 8 clients; the primary is SIGKILLed mid-run. Counts
/// every non-200 or truncated response and prints the time to full
/// recovery: from the kill to the end of the last request that failed or
/// was slower than 10x the pre-kill p99. Objects are 16 KiB, read whole
/// before answering, so even requests in flight at the kill fail over.
#[test]
fn drill_sigkill_primary_under_load() {
    let (mut a, b) = pair();
    let body = bytes(16 << 10, 9);
    for w in [&a, &b] {
        w.put("site", "hot.bin", body.clone());
    }
    let p = Proxy::start(&config(
        &a,
        &b,
        "500ms",
        "{failure_threshold: 3, open_timeout: 60s}",
    ));
    let stop = AtomicBool::new(false);
    let samples = Mutex::new(Vec::<(Instant, Duration, u16)>::new());
    let kill_at = Mutex::new(None::<Instant>);
    let open_at = Mutex::new(None::<Duration>);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let http = Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut local = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let status = match http.get(format!("{}/site/hot.bin", p.data)).send() {
                        Ok(r) => {
                            let st = r.status().as_u16();
                            match r.bytes() {
                                Ok(b) if b.len() == body.len() => st,
                                _ => 999,
                            }
                        }
                        Err(_) => 998,
                    };
                    local.push((t, t.elapsed(), status));
                }
                samples.lock().unwrap().extend(local);
            });
        }
        std::thread::sleep(Duration::from_secs(2));
        let killed = Instant::now();
        *kill_at.lock().unwrap() = Some(killed);
        a.kill();
        poll(
            "the primary's breaker to open",
            Duration::from_secs(3),
            || (breaker_of(&p, "primary") == "open").then_some(()),
        );
        *open_at.lock().unwrap() = Some(killed.elapsed());
        std::thread::sleep(Duration::from_secs(3).saturating_sub(killed.elapsed()));
        stop.store(true, Ordering::Relaxed);
    });
    let kill = kill_at.into_inner().unwrap().unwrap();
    let samples = samples.into_inner().unwrap();
    let mut before: Vec<Duration> = samples
        .iter()
        .filter(|s| s.0 + s.1 < kill)
        .map(|s| s.1)
        .collect();
    before.sort();
    let p99 = before[before.len() * 99 / 100];
    let bad_after: Vec<_> = samples
        .iter()
        .filter(|s| s.0 + s.1 >= kill && s.2 != 200)
        .collect();
    let open_after = open_at.into_inner().unwrap().unwrap();
    let last_bad = samples
        .iter()
        .filter(|s| s.0 + s.1 >= kill && (s.2 != 200 || s.1 > p99 * 10))
        .map(|s| (s.0 + s.1).duration_since(kill))
        .max()
        .unwrap_or_default();
    // Fully recovered once the dead replica is no longer tried and no
    // request is failing or slow any more.
    let recovery = last_bad.max(open_after);
    let opened = p.metric(
        "tandem_breaker_transitions_total",
        &["replica=\"primary\"", "to=\"open\""],
    );
    eprintln!(
        "drill: {} requests, pre-kill p99 {:?}, non-200 after kill: {}, breaker open {:?} after the kill, last failed or slow request {:?} after, time to full recovery: {:?}",
        samples.len(),
        p99,
        bad_after.len(),
        open_after,
        last_bad,
        recovery
    );
    assert_eq!(opened, 1.0);
    assert!(
        bad_after.is_empty(),
        "failed requests after the kill: {bad_after:?}"
    );
    assert!(samples.iter().all(|s| s.2 == 200));
    assert!(
        recovery < Duration::from_secs(1),
        "recovery took {recovery:?}"
    );
}
