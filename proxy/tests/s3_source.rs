//! The proxy taking its config from the S3 object the provider publishes:
//! polled with If-None-Match, hot-swapped only when valid, reported in
//! /status and /health, and kept on local disk so a restart without S3
//! still serves.

mod common;

use std::time::Duration;

use common::*;
use tandem_fleet_config::{FleetConfig, Format};

fn doc(w: &Seaweed, (dp, ap): (u16, u16), ttl: &str) -> String {
    format!(
        "listen:\n  data: 127.0.0.1:{dp}\n  admin: 127.0.0.1:{ap}\ncache:\n  ttl: {ttl}\nsource:\n  url: s3://cfg/fleets/site.yaml\n  region: us-east-1\n  endpoint: {}\n  poll_interval: 1s\nbuckets:\n  - name: site\n    path_prefix: /site/\n    replicas:\n{}",
        w.endpoint(),
        replica("sw", w, "data", 1, "2s")
    )
}

/// Arguments that start the proxy from `s3://cfg/fleets/site.yaml` on
/// `w`, keeping its last good copy in `state`.
fn s3_args(w: &Seaweed, state: &std::path::Path) -> Vec<String> {
    [
        "--config",
        "s3://cfg/fleets/site.yaml",
        "--config-region",
        "us-east-1",
        "--config-endpoint",
        &w.endpoint(),
        "--state-dir",
        &state.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The credentials the proxy reads the config object with.
const S3_ENV: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", KEY),
    ("AWS_SECRET_ACCESS_KEY", SECRET),
];

fn version(text: &str) -> String {
    FleetConfig::parse(text, Format::Yaml)
        .unwrap()
        .config_version()
}

#[test]
fn polls_s3_swaps_valid_configs_and_survives_a_restart_without_s3() {
    let mut w = Seaweed::start();
    w.bucket("cfg");
    w.bucket("data");
    w.put("data", "index.html", b"hello".to_vec());
    let ports = (free_port(), free_port());
    let v1_doc = doc(&w, ports, "5m");
    w.put("cfg", "fleets/site.yaml", v1_doc.clone().into_bytes());
    let state = tempfile::tempdir().unwrap();
    let args = s3_args(&w, state.path());
    let env = S3_ENV;
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("unused");
    let p = Proxy::spawn(dir, cfg_path.clone(), ports, &args, &env);
    assert_eq!(p.status()["config_version"], version(&v1_doc).as_str());
    let health: serde_json::Value = reqwest::blocking::get(format!("{}/health", p.admin))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["config_version"], version(&v1_doc).as_str());
    assert_eq!(
        reqwest::blocking::get(format!("{}/site/index.html", p.data))
            .unwrap()
            .text()
            .unwrap(),
        "hello"
    );
    let pid = p.pid();

    // A new valid document is picked up without a restart.
    let v2_doc = doc(&w, ports, "10m");
    w.put("cfg", "fleets/site.yaml", v2_doc.clone().into_bytes());
    poll("the proxy to run v2", Duration::from_secs(10), || {
        (p.status()["config_version"] == version(&v2_doc).as_str()).then_some(())
    });
    assert_eq!(p.pid(), pid);

    // An invalid one is refused; v2 keeps serving.
    w.put(
        "cfg",
        "fleets/site.yaml",
        v2_doc
            .replace("path_prefix: /site/", "path_prefix: site")
            .into_bytes(),
    );
    poll("the refusal to be counted", Duration::from_secs(10), || {
        (p.metric("tandem_config_reloads_total", &["result=\"invalid\""]) >= 1.0).then_some(())
    });
    assert_eq!(p.status()["config_version"], version(&v2_doc).as_str());
    assert!(p.status()["reloads"]["last_error"]
        .as_str()
        .unwrap()
        .contains("buckets[0].path_prefix"));
    w.put("cfg", "fleets/site.yaml", v2_doc.clone().into_bytes());

    // With S3 gone: the running proxy keeps serving, and a restarted one
    // starts from the last good copy on disk.
    w.kill();
    poll(
        "a failed poll to be counted",
        Duration::from_secs(10),
        || {
            (p.metric("tandem_config_reloads_total", &["result=\"source_error\""]) >= 1.0)
                .then_some(())
        },
    );
    assert_eq!(p.status()["config_version"], version(&v2_doc).as_str());
    signal(p.pid(), "TERM");
    drop(p);
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::spawn(dir, cfg_path, ports, &args, &env);
    assert_eq!(p.status()["config_version"], version(&v2_doc).as_str());
    assert!(
        p.log().contains("serving the last good config from disk"),
        "{}",
        p.log()
    );
}

#[test]
fn sighup_fetches_the_document_again_and_rereads_the_key_files_it_names() {
    let w = Seaweed::start();
    w.bucket("cfg");
    w.bucket("data");
    w.put("data", "index.html", b"hello".to_vec());
    let (old, new) = (EsKey::new("k-old"), EsKey::new("k-new"));
    let files = tempfile::tempdir().unwrap();
    let jwks_file = files.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks(&[&old])).unwrap();
    let ports = (free_port(), free_port());
    // A long poll interval: only SIGHUP can explain a reload here.
    let text = doc(&w, ports, "5m")
        .replace("poll_interval: 1s", "poll_interval: 1h")
        .replace(
            "    replicas:",
            &format!(
                "    auth: {{algorithm: ES256, jwks_file: {}, audience: site}}\n    replicas:",
                jwks_file.display()
            ),
        );
    w.put("cfg", "fleets/site.yaml", text.into_bytes());
    let state = tempfile::tempdir().unwrap();
    let args = s3_args(&w, state.path());
    let env = S3_ENV;
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("unused");
    let p = Proxy::spawn(dir, cfg_path, ports, &args, &env);
    let url = format!("{}/site/index.html", p.data);
    assert_eq!(status_with_token(&url, &old.token("site", true)), 200);
    assert_eq!(status_with_token(&url, &new.token("site", true)), 401);

    // The key file changes; the document in S3 (and its ETag) does not.
    replace_file(&jwks_file, &jwks(&[&new]));
    signal(p.pid(), "HUP");
    poll(
        "the rotated key after SIGHUP",
        Duration::from_secs(10),
        || (status_with_token(&url, &new.token("site", true)) == 200).then_some(()),
    );
    assert_eq!(status_with_token(&url, &old.token("site", true)), 401);
    assert_eq!(
        p.metric("tandem_config_reloads_total", &["result=\"ok\""]),
        1.0
    );
}
