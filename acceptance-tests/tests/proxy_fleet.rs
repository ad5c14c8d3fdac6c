//! `tandem_proxy_fleet` through real Terraform, on moto and the strict
//! lane: publish, empty plan, update, out-of-band edit as drift, import,
//! invalid configs at plan time with attribute paths, rollout success and
//! failure against stand-in admin endpoints, destroy.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use tandem_acceptance::sdk::versioned_bucket;
use tandem_acceptance::{block_on, on_both_lanes, skip_unless_acc, unique, Lane, Moto, TfDir};

on_both_lanes!(proxy_fleet_lifecycle);

/// The config bucket's region: not the provider's, so the lifecycle also
/// shows the bucket's own region is found.
const CONFIG_REGION: &str = "eu-west-1";

fn fleet(lane: Lane, bucket: &str, ttl: &str, extra: &str) -> String {
    format!(
        r#"{provider}
resource "tandem_proxy_fleet" "f" {{
  config_bucket = "{bucket}"
  config_key    = "fleets/assets.json"

  cache {{
    max_bytes = "64MiB"
    ttl       = "{ttl}"
  }}

  bucket {{
    name        = "assets"
    path_prefix = "/assets/"
    replica {{
      name     = "eu"
      bucket   = "assets-eu"
      region   = "eu-west-1"
      priority = 1
      timeout  = "500ms"
    }}
    replica {{
      name     = "us"
      bucket   = "assets-us"
      region   = "us-east-1"
      priority = 2
    }}
  }}
  {extra}
}}
"#,
        provider = lane.provider_block()
    )
}

/// A stand-in proxy admin endpoint reporting `version` from `/ready`.
fn stand_in(version: Arc<Mutex<String>>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten().take(500) {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let body = format!(
                r#"{{"status":"ok","version":"0.1.0","config_version":"{}"}}"#,
                version.lock().unwrap()
            );
            let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        }
    });
    format!("http://{addr}")
}

