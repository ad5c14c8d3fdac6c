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
