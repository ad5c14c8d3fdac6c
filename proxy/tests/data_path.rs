//! The data path against a real, signature-checking SeaweedFS: routing,
//! ranges, preconditions, HEAD, 404 pass-through, metadata identical on
//! hits and misses, versionId, caching and coalescing counted at the
//! origin, and S3-style errors for bad requests.

mod common;

use std::time::Duration;

use common::*;
use reqwest::blocking::Client;
use reqwest::header::HeaderMap;

struct Fixture {
    w: Seaweed,
    p: Proxy,
    http: Client,
}

fn fixture() -> Fixture {
    let w = Seaweed::start();
    w.bucket("assets");
    w.bucket("logs");
    let cfg = format!(
        "cache:\n  max_bytes: 64MiB\n  max_object_bytes: 4MiB\n  ttl: 1h\nbuckets:\n  - name: assets\n    path_prefix: /assets/\n    replicas:\n{}  - name: logs\n    path_prefix: /assets/logs/\n    replicas:\n{}",
        replica("sw", &w, "assets", 1, "2s"),
        replica("sw", &w, "logs", 1, "2s"),
    );
    let p = Proxy::start(&cfg);
    Fixture {
        w,
        p,
        http: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    }
}

fn get(f: &Fixture, path: &str, headers: &[(&str, &str)]) -> reqwest::blocking::Response {
    let mut r = f.http.get(format!("{}{path}", f.p.data));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().unwrap()
}

/// Object headers a client can observe, minus per-response ones.
fn object_view(h: &HeaderMap) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = h
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "date"
                    | "age"
                    | "x-amz-request-id"
                    | "x-request-id"
                    | "x-tandem-cache"
                    | "connection"
            )
        })
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn routing_ranges_preconditions_head_and_errors() {
    let f = fixture();
    let body = bytes(100_000, 1);
    f.w.put("assets", "css/site.css", body.clone());
    f.w.put("logs", "today.log", b"log line\n".to_vec());
    f.w.put("assets", "logs/today.log", b"wrong bucket\n".to_vec());

    // Longest prefix wins: /assets/logs/ is the logs bucket.
    let r = get(&f, "/assets/logs/today.log", &[]);
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "log line\n");

    let miss = get(&f, "/assets/css/site.css", &[]);
    assert_eq!(miss.status(), 200);
    assert_eq!(miss.headers()["x-tandem-cache"], "MISS");
    let etag = miss.headers()["etag"].to_str().unwrap().to_string();
    let lm = miss.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "ETag stays quoted: {etag}"
    );
    assert_eq!(miss.bytes().unwrap().as_ref(), &body[..]);

    // Every range form, served from the cached whole object.
    for (range, start, end) in [
        ("bytes=0-9", 0, 9),
        ("bytes=99990-", 99_990, 99_999),
        ("bytes=-5", 99_995, 99_999),
        ("bytes=50-200000", 50, 99_999),
    ] {
        let r = get(&f, "/assets/css/site.css", &[("range", range)]);
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {start}-{end}/100000"),
            "{range}"
        );
        assert_eq!(r.headers()["x-tandem-cache"], "HIT");
        assert_eq!(r.bytes().unwrap().as_ref(), &body[start..=end], "{range}");
    }
    let r = get(&f, "/assets/css/site.css", &[("range", "bytes=100000-")]);
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */100000");
    assert!(r.text().unwrap().contains("<Code>InvalidRange</Code>"));

    // Preconditions: the standard quoted ETag gets 304, as does IMS.
    assert_eq!(
        get(&f, "/assets/css/site.css", &[("if-none-match", &etag)]).status(),
        304
    );
    assert_eq!(
        get(&f, "/assets/css/site.css", &[("if-modified-since", &lm)]).status(),
        304
    );
    assert_eq!(
        get(
            &f,
            "/assets/css/site.css",
            &[("if-none-match", "\"other\"")]
        )
        .status(),
        200
    );
    let r = get(&f, "/assets/css/site.css", &[("if-match", "\"other\"")]);
    assert_eq!(r.status(), 412);
    assert!(r
        .text()
        .unwrap()
        .contains("<Code>PreconditionFailed</Code>"));
    assert_eq!(
        get(&f, "/assets/css/site.css", &[("if-match", &etag)]).status(),
        200
    );

    // The same preconditions and ranges on a miss that passes through.
    f.w.put("assets", "fresh.bin", body.clone());
    let r = get(&f, "/assets/fresh.bin", &[("range", "bytes=-5")]);
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["x-tandem-cache"].to_str().unwrap()
        ),
        (206, "MISS")
    );
    assert_eq!(r.bytes().unwrap().as_ref(), &body[99_995..]);
    f.w.put("assets", "fresh2.bin", body.clone());
    assert_eq!(
        get(&f, "/assets/fresh2.bin", &[("if-none-match", &etag)]).status(),
        304
    );

    // HEAD on a miss and on a hit: headers, no body.
    f.w.put("assets", "head.bin", bytes(1234, 2));
    for want in ["MISS", "MISS", "HIT"] {
        if want == "HIT" {
            get(&f, "/assets/head.bin", &[]).bytes().unwrap();
        }
        let r = f
            .http
            .head(format!("{}/assets/head.bin", f.p.data))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-length"], "1234");
        assert_eq!(r.headers()["x-tandem-cache"], want);
        assert!(r.bytes().unwrap().is_empty());
    }

    // A 404 from a healthy replica is an answer, in S3's own XML.
    let r = get(&f, "/assets/missing.txt", &[]);
    assert_eq!(r.status(), 404);
    assert!(r.text().unwrap().contains("<Code>NoSuchKey</Code>"));
    assert_eq!(f.p.metric("tandem_failovers_total", &[]), 0.0);

    // Requests the proxy refuses, each with an S3 error naming the reason.
    for (path, status, code) in [
        ("/nothing/here", 404, "NoSuchBucket"),
        ("/assets/a/%2e%2e/secret", 400, "InvalidURI"),
        ("/assets/a%252e%252e/b", 400, "InvalidURI"),
        ("/assets/x?acl", 501, "NotImplemented"),
    ] {
        let (got, text) = raw_get(&f.p.data, path);
        assert_eq!(got, status, "{path}: {text}");
        assert!(
            text.contains(&format!("<Code>{code}</Code>")),
            "{path}: {text}"
        );
    }
    let r = f
        .http
        .put(format!("{}/assets/x", f.p.data))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = get(&f, "/assets/x", &[("x-big", &"a".repeat(20_000))]);
    assert_eq!(
        r.status(),
        431,
        "request headers over limits.max_header_bytes"
    );
}

