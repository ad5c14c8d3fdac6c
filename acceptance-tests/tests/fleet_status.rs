//! `tandem_proxy_fleet_status` through real Terraform, against a stand-in
//! admin endpoint speaking the proxy's documented `/ready` and `/status`
//! JSON, and an endpoint that is down: the down one is reported, not fatal.

use std::io::{Read, Write};
use std::net::TcpListener;

use tandem_acceptance::{free_port, skip_unless_acc, Moto, TfDir};

/// Serves `/ready` and `/status` on a loopback port from a thread.
fn admin_endpoint(config_version: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten().take(64) {
            let mut s = s;
            let mut buf = [0u8; 2048];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let body = if req.starts_with("GET /status") {
                r#"{"config_version":"CV","cache":{"hits":10,"misses":2}}"#
                    .replace("CV", config_version)
            } else {
                format!(
                    r#"{{"status":"ok","version":"0.1.0","config_version":"{config_version}","replicas":[{{"name":"eu","breaker":"closed"}}]}}"#
                )
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn fleet_status_reports_each_proxy() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let up = admin_endpoint("abc123");
    let down = format!("http://127.0.0.1:{}", free_port());
    let dir = TfDir::new();
    dir.write(&format!(
        r#"{provider}
data "tandem_proxy_fleet_status" "f" {{
  endpoints = ["{up}", "{down}"]
}}
output "ready_count" {{ value = data.tandem_proxy_fleet_status.f.ready_count }}
output "versions" {{ value = join(",", data.tandem_proxy_fleet_status.f.config_versions) }}
output "down_error" {{ value = data.tandem_proxy_fleet_status.f.proxies[1].error }}
output "breaker" {{ value = jsondecode(data.tandem_proxy_fleet_status.f.proxies[0].replicas_json)[0].breaker }}
output "hits" {{ value = jsondecode(data.tandem_proxy_fleet_status.f.proxies[0].status_json).cache.hits }}
"#,
        provider = moto.provider_block()
    ));
    dir.apply();
    let out = |n: &str| dir.ok(&["output", "-raw", n]).stdout;
    assert_eq!(out("ready_count"), "1");
    assert_eq!(out("versions"), "abc123");
    assert_eq!(out("breaker"), "closed");
    assert_eq!(out("hits"), "10");
    assert!(
        !out("down_error").trim().is_empty(),
        "a down proxy must say why"
    );
}
