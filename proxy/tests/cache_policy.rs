//! Part 2 behaviour against real SeaweedFS origins: revalidation of expired
//! copies, stale-if-error with every origin down, the purge API and its
//! token, ordered fallback on 404, and no secret in logs, metrics or
//! /status.

mod common;

use std::time::Duration;

use common::*;

const PURGE_TOKEN: &str = "purge-token-7f3a9c";

fn pair() -> (Seaweed, Seaweed) {
    std::thread::scope(|s| {
        let a = s.spawn(Seaweed::start);
        let b = s.spawn(Seaweed::start);
        (a.join().unwrap(), b.join().unwrap())
    })
}

fn get(p: &Proxy, path: &str) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .get(format!("{}{path}", p.data))
        .send()
        .unwrap()
}

#[test]
fn expired_copies_revalidate_and_serve_stale_when_every_origin_is_down() {
    let (mut a, mut b) = pair();
    for w in [&a, &b] {
        w.bucket("site");
        w.put("site", "page.html", b"<p>v1</p>".to_vec());
    }
    let p = Proxy::start(&format!(
        "cache:\n  ttl: 1s\n  stale_if_error: 1h\nbuckets:\n  - name: site\n    path_prefix: /site/\n    breaker: {{failure_threshold: 100}}\n    replicas:\n{}{}",
        replica("a", &a, "site", 1, "500ms"),
        replica("b", &b, "site", 2, "500ms"),
    ));
    assert_eq!(
        get(&p, "/site/page.html").headers()["x-tandem-cache"],
        "MISS"
    );
    assert_eq!(
        get(&p, "/site/page.html").headers()["x-tandem-cache"],
        "HIT"
    );
    std::thread::sleep(Duration::from_millis(1100));
    let before = a.gets("site");
    let r = get(&p, "/site/page.html");
    assert_eq!(r.headers()["x-tandem-cache"], "REVALIDATED");
    assert_eq!(r.text().unwrap(), "<p>v1</p>");
    assert_eq!(a.gets("site") - before, 1, "one conditional GET");
    assert_eq!(p.metric("tandem_cache_revalidated_total", &[]), 1.0);
    assert_eq!(
        get(&p, "/site/page.html").headers()["x-tandem-cache"],
        "HIT"
    );

    std::thread::sleep(Duration::from_millis(1100));
    a.kill();
    b.kill();
    let r = get(&p, "/site/page.html");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-tandem-cache"], "STALE");
    assert_eq!(r.headers()["warning"], "110 - \"Response is Stale\"");
    assert!(r.headers()["age"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(r.text().unwrap(), "<p>v1</p>");
    // A range of the stale copy too.
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/site/page.html", p.data))
        .header("range", "bytes=0-2")
        .send()
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().unwrap()),
        (206, "<p>".to_string())
    );
    // An object never cached still fails, naming the route (the replicas
    // and why they failed are in the log and /status, not for clients).
    let r = get(&p, "/site/other.html");
    assert_eq!(r.status(), 503);
    let t = r.text().unwrap();
    assert!(
        t.contains("route &quot;site&quot;") && !t.contains("a: "),
        "{t}"
    );
    assert!(p.metric("tandem_cache_stale_served_total", &[]) >= 2.0);
}

#[test]
fn without_stale_if_error_an_expired_copy_is_not_served() {
    let (mut a, _b) = pair();
    a.bucket("site");
    a.put("site", "page.html", b"<p>v1</p>".to_vec());
    let p = Proxy::start(&format!(
        "cache:\n  ttl: 1s\nbuckets:\n  - name: site\n    path_prefix: /site/\n    replicas:\n{}",
        replica("a", &a, "site", 1, "500ms"),
    ));
    get(&p, "/site/page.html");
    std::thread::sleep(Duration::from_millis(1100));
    a.kill();
    assert_eq!(get(&p, "/site/page.html").status(), 503);
}