#[test]
fn metadata_is_identical_on_hits_and_misses() {
    let f = fixture();
    f.w.put_with("assets", "report.pdf", bytes(5000, 3), |r| {
        r.content_type("application/pdf")
            .content_disposition("attachment; filename=\"report.pdf\"")
            .cache_control("max-age=60")
            .metadata("owner", "finance")
            .metadata("build", "42")
    });
    let miss = get(&f, "/assets/report.pdf", &[]);
    assert_eq!(miss.headers()["x-tandem-cache"], "MISS");
    let hit = get(&f, "/assets/report.pdf", &[]);
    assert_eq!(hit.headers()["x-tandem-cache"], "HIT");
    let (mv, hv) = (object_view(miss.headers()), object_view(hit.headers()));
    assert_eq!(mv, hv);
    for (k, v) in [
        ("content-type", "application/pdf"),
        ("content-disposition", "attachment; filename=\"report.pdf\""),
        ("x-amz-meta-owner", "finance"),
        ("x-amz-meta-build", "42"),
        ("accept-ranges", "bytes"),
        ("content-length", "5000"),
        ("cache-control", "max-age=60"),
    ] {
        assert!(
            hv.contains(&(k.to_string(), v.to_string())),
            "{k}: {v} missing from {hv:?}"
        );
    }
    assert!(hv.iter().any(|(k, v)| k == "etag" && v.starts_with('"')));
    assert!(hv.iter().any(|(k, _)| k == "last-modified"));
    assert_eq!(miss.bytes().unwrap(), hit.bytes().unwrap());
}

#[test]
fn version_ids_are_never_served_from_the_current_version() {
    let f = fixture();
    let c = f.w.client();
    block_on(
        c.put_bucket_versioning()
            .bucket("assets")
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send(),
    )
    .unwrap();
    let v1 =
        f.w.put("assets", "app.js", b"version one".to_vec())
            .expect("version id");
    f.w.put("assets", "app.js", b"version two".to_vec())
        .expect("version id");
    // Cache the current version first, then ask for the old one.
    assert_eq!(
        get(&f, "/assets/app.js", &[]).text().unwrap(),
        "version two"
    );
    assert_eq!(
        get(&f, "/assets/app.js", &[]).headers()["x-tandem-cache"],
        "HIT"
    );
    let old = get(&f, &format!("/assets/app.js?versionId={v1}"), &[]);
    assert_eq!(old.headers()["x-tandem-cache"], "MISS");
    assert_eq!(old.text().unwrap(), "version one");
    let old = get(&f, &format!("/assets/app.js?versionId={v1}"), &[]);
    assert_eq!(old.headers()["x-tandem-cache"], "HIT");
    assert_eq!(old.text().unwrap(), "version one");
    assert_eq!(
        get(&f, "/assets/app.js", &[]).text().unwrap(),
        "version two"
    );
}

