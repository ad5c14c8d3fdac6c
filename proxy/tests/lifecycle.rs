//! Process lifecycle against a real SeaweedFS: config reload (file change
//! and SIGHUP; a bad config refused while the old one keeps serving) and
//! the SIGTERM drain completing an in-flight large download.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;

fn route(name: &str, prefix: &str, w: &Seaweed, bucket: &str) -> String {
    format!(
        "  - name: {name}\n    path_prefix: {prefix}\n    replicas:\n{}",
        replica("sw", w, bucket, 1, "2s")
    )
}

#[test]
fn good_reload_applies_and_bad_reload_is_refused() {
    let w = Seaweed::start();
    w.bucket("one");
    w.bucket("two");
    w.put("one", "a.txt", b"from one".to_vec());
    w.put("two", "b.txt", b"from two".to_vec());
    let p = Proxy::start(&format!("buckets:\n{}", route("one", "/one/", &w, "one")));
    let v1 = p.status()["config_version"].as_str().unwrap().to_string();
    let get = |path: &str| reqwest::blocking::get(format!("{}{path}", p.data)).unwrap();
    assert_eq!(get("/one/a.txt").text().unwrap(), "from one");
    assert_eq!(get("/two/b.txt").status(), 404);

    // A good change to the file is picked up without a signal.
    p.rewrite(&format!(
        "buckets:\n{}{}",
        route("one", "/one/", &w, "one"),
        route("two", "/two/", &w, "two")
    ));
    let v2 = poll("the new config_version", Duration::from_secs(10), || {
        let v = p.status()["config_version"].as_str().unwrap().to_string();
        (v != v1).then_some(v)
    });
    assert_eq!(get("/two/b.txt").text().unwrap(), "from two");
    assert_eq!(
        p.metric("tandem_config_reloads_total", &["result=\"ok\""]),
        1.0
    );
    // The cache survived the reload: route one's object is still a hit.
    get("/one/a.txt");
    assert_eq!(get("/one/a.txt").headers()["x-tandem-cache"], "HIT");

    // A bad config (two mistakes) is refused, logged and counted; the old
    // one keeps serving.
    p.rewrite(&format!(
        "buckets:\n{}  - name: bad\n    path_prefix: nope\n    replicas: []\n",
        route("one", "/one/", &w, "one")
    ));
    poll(
        "the refused reload to be counted",
        Duration::from_secs(10),
        || (p.metric("tandem_config_reloads_total", &["result=\"invalid\""]) >= 1.0).then_some(()),
    );
    assert_eq!(p.status()["config_version"], v2.as_str());
    let err = p.status()["reloads"]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("buckets[1].path_prefix") && err.contains("buckets[1].replicas"),
        "{err}"
    );
    assert!(p.log().contains("config reload refused"), "{}", p.log());
    assert_eq!(get("/two/b.txt").text().unwrap(), "from two");

    // SIGHUP reloads too; a replica whose credentials variable is unset is
    // refused with the variable named.
    std::fs::write(
        &p.config,
        std::fs::read_to_string(&p.config).unwrap().replace("nope", "/bad/").replace("replicas: []", "replicas:\n      - {name: x, bucket: two, region: us-east-1, credentials: {access_key_id_env: NOT_SET_ANYWHERE, secret_access_key_env: T_SECRET}}"),
    )
    .unwrap();
    signal(p.pid(), "HUP");
    poll("the second refused reload", Duration::from_secs(10), || {
        (p.metric("tandem_config_reloads_total", &["result=\"invalid\""]) >= 2.0).then_some(())
    });
    let err = p.status()["reloads"]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("NOT_SET_ANYWHERE"), "{err}");
    assert_eq!(p.status()["config_version"], v2.as_str());
    // Secrets never reach the log.
    assert!(!p.log().contains(SECRET));
}

#[test]
fn sigterm_drains_and_completes_an_in_flight_large_download() {
    let w = Seaweed::start();
    w.bucket("big");
    // Larger than max_object_bytes, so it streams through uncached.
    let body = bytes(24 << 20, 7);
    w.put("big", "video.bin", body.clone());
    let mut p = Proxy::start(&format!(
        "cache:\n  max_object_bytes: 1MiB\ndrain:\n  delay: 300ms\n  grace: 20s\nbuckets:\n{}",
        route("big", "/big/", &w, "big")
    ));
    let mut resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
        .get(format!("{}/big/video.bin", p.data))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Read slowly: the download is still in flight when SIGTERM arrives.
    let mut got = vec![0u8; 1 << 20];
    resp.read_exact(&mut got).unwrap();
    let signalled = Instant::now();
    signal(p.pid(), "TERM");
    poll("/ready to turn 503", Duration::from_secs(2), || {
        let r = reqwest::blocking::get(format!("{}/ready", p.admin)).ok()?;
        (r.status() == 503).then_some(())
    });
    assert!(
        signalled.elapsed() < Duration::from_millis(300),
        "/ready turned 503 at once"
    );
    let mut chunk = vec![0u8; 256 << 10];
    loop {
        let n = resp.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        signalled.elapsed() > Duration::from_millis(300),
        "the download outlived the drain delay"
    );
    assert_eq!(got.len(), body.len(), "the in-flight download completed");
    assert!(got == body);
    // After the delay, new connections are refused.
    assert!(reqwest::blocking::get(format!("{}/big/video.bin", p.data)).is_err());
    assert_eq!(p.wait(Duration::from_secs(25)), Some(0), "{}", p.log());
}

