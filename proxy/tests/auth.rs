//! JWT per bucket route against a real SeaweedFS: HS256 with claim rules,
//! ES256 with a PEM public key and with a JWKS, S3-style 401/403 bodies,
//! per-subject rate limits, and cached objects staying protected.

mod common;

use base64::Engine;
use std::time::Duration;

use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

const HS_SECRET: &str = "hs256-shared-secret-4b1d";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs(claims: serde_json::Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn get(p: &Proxy, path: &str, token: Option<&str>) -> reqwest::blocking::Response {
    let mut r = reqwest::blocking::Client::new().get(format!("{}{path}", p.data));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

#[test]
fn jwt_accepts_valid_tokens_and_refuses_the_rest_with_s3_errors() {
    let w = Seaweed::start();
    w.bucket("private");
    for k in ["acme/report.pdf", "globex/report.pdf"] {
        w.put("private", k, k.as_bytes().to_vec());
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("es256.pem");
    std::fs::write(&pem, key.public_key_pem()).unwrap();
    let raw = key.public_key_raw();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", "x": b64(&raw[1..33]), "y": b64(&raw[33..65])}]}).to_string(),
    )
    .unwrap();
    let es = |claims: serde_json::Value, kid: Option<&str>| {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = kid.map(Into::into);
        encode(
            &h,
            &claims,
            &EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let route = |name: &str, prefix: &str, auth: &str| {
        format!(
            "  - name: {name}\n    path_prefix: {prefix}\n    auth: {auth}\n    replicas:\n{}",
            replica("sw", &w, "private", 1, "2s")
        )
    };
    let p = Proxy::start_env(
        &format!(
            "  trusted_proxies: [127.0.0.1/32]\nlimits:\n  rate_limit: {{requests_per_second: 0.5, burst: 4, key: subject}}\nbuckets:\n{}{}{}",
            route(
                "tenants",
                "/t/",
                "{algorithm: HS256, secret_env: JWT_SECRET, issuer: https://id.example, audience: assets, claim_rules: [{claim: tenant, value: acme, prefix: acme/}]}"
            ),
            route("pem", "/p/", &format!("{{algorithm: ES256, public_key_file: {}}}", pem.display())),
            route("jwks", "/j/", &format!("{{algorithm: ES256, jwks_file: {}, audience: assets}}", jwks.display())),
        ),
        &[("JWT_SECRET", HS_SECRET)],
    );
    let claims = |extra: serde_json::Value| {
        let mut c = json!({"sub": "alice", "exp": now() + 300, "iss": "https://id.example", "aud": "assets", "tenant": "acme"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };

    let good = hs(claims(json!({})), HS_SECRET);
    let r = get(&p, "/t/acme/report.pdf", Some(&good));
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "acme/report.pdf");

    for (i, (token, why)) in [
        (None, "requires a bearer token"),
        (
            Some(hs(claims(json!({"exp": now() - 600})), HS_SECRET)),
            "expired",
        ),
        (
            Some(hs(claims(json!({"aud": "billing"})), HS_SECRET)),
            "wrong audience",
        ),
        (
            Some(hs(claims(json!({})), "not-the-secret")),
            "bad signature",
        ),
        (Some(es(claims(json!({})), None)), "unexpected algorithm"),
    ]
    .into_iter()
    .enumerate()
    {
        // Each from its own address: an address whose tokens keep failing
        // is throttled before its next signature check (tested below).
        let mut req = reqwest::blocking::Client::new()
            .get(format!("{}/t/acme/report.pdf", p.data))
            .header("X-Forwarded-For", format!("198.51.100.{}", 10 + i));
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let r = req.send().unwrap();
        assert_eq!(r.status(), 401, "{why}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let t = r.text().unwrap();
        assert!(
            t.contains("<Code>AccessDenied</Code>") && t.contains(why),
            "{why}: {t}"
        );
    }
    // The prefix rule: acme's token cannot read globex's objects.
    let r = get(&p, "/t/globex/report.pdf", Some(&good));
    assert_eq!(r.status(), 403);
    assert!(r.text().unwrap().contains("<Code>AccessDenied</Code>"));
    // A cached object stays protected.
    assert_eq!(
        get(&p, "/t/acme/report.pdf", Some(&good)).headers()["x-tandem-cache"],
        "HIT"
    );
    assert_eq!(get(&p, "/t/acme/report.pdf", None).status(), 401);

    // ES256 with a PEM key, and through a JWKS by kid.
    let es_good = es(json!({"sub": "bob", "exp": now() + 300}), Some("k1"));
    assert_eq!(get(&p, "/p/acme/report.pdf", Some(&es_good)).status(), 200);
    assert_eq!(get(&p, "/j/acme/report.pdf", Some(&es_good)).status(), 200);
    let wrong_kid = es(json!({"sub": "bob", "exp": now() + 300}), Some("k2"));
    assert_eq!(
        get(&p, "/j/acme/report.pdf", Some(&wrong_kid)).status(),
        401
    );

    // Rate limit by subject: alice has used her burst; carol has not.
    let carol = hs(claims(json!({"sub": "carol"})), HS_SECRET);
    let mut alice_codes = Vec::new();
    for _ in 0..3 {
        alice_codes.push(get(&p, "/t/acme/report.pdf", Some(&good)).status().as_u16());
    }
    assert!(alice_codes.contains(&429), "{alice_codes:?}");
    assert_eq!(get(&p, "/t/acme/report.pdf", Some(&carol)).status(), 200);

    let everything = format!("{}{}{}", p.log(), p.metrics(), p.status());
    assert!(!everything.contains(HS_SECRET) && !everything.contains(&good));
    assert!(p.metric("tandem_auth_refused_total", &["route=\"tenants\""]) >= 7.0);
}

#[test]
fn a_flood_of_bad_tokens_is_limited_before_any_signature_check() {
    let w = Seaweed::start();
    w.bucket("private");
    w.put("private", "k", b"k".to_vec());
    let p = Proxy::start_env(
        &format!(
            "  trusted_proxies: [127.0.0.1/32]\nlimits:\n  rate_limit: {{requests_per_second: 0.01, burst: 3, key: subject}}\nbuckets:\n  - name: private\n    path_prefix: /p/\n    auth: {{algorithm: HS256, secret_env: JWT_SECRET}}\n    replicas:\n{}",
            replica("sw", &w, "private", 1, "2s")
        ),
        &[("JWT_SECRET", HS_SECRET)],
    );
    let from = |addr: &str, token: &str| {
        reqwest::blocking::Client::new()
            .get(format!("{}/p/k", p.data))
            .header("X-Forwarded-For", addr)
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let forged = hs(
        json!({"sub": "mallory", "exp": now() + 600}),
        "not-the-secret",
    );
    let statuses: Vec<u16> = (0..10).map(|_| from("198.51.100.66", &forged)).collect();
    assert_eq!(statuses[..3], [401, 401, 401], "{statuses:?}");
    assert!(statuses[3..].iter().all(|&s| s == 429), "{statuses:?}");
    // Three signature checks, not ten.
    assert_eq!(p.metric("tandem_auth_refused_total", &[]), 3.0);
    // Another client with a good token is untouched.
    let good = hs(json!({"sub": "alice", "exp": now() + 600}), HS_SECRET);
    assert_eq!(from("198.51.100.7", &good), 200);
    // An authenticated answer is private: no CDN in front may share it.
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/p/k", p.data))
        .header("X-Forwarded-For", "198.51.100.8")
        .bearer_auth(&good)
        .send()
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "private");
}

#[test]
fn a_jwks_rotated_in_place_is_used_after_sighup_and_its_rules_hold() {
    let w = Seaweed::start();
    w.bucket("private");
    w.put("private", "doc.txt", b"doc".to_vec());
    let (old, new, other) = (
        EsKey::new("2026-10"),
        EsKey::new("2026-11"),
        EsKey::new("x"),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks(&[&old])).unwrap();
    let body = |auth: &str| {
        format!(
            "buckets:\n  - name: j\n    path_prefix: /j/\n    auth: {auth}\n    replicas:\n{}",
            replica("sw", &w, "private", 1, "2s")
        )
    };
    // An identity provider's JWKS without an audience is refused: a token
    // it issued for any other application would open this route.
    let p_cfg = dir.path().join("no-aud.yaml");
    std::fs::write(
        &p_cfg,
        format!(
            "listen:\n  data: 127.0.0.1:{}\n  admin: 127.0.0.1:{}\n{}",
            free_port(),
            free_port(),
            body(&format!(
                "{{algorithm: ES256, jwks_file: {}}}",
                file.display()
            ))
        ),
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tandem-proxy"))
        .args(["check", "--config"])
        .arg(&p_cfg)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("buckets[0].auth.audience"), "{out}");

    let p = Proxy::start(&body(&format!(
        "{{algorithm: ES256, jwks_file: {}, audience: assets}}",
        file.display()
    )));
    let url = format!("{}/j/doc.txt", p.data);
    assert_eq!(status_with_token(&url, &old.token("assets", true)), 200);
    assert_eq!(status_with_token(&url, &old.token("billing", true)), 401);
    assert_eq!(status_with_token(&url, &new.token("assets", true)), 401);

    // The identity provider publishes the next key beside the old one; the
    // file is replaced, the document is not. SIGHUP reads it again.
    replace_file(&file, &jwks(&[&old, &new]));
    signal(p.pid(), "HUP");
    poll(
        "the new key accepted after SIGHUP",
        Duration::from_secs(5),
        || (status_with_token(&url, &new.token("assets", true)) == 200).then_some(()),
    );
    assert_eq!(
        p.metric("tandem_config_reloads_total", &["result=\"ok\""]),
        1.0
    );
    // Two keys: a token must say which (trying each would accept a token
    // of any key and cost a check per key).
    let r = reqwest::blocking::Client::new()
        .get(&url)
        .bearer_auth(new.token("assets", false))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().unwrap().contains("no kid"));
    assert_eq!(status_with_token(&url, &other.token("assets", true)), 401);

    // The old key is retired: its tokens stop working at the next SIGHUP.
    replace_file(&file, &jwks(&[&new]));
    signal(p.pid(), "HUP");
    poll(
        "the old key refused after SIGHUP",
        Duration::from_secs(5),
        || (status_with_token(&url, &old.token("assets", true)) == 401).then_some(()),
    );
    assert_eq!(status_with_token(&url, &new.token("assets", true)), 200);
    // One key left: a token without a kid is checked against it.
    assert_eq!(status_with_token(&url, &new.token("assets", false)), 200);

    // A broken file refuses the reload and the running keys keep working.
    replace_file(&file, "{not json");
    signal(p.pid(), "HUP");
    poll("the refused reload", Duration::from_secs(5), || {
        (p.metric("tandem_config_reloads_total", &["result=\"invalid\""]) == 1.0).then_some(())
    });
    assert_eq!(status_with_token(&url, &new.token("assets", true)), 200);
}

/// An identity provider's JWKS endpoint on loopback: serves what it is
/// given per path, answers 503 when told to fail, and counts requests per
/// path. Stops with the test process.
struct Idp {
    port: u16,
    state: std::sync::Arc<std::sync::Mutex<IdpState>>,
}

#[derive(Default)]
struct IdpState {
    body: String,
    failing: bool,
    hits: std::collections::HashMap<String, usize>,
}

impl Idp {
    fn start(body: String) -> Idp {
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let state = std::sync::Arc::new(std::sync::Mutex::new(IdpState {
            body,
            ..IdpState::default()
        }));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                        break;
                    }
                }
                let (status, body) = {
                    let mut s = st.lock().unwrap();
                    *s.hits.entry(path).or_default() += 1;
                    if s.failing {
                        ("503 Service Unavailable", String::new())
                    } else {
                        ("200 OK", s.body.clone())
                    }
                };
                let _ = write!(
                    c,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Idp { port, state }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn publish(&self, body: String) {
        self.state.lock().unwrap().body = body;
    }

    fn fail(&self) {
        self.state.lock().unwrap().failing = true;
    }

    fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

#[test]
fn a_jwks_url_is_fetched_again_for_a_new_key_not_for_a_flood_and_kept_when_the_provider_fails() {
    let w = Seaweed::start();
    w.bucket("private");
    w.put("private", "doc.txt", b"doc".to_vec());
    let (k1, k2, made_up) = (EsKey::new("k1"), EsKey::new("k2"), EsKey::new("made-up"));
    let idp = Idp::start(jwks(&[&k1]));
    let proxy = |path: &str, refresh: &str| {
        Proxy::start(&format!(
            "buckets:\n  - name: j\n    path_prefix: /j/\n    auth: {{algorithm: ES256, jwks_url: \"{}\", jwks_refresh: {refresh}, audience: assets}}\n    replicas:\n{}",
            idp.url(path),
            replica("sw", &w, "private", 1, "2s")
        ))
    };
    // Refreshed hourly: only the start and early refreshes fetch.
    let p = proxy("/slow/jwks", "1h");
    let url = format!("{}/j/doc.txt", p.data);
    poll("the first fetch", Duration::from_secs(5), || {
        (status_with_token(&url, &k1.token("assets", true)) == 200).then_some(())
    });
    assert_eq!(idp.hits("/slow/jwks"), 1);
    assert_eq!(p.status()["routes"][0]["jwks"]["keys"], 1);

    // The provider publishes k2 and a client already has a token signed
    // with it: the unknown kid asks for the set again at once.
    idp.publish(jwks(&[&k1, &k2]));
    poll(
        "k2 accepted after an early fetch",
        Duration::from_secs(5),
        || (status_with_token(&url, &k2.token("assets", true)) == 200).then_some(()),
    );
    assert_eq!(idp.hits("/slow/jwks"), 2);

    // A flood of made-up kids is refused without a fetch each: early
    // fetches are at most one per 30 s.
    for _ in 0..30 {
        assert_eq!(status_with_token(&url, &made_up.token("assets", true)), 401);
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(idp.hits("/slow/jwks"), 2, "a fetch per made-up kid");

    // Refreshed every second, then the provider fails: the last good keys
    // keep serving, and /status says why the set is getting old.
    let q = proxy("/fast/jwks", "1s");
    let qurl = format!("{}/j/doc.txt", q.data);
    poll("the first fetch", Duration::from_secs(5), || {
        (status_with_token(&qurl, &k2.token("assets", true)) == 200).then_some(())
    });
    idp.fail();
    poll("a failed refresh", Duration::from_secs(5), || {
        (q.metric("tandem_jwks_fetches_total", &["result=\"error\""]) >= 1.0).then_some(())
    });
    assert_eq!(status_with_token(&qurl, &k1.token("assets", true)), 200);
    assert_eq!(status_with_token(&qurl, &k2.token("assets", true)), 200);
    let s = q.status();
    assert!(
        s["routes"][0]["jwks"]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("HTTP 503"),
        "{s}"
    );
    assert_eq!(s["routes"][0]["jwks"]["keys"], 2);
}
