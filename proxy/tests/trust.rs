//! What the proxy trusts and what clients see: replica-specific refusals
//! fail over, and client-facing errors never carry origin details. Real
//! SeaweedFS origins check every signature.

mod common;

use std::time::Duration;

use common::*;

fn pair() -> (Seaweed, Seaweed) {
    let (a, b) = (Seaweed::start(), Seaweed::start());
    for w in [&a, &b] {
        w.bucket("site");
        for k in ["k", "k1", "k2", "k3"] {
            w.put("site", k, b"hello".to_vec());
        }
    }
    (a, b)
}

/// A replica block whose secret is wrong: SeaweedFS answers 403
/// SignatureDoesNotMatch, as S3 does to expired or rotated credentials.
fn bad_creds(name: &str, w: &Seaweed, priority: u32) -> String {
    replica(name, w, "site", priority, "2s").replace("T_SECRET", "WRONG_SECRET")
}

fn route(replicas: &str) -> String {
    format!(
        "buckets:\n  - name: site\n    path_prefix: /site/\n    breaker: {{failure_threshold: 2, success_threshold: 1, open_timeout: 30s}}\n    replicas:\n{replicas}"
    )
}

#[test]
fn a_replica_refusing_its_credentials_fails_over_and_a_refusal_everywhere_is_the_answer() {
    let (a, b) = pair();
    let env = [("WRONG_SECRET", "not-the-secret")];
    let p = Proxy::start_env(
        &route(&format!(
            "{}{}",
            bad_creds("primary", &a, 1),
            replica("backup", &b, "site", 2, "2s")
        )),
        &env,
    );
    // Distinct keys, so no answer comes from the cache.
    for k in ["k1", "k2", "k3"] {
        let r = reqwest::blocking::get(format!("{}/site/{k}", p.data)).unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-tandem-replica"], "backup");
        assert_eq!(r.text().unwrap(), "hello");
    }
    // The refusals count against the replica's breaker.
    assert!(
        p.metric(
            "tandem_origin_requests_total",
            &["replica=\"primary\"", "refused"]
        ) >= 1.0
    );
    let status = p.status();
    let primary = &status["routes"][0]["replicas"][0];
    assert_eq!(primary["breaker"], "open", "{primary}");
    assert!(
        primary["last_failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("SignatureDoesNotMatch"),
        "{primary}"
    );

    // Every replica refusing alike: the refusal is the client's answer,
    // not a 503.
    let both = Proxy::start_env(
        &route(&format!(
            "{}{}",
            bad_creds("one", &a, 1),
            bad_creds("two", &b, 2)
        )),
        &env,
    );
    let r = reqwest::blocking::get(format!("{}/site/k", both.data)).unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().unwrap().contains("SignatureDoesNotMatch"));
}

