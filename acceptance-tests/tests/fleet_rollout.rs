//! Issue 7's rollout, end to end: real Terraform publishes the fleet config
//! to moto, two real tandem-proxy processes poll that object, and `apply`
//! with `rollout` returns only once both run the new version. A cache
//! change rolls out without restarts while traffic flows with no failed
//! request, and a stopped proxy makes `apply` fail naming it.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tandem_acceptance::{free_port, repo_root, skip_unless_acc, unique, Moto, TfDir};

fn fleet(moto: &Moto, cfg: &str, data: &str, ttl: &str, rollout: &str) -> String {
    let e = moto.endpoint();
    format!(
        r#"{provider}
resource "tandem_proxy_fleet" "f" {{
  config_bucket = "{cfg}"
  config_key    = "fleets/site.json"
  cache {{
    ttl = "{ttl}"
  }}
  drain {{
    delay = "1s"
    grace = "5s"
  }}
  source {{
    url           = "s3://{cfg}/fleets/site.json"
    region        = "us-east-1"
    endpoint      = "{e}"
    poll_interval = "1s"
  }}
  bucket {{
    name        = "site"
    path_prefix = "/site/"
    replica {{
      name       = "moto"
      bucket     = "{data}"
      region     = "us-east-1"
      endpoint   = "{e}"
      path_style = true
    }}
  }}
  {rollout}
}}
"#,
        provider = moto.provider_block()
    )
}

/// A tandem-proxy reading the published object; killed on drop.
struct Proxy {
    child: Option<Child>,
    data: String,
    admin: String,
    _state: tempfile::TempDir,
}

impl Proxy {
    fn start(moto: &Moto, cfg: &str) -> Proxy {
        let bin = repo_root().join("target/debug/tandem-proxy");
        assert!(
            bin.exists(),
            "{} missing: cargo build --workspace first",
            bin.display()
        );
        let state = tempfile::tempdir().unwrap();
        let (d, a) = (free_port(), free_port());
        let child = Command::new(bin)
            .args(["--config", &format!("s3://{cfg}/fleets/site.json")])
            .args([
                "--config-endpoint",
                &moto.endpoint(),
                "--config-region",
                "us-east-1",
            ])
            .args([
                "--data-listen",
                &format!("127.0.0.1:{d}"),
                "--admin-listen",
                &format!("127.0.0.1:{a}"),
            ])
            .arg("--state-dir")
            .arg(state.path())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let p = Proxy {
            child: Some(child),
            data: format!("http://127.0.0.1:{d}"),
            admin: format!("http://127.0.0.1:{a}"),
            _state: state,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::blocking::get(format!("{}/ready", p.admin))
            .map(|r| r.status())
            .ok()
            != Some(reqwest::StatusCode::OK)
        {
            assert!(Instant::now() < deadline, "proxy {} not ready", p.admin);
            std::thread::sleep(Duration::from_millis(50));
        }
        p
    }

    fn status(&self) -> serde_json::Value {
        reqwest::blocking::get(format!("{}/status", self.admin))
            .unwrap()
            .json()
            .unwrap()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rollout_to_two_real_proxies() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let c = tandem_acceptance::sdk::s3(&moto.endpoint(), "us-east-1");
    let (cfg, data) = (unique("fleet-cfg"), unique("fleet-data"));
    tandem_acceptance::sdk::versioned_bucket(&c, &cfg).await;
    c.create_bucket().bucket(&data).send().await.unwrap();
    c.put_object()
        .bucket(&data)
        .key("index.html")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"<h1>tandem</h1>",
        ))
        .send()
        .await
        .unwrap();
    let moto_ref = moto;
    let cfg2 = cfg.clone();
    let data2 = data.clone();
    tokio::task::spawn_blocking(move || steps(moto_ref, &cfg2, &data2))
        .await
        .unwrap();
}

fn steps(moto: &'static Moto, cfg: &str, data: &str) {
    let dir = TfDir::new();
    // 1. Publish.
    dir.write(&fleet(moto, cfg, data, "1m", ""));
    dir.apply();
    let v1 = dir.resource("tandem_proxy_fleet.f")["config_version"]
        .as_str()
        .unwrap()
        .to_string();

    // 2. Two proxies on that object; apply with rollout waits for both.
    let mut a = Proxy::start(moto, cfg);
    let b = Proxy::start(moto, cfg);
    for p in [&a, &b] {
        assert_eq!(p.status()["config_version"], v1.as_str());
    }
    let (admin_a, admin_b) = (a.admin.clone(), b.admin.clone());
    let rollout = |timeout: &str| {
        format!("rollout {{\n    endpoints = [\"{admin_a}\", \"{admin_b}\"]\n    timeout = \"{timeout}\"\n  }}")
    };
    dir.write(&fleet(moto, cfg, data, "2m", &rollout("60s")));
    dir.apply();
    let v2 = dir.resource("tandem_proxy_fleet.f")["config_version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(v1, v2);
    // apply returned only after both proxies ran v2.
    for p in [&a, &b] {
        assert_eq!(p.status()["config_version"], v2.as_str(), "{}", p.admin);
    }

    // 3. A cache change rolls out without restarts while traffic flows.
    let (pa, pb) = (a.pid(), b.pid());
    let stop = AtomicBool::new(false);
    let (ok, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let v3 = std::thread::scope(|s| {
        for p in [&a, &b] {
            let (stop, ok, failed) = (&stop, &ok, &failed);
            let url = format!("{}/site/index.html", p.data);
            s.spawn(move || {
                let http = reqwest::blocking::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    match http
                        .get(&url)
                        .send()
                        .and_then(|r| Ok((r.status(), r.text()?)))
                    {
                        Ok((st, body)) if st == 200 && body == "<h1>tandem</h1>" => {
                            ok.fetch_add(1, Ordering::Relaxed)
                        }
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
        dir.write(&fleet(moto, cfg, data, "3m", &rollout("60s")));
        dir.apply();
        stop.store(true, Ordering::Relaxed);
        dir.resource("tandem_proxy_fleet.f")["config_version"]
            .as_str()
            .unwrap()
            .to_string()
    });
    assert_ne!(v3, v2);
    for p in [&a, &b] {
        assert_eq!(p.status()["config_version"], v3.as_str());
    }
    assert_eq!((a.pid(), b.pid()), (pa, pb), "no restart");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the rollout"
    );
    assert!(ok.load(Ordering::Relaxed) > 10);

    // 4. A stopped proxy: apply fails with a diagnostic naming it.
    a.stop();
    dir.write(&fleet(moto, cfg, data, "4m", &rollout("5s")));
    let out = dir.apply_fails().all();
    assert!(
        out.contains("Fleet did not roll out the new config"),
        "{out}"
    );
    assert!(out.contains(&format!("{}: unreachable", a.admin)), "{out}");
    assert!(!out.contains(&format!("{}: unreachable", b.admin)), "{out}");
    drop(b);
    dir.destroy();
}
