//! The shared Redis tier against real `redis-server` processes (a single
//! node, and a three-primary Redis Cluster made with `redis-cli --cluster
//! create`) and real SeaweedFS origins: a hit written by one proxy served
//! by another, the size limit, purge of both tiers, Redis killed under load
//! with no request failing, and the fleet-wide rate limit.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const PURGE_TOKEN: &str = "purge-token-redis-41c2";

fn get(p: &Proxy, path: &str) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .get(format!("{}{path}", p.data))
        .send()
        .unwrap()
}

fn purge(p: &Proxy, query: &str) -> (u16, serde_json::Value) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/purge?{query}", p.admin))
        .bearer_auth(PURGE_TOKEN)
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

/// A proxy config with one route over `w`'s bucket `site` and `redis`.
fn config(w: &Seaweed, redis: &str, extra: &str) -> String {
    format!(
        "{extra}admin:\n  purge_token_env: PURGE_TOKEN\nredis:\n{redis}buckets:\n  - name: site\n    path_prefix: /site/\n    replicas:\n{}",
        replica("a", w, "site", 1, "2s")
    )
}

fn single(r: &Redis, max_object: &str) -> String {
    format!(
        "  urls: [\"{}\"]\n  timeout: 200ms\n  max_object_bytes: {max_object}\n",
        r.url()
    )
}

/// How much `served` grows over `window`.
fn served_in(served: &AtomicU64, window: Duration) -> u64 {
    let before = served.load(Ordering::Relaxed);
    std::thread::sleep(window);
    served.load(Ordering::Relaxed) - before
}

/// Waits until `p` reports the tier up (true) or down (false). Going down
/// takes one failed call; coming up waits for the 1 s probe to reach every
/// pooled connection, hence the longer limit.
fn wait_redis_up(p: &Proxy, up: bool, what: &str) {
    let (want, limit) = if up { (1.0, 10) } else { (0.0, 5) };
    poll(what, Duration::from_secs(limit), || {
        (p.metric("tandem_redis_up", &[]) == want).then_some(())
    });
}

fn start(cfg: &str) -> Proxy {
    Proxy::start_env(cfg, &[("PURGE_TOKEN", PURGE_TOKEN)])
}

