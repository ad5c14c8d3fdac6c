//! `scripts/demo`, as `make demo KEEP=1` and `make demo-down` run it: the
//! stack comes up, the printed URLs answer, the report and summary are
//! written, and `down` destroys and stops everything. A failing step stops
//! the demo with that step's own error, stops what it started and keeps
//! the logs. Each run uses a directory of its own (`TANDEM_DEMO_DIR`).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tandem_acceptance::{repo_root, skip_unless_acc};

/// Longest a whole demo run may take on a loaded 2-core machine, built.
const DEMO_TIMEOUT: Duration = Duration::from_secs(300);

fn demo(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(repo_root().join("scripts/demo"))
        .args(args)
        .env("TANDEM_DEMO_DIR", dir)
        .env_remove("KEEP")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("scripts/demo");
    // Both pipes are read on threads so a chatty demo never blocks.
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + DEMO_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("scripts/demo {args:?} took over {DEMO_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// The processes whose command line names `dir` (SeaweedFS's data
/// directory and the proxies' state directory are under it).
fn processes_under(dir: &Path) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-af", &dir.display().to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Whether `pid` still runs: a zombie (state Z, dead but not yet reaped
/// by whoever adopted it) has stopped, though /proc still lists it.
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(Path::new("/proc").join(pid).join("stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn keep_leaves_the_stack_up_with_working_urls_and_down_stops_it() {
    skip_unless_acc!();
    let dir = tempfile::tempdir().unwrap();
    let up = demo(dir.path(), &[], &[("KEEP", "1")]);
    let text =
        String::from_utf8_lossy(&up.stdout).to_string() + &String::from_utf8_lossy(&up.stderr);
    assert!(up.status.success(), "{text}");
    for want in [
        "0 of",
        "requests failed",
        "tandem-review exited 2",
        "Stop it all with: make demo-down",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    // Every printed URL answers.
    let urls: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("curl "))
        .map(|l| l.trim_start_matches("-i ").trim())
        .collect();
    assert_eq!(urls.len(), 9, "{text}");
    let client = reqwest::blocking::Client::new();
    for url in &urls {
        let r = client
            .get(*url)
            .send()
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(r.status().is_success(), "{url}: {}", r.status());
        let body = r.text().unwrap();
        if url.ends_with("/metrics") {
            assert!(body.contains("tandem_requests_total"), "{url}");
        }
    }
    let report = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(report.contains("<svg") && report.contains("Failover (measured)"));
    let summary = std::fs::read_to_string(dir.path().join("summary.txt")).unwrap();
    for row in ["Created", "Failover (measured)", "Requests served"] {
        assert!(summary.contains(row), "{summary}");
    }
    let stack = std::fs::read_to_string(dir.path().join("stack.env")).unwrap();
    let pids: Vec<String> = stack
        .lines()
        .find(|l| l.starts_with("declare -a pids="))
        .unwrap()
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    assert!(pids.iter().filter(|p| alive(p)).count() >= 6, "{stack}");

    let down = demo(dir.path(), &["down"], &[]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stdout)
    );
    let still: Vec<&String> = pids.iter().filter(|p| alive(p)).collect();
    assert!(still.is_empty(), "still running: {still:?}");
    assert!(!dir.path().join("stack.env").exists());
    assert!(dir.path().join("report.html").exists(), "the report stays");
    let again = demo(dir.path(), &["down"], &[]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("no demo stack is up"));
}

#[test]
fn a_failing_step_stops_with_its_own_error_and_keeps_the_logs() {
    skip_unless_acc!();
    let dir = tempfile::tempdir().unwrap();
    // A Terraform whose apply gets a zone name Route 53 refuses.
    let fake = dir.path().join("fake-terraform");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ \"$1\" = apply ]; then TERRAFORM= exec '{tf}' \"$@\" -var 'domain=bad..name'; fi\nTERRAFORM= exec '{tf}' \"$@\"\n",
            tf = repo_root().join("scripts/terraform").display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let demo_dir = dir.path().join("demo");
    let out = demo(&demo_dir, &[], &[("TERRAFORM", fake.to_str().unwrap())]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("demo: FAILED at step: terraform apply"),
        "{text}"
    );
    assert!(text.contains("Error: Invalid name"), "{text}");
    assert!(text.contains("tandem_route53_zone.main"), "{text}");
    // Terraform wraps diagnostics at 80 columns.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("has an empty label"), "{text}");
    let logs = demo_dir.join("run/logs");
    assert!(
        text.contains(&format!("kept in {}", demo_dir.join("run").display())),
        "{text}"
    );
    assert!(logs.join("apply.log").exists() && logs.join("moto.log").exists());
    assert!(
        !text.contains("==> starting tandem-proxies"),
        "it went on after the failure:\n{text}"
    );
    assert_eq!(processes_under(&demo_dir), Vec::<String>::new());
}