#[test]
fn requests_abandoned_by_their_client_leave_no_in_flight_count() {
    let w = Seaweed::start();
    w.bucket("site");
    w.put("site", "a.txt", b"a".to_vec());
    let p = Proxy::start(&format!(
        "buckets:\n{}",
        route("site", "/site/", &w, "site")
    ));
    // The origin hangs; clients give up before any answer.
    signal(w.pid(), "STOP");
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    for i in 0..4 {
        assert!(impatient
            .get(format!("{}/site/k{i}.txt", p.data))
            .send()
            .is_err());
    }
    signal(w.pid(), "CONT");
    poll(
        "the in-flight gauge to return to 0",
        Duration::from_secs(10),
        || (p.metric("tandem_in_flight_requests", &[]) == 0.0).then_some(()),
    );
    assert_eq!(p.metric("tandem_requests_total", &["status=\"499\""]), 4.0);
    // Each wait the client gave up on is in the access log.
    let gave_up = poll("four 499 lines", Duration::from_secs(10), || {
        let l: Vec<_> = p
            .access_log()
            .into_iter()
            .filter(|l| l["status"] == 499)
            .collect();
        (l.len() == 4).then_some(l)
    });
    for l in &gave_up {
        assert_eq!(l["completed"], false, "{l}");
        assert_eq!(l["bytes"], 0, "{l}");
        assert_eq!(l["route"], "site", "{l}");
        assert!(l["key"].as_str().unwrap().starts_with('k'), "{l}");
        assert!(l["total_s"].as_f64().unwrap() >= 0.15, "{l}");
    }
}

#[test]
fn a_drain_variable_without_its_unit_refuses_to_start_and_names_itself() {
    let w = Seaweed::start();
    w.bucket("site");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("proxy.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen:\n  data: 127.0.0.1:{}\n  admin: 127.0.0.1:{}\nbuckets:\n{}",
            free_port(),
            free_port(),
            route("site", "/site/", &w, "site")
        ),
    )
    .unwrap();
    // `15` where `15s` was meant: found at start, where a rollout shows
    // it, not at the SIGTERM that should have drained.
    let log = dir.path().join("stderr");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tandem-proxy"))
        .arg("--config")
        .arg(&cfg)
        .env("T_KEY", KEY)
        .env("T_SECRET", SECRET)
        .env("TANDEM_DRAIN_DELAY", "5s")
        .env("TANDEM_DRAIN_GRACE", "15")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running 10 s after start with TANDEM_DRAIN_GRACE=15");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("TANDEM_DRAIN_GRACE=\"15\""), "{err}");
    assert!(
        !err.contains("TANDEM_DRAIN_DELAY"),
        "a good value is not a problem: {err}"
    );
}

/// Under systemd's `Type=notify` the proxy says READY=1 once /ready
/// answers 200, RELOADING=1 then READY=1 around a SIGHUP reload, and
/// STOPPING=1 once /ready answers 503. Each state is checked from a thread
/// that asks /ready the moment the datagram arrives, so a notification
/// sent too early fails.
#[test]
fn systemd_hears_ready_reloading_and_stopping_when_they_are_true() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("notify");
    let listener = UnixDatagram::bind(&socket).unwrap();
    let (dp, ap) = (free_port(), free_port());
    let config = dir.path().join("proxy.yaml");
    // No origin is contacted: the replica's breaker stays closed, so
    // /ready answers 200 as soon as the proxy serves.
    std::fs::write(
        &config,
        format!(
            "listen:\n  data: 127.0.0.1:{dp}\n  admin: 127.0.0.1:{ap}\ndrain:\n  delay: 300ms\n  grace: 1s\nbuckets:\n  - name: a\n    path_prefix: /a/\n    replicas:\n{}",
            replica_at("dead", "http://127.0.0.1:1", "assets", 1, "1s")
        ),
    )
    .unwrap();
    // Each datagram, with the status /ready gave right after it arrived.
    let (tx, rx) = std::sync::mpsc::channel();
    let ready_url = format!("http://127.0.0.1:{ap}/ready");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok(n) = listener.recv(&mut buf) {
            let state = String::from_utf8_lossy(&buf[..n]).into_owned();
            let status = reqwest::blocking::get(&ready_url).map_or(0, |r| r.status().as_u16());
            if tx.send((state, status)).is_err() {
                return;
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a notification within 10 s")
    };
    let args = vec!["--config".to_string(), config.display().to_string()];
    let socket_env = socket.display().to_string();
    let mut p = Proxy::spawn(
        tempfile::tempdir().unwrap(),
        config,
        (dp, ap),
        &args,
        &[("NOTIFY_SOCKET", &socket_env)],
    );

    let (state, status) = next();
    assert!(state.lines().any(|l| l == "READY=1"), "{state:?}");
    assert_eq!(status, 200, "/ready when READY=1 arrived");

    signal(p.pid(), "HUP");
    let (state, _) = next();
    assert!(state.lines().any(|l| l == "RELOADING=1"), "{state:?}");
    let (state, status) = next();
    assert!(state.lines().any(|l| l == "READY=1"), "{state:?}");
    assert_eq!(status, 200, "/ready after the reload");

    signal(p.pid(), "TERM");
    let (state, status) = next();
    assert!(state.lines().any(|l| l == "STOPPING=1"), "{state:?}");
    assert_eq!(status, 503, "/ready when STOPPING=1 arrived");
    assert_eq!(p.wait(Duration::from_secs(10)), Some(0), "{}", p.log());
}
