//! The command line as CI uses it: `--opt=value` and `--opt value`,
//! environment variables, every format, standard input, and the exit
//! statuses a job gates on (0 fine, 2 risky, 1 error).

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

const RISKY_PLAN: &str = r#"{"format_version": "1.2", "resource_changes": [
  {"address": "tandem_route53_health_check.h", "type": "tandem_route53_health_check", "name": "h",
   "mode": "managed", "change": {"actions": ["update"], "before": {"disabled": false}, "after": {"disabled": true}}}
]}"#;

fn review(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem-review"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Only what the test sets: the caller's TANDEM_REVIEW_* must not leak in.
    for (k, _) in std::env::vars() {
        if k.starts_with("TANDEM_REVIEW_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run tandem-review");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn plan_file() -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(RISKY_PLAN.as_bytes()).unwrap();
    f
}

#[test]
fn fail_on_takes_both_spellings_and_the_environment() {
    let f = plan_file();
    let p = f.path().to_str().unwrap();
    assert_eq!(
        review(&[p], &[], None).status.code(),
        Some(0),
        "medium is below the default high"
    );
    assert_eq!(
        review(&[p, "--fail-on=medium"], &[], None).status.code(),
        Some(2)
    );
    assert_eq!(
        review(&[p, "--fail-on", "medium"], &[], None).status.code(),
        Some(2)
    );
    assert_eq!(
        review(&[p], &[("TANDEM_REVIEW_FAIL_ON", "medium")], None)
            .status
            .code(),
        Some(2)
    );
    // The command line wins over the environment.
    let o = review(
        &[p, "--fail-on=none"],
        &[("TANDEM_REVIEW_FAIL_ON", "low")],
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    let o = review(&[p, "--fail-on=low"], &[], None);
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs a human approval"));
}

#[test]
fn errors_exit_1_never_2() {
    let f = plan_file();
    let p = f.path().to_str().unwrap();
    for args in [
        vec![p, "--fail-on=critical"],
        vec![p, "--bogus"],
        vec![],
        vec!["/nonexistent/plan.json"],
    ] {
        let o = review(&args, &[], None);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = review(&["-"], &[], Some("{not json"));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not the JSON"),
        "{o:?}"
    );
    assert_eq!(review(&["--help"], &[], None).status.code(), Some(0));
}

#[test]
fn every_format_to_a_file_or_stdout_from_a_file_or_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("review.md");
    let o = review(
        &["-", &format!("--out={}", out.display()), "--marker=infra"],
        &[],
        Some(RISKY_PLAN),
    );
    assert_eq!(o.status.code(), Some(0));
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(md.starts_with("<!-- tandem-review:infra -->\n"), "{md}");
    assert!(md.contains("health-check-disabled"), "{md}");

    let f = plan_file();
    let p = f.path().to_str().unwrap();
    let o = review(&[p, "--format=json"], &[], None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["findings"][0]["rule"], "health-check-disabled");
    assert_eq!(v["fails"], false);

    let o = review(
        &[p],
        &[
            ("TANDEM_REVIEW_FORMAT", "sarif"),
            ("TANDEM_REVIEW_SOURCE_DIR", "infra"),
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert_eq!(v["runs"][0]["results"][0]["level"], "warning");
    assert_eq!(
        v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "infra"
    );
}