#[test]
fn a_503_names_the_route_and_request_never_the_origins() {
    let (mut a, mut b) = pair();
    let p = Proxy::start(&route(&format!(
        "{}{}",
        replica("primary", &a, "site", 1, "500ms"),
        replica("backup", &b, "site", 2, "500ms")
    )));
    a.kill();
    b.kill();
    let r = reqwest::blocking::get(format!("{}/site/missing", p.data)).unwrap();
    assert_eq!(r.status(), 503);
    let id = r.headers()["x-amz-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body = r.text().unwrap();
    assert!(body.contains("<Code>ServiceUnavailable</Code>"), "{body}");
    assert!(body.contains("site") && body.contains(&id), "{body}");
    for secret in ["127.0.0.1", "refused", "connect", "primary:", "backup:"] {
        assert!(!body.contains(secret), "{secret:?} in {body}");
    }
    // The operator still finds out why: in /status and the log.
    poll("the failure in /status", Duration::from_secs(5), || {
        let s = p.status();
        let why = s["routes"][0]["replicas"][0]["last_failure"]["reason"]
            .as_str()?
            .to_string();
        why.contains("127.0.0.1").then_some(())
    });
    assert!(p.log().contains("replica failed"));
}

fn get_as(p: &Proxy, path: &str, forwarded_for: &str) -> u16 {
    reqwest::blocking::Client::new()
        .get(format!("{}{path}", p.data))
        .header("X-Forwarded-For", forwarded_for)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// A proxy limiting each client to a burst of 2; `listen` adds lines to
/// its listen block (the test harness writes the addresses first).
fn limited(listen: &str, w: &Seaweed) -> Proxy {
    Proxy::start(&format!(
        "{listen}limits:\n  rate_limit: {{requests_per_second: 0.01, burst: 2, key: ip}}\n{}",
        route(&replica("a", w, "site", 1, "2s"))
    ))
}

#[test]
fn clients_behind_a_trusted_proxy_get_their_own_limits_and_untrusted_forwarding_is_ignored() {
    let (a, _b) = pair();
    let p = limited("  trusted_proxies: [127.0.0.1/32]\n", &a);
    for _ in 0..2 {
        assert_eq!(get_as(&p, "/site/k", "198.51.100.1"), 200);
    }
    assert_eq!(get_as(&p, "/site/k", "198.51.100.1"), 429);
    assert_eq!(get_as(&p, "/site/k", "198.51.100.2"), 200, "another client");
    // A client cannot pose as another by prepending an address.
    assert_eq!(get_as(&p, "/site/k", "198.51.100.9, 198.51.100.1"), 429);
    // IPv6 clients share their /64.
    for _ in 0..2 {
        assert_eq!(get_as(&p, "/site/k", "2001:db8:1:2::1"), 200);
    }
    assert_eq!(get_as(&p, "/site/k", "2001:db8:1:2::9"), 429, "same /64");
    assert_eq!(get_as(&p, "/site/k", "2001:db8:1:3::1"), 200, "another /64");

    // Without trusted proxies the header is anyone's word: ignored.
    let q = limited("", &a);
    assert_eq!(get_as(&q, "/site/k", "198.51.100.1"), 200);
    assert_eq!(get_as(&q, "/site/k", "198.51.100.2"), 200);
    assert_eq!(
        get_as(&q, "/site/k", "198.51.100.3"),
        429,
        "one peer, one bucket"
    );
}

/// Sends `preface` then a GET on a fresh connection; the status, or None
/// when the proxy closed the connection without answering.
fn raw_status(p: &Proxy, preface: &[u8]) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(p.data.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(preface).unwrap();
    s.write_all(b"GET /site/k HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn proxy_v2(src: [u8; 4]) -> Vec<u8> {
    let mut v = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v.extend_from_slice(&[0x21, 0x11, 0, 12]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&[127, 0, 0, 1, 0x13, 0x88, 0x1f, 0x90]);
    v
}

#[test]
fn the_proxy_protocol_names_the_client_and_is_required_when_enabled() {
    let (a, _b) = pair();
    let p = limited("  proxy_protocol: true\n", &a);
    let v1 = |ip: &str| format!("PROXY TCP4 {ip} 127.0.0.1 5000 8080\r\n").into_bytes();
    for _ in 0..2 {
        assert_eq!(raw_status(&p, &v1("198.51.100.1")), Some(200));
    }
    assert_eq!(raw_status(&p, &v1("198.51.100.1")), Some(429));
    // The binary v2 header, from another client: its own bucket.
    assert_eq!(raw_status(&p, &proxy_v2([198, 51, 100, 2])), Some(200));
    // A connection without the header is refused, counted.
    assert_eq!(raw_status(&p, b""), None);
    assert_eq!(
        p.metric("tandem_connections_closed_total", &["proxy_protocol"]),
        1.0
    );
}

#[test]
fn cors_preflights_are_answered_here_and_hits_and_misses_carry_the_headers() {
    let w = Seaweed::start();
    w.bucket("site");
    w.put("site", "app.js", b"console.log(1)".to_vec());
    let p = Proxy::start(&format!(
        "buckets:\n  - name: site\n    path_prefix: /site/\n    cors: {{allowed_origins: [\"https://app.example.com\"], allowed_headers: [authorization], expose_headers: [ETag, x-amz-meta-owner]}}\n    replicas:\n{}",
        replica("a", &w, "site", 1, "2s")
    ));
    let http = reqwest::blocking::Client::new();
    let before = p.metric("tandem_origin_requests_total", &[]);
    let preflight = |origin: &str, headers: &str| {
        http.request(reqwest::Method::OPTIONS, format!("{}/site/app.js", p.data))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", headers)
            .send()
            .unwrap()
    };
    let ok = preflight("https://app.example.com", "authorization");
    assert_eq!(ok.status(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(
        ok.headers()["access-control-allow-headers"],
        "authorization"
    );
    assert!(ok.headers().contains_key("access-control-max-age"));
    let refused = preflight("https://evil.example", "authorization");
    assert_eq!(refused.status(), 403);
    assert!(refused
        .text()
        .unwrap()
        .contains("<Code>AccessForbidden</Code>"));
    assert_eq!(
        preflight("https://app.example.com", "x-secret").status(),
        403
    );
    // Preflights never reached a replica.
    assert_eq!(p.metric("tandem_origin_requests_total", &[]), before);
    for tag in ["MISS", "HIT"] {
        let r = http
            .get(format!("{}/site/app.js", p.data))
            .header("Origin", "https://app.example.com")
            .send()
            .unwrap();
        assert_eq!(r.headers()["x-tandem-cache"], tag);
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(
            r.headers()["access-control-expose-headers"],
            "ETag, x-amz-meta-owner"
        );
        assert_eq!(r.headers()["vary"], "Origin");
    }
    // Another origin reads no CORS grant, but the answer still varies on it.
    let r = http
        .get(format!("{}/site/app.js", p.data))
        .header("Origin", "https://evil.example")
        .send()
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    assert_eq!(r.headers()["vary"], "Origin");
}

#[test]
fn an_https_origin_with_a_private_ca_is_trusted_through_its_file_and_a_rotated_ca_after_sighup() {
    let w = Seaweed::start();
    w.bucket("site");
    for k in ["a.txt", "b.txt", "c.txt"] {
        w.put("site", k, k.as_bytes().to_vec());
    }
    let mut front = TlsFront::start(w.s3_port);
    let ca = front.ca_file();
    let with_ca = replica_at("minio", &front.endpoint(), "site", 1, "2s")
        + &format!("        tls_ca_file: {}\n", ca.display());
    let body = format!(
        "buckets:\n  - name: private\n    path_prefix: /p/\n    replicas:\n{with_ca}  - name: public\n    path_prefix: /q/\n    replicas:\n{}",
        replica_at("minio", &front.endpoint(), "site", 1, "2s")
    );
    let p = Proxy::start(&body);
    let get = |path: &str| {
        let r = reqwest::blocking::get(format!("{}{path}", p.data)).unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(get("/p/a.txt"), (200, "a.txt".into()));
    // The same origin without the CA file: the Mozilla roots do not know
    // the private CA, so the handshake fails and the route has no replica.
    assert_eq!(get("/q/a.txt").0, 503);
    assert!(
        p.status()["routes"].to_string().contains("UnknownIssuer"),
        "why goes to /status: {}",
        p.status()
    );

    // The origin's CA is rotated and the file replaced in place (its path,
    // and so the config, unchanged). Connections made with the old CA are
    // gone with the restart; SIGHUP reads the file again.
    front.rotate();
    signal(p.pid(), "HUP");
    poll(
        "a reload for the replaced CA file",
        Duration::from_secs(5),
        || (p.metric("tandem_config_reloads_total", &["result=\"ok\""]) == 1.0).then_some(()),
    );
    assert_eq!(get("/p/b.txt"), (200, "b.txt".into()));

    // A CA file that is not one refuses the reload, naming the field, and
    // the running config keeps serving.
    std::fs::write(&ca, "not a certificate").unwrap();
    signal(p.pid(), "HUP");
    poll("the refused reload", Duration::from_secs(5), || {
        (p.metric("tandem_config_reloads_total", &["result=\"invalid\""]) == 1.0).then_some(())
    });
    let last = p.status()["reloads"]["last_error"].to_string();
    assert!(
        last.contains("buckets[0].replicas[0].tls_ca_file"),
        "{last}"
    );
    assert_eq!(get("/p/c.txt"), (200, "c.txt".into()));
}

/// A client that trusts only the CA in `ca` (PEM file), on a new
/// connection every time.
fn tls_client(ca: &std::path::Path) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap())
        .tls_built_in_root_certs(false)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[test]
fn the_data_listener_serves_tls_and_a_renewed_certificate_after_sighup() {
    let w = Seaweed::start();
    w.bucket("site");
    w.put("site", "a.txt", b"over tls".to_vec());
    let certs = tempfile::tempdir().unwrap();
    let old_ca = std::fs::read(write_tls_files(certs.path())).unwrap();
    let old_ca_file = certs.path().join("old-ca.pem");
    std::fs::write(&old_ca_file, &old_ca).unwrap();
    let p = Proxy::start(&format!(
        "  tls_cert_file: {}\n  tls_key_file: {}\nbuckets:\n  - name: site\n    path_prefix: /site/\n    replicas:\n{}",
        certs.path().join("server.pem").display(),
        certs.path().join("server.key").display(),
        replica("sw", &w, "site", 1, "2s")
    ));
    let url = p.data.replace("http://", "https://") + "/site/a.txt";
    let r = tls_client(&old_ca_file).get(&url).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "over tls");
    // Plain HTTP on the TLS port is not served.
    assert!(reqwest::blocking::get(format!("{}/site/a.txt", p.data)).is_err());

    // The certificate is renewed (by a new CA, so the client can tell) and
    // the files replaced in place; SIGHUP serves it to new connections.
    let new_ca_file = write_tls_files(certs.path());
    signal(p.pid(), "HUP");
    poll("the renewed certificate", Duration::from_secs(5), || {
        tls_client(&new_ca_file)
            .get(&url)
            .send()
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    });
    assert!(
        tls_client(&old_ca_file).get(&url).send().is_err(),
        "a new connection gets the new certificate"
    );
    assert_eq!(
        p.metric("tandem_config_reloads_total", &["result=\"ok\""]),
        1.0
    );
    assert!(
        p.metric(
            "tandem_connections_closed_total",
            &["reason=\"tls_handshake\""]
        ) >= 1.0
    );
}

/// An h2 connection over TLS to `port`, trusting the CA in `ca`.
async fn h2_connect(
    port: u16,
    ca: &std::path::Path,
) -> Result<h2::client::SendRequest<bytes::Bytes>, h2::Error> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "h2 negotiated"
    );
    let (client, conn) = h2::client::handshake(tls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn h2_get(
    client: &mut h2::client::SendRequest<bytes::Bytes>,
    url: &str,
) -> Result<(u16, Vec<u8>), h2::Error> {
    let req = http::Request::get(url).body(()).unwrap();
    let (resp, _) = client.clone().ready().await?.send_request(req, true)?;
    let resp = resp.await?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    Ok((status, out))
}

#[test]
fn h2_over_tls_serves_many_streams_and_a_rapid_reset_flood_is_cut_off() {
    let w = Seaweed::start();
    w.bucket("site");
    w.put("site", "a.txt", b"over h2".to_vec());
    let certs = tempfile::tempdir().unwrap();
    let ca = write_tls_files(certs.path());
    let p = Proxy::start(&format!(
        "  tls_cert_file: {}\n  tls_key_file: {}\nlimits:\n  keepalive_timeout: 2s\nbuckets:\n  - name: site\n    path_prefix: /site/\n    replicas:\n{}",
        certs.path().join("server.pem").display(),
        certs.path().join("server.key").display(),
        replica("sw", &w, "site", 1, "2s")
    ));
    let port: u16 = p.data.rsplit(':').next().unwrap().parse().unwrap();
    let url = format!("https://127.0.0.1:{port}/site/a.txt");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // 300 requests at once on one connection: the client queues past
        // the server's stream cap, and every one is answered.
        let client = h2_connect(port, &ca).await.unwrap();
        let one = h2_get(&mut client.clone(), &url).await;
        assert!(matches!(&one, Ok((200, _))), "{one:?}\n{}", p.log());
        let mut tasks = Vec::new();
        for _ in 0..300 {
            let (mut c, u) = (client.clone(), url.clone());
            tasks.push(tokio::spawn(async move { h2_get(&mut c, &u).await }));
        }
        for t in tasks {
            let got = t.await.unwrap();
            assert!(
                matches!(&got, Ok((200, b)) if b == b"over h2"),
                "{got:?}\n{}",
                p.log()
            );
        }

        // Rapid Reset: open streams and cancel them at once, as fast as
        // possible. The server must end the connection, not serve (or
        // queue) them all.
        let mut flood = h2_connect(port, &ca).await.unwrap();
        let mut sent = 0;
        let mut cut_off = false;
        'flood: for _ in 0..100 {
            // A burst: the frames leave together when the task yields.
            for _ in 0..200 {
                let Ok(ready) = flood.clone().ready().await else {
                    cut_off = true;
                    break 'flood;
                };
                flood = ready;
                let req = http::Request::get(&url).body(()).unwrap();
                match flood.send_request(req, true) {
                    // Dropping both halves resets the stream (RST_STREAM).
                    Ok((resp, stream)) => drop((resp, stream)),
                    Err(_) => {
                        cut_off = true;
                        break 'flood;
                    }
                }
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if !cut_off {
            // The GOAWAY may still be on its way.
            cut_off = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    if flood.clone().ready().await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await
            .is_ok();
        }
        assert!(
            cut_off,
            "{sent} streams opened and reset without the connection being closed"
        );
        // Others are still served.
        let mut other = h2_connect(port, &ca).await.unwrap();
        assert_eq!(h2_get(&mut other, &url).await.unwrap().0, 200);
        // An idle h2 connection is closed by the keep-alive deadline.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            h2_get(&mut other, &url).await.is_err(),
            "an idle h2 connection outlived keepalive_timeout"
        );
    });
    assert!(
        p.metric(
            "tandem_connections_closed_total",
            &["reason=\"keepalive_timeout\""]
        ) >= 1.0
    );
    poll("no request left in flight", Duration::from_secs(10), || {
        (p.metric("tandem_in_flight_requests", &[]) == 0.0).then_some(())
    });
}