#[test]
fn purge_needs_its_token_and_takes_keys_or_prefixes() {
    let (a, _b) = pair();
    a.bucket("site");
    for k in ["css/a.css", "css/b.css", "js/app.js"] {
        a.put("site", k, k.as_bytes().to_vec());
    }
    let p = Proxy::start_env(
        &format!(
            "admin:\n  purge_token_env: PURGE_TOKEN\nbuckets:\n  - name: site\n    path_prefix: /site/\n    replicas:\n{}",
            replica("a", &a, "site", 1, "2s"),
        ),
        &[("PURGE_TOKEN", PURGE_TOKEN)],
    );
    for k in ["css/a.css", "css/b.css", "js/app.js"] {
        get(&p, &format!("/site/{k}"));
        assert_eq!(
            get(&p, &format!("/site/{k}")).headers()["x-tandem-cache"],
            "HIT"
        );
    }
    let http = reqwest::blocking::Client::new();
    let purge = |q: &str, token: Option<&str>| {
        let mut r = http.post(format!("{}/purge?{q}", p.admin));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().unwrap()
    };
    assert_eq!(purge("route=site&key=js/app.js", None).status(), 401);
    assert_eq!(
        purge("route=site&key=js/app.js", Some("guess")).status(),
        401
    );
    assert_eq!(
        get(&p, "/site/js/app.js").headers()["x-tandem-cache"],
        "HIT"
    );
    let r = purge("route=site&key=js/app.js", Some(PURGE_TOKEN));
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().unwrap()["purged"], 1);
    assert_eq!(
        get(&p, "/site/js/app.js").headers()["x-tandem-cache"],
        "MISS"
    );
    let r = purge("route=site&prefix=css/", Some(PURGE_TOKEN));
    assert_eq!(r.json::<serde_json::Value>().unwrap()["purged"], 2);
    assert_eq!(
        get(&p, "/site/css/a.css").headers()["x-tandem-cache"],
        "MISS"
    );
    assert_eq!(purge("route=nope&key=x", Some(PURGE_TOKEN)).status(), 404);
    assert_eq!(purge("route=site", Some(PURGE_TOKEN)).status(), 400);
    // The data port never exposes purge.
    assert_eq!(
        http.post(format!("{}/purge?route=site&key=x", p.data))
            .bearer_auth(PURGE_TOKEN)
            .send()
            .unwrap()
            .status(),
        405
    );
    assert_eq!(
        p.metric("tandem_purge_requests_total", &["result=\"unauthorized\""]),
        2.0
    );

    // Secrets never show in logs, metrics or /status.
    let everything = format!("{}{}{}", p.log(), p.metrics(), p.status());
    for secret in [PURGE_TOKEN, SECRET] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}

#[test]
fn purge_is_refused_when_no_token_is_configured() {
    let (a, _b) = pair();
    a.bucket("site");
    let p = Proxy::start(&format!(
        "buckets:\n  - name: site\n    path_prefix: /site/\n    replicas:\n{}",
        replica("a", &a, "site", 1, "2s")
    ));
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/purge?route=site&key=x", p.admin))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[test]
fn fallback_on_404_is_opt_in_and_ordered() {
    let (a, b) = pair();
    a.bucket("new");
    b.bucket("old");
    b.put("old", "legacy.txt", b"from the old bucket".to_vec());
    let route = |name: &str, prefix: &str, fallback: bool| {
        format!(
            "  - name: {name}\n    path_prefix: {prefix}\n    fallback_on_404: {fallback}\n    replicas:\n{}{}",
            replica("new", &a, "new", 1, "2s"),
            replica("old", &b, "old", 2, "2s"),
        )
    };
    let p = Proxy::start(&format!(
        "buckets:\n{}{}",
        route("migrating", "/m/", true),
        route("strict", "/s/", false)
    ));
    let r = get(&p, "/m/legacy.txt");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-tandem-replica"], "old");
    assert_eq!(r.text().unwrap(), "from the old bucket");
    assert_eq!(
        get(&p, "/s/legacy.txt").status(),
        404,
        "without fallback a 404 is the answer"
    );
    let r = get(&p, "/m/nowhere.txt");
    assert_eq!(r.status(), 404);
    assert!(r.text().unwrap().contains("NoSuchKey"));
}

#[test]
fn a_burst_over_the_rate_limit_gets_429_with_retry_after() {
    let (a, _b) = pair();
    a.bucket("site");
    a.put("site", "x.txt", b"x".to_vec());
    let p = Proxy::start(&format!(
        "limits:\n  rate_limit: {{requests_per_second: 1, burst: 3, key: ip}}\nbuckets:\n  - name: site\n    path_prefix: /site/\n    replicas:\n{}",
        replica("a", &a, "site", 1, "2s")
    ));
    let codes: Vec<u16> = (0..6)
        .map(|_| get(&p, "/site/x.txt").status().as_u16())
        .collect();
    assert_eq!(&codes[..3], &[200, 200, 200], "{codes:?}");
    assert!(codes[3..].iter().all(|c| *c == 429), "{codes:?}");
    let r = get(&p, "/site/x.txt");
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(r.text().unwrap().contains("<Code>SlowDown</Code>"));
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        get(&p, "/site/x.txt").status(),
        200,
        "a token came back after a second"
    );
    assert!(p.metric("tandem_rate_limited_total", &[]) >= 4.0);
}