fn proxy_fleet_lifecycle(lane: Lane) {
    skip_unless_acc!();
    let client = lane.s3(CONFIG_REGION);
    let bucket = unique("fleet-cfg");
    block_on(versioned_bucket(&client, &bucket));
    let dir = TfDir::new();

    // Create, then nothing to do.
    dir.write(&fleet(lane, &bucket, "1m", ""));
    dir.apply();
    dir.plan_is_empty();
    let st = dir.resource("tandem_proxy_fleet.f");
    let v1 = st["config_version"].as_str().unwrap().to_string();
    assert_eq!(v1.len(), 16);
    assert!(!st["object_version_id"].as_str().unwrap().is_empty());
    assert_eq!(st["region"], CONFIG_REGION, "the bucket's own region");
    let body = block_on(async {
        let obj = client
            .get_object()
            .bucket(&bucket)
            .key("fleets/assets.json")
            .send()
            .await
            .unwrap();
        String::from_utf8(obj.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
    });
    assert_eq!(body, st["document"].as_str().unwrap());
    assert!(body.contains(r#""ttl":"1m""#), "{body}");

    // Update in place: a new version is published.
    dir.write(&fleet(lane, &bucket, "2m", ""));
    let plan = dir.plan_expect_changes();
    assert!(plan.contains("1 to change"), "{plan}");
    dir.apply();
    dir.plan_is_empty();
    let v2 = dir.resource("tandem_proxy_fleet.f")["config_version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(v1, v2);

    // An edit made outside Terraform shows as drift and is put back.
    block_on(
        client
            .put_object()
            .bucket(&bucket)
            .key("fleets/assets.json")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(
                br#"{"buckets":[]}"#,
            ))
            .send(),
    )
    .unwrap();
    let plan = dir.plan_expect_changes();
    assert!(plan.contains("config_version"), "{plan}");
    dir.apply();
    dir.plan_is_empty();

    // Import by bucket/key finds the same document.
    dir.ok(&["state", "rm", "-no-color", "tandem_proxy_fleet.f"]);
    dir.ok(&[
        "import",
        "-no-color",
        "tandem_proxy_fleet.f",
        &format!("{bucket}/fleets/assets.json"),
    ]);
    assert_eq!(
        dir.resource("tandem_proxy_fleet.f")["config_version"],
        v2.as_str()
    );

    // Rollout: waits for the stand-ins to report the version...
    let a = Arc::new(Mutex::new(v2.clone()));
    let b = Arc::new(Mutex::new(v2.clone()));
    let (ea, eb) = (stand_in(a.clone()), stand_in(b.clone()));
    let rollout =
        format!("rollout {{\n    endpoints = [\"{ea}\", \"{eb}\"]\n    timeout = \"3s\"\n  }}");
    dir.write(&fleet(lane, &bucket, "2m", &rollout));
    dir.apply();
    // ...and fails naming the proxy that lags behind a new version.
    *a.lock().unwrap() = "0000000000000000".into();
    *b.lock().unwrap() = "0000000000000000".into();
    dir.write(&fleet(lane, &bucket, "3m", &rollout));
    let out = dir.apply_fails().all();
    assert!(
        out.contains("Fleet did not roll out the new config"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{ea}: /ready 200, status ok, config_version 0000000000000000"
        )),
        "{out}"
    );

    // Destroy removes the object.
    dir.destroy();
    let gone = block_on(
        client
            .head_object()
            .bucket(&bucket)
            .key("fleets/assets.json")
            .send(),
    );
    assert!(gone.is_err(), "object still exists after destroy");
}

#[test]
fn invalid_fleet_configs_fail_at_plan_with_attribute_paths() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let dir = TfDir::new();
    dir.write(&format!(
        r#"{provider}
resource "tandem_proxy_fleet" "bad" {{
  config_bucket = "cfg"
  config_key    = "bad.json"
  listen {{
    data  = "0.0.0.0:8080"
    admin = "0.0.0.0:8080"
  }}
  cache {{
    max_bytes        = "1KiB"
    max_object_bytes = "8MiB"
    ttl              = "0s"
  }}
  bucket {{
    name        = "assets"
    path_prefix = "assets"
    replica {{
      name     = "eu"
      bucket   = "Bad_Bucket"
      region   = "mars"
      priority = 1
      timeout  = "10m"
    }}
    replica {{
      name     = "eu"
      bucket   = "assets-us"
      region   = "us-east-1"
      priority = 1
    }}
    breaker {{
      failure_threshold = 0
    }}
  }}
}}
"#,
        provider = moto.provider_block()
    ));
    let out = dir.plan_fails().all();
    // Each problem is reported against the attribute that causes it.
    for want in [
        "admin = \"0.0.0.0:8080\"",
        "max_bytes        = \"1KiB\"",
        "max_object_bytes = \"8MiB\"",
        "ttl              = \"0s\"",
        "path_prefix = \"assets\"",
        "bucket   = \"Bad_Bucket\"",
        "region   = \"mars\"",
        "timeout  = \"10m\"",
        "failure_threshold = 0",
    ] {
        assert!(out.contains(want), "no diagnostic points at {want}:\n{out}");
    }
    assert!(out.matches("Invalid fleet config").count() >= 10, "{out}");
}

/// One code path: the problems Terraform reports at plan time are exactly
/// the lines `tandem-proxy check` prints for the same document.
#[test]
fn plan_and_proxy_check_report_the_same_problems() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let dir = TfDir::new();
    dir.write(&format!(
        r#"{provider}
resource "tandem_proxy_fleet" "bad" {{
  config_bucket = "cfg"
  config_key    = "bad.json"
  cache {{
    max_bytes = "1KiB"
    ttl       = "0s"
  }}
  bucket {{
    name        = "a b"
    path_prefix = "assets"
    replica {{
      name     = "eu"
      bucket   = "Bad_Bucket"
      region   = "mars"
      priority = 1
      timeout  = "10m"
    }}
    replica {{
      name     = "eu"
      bucket   = "assets-us"
      region   = "us-east-1"
      priority = 1
    }}
  }}
}}
"#,
        provider = moto.provider_block()
    ));
    let out = dir.run(&["plan", "-json", "-no-color", "-input=false"]);
    assert_ne!(out.code, 0);
    let mut from_plan: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["type"] == "diagnostic" && v["diagnostic"]["summary"] == "Invalid fleet config"
        })
        .filter_map(|v| {
            v["diagnostic"]["detail"].as_str().map(|d| {
                d.trim_end_matches(". (tandem-proxy check reports the same.)")
                    .to_string()
            })
        })
        .collect();
    from_plan.sort();
    assert!(from_plan.len() >= 8, "{from_plan:?}");

    let yaml = dir.path().join("bad.yaml");
    std::fs::write(
        &yaml,
        "cache:\n  max_bytes: 1KiB\n  ttl: 0s\nbuckets:\n  - name: a b\n    path_prefix: assets\n    replicas:\n      - {name: eu, bucket: Bad_Bucket, region: mars, priority: 1, timeout: 10m}\n      - {name: eu, bucket: assets-us, region: us-east-1, priority: 1}\n",
    )
    .unwrap();
    let check = std::process::Command::new(tandem_acceptance::provider_dir().join("tandem-proxy"))
        .args(["check", "--config"])
        .arg(&yaml)
        .output()
        .expect("tandem-proxy (built by cargo build --workspace)");
    assert_eq!(check.status.code(), Some(1));
    let mut from_check: Vec<String> = String::from_utf8_lossy(&check.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    from_check.sort();
    assert_eq!(from_plan, from_check);
}