#[test]
fn a_second_proxy_serves_what_the_first_fetched_and_purge_clears_both_tiers() {
    let (w, redis) = std::thread::scope(|s| {
        let r = s.spawn(Redis::start);
        (Seaweed::start(), r.join().unwrap())
    });
    w.bucket("site");
    w.put_with("site", "page.html", b"<p>shared</p>".to_vec(), |r| {
        r.metadata("owner", "web").content_type("text/html")
    });
    let big = bytes(300 << 10, 7);
    w.put("site", "big.bin", big.clone());
    let cfg = config(&w, &single(&redis, "256KiB"), "");
    let (p1, p2) = std::thread::scope(|s| {
        let a = s.spawn(|| start(&cfg));
        let b = s.spawn(|| start(&cfg));
        (a.join().unwrap(), b.join().unwrap())
    });

    let r = get(&p1, "/site/page.html");
    assert_eq!(r.headers()["x-tandem-cache"], "MISS");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let last_modified = r.headers()["last-modified"].clone();
    assert_eq!(r.text().unwrap(), "<p>shared</p>");
    assert_eq!(get(&p1, "/site/big.bin").bytes().unwrap(), big);
    // Writes are in the background: wait until Redis has the small one.
    poll("the write to Redis", Duration::from_secs(5), || {
        (p1.metric("tandem_redis_writes_total", &[]) >= 1.0).then_some(())
    });
    let origin_gets = w.gets("site");

    let r = get(&p2, "/site/page.html");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-tandem-cache"],
        "HIT-REDIS",
        "{:?}",
        r.headers()
    );
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(r.headers()["last-modified"], last_modified);
    assert_eq!(r.headers()["x-amz-meta-owner"], "web");
    assert_eq!(r.headers()["content-type"], "text/html");
    assert_eq!(r.headers()["x-tandem-replica"], "a");
    assert_eq!(r.text().unwrap(), "<p>shared</p>");
    // Now in the second proxy's memory too.
    assert_eq!(
        get(&p2, "/site/page.html").headers()["x-tandem-cache"],
        "HIT"
    );
    // Ranges and conditionals are answered from the shared copy as well.
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/site/page.html", p2.data))
        .header("range", "bytes=3-8")
        .send()
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().unwrap()),
        (206, "shared".into())
    );
    assert_eq!(
        w.gets("site"),
        origin_gets,
        "no origin GET for a shared hit"
    );
    assert_eq!(
        p2.metric("tandem_redis_hits_total", &["route=\"site\""]),
        1.0
    );

    // Over redis.max_object_bytes: memory only, so the second proxy goes to
    // the origin for it.
    assert_eq!(p1.metric("tandem_redis_writes_total", &[]), 1.0);
    let r = get(&p2, "/site/big.bin");
    assert_eq!(r.headers()["x-tandem-cache"], "MISS");
    assert_eq!(r.bytes().unwrap(), big);
    assert_eq!(w.gets("site"), origin_gets + 1);

    // Purge through the first proxy: its memory and Redis. Its next GET
    // must come from the origin, not back from Redis.
    let (code, body) = purge(&p1, "route=site&key=page.html");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["purged"], 1, "{body}");
    assert_eq!(body["purged_redis"], 1, "{body}");
    assert_eq!(body["fleet_notified"], true, "{body}");
    let r = get(&p1, "/site/page.html");
    assert_eq!(r.headers()["x-tandem-cache"], "MISS");
    assert_eq!(w.gets("site"), origin_gets + 2);
    // The second proxy heard the purge through Redis pub/sub and dropped
    // its memory copy too: its next GET is not a stale HIT. (It may find
    // the copy the first proxy just fetched again in Redis.)
    poll(
        "the purge notice at the second proxy",
        Duration::from_secs(5),
        || (p2.metric("tandem_redis_purge_notices_total", &[]) >= 1.0).then_some(()),
    );
    let r = get(&p2, "/site/page.html");
    assert_ne!(r.headers()["x-tandem-cache"], "HIT", "{:?}", r.headers());
    assert_eq!(r.text().unwrap(), "<p>shared</p>");
    // A purge by prefix walks the keyspace (SCAN) rather than one key.
    poll("the rewrite to Redis", Duration::from_secs(5), || {
        (redis.dbsize() == 1).then_some(())
    });
    let (code, body) = purge(&p1, "route=site&prefix=page");
    assert_eq!(
        (code, body["purged_redis"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    assert_eq!(redis.dbsize(), 0);
}

#[test]
fn redis_killed_under_load_fails_no_request_and_comes_back() {
    let (w, mut redis) = std::thread::scope(|s| {
        let r = s.spawn(Redis::start);
        (Seaweed::start(), r.join().unwrap())
    });
    w.bucket("site");
    const N: usize = 60;
    const SIZE: usize = 48 << 10;
    for i in 0..N {
        w.put("site", &format!("o{i}"), bytes(SIZE, i as u64));
    }
    // A memory cache far smaller than the working set, so most requests
    // are memory misses that go to Redis: the case a dead Redis could slow
    // down or fail.
    let cfg = config(
        &w,
        &single(&redis, "1MiB"),
        "cache:\n  max_bytes: 1MiB\n  max_object_bytes: 64KiB\n",
    );
    let p = start(&cfg);
    for i in 0..N {
        assert_eq!(get(&p, &format!("/site/o{i}")).status(), 200);
    }
    poll(
        "every object written to Redis",
        Duration::from_secs(10),
        || (redis.dbsize() >= N as u64).then_some(()),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let served = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..4)
        .map(|t| {
            let (stop, failures, served, slowest, base) = (
                stop.clone(),
                failures.clone(),
                served.clone(),
                slowest.clone(),
                p.data.clone(),
            );
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::new();
                let mut i = t;
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let t0 = Instant::now();
                    let k = i % N;
                    let ok = c
                        .get(format!("{base}/site/o{k}"))
                        .send()
                        .ok()
                        .filter(|r| r.status() == 200)
                        .and_then(|r| r.bytes().ok())
                        .is_some_and(|b| b[..] == bytes(SIZE, k as u64)[..]);
                    slowest.fetch_max(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
                    if ok {
                        served.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 7;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let hits_before_kill = p.metric("tandem_redis_hits_total", &[]);
    assert!(
        hits_before_kill > 0.0,
        "the load must be reading from Redis"
    );
    redis.kill();
    wait_redis_up(&p, false, "tandem_redis_up 0");
    let served_while_down = served_in(&served, Duration::from_millis(1500));
    // Paying redis.timeout per memory miss would allow about 4 threads x
    // 1.5 s / 200 ms = 30 misses; skipping a down Redis serves hundreds.
    assert!(
        served_while_down > 150,
        "only {served_while_down} served with Redis down"
    );

    redis.restart();
    wait_redis_up(&p, true, "tandem_redis_up 1 after restart");
    // Misses repopulate the restarted (empty) Redis.
    poll(
        "writes to the restarted Redis",
        Duration::from_secs(10),
        || (redis.dbsize() > 0).then_some(()),
    );
    // A hung Redis (SIGSTOP) rather than a dead one: calls time out after
    // redis.timeout, the first timeout marks the tier down, and requests
    // keep being served from memory and origin.
    signal(redis.pid(), "STOP");
    wait_redis_up(&p, false, "tandem_redis_up 0 with Redis stopped");
    let served_while_hung = served_in(&served, Duration::from_millis(1500));
    assert!(
        served_while_hung > 150,
        "only {served_while_hung} served with Redis hung"
    );
    signal(redis.pid(), "CONT");
    wait_redis_up(&p, true, "tandem_redis_up 1 after SIGCONT");
    stop.store(true, Ordering::Relaxed);
    for h in load {
        h.join().unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0, "{}", p.log());
    let worst = slowest.load(Ordering::Relaxed);
    println!(
        "served {} requests; {served_while_down} in 1.5 s with Redis dead, {served_while_hung} with it hung; slowest {worst} ms",
        served.load(Ordering::Relaxed)
    );
    // One failed or timed-out call marks the tier down, so no request
    // waits much longer than one redis.timeout (200 ms) because of Redis.
    assert!(worst < 1000, "a request took {worst} ms");
    assert!(p.metric("tandem_redis_errors_total", &["reason=\"down\""]) > 0.0);
}

#[test]
fn cluster_mode_spreads_objects_over_every_primary_and_purges_them_all() {
    let (w, mut cluster) = std::thread::scope(|s| {
        let c = s.spawn(|| RedisCluster::start(3));
        (Seaweed::start(), c.join().unwrap())
    });
    w.bucket("site");
    const N: usize = 30;
    for i in 0..N {
        w.put(
            "site",
            &format!("docs/{i}.txt"),
            format!("doc {i}").into_bytes(),
        );
    }
    let urls: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let redis = format!(
        "  urls: [{}]\n  cluster: true\n  timeout: 500ms\n",
        urls.join(", ")
    );
    let cfg = config(&w, &redis, "");
    let (p1, p2) = std::thread::scope(|s| {
        let a = s.spawn(|| start(&cfg));
        let b = s.spawn(|| start(&cfg));
        (a.join().unwrap(), b.join().unwrap())
    });
    for i in 0..N {
        assert_eq!(get(&p1, &format!("/site/docs/{i}.txt")).status(), 200);
    }
    poll(
        "every object written to the cluster",
        Duration::from_secs(10),
        || (p1.metric("tandem_redis_writes_total", &[]) >= N as f64).then_some(()),
    );
    let per_node: Vec<u64> = cluster.nodes.iter().map(Redis::dbsize).collect();
    assert_eq!(per_node.iter().sum::<u64>(), N as u64, "{per_node:?}");
    assert!(
        per_node.iter().all(|&n| n > 0),
        "hash slots spread the keys: {per_node:?}"
    );

    let before = w.gets("site");
    for i in 0..N {
        let r = get(&p2, &format!("/site/docs/{i}.txt"));
        assert_eq!(r.headers()["x-tandem-cache"], "HIT-REDIS");
        assert_eq!(r.text().unwrap(), format!("doc {i}"));
    }
    assert_eq!(w.gets("site"), before, "all {N} served from the cluster");

    // A prefix purge SCANs every primary.
    let (code, body) = purge(&p2, "route=site&prefix=docs/");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["purged_redis"], N, "{body}");
    let per_node: Vec<u64> = cluster.nodes.iter().map(Redis::dbsize).collect();
    assert_eq!(per_node, vec![0; 3]);
    assert_eq!(p2.status()["redis"]["up"], true);

    // A primary dies (no replicas here, so its slots are lost): every
    // request is still answered, from memory or the origin.
    cluster.nodes[0].kill();
    let t0 = std::time::Instant::now();
    for i in 0..N {
        let r = get(&p1, &format!("/site/docs/{i}.txt"));
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().unwrap(), format!("doc {i}"));
    }
    println!(
        "{N} requests with a cluster primary dead took {:?}",
        t0.elapsed()
    );
    assert!(
        p1.metric("tandem_redis_errors_total", &[]) >= 1.0,
        "the dead primary was noticed"
    );
}

#[test]
fn the_global_rate_limit_is_shared_through_redis_and_local_when_redis_dies() {
    let (w, mut redis) = std::thread::scope(|s| {
        let r = s.spawn(Redis::start);
        (Seaweed::start(), r.join().unwrap())
    });
    w.bucket("site");
    w.put("site", "x.txt", b"x".to_vec());
    let cfg = config(
        &w,
        &single(&redis, "1MiB"),
        "limits:\n  rate_limit: {requests_per_second: 0.2, burst: 4, key: ip, global: true}\n",
    );
    let (p1, p2) = std::thread::scope(|s| {
        let a = s.spawn(|| start(&cfg));
        let b = s.spawn(|| start(&cfg));
        (a.join().unwrap(), b.join().unwrap())
    });
    // Ten requests alternating between the proxies: one bucket of 4 for
    // this client across the fleet, where per-proxy buckets would let 8
    // through.
    let mut codes = Vec::new();
    for i in 0..10 {
        let r = get(if i % 2 == 0 { &p1 } else { &p2 }, "/site/x.txt");
        let code = r.status().as_u16();
        if code == 429 {
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=5).contains(&wait), "Retry-After {wait}");
            assert!(r.text().unwrap().contains("<Code>SlowDown</Code>"));
        }
        codes.push(code);
    }
    let ok = codes.iter().filter(|&&c| c == 200).count();
    assert!((4..=5).contains(&ok), "{codes:?}");
    assert!(codes.iter().all(|&c| c == 200 || c == 429), "{codes:?}");

    // Redis gone: each proxy limits on its own instead; nothing fails and
    // the limit does not vanish.
    redis.kill();
    let codes: Vec<u16> = (0..12)
        .map(|_| get(&p1, "/site/x.txt").status().as_u16())
        .collect();
    assert!(codes.iter().all(|&c| c == 200 || c == 429), "{codes:?}");
    assert!(
        codes.contains(&429),
        "still limited without Redis: {codes:?}"
    );
    assert!(p1.metric("tandem_redis_errors_total", &["op=\"ratelimit\""]) >= 1.0);
}

#[test]
fn the_redis_password_comes_from_the_environment_and_never_shows() {
    const PASSWORD: &str = "redis-pass-9d2e71f0";
    let (w, redis) = std::thread::scope(|s| {
        let r = s.spawn(|| Redis::start_with_password(PASSWORD));
        (Seaweed::start(), r.join().unwrap())
    });
    w.bucket("site");
    w.put("site", "a.txt", b"a".to_vec());
    let section = format!(
        "  urls: [\"{}\"]\n  password_env: REDIS_PASSWORD\n  timeout: 200ms\n",
        redis.url()
    );
    let cfg = config(&w, &section, "");
    let good = Proxy::start_env(
        &cfg,
        &[("PURGE_TOKEN", PURGE_TOKEN), ("REDIS_PASSWORD", PASSWORD)],
    );
    let wrong = Proxy::start_env(
        &cfg,
        &[
            ("PURGE_TOKEN", PURGE_TOKEN),
            ("REDIS_PASSWORD", "not-the-password"),
        ],
    );
    assert_eq!(get(&good, "/site/a.txt").status(), 200);
    poll("the authenticated write", Duration::from_secs(5), || {
        (good.metric("tandem_redis_writes_total", &[]) >= 1.0).then_some(())
    });
    assert_eq!(redis.dbsize(), 1);
    // A refused AUTH marks the tier down; the object is still served.
    let r = get(&wrong, "/site/a.txt");
    assert_eq!((r.status().as_u16(), r.text().unwrap()), (200, "a".into()));
    wait_redis_up(&wrong, false, "tandem_redis_up 0 with a wrong password");
    assert_eq!(get(&wrong, "/site/a.txt").status(), 200);

    // An unset variable refuses the config at start, naming it.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tandem-proxy"))
        .arg("--config")
        .arg(&good.config)
        .env_remove("REDIS_PASSWORD")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("redis.password_env: environment variable REDIS_PASSWORD is not set"),
        "{err}"
    );

    for p in [&good, &wrong] {
        let everything = format!("{}{}{}", p.log(), p.metrics(), p.status());
        for secret in [PASSWORD, PURGE_TOKEN, SECRET] {
            assert!(!everything.contains(secret), "{secret} leaked");
        }
    }
}

#[test]
fn rediss_with_a_private_ca_shares_hits_and_an_untrusted_server_is_skipped() {
    let (w, mut redis) = std::thread::scope(|s| {
        let r = s.spawn(Redis::start_tls);
        (Seaweed::start(), r.join().unwrap())
    });
    w.bucket("site");
    w.put("site", "a.txt", b"over tls".to_vec());
    w.put("site", "b.txt", b"after rotation".to_vec());
    let ca = redis.tls.as_ref().unwrap().1.display().to_string();
    let url = redis.tls_url();
    let section = |ca: Option<&str>| {
        let ca = ca.map_or(String::new(), |f| format!("  tls_ca_file: {f}\n"));
        format!("  urls: [\"{url}\"]\n{ca}  timeout: 500ms\n")
    };
    let trusted = config(&w, &section(Some(&ca)), "");
    let (p1, p2) = std::thread::scope(|s| {
        let a = s.spawn(|| start(&trusted));
        let b = s.spawn(|| start(&trusted));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(get(&p1, "/site/a.txt").headers()["x-tandem-cache"], "MISS");
    poll("the write over TLS", Duration::from_secs(5), || {
        (p1.metric("tandem_redis_writes_total", &[]) >= 1.0).then_some(())
    });
    // Read back through the plain port: the TLS write really landed.
    assert_eq!(redis.dbsize(), 1);
    let r = get(&p2, "/site/a.txt");
    assert_eq!(r.headers()["x-tandem-cache"], "HIT-REDIS");
    assert_eq!(r.text().unwrap(), "over tls");
    assert_eq!(p2.metric("tandem_redis_up", &[]), 1.0);

    // The CA is rotated in place and Redis restarts with a certificate from
    // the new one. SIGHUP makes p2 read the file again, although the config
    // document is unchanged; p1, not told, no longer trusts the server.
    redis.rotate_tls();
    signal(p2.pid(), "HUP");
    poll(
        "p2 reloading the rotated CA",
        Duration::from_secs(10),
        || (p2.metric("tandem_config_reloads_total", &["result=\"ok\""]) >= 1.0).then_some(()),
    );
    assert_eq!(get(&p2, "/site/b.txt").text().unwrap(), "after rotation");
    poll("a write under the new CA", Duration::from_secs(5), || {
        (redis.dbsize() == 1).then_some(())
    });
    assert_eq!(get(&p1, "/site/b.txt").status(), 200);
    wait_redis_up(&p1, false, "p1 refusing the new certificate");

    // The same server checked against the Mozilla roots is not trusted:
    // the tier goes down and requests are still served from the origin.
    let untrusted = start(&config(&w, &section(None), ""));
    let r = get(&untrusted, "/site/a.txt");
    assert_eq!(
        (r.status().as_u16(), r.text().unwrap()),
        (200, "over tls".into())
    );
    wait_redis_up(
        &untrusted,
        false,
        "tandem_redis_up 0 with an untrusted certificate",
    );
    assert_eq!(untrusted.metric("tandem_redis_hits_total", &[]), 0.0);

    // A CA file that is missing, or holds no certificate, refuses the
    // config and names the field.
    let not_pem = redis.dir.path().join("not-a-cert.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    for (file, why) in [
        (
            "/nonexistent/ca.pem".to_string(),
            "reading /nonexistent/ca.pem",
        ),
        (not_pem.display().to_string(), "holds no PEM certificate"),
    ] {
        let path = redis.dir.path().join("bad.yaml");
        let listen = format!(
            "listen:\n  data: 127.0.0.1:{}\n  admin: 127.0.0.1:{}\n",
            free_port(),
            free_port()
        );
        std::fs::write(&path, config(&w, &section(Some(&file)), &listen)).unwrap();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_tandem-proxy"))
            .arg("--config")
            .arg(&path)
            .env("PURGE_TOKEN", PURGE_TOKEN)
            .env("T_KEY", KEY)
            .env("T_SECRET", SECRET)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{file}: started anyway");
        assert!(
            err.contains("redis.tls_ca_file") && err.contains(why),
            "{err}"
        );
    }
}

/// One command to the Redis on `port` in raw RESP, so keys holding NUL
/// bytes (every cache key does) can be named; returns the reply.
fn resp(port: u16, args: &[&[u8]]) -> Reply {
    use std::io::{BufReader, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    s.write_all(&req).unwrap();
    read_reply(&mut BufReader::new(s))
}

#[derive(Debug)]
enum Reply {
    Simple,
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

fn read_reply(r: &mut impl std::io::BufRead) -> Reply {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let (kind, rest) = line.trim_end().split_at(1);
    match kind {
        "+" => Reply::Simple,
        "-" => panic!("Redis refused: {rest}"),
        ":" => Reply::Int(rest.parse().unwrap()),
        "$" => {
            let n: i64 = rest.parse().unwrap();
            if n < 0 {
                return Reply::Bulk(None);
            }
            let mut b = vec![0; n as usize + 2];
            r.read_exact(&mut b).unwrap();
            b.truncate(n as usize);
            Reply::Bulk(Some(b))
        }
        "*" => Reply::Array(
            (0..rest.parse::<usize>().unwrap())
                .map(|_| read_reply(r))
                .collect(),
        ),
        _ => panic!("not RESP: {line:?}"),
    }
}

/// The Redis key holding the shared copy of `name`.
fn object_key(port: u16, name: &str) -> Vec<u8> {
    let Reply::Array(keys) = resp(port, &[b"KEYS", b"tandem:o1:*"]) else {
        panic!("KEYS")
    };
    let needle = format!("\0{name}");
    keys.into_iter()
        .filter_map(|k| match k {
            Reply::Bulk(Some(k)) => Some(k),
            _ => None,
        })
        .find(|k| k.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .unwrap_or_else(|| panic!("no Redis key for {name}"))
}

#[test]
fn a_tampered_copy_or_a_forged_purge_is_ignored_when_the_fleet_signs() {
    const FLEET_KEY: &str = "fleet-key-5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5";
    let (w, redis) = std::thread::scope(|s| {
        let r = s.spawn(Redis::start);
        (Seaweed::start(), r.join().unwrap())
    });
    w.bucket("site");
    for name in ["a", "b", "c", "d"] {
        w.put_with(
            "site",
            &format!("{name}.html"),
            format!("<p>{name}</p>").into_bytes(),
            |r| r.content_type("text/html"),
        );
    }
    let section = format!(
        "  urls: [\"{}\"]\n  timeout: 200ms\n  signing_key_env: FLEET_KEY\n",
        redis.url()
    );
    let cfg = config(&w, &section, "");
    let env = [("PURGE_TOKEN", PURGE_TOKEN), ("FLEET_KEY", FLEET_KEY)];
    let (p1, p2) = std::thread::scope(|s| {
        let a = s.spawn(|| Proxy::start_env(&cfg, &env));
        let b = s.spawn(|| Proxy::start_env(&cfg, &env));
        (a.join().unwrap(), b.join().unwrap())
    });
    for name in ["a", "b", "c", "d"] {
        assert_eq!(get(&p1, &format!("/site/{name}.html")).status(), 200);
    }
    poll("four signed writes", Duration::from_secs(5), || {
        (p1.metric("tandem_redis_writes_total", &[]) >= 4.0).then_some(())
    });
    let status = p2.status();
    assert_eq!(
        (
            &status["redis"]["signed"],
            &status["redis"]["password"],
            &status["redis"]["tls"]
        ),
        (&json(true), &json(false), &json(false)),
        "{status}"
    );
    assert!(
        p2.log().contains("neither a password nor TLS"),
        "a Redis anyone on the network can write is warned about:\n{}",
        p2.log()
    );

    // A signed copy nobody touched is shared.
    let r = get(&p2, "/site/a.html");
    assert_eq!(r.headers()["x-tandem-cache"], "HIT-REDIS");
    assert_eq!(r.text().unwrap(), "<p>a</p>");

    let rejected = |what: &str, why: &str| {
        p2.metric(
            "tandem_redis_rejected_total",
            &[&format!("what=\"{what}\""), &format!("reason=\"{why}\"")],
        )
    };
    let origin_gets = w.gets("site");
    // 1. One byte of the body changed in place.
    let kb = object_key(redis.port, "b.html");
    let Reply::Int(len) = resp(redis.port, &[b"STRLEN", &kb]) else {
        panic!("STRLEN")
    };
    let at = (len - 3).to_string();
    resp(redis.port, &[b"SETRANGE", &kb, at.as_bytes(), b"X"]);
    let r = get(&p2, "/site/b.html");
    assert_eq!(r.headers()["x-tandem-cache"], "MISS", "{:?}", r.headers());
    assert_eq!(r.text().unwrap(), "<p>b</p>");
    assert_eq!(rejected("value", "bad_signature"), 1.0);

    // 2. A genuine signed copy moved under another key: a's copy served
    // for c would be a body the fleet never stored for c.
    let (ka, kc) = (
        object_key(redis.port, "a.html"),
        object_key(redis.port, "c.html"),
    );
    resp(redis.port, &[b"COPY", &ka, &kc, b"REPLACE"]);
    let r = get(&p2, "/site/c.html");
    assert_eq!(r.headers()["x-tandem-cache"], "MISS", "{:?}", r.headers());
    assert_eq!(r.text().unwrap(), "<p>c</p>");
    assert_eq!(rejected("value", "bad_signature"), 2.0);

    // 3. An unsigned value, as an older proxy or a writer without the key
    // stores it.
    let kd = object_key(redis.port, "d.html");
    let mut forged = b"TDM1".to_vec();
    forged.extend_from_slice(&[0; 64]);
    resp(redis.port, &[b"SET", &kd, &forged]);
    let r = get(&p2, "/site/d.html");
    assert_eq!(r.headers()["x-tandem-cache"], "MISS", "{:?}", r.headers());
    assert_eq!(r.text().unwrap(), "<p>d</p>");
    assert_eq!(rejected("value", "unsigned"), 1.0);
    assert_eq!(w.gets("site"), origin_gets + 3, "each refusal fetched once");

    // 4. Forged purge notices do not empty anybody's memory.
    assert_eq!(get(&p2, "/site/a.html").headers()["x-tandem-cache"], "HIT");
    let generation = String::from_utf8_lossy(&ka["tandem:o1:".len()..])
        .split('\0')
        .next()
        .unwrap()
        .to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let unsigned =
        format!(r#"{{"generation":"{generation}","key":"a.html","prefix":false,"at":{now}}}"#);
    let badly_signed = format!(
        r#"{{"generation":"{generation}","key":"","prefix":true,"at":{now},"mac":"{}"}}"#,
        "ab".repeat(32)
    );
    for n in [&unsigned, &badly_signed] {
        resp(redis.port, &[b"PUBLISH", b"tandem:purge", n.as_bytes()]);
    }
    poll("both forged notices seen", Duration::from_secs(5), || {
        (rejected("notice", "unsigned") == 1.0 && rejected("notice", "bad_signature") == 1.0)
            .then_some(())
    });
    assert_eq!(get(&p2, "/site/a.html").headers()["x-tandem-cache"], "HIT");

    // The fleet's own purge is still heard.
    let (code, body) = purge(&p1, "route=site&key=a.html");
    assert_eq!(
        (code, &body["fleet_notified"]),
        (200, &json(true)),
        "{body}"
    );
    poll(
        "the signed notice at the second proxy",
        Duration::from_secs(5),
        || (p2.metric("tandem_redis_purge_notices_total", &[]) >= 1.0).then_some(()),
    );
    assert_eq!(get(&p2, "/site/a.html").headers()["x-tandem-cache"], "MISS");

    // A key too short to resist guessing is refused at start.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tandem-proxy"))
        .arg("--config")
        .arg(&p1.config)
        .env("PURGE_TOKEN", PURGE_TOKEN)
        .env("FLEET_KEY", "short")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("redis.signing_key_env: the key must be at least 32 bytes"),
        "{err}"
    );
}

fn json(v: impl Into<serde_json::Value>) -> serde_json::Value {
    v.into()
}

#[test]
fn rolling_the_signing_key_keeps_the_shared_copies() {
    const OLD: &str = "old-fleet-key-0123456789abcdef0123456789ab";
    const NEW: &str = "new-fleet-key-fedcba9876543210fedcba987654";
    let (w, redis) = std::thread::scope(|s| {
        let r = s.spawn(Redis::start);
        (Seaweed::start(), r.join().unwrap())
    });
    w.bucket("site");
    w.put("site", "x.txt", b"written under the old key".to_vec());
    let section = |prev: &str| {
        format!(
            "  urls: [\"{}\"]\n  timeout: 200ms\n  signing_key_env: FLEET_KEY\n{prev}",
            redis.url()
        )
    };
    let before = Proxy::start_env(
        &config(&w, &section(""), ""),
        &[("PURGE_TOKEN", PURGE_TOKEN), ("FLEET_KEY", OLD)],
    );
    assert_eq!(get(&before, "/site/x.txt").status(), 200);
    poll(
        "the write under the old key",
        Duration::from_secs(5),
        || (before.metric("tandem_redis_writes_total", &[]) >= 1.0).then_some(()),
    );
    // The rollout: the new key signs, the old one is still believed.
    let after = Proxy::start_env(
        &config(
            &w,
            &section("  previous_signing_key_env: FLEET_KEY_PREVIOUS\n"),
            "",
        ),
        &[
            ("PURGE_TOKEN", PURGE_TOKEN),
            ("FLEET_KEY", NEW),
            ("FLEET_KEY_PREVIOUS", OLD),
        ],
    );
    let gets = w.gets("site");
    let r = get(&after, "/site/x.txt");
    assert_eq!(
        r.headers()["x-tandem-cache"],
        "HIT-REDIS",
        "{:?}",
        r.headers()
    );
    assert_eq!(r.text().unwrap(), "written under the old key");
    assert_eq!(
        w.gets("site"),
        gets,
        "no origin GET: the shared copy survived the new key"
    );
    assert_eq!(after.metric("tandem_redis_rejected_total", &[]), 0.0);
}

/// A value in the unsigned (TDM1) format, as anyone who can write to the
/// fleet's Redis could forge it.
fn forged_unsigned(ttl: Duration, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let put = |v: &mut Vec<u8>, b: &[u8]| {
        v.extend_from_slice(&(b.len() as u32).to_be_bytes());
        v.extend_from_slice(b);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut v = b"TDM1".to_vec();
    v.extend_from_slice(&now.to_be_bytes());
    v.extend_from_slice(&(ttl.as_millis() as u64).to_be_bytes());
    v.extend_from_slice(&(ttl.as_millis() as u64).to_be_bytes());
    put(&mut v, b"a");
    v.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (k, val) in headers {
        put(&mut v, k.as_bytes());
        put(&mut v, val.as_bytes());
    }
    v.extend_from_slice(body);
    v
}

#[test]
fn without_a_key_a_forged_value_cannot_set_headers_or_outlive_the_route() {
    let (w, redis) = std::thread::scope(|s| {
        let r = s.spawn(Redis::start);
        (Seaweed::start(), r.join().unwrap())
    });
    w.bucket("site");
    w.put("site", "page.html", b"<p>origin</p>".to_vec());
    let cfg = config(&w, &single(&redis, "256KiB"), "cache:\n  ttl: 1s\n");
    let (p1, p2) = std::thread::scope(|s| {
        let a = s.spawn(|| start(&cfg));
        let b = s.spawn(|| start(&cfg));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(get(&p1, "/site/page.html").status(), 200);
    poll("the write to Redis", Duration::from_secs(5), || {
        (p1.metric("tandem_redis_writes_total", &[]) >= 1.0).then_some(())
    });
    // Someone with write access replaces the value: a cookie, a header
    // no origin answer carries, and ten years of freshness.
    let key = object_key(redis.port, "page.html");
    let forged = forged_unsigned(
        Duration::from_secs(10 * 365 * 86400),
        &[
            ("content-type", "text/html"),
            ("set-cookie", "session=stolen"),
            (
                "x-amz-server-side-encryption-aws-kms-key-id",
                "arn:aws:kms:eu-west-1:123456789012:key/x",
            ),
        ],
        b"<p>forged</p>",
    );
    resp(redis.port, &[b"SET", &key, &forged]);
    let r = get(&p2, "/site/page.html");
    assert_eq!(r.headers()["x-tandem-cache"], "HIT-REDIS");
    assert!(r.headers().get("set-cookie").is_none(), "{:?}", r.headers());
    assert!(r
        .headers()
        .get("x-amz-server-side-encryption-aws-kms-key-id")
        .is_none());
    assert_eq!(r.headers()["content-type"], "text/html");
    // Fresh for the route's 1 s, not ten years: then the origin again.
    std::thread::sleep(Duration::from_millis(1500));
    let gets = w.gets("site");
    let r = get(&p2, "/site/page.html");
    assert_ne!(
        r.headers()["x-tandem-cache"],
        "HIT-REDIS",
        "{:?}",
        r.headers()
    );
    assert_ne!(r.headers()["x-tandem-cache"], "HIT", "{:?}", r.headers());
    assert_eq!(r.text().unwrap(), "<p>origin</p>");
    assert!(w.gets("site") > gets, "the origin was asked again");
}