#[test]
fn hits_and_coalesced_misses_are_counted_at_the_origin() {
    let f = fixture();
    let body = bytes(2 << 20, 4);
    f.w.put("assets", "big.bin", body.clone());
    f.w.put("assets", "one.bin", b"one".to_vec());
    let before = f.w.gets("assets");
    get(&f, "/assets/one.bin", &[]).bytes().unwrap();
    for _ in 0..5 {
        let r = get(&f, "/assets/one.bin", &[]);
        assert_eq!(r.headers()["x-tandem-cache"], "HIT");
    }
    assert_eq!(
        f.w.gets("assets") - before,
        1,
        "one origin GET for six requests"
    );

    // 20 concurrent cold requests, mixing full, ranged, conditional and
    // HEAD: one origin fetch, and each gets the answer it asked for.
    let before = f.w.gets("assets");
    let etag = std::sync::Mutex::new(None::<String>);
    std::thread::scope(|s| {
        let mut hs = Vec::new();
        for i in 0..20 {
            let (f, body, etag) = (&f, &body, &etag);
            hs.push(s.spawn(move || match i % 4 {
                0 => {
                    let r = get(f, "/assets/big.bin", &[]);
                    assert_eq!(r.status(), 200);
                    *etag.lock().unwrap() = Some(r.headers()["etag"].to_str().unwrap().to_string());
                    assert_eq!(r.bytes().unwrap().as_ref(), &body[..]);
                }
                1 => {
                    let r = get(f, "/assets/big.bin", &[("range", "bytes=1000-1999")]);
                    assert_eq!(r.status(), 206);
                    assert_eq!(r.bytes().unwrap().as_ref(), &body[1000..2000]);
                }
                2 => {
                    let r = get(f, "/assets/big.bin", &[("if-none-match", "\"not-it\"")]);
                    assert_eq!(r.status(), 200);
                    assert_eq!(r.bytes().unwrap().len(), body.len());
                }
                _ => {
                    let r = f
                        .http
                        .head(format!("{}/assets/big.bin", f.p.data))
                        .send()
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    assert_eq!(
                        r.headers()["content-length"],
                        body.len().to_string().as_str()
                    );
                }
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
    });
    let origin_gets = f.w.gets("assets") - before;
    // Range and HEAD requests that arrive before the first full GET may
    // pass through on their own; full GETs never duplicate the fetch.
    let passthrough =
        f.p.metric("tandem_origin_requests_total", &["route=\"assets\""]) as u64;
    eprintln!("origin GETs for 20 concurrent cold requests: {origin_gets} (proxy origin requests in total: {passthrough})");
    assert!(origin_gets <= 1 + 10, "{origin_gets}");
    // How many overlapped depends on scheduling; what must hold is that
    // full GETs never fetched twice (checked exactly below) and that every
    // client got the answer it asked for (checked in each thread).

    // 20 concurrent cold full GETs: exactly one origin GET.
    f.w.put("assets", "cold.bin", body.clone());
    let before = f.w.gets("assets");
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    assert_eq!(
                        get(&f, "/assets/cold.bin", &[]).bytes().unwrap().len(),
                        body.len()
                    )
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    assert_eq!(
        f.w.gets("assets") - before,
        1,
        "20 cold requests, one origin GET"
    );
    let etag = etag.lock().unwrap().clone().unwrap();
    assert_eq!(
        get(&f, "/assets/big.bin", &[("if-none-match", &etag)]).status(),
        304
    );
}

#[test]
fn range_misses_fill_the_cache_only_for_objects_it_would_keep() {
    let f = fixture();
    let small = bytes(100_000, 21);
    let large = bytes(5 << 20, 22); // over max_object_bytes (4 MiB)
    f.w.put("assets", "small.bin", small.clone());
    f.w.put("assets", "large.bin", large.clone());

    // A small object: the first range passes through and fills the cache.
    let r = get(&f, "/assets/small.bin", &[("range", "bytes=0-9")]);
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["x-tandem-cache"].to_str().unwrap()
        ),
        (206, "MISS")
    );
    assert_eq!(r.bytes().unwrap().as_ref(), &small[..10]);
    poll("the background fill", Duration::from_secs(10), || {
        let r = get(&f, "/assets/small.bin", &[("range", "bytes=10-19")]);
        (r.headers()["x-tandem-cache"] == "HIT").then_some(())
    });

    // A large one: each range is one origin GET, never a whole-object fetch.
    let before = f.w.gets("assets");
    for i in 0..3u64 {
        let (a, b) = (i * 1000, i * 1000 + 999);
        let r = get(
            &f,
            "/assets/large.bin",
            &[("range", &format!("bytes={a}-{b}"))],
        );
        assert_eq!(r.status(), 206);
        assert_eq!(r.bytes().unwrap().as_ref(), &large[a as usize..=b as usize]);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(f.w.gets("assets") - before, 3, "one origin GET per range");
}
