//! The alert rules in deploy/prometheus: valid for Prometheus, their unit
//! tests pass under `promtool test rules` (each alert against a series
//! that fires it and one that does not), those unit tests fail when a
//! rule is broken, and every alert has the annotations an on-call needs,
//! with a runbook link that lands on a section of docs/proxy/operations.md.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn rules_dir() -> PathBuf {
    common::repo_root().join("deploy/prometheus")
}

/// `promtool` (Debian's `prometheus` package, installed by
/// scripts/bootstrap), or `$TANDEM_PROMTOOL`.
fn promtool() -> PathBuf {
    if let Ok(p) = std::env::var("TANDEM_PROMTOOL") {
        return p.into();
    }
    for p in ["/usr/bin/promtool", "/usr/local/bin/promtool"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("promtool is missing: run scripts/bootstrap test (Debian package prometheus)");
}

/// Runs promtool in `dir`; the exit status and everything it printed.
fn promtool_in(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn rules_are_valid_and_their_unit_tests_pass() {
    let dir = rules_dir();
    let (ok, out) = promtool_in(&dir, &["check", "rules", "tandem-proxy.rules.yml"]);
    assert!(ok, "promtool check rules:\n{out}");
    let (ok, out) = promtool_in(&dir, &["test", "rules", "tandem-proxy.rules.test.yml"]);
    assert!(ok, "promtool test rules:\n{out}");
}

#[test]
fn the_unit_tests_catch_a_broken_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(rules_dir().join("tandem-proxy.rules.yml")).unwrap();
    // An error-rate threshold ten times too high never fires on 5%.
    let broken = rules.replacen("> 0.01", "> 0.1", 1);
    assert_ne!(
        broken, rules,
        "the error-rate threshold moved; update this test"
    );
    std::fs::write(tmp.path().join("tandem-proxy.rules.yml"), broken).unwrap();
    std::fs::copy(
        rules_dir().join("tandem-proxy.rules.test.yml"),
        tmp.path().join("tandem-proxy.rules.test.yml"),
    )
    .unwrap();
    let (ok, out) = promtool_in(
        tmp.path(),
        &["test", "rules", "tandem-proxy.rules.test.yml"],
    );
    assert!(!ok, "a broken rule passed its unit tests:\n{out}");
    assert!(out.contains("TandemHighErrorRate"), "{out}");
}

#[test]
fn every_alert_has_a_summary_a_description_and_a_runbook_that_exists() {
    let text = std::fs::read_to_string(rules_dir().join("tandem-proxy.rules.yml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let ops =
        std::fs::read_to_string(common::repo_root().join("docs/proxy/operations.md")).unwrap();
    let tests = std::fs::read_to_string(rules_dir().join("tandem-proxy.rules.test.yml")).unwrap();
    let mut alerts = 0;
    for group in doc["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().unwrap();
            alerts += 1;
            let a = &rule["annotations"];
            for field in ["summary", "description", "runbook_url"] {
                assert!(
                    a[field].as_str().is_some_and(|s| !s.trim().is_empty()),
                    "{name} has no {field}"
                );
            }
            let url = a["runbook_url"].as_str().unwrap();
            let anchor = url
                .split_once("docs/proxy/operations.md#")
                .unwrap_or_else(|| panic!("{name}: {url} is not a section of operations.md"))
                .1;
            assert!(
                ops.contains(&format!("<a id=\"{anchor}\"></a>")),
                "{name}: docs/proxy/operations.md has no anchor {anchor}"
            );
            assert!(
                tests.contains(&format!("alertname: {name}\n")),
                "{name} has no promtool unit test"
            );
        }
    }
    assert!(alerts >= 10, "only {alerts} alerts found");
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    let text =
        std::fs::read_to_string(common::repo_root().join("deploy/grafana/tandem-proxy.json"))
            .unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            // Grafana's variables, as Grafana would fill them in.
            let q = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "5m")
                .replace("$job", ".*")
                .replace("$instance", ".*");
            n += 1;
            rules.push_str(&format!(
                "      - record: dashboard:query{n}\n        expr: {}\n",
                serde_json::to_string(&q).unwrap()
            ));
        }
    }
    assert!(n >= 15, "{n} queries");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("dashboard.rules.yml"), &rules).unwrap();
    let (ok, out) = promtool_in(tmp.path(), &["check", "rules", "dashboard.rules.yml"]);
    assert!(ok, "a dashboard query is not valid PromQL:\n{out}\n{rules}");
}
